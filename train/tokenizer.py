"""`coda train tokenizer`: a byte-level BPE for a corpus, in the format `load_tokenizer` opens.

The pre-tokenizer is Qwen2/3's split (letters, single digits, punctuation
runs, newline runs, whitespace runs), so runs of indentation become single
tokens, which is where most of code's characters per token come from. Bytes
are the base alphabet: any text round-trips, nothing is ever unknown.

Special tokens come first (ids 0..6) with CoDA's roles: `<|endoftext|>` pads
the unused canvas, `<|im_end|>` ends a turn (eos), `<|mask|>` is the
diffusion mask, and the FIM tokens are kept for prompts that use them. The
chat template is Qwen's ChatML, so SFT and `Sampler.chat_prompt` work unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from coda_core.atomic import atomic_directory

from .data import DataError

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>",
                  "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
# Qwen2/Qwen3's pre-tokenizer pattern (tokenizer.json of the public Qwen3 release).
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def corpus_texts(path: str | Path, max_chars: int | None = None) -> Iterator[str]:
    """The `text` of each record of a JSONL file, up to about max_chars characters in all."""
    seen = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            text = json.loads(line).get("text", "")
            yield text
            seen += len(text)
            if max_chars is not None and seen >= max_chars:
                return


def train_bpe(texts: Iterator[str], vocab_size: int):
    """A `tokenizers.Tokenizer`: byte-level BPE with CoDA's special tokens at ids 0..6."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
        raise DataError(f"a byte-level BPE needs more than {256 + len(SPECIAL_TOKENS)} tokens, got {vocab_size}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def as_transformers(tokenizer):
    """Wrap for transformers: special-token roles and the chat template, as CoDA's tokenizer has them."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", mask_token="<|mask|>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>", "<|mask|>")],
        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False, model_max_length=1 << 20)


def chars_per_token(tokenizer, texts: list[str]) -> float:
    chars = sum(len(t) for t in texts)
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    return chars / max(tokens, 1)


def build_tokenizer(corpus: str | Path, out: str | Path, vocab_size: int, *, max_chars: int = 40_000_000) -> dict:
    """Train on corpus/train.jsonl, write `out` (atomically), and measure on corpus/valid.jsonl."""
    corpus, out = Path(corpus), Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} already exists and is not empty; choose another --out")
    if not (corpus / "train.jsonl").is_file():
        raise DataError(f"{corpus} has no train.jsonl; build it with `coda train corpus`")
    tokenizer = train_bpe(corpus_texts(corpus / "train.jsonl", max_chars), vocab_size)
    with atomic_directory(out) as tmp:
        as_transformers(tokenizer).save_pretrained(tmp)
    report = {"out": str(out), "vocab_size": tokenizer.get_vocab_size(), "trained_on_chars": max_chars}
    valid = corpus / "valid.jsonl"
    if valid.is_file():
        report["valid_chars_per_token"] = round(chars_per_token(tokenizer, list(corpus_texts(valid, 5_000_000))), 3)
    return report


def measure_vocab_sizes(corpus: str | Path, sizes: list[int], *, max_chars: int = 20_000_000) -> list[dict]:
    """Characters per token on the held-out split for each vocabulary size (for choosing one)."""
    corpus = Path(corpus)
    valid = list(corpus_texts(corpus / "valid.jsonl", 5_000_000))
    rows = []
    for size in sizes:
        tokenizer = train_bpe(corpus_texts(corpus / "train.jsonl", max_chars), size)
        rows.append({"vocab_size": size, "valid_chars_per_token": round(chars_per_token(tokenizer, valid), 3)})
    return rows
