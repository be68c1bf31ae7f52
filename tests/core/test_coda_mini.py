"""coda-mini: the corpus builder, the tokenizer, and the bundled model itself."""

import email.message
import json

import pytest
import torch

from coda_train.corpus import Package, build_corpus, licence_of, split_of, sft_pairs
from coda_train.tokenizer import SPECIAL_TOKENS, as_transformers, train_bpe


def metadata(**fields) -> email.message.Message:
    meta = email.message.Message()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            meta[key.replace("_", "-")] = item
    return meta


@pytest.mark.parametrize("fields, permissive", [
    ({"License_Expression": "MIT"}, True),
    ({"License_Expression": "Apache-2.0 AND BSD-3-Clause"}, True),
    ({"License_Expression": "Apache-2.0 WITH LLVM-exception"}, True),
    ({"License_Expression": "MIT OR GPL-3.0-only"}, True),  # an OR needs one permissive choice
    ({"License_Expression": "MPL-2.0 AND MIT"}, False),  # an AND needs every part permissive
    ({"License_Expression": "GPL-3.0-or-later"}, False),
    ({"Classifier": ["License :: OSI Approved :: BSD License"]}, True),
    ({"Classifier": ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]}, False),
    # docutils 0.23: parts of it are GPL, so a classifier list that names GPL beside permissive ones is not
    ({"Classifier": ["License :: Public Domain", "License :: OSI Approved :: BSD License",
                     "License :: OSI Approved :: GNU General Public License (GPL)"]}, False),
    ({"License": "BSD 3-Clause License\n\nCopyright (c) ..."}, True),
    ({"License": "LGPL"}, False),
    ({}, False),  # no licence at all is not a licence to train on
])
def test_licences_are_read_from_metadata(fields, permissive):
    assert licence_of(metadata(**fields))[1] is permissive


HUMANEVAL_0 = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    """
    for idx, elem in enumerate(numbers):
        for idx2, elem2 in enumerate(numbers):
            if idx != idx2:
                distance = abs(elem - elem2)
                if distance < threshold:
                    return True

    return False
'''


def package(tmp_path, name, licence, permissive, files: dict[str, str]) -> Package:
    folder = tmp_path / name.replace("/", "_")
    folder.mkdir()
    for filename, text in files.items():
        (folder / filename).write_text(text)
    return Package(name, licence, permissive, sorted(folder.iterdir()))


def test_corpus_refuses_copyleft_drops_humaneval_and_duplicates(tmp_path):
    code = "def scale(values, factor):\n    \"\"\"Multiply every value by factor.\"\"\"\n    out = []\n" \
           "    for v in values:\n        out.append(v * factor)\n    return out\n"
    # Find package names that land in train, so the records below are where the test looks.
    names = [n for n in (f"dist/p{i}" for i in range(100)) if split_of(n) == "train"][:2]
    near = "# a comment\n" + code.replace("    ", "  ")  # the same code but for a comment and indentation
    packages = [
        package(tmp_path, names[0], "MIT", True, {"a.py": code, "copy.py": code, "near.py": near,
                                                  "leak.py": HUMANEVAL_0, "broken.py": "def (:\n"}),
        package(tmp_path, names[1], "GPL-3.0-only", False, {"b.py": "x = 1\n"}),
    ]
    manifest = build_corpus(tmp_path / "corpus", packages, progress=False)
    assert manifest["dropped"] == {"duplicate": 1, "near duplicate": 1, "humaneval": 1, "does not parse": 1,
                                   "licence": 1}
    assert manifest["decontamination"]["files_dropped"] == 1
    entries = {p["package"]: p for p in manifest["packages"]}
    assert entries[names[1]]["excluded"] == "licence not permissive" and entries[names[1]]["documents"] == 0
    assert entries[names[0]]["licence"] == "MIT" and entries[names[0]]["documents"] == 1
    train = [json.loads(line) for line in (tmp_path / "corpus" / "train.jsonl").read_text().splitlines()]
    assert len(train) == 1 and train[0]["text"] in (code, near) and train[0]["source"] == names[0]
    sft = [json.loads(line) for line in (tmp_path / "corpus" / "sft.jsonl").read_text().splitlines()]
    assert [p["prompt"] for p in sft] == ["Write a Python function `scale(values, factor)`.\n\n"
                                          "Multiply every value by factor."]
    assert sft[0]["response"].startswith("def scale(values, factor):")


def test_holdout_is_by_whole_package():
    splits = {split_of(f"stdlib/m{i}") for i in range(200)}
    assert splits == {"train", "valid", "bench"}
    # A hash of the name alone, the same in every process and on every machine (not Python's salted
    # hash()): the held-out packages docs/MODEL.md lists for the shipped coda-mini stay held out.
    documented = {"dist/networkx": "valid", "dist/msgpack": "valid", "stdlib/gzip": "valid",
                  "dist/Pygments": "bench", "dist/pynvim": "bench", "stdlib/tokenize": "bench",
                  "dist/numpy": "train", "stdlib/json": "train"}
    assert {name: split_of(name) for name in documented} == documented


def test_sft_pairs_need_a_docstring_and_a_body():
    text = "def f(x):\n    return x\n\n\ndef g(x):\n    \"\"\"Twice x, rounded to an int.\"\"\"\n    y = 2 * x\n    return int(y)\n"
    assert [p["prompt"] for p in sft_pairs(text)] == ["Write a Python function `g(x)`.\n\nTwice x, rounded to an int."]


ROUND_TRIP = [
    "def f(x):\n\treturn x  # tab-indented\n",
    "naïve = 'café' + \"日本語\" + '🙂'\r\nprint(naïve)\r\n",
    "    \n\n\x0c  trailing   \n",
]


def test_a_trained_bpe_round_trips_and_keeps_special_ids():
    corpus = ["def add(a, b):\n    return a + b\n", "class A:\n    pass\n", "for i in range(10):\n    print(i)\n"] * 20
    tokenizer = as_transformers(train_bpe(iter(corpus), 400))
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id) == (0, 2, 3)
    for text in ROUND_TRIP:
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_bundled_tokenizer_round_trips_code_byte_for_byte(coda_mini_dir):
    from coda_core.config import load_config
    from coda_core.tokenizer import load_tokenizer, special_ids

    tokenizer = load_tokenizer(coda_mini_dir)
    for text in ROUND_TRIP + [(coda_mini_dir.parents[1] / "sampler.py").read_text()]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
    ids = special_ids(load_config(coda_mini_dir), tokenizer)
    assert (ids.pad, ids.eos, ids.mask) == (0, 2, 3)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                         tokenize=False) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# Holes with one obvious answer (prefix, suffix, the hole's first line). A floor that catches a broken
# export, tokenizer or sampler (a random model fills none of them), not a quality target: coda-mini's
# figures are in docs/MODEL.md. The shipped model gets 2 of these 6, in bf16 and in fp32 alike.
EASY_HOLES = [
    ("def add(a, b):\n    return ", "\n\n\ndef sub(a, b):\n    return a - b\n", "a + b"),
    ("values = [3, 1, 2]\nprint(sorted(values", "\n", "))"),
    ("for i in range(10", "\n    print(i)\n", "):"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = ", "\n", "y"),
    ("import os\n\n\ndef main():\n    print(os.getcwd())\n\n\nif __name__ == \"__main__\":\n    ", "\n", "main()"),
    ("import sys\n\n\ndef main(argv):\n    return len(argv)\n\n\nif __name__ == ", ":\n    sys.exit(main(sys.argv))\n",
     '"__main__"'),
]


def test_the_default_model_is_bundled_and_knows_python(coda_mini_dir, monkeypatch):
    from coda_core.bundled import default_model
    from coda_core.loading import load_model, resolve_model_dir
    from coda_core.sampler import Sampler
    from coda_core.tokenizer import load_tokenizer

    monkeypatch.delenv("CODA_MODEL", raising=False)
    assert default_model() == "coda-mini" and resolve_model_dir("coda-mini") == coda_mini_dir
    # dtype auto: bf16 where this CPU computes it natively, else fp32 (the floors hold for both)
    model = load_model(default_model(), device="cpu")
    sampler = Sampler(model, load_tokenizer(coda_mini_dir))
    tok = sampler.tokenizer

    # Masked-token prediction on code it never saw (this package's sampler): a random model scores
    # ln(8192) = 9.0 nats and ~0% top-1; the shipped one 5.6 and 20%.
    ids = torch.tensor([tok.encode((coda_mini_dir.parents[1] / "sampler.py").read_text())[:512]])
    masked = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    masked[:, 0] = False
    with torch.no_grad():
        logits = model(ids.masked_fill(masked, sampler.ids.mask)).logits.float()
    predicted = torch.cat([logits[:, :1], logits[:, :-1]], 1)[masked]  # token j from hidden j-1
    assert torch.nn.functional.cross_entropy(predicted, ids[masked]) < 7.0
    assert (predicted.argmax(-1) == ids[masked]).float().mean() > 0.1

    got = [sampler.infill(tok.encode(before), tok.encode(after), 16).text.split("\n", 1)[0].strip()
           for before, after, _ in EASY_HOLES]
    right = sum(g == want for g, (_, _, want) in zip(got, EASY_HOLES))
    assert right >= 2, f"coda-mini filled {right} of {len(EASY_HOLES)} easy holes: {got}"


def test_infill_after_spaces_heals_the_token_split(coda_mini_dir):
    """A cursor after spaces: the trailing space token goes back into the hole (BPE glues a space to
    the next word), and the fill comes back relative to the prefix as given."""
    from coda_core.sampler import Sampler

    sampler = Sampler.load("coda-mini", device="cpu")
    tok = sampler.tokenizer
    before = "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = "
    healed, carried = sampler._heal(tok.encode(before))
    assert carried == " " and tok.decode(healed) == before[:-1]
    assert sampler._heal(tok.encode(before[:-1])) == (tok.encode(before[:-1]), "")
    fill = sampler.infill(tok.encode(before), tok.encode("\n"), 8).text
    assert not fill.startswith(" ") and fill.split("\n")[0].strip() == "y"
