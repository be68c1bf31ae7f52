"""The sampler: reference vs fast equivalence, cancellation, end handling, candidates, prefix reuse."""

import time

import pytest

from coda_core.denoise import DecodeOptions
from coda_core.prefix_cache import PrefixCache
from coda_core.sampler import Sampler
from coda_core.token_choice import SamplingParams

from small_models import tiny_model

PREFIX = "import math\n\n\ndef area(radius):\n    \"\"\"Area of a circle.\"\"\"\n    return"
SUFFIX = "\n\n\ndef circumference(radius):\n    return 2 * math.pi * radius\n"
# One token per step, the whole hole as one block, a full refresh every step:
# the fast sampler must then make exactly the reference's choices.
EXACT = DecodeOptions(threshold=1.0, max_per_step=1, block_size=10_000, refresh="step", eps=0.0)


def make_sampler(tok, seed=0, **kwargs):
    return Sampler(tiny_model(seed), tok, **kwargs)


def both(sampler, call, *args, **kwargs):
    fast = call(*args, strategy="fast", options=EXACT, reuse_prefix=False, **kwargs)
    ref = call(*args, strategy="reference", options=EXACT, **kwargs)
    return fast, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_equals_reference_for_infill_rewrite_generate(bundled_tokenizer, seed):
    tok = bundled_tokenizer
    sampler = make_sampler(tok, seed)
    pre, suf = tok.encode(PREFIX), tok.encode(SUFFIX)
    for fast, ref in [
        both(sampler, sampler.infill, pre, suf, 16, sizes=[16]),
        both(sampler, sampler.rewrite, pre, tok.encode(" math.pi * radius ** 2"), suf),
        both(sampler, sampler.generate, tok.encode("# a function that adds two numbers\n"), 12),
        both(sampler, sampler.fill_holes, [pre, tok.encode("\n\ndef half(x):\n    return"), suf], [6, 5]),
    ]:
        assert [c.ids for c in fast.candidates] == [c.ids for c in ref.candidates]
        assert fast.stats.steps == ref.stats.steps
        assert fast.stats.complete and ref.stats.complete


def test_infill_batches_canvas_sizes_and_ranks(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), max_new_tokens=20, n=4)
    assert {c.canvas_size for c in result.candidates} <= {8, 16, 20}
    assert len({c.text for c in result.candidates}) == len(result.candidates)
    keys = [(not c.ended, -c.score) for c in result.candidates]
    assert keys == sorted(keys)
    assert result.text == result.candidates[0].text
    for c in result.candidates:
        assert c.text == tok.decode(c.ids) and len(c.ids) <= c.canvas_size
    d = result.as_dict()
    assert {"text", "forwards", "tokens", "ms"} <= d.keys() and d["forwards"] >= 1


def test_low_threshold_commits_many_tokens_per_forward(bundled_tokenizer):
    """Every chosen token clears a threshold of 1e-9, so each forward commits its whole block."""
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    for block_size, forwards in [(32, 1), (16, 2)]:
        result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 32, sizes=[32], reuse_prefix=False,
                                options=DecodeOptions(threshold=1e-9, block_size=block_size))
        s = result.stats
        assert s.complete and s.tokens == 32, s
        assert s.forwards == s.full_forwards == s.steps == forwards, s  # one refresh per block, nothing else


def test_blocks_and_sub_blocks_use_window_forwards(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    opts = DecodeOptions(threshold=0.99, block_size=16, sub_block_size=4)
    result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 32, sizes=[32], options=opts, reuse_prefix=False)
    s = result.stats
    assert s.complete and s.full_forwards == 2  # one refresh per block of 16
    assert s.window_forwards == s.forwards - 2 > 0
    assert s.prefill_ms > 0 and s.steps_ms > 0


def test_cancellation_returns_within_one_step(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    for strategy in ("fast", "reference"):
        calls = []

        def should_stop():
            calls.append(1)
            return len(calls) > 3

        result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 32, sizes=[32], strategy=strategy,
                                options=EXACT, should_stop=should_stop)
        assert result.stats.stopped == "cancelled"
        assert result.stats.steps == 3 and result.stats.forwards == 3
        assert not result.stats.complete


def test_deadline_stops_the_loop(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 32, options=EXACT,
                            deadline=time.monotonic() - 1)
    assert result.stats.stopped == "deadline" and result.stats.forwards == 0
    assert result.text == ""


@pytest.mark.parametrize("strategy", ["fast", "reference"])
def test_progress_hook_sees_every_step(bundled_tokenizer, strategy):
    """EXACT commits one token per step: 8 steps for the 8-slot hole, each reported once, after its commit."""
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    seen = []
    result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 8, sizes=[8], options=EXACT, strategy=strategy,
                            on_progress=lambda step, text, done: seen.append((step, text, done)))
    assert result.stats.complete and result.stats.steps == 8
    assert [step for step, _, _ in seen] == list(range(1, 9))
    assert seen[-1][1] == tok.decode(result.candidates[0].ids, skip_special_tokens=True)
    done = [d for _, _, d in seen]  # the share of the hole committed: at least one more slot each step
    assert done[0] > 0 and all(a < b for a, b in zip(done, done[1:])) and done[-1] == 1.0
    texts = [text for _, text, _ in seen]
    assert texts[0] and len(set(texts)) == len(texts)  # each report shows that step's new token


def test_candidates_are_deterministic_for_a_seed(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    opts = DecodeOptions(sampling=SamplingParams(temperature=1.0, top_p=0.95), threshold=0.9)
    run = lambda seed: [c.text for c in sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 16, n=3,
                                                         options=opts, seed=seed, reuse_prefix=False).candidates]
    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert len(first) == 3


@pytest.mark.parametrize("alg", ["origin", "maskgit_plus", "topk_margin", "entropy"])
def test_reference_algorithms_complete(bundled_tokenizer, alg):
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    opts = DecodeOptions(alg=alg, steps=4, alg_temp=0.5 if alg == "entropy" else None,
                         sampling=SamplingParams(temperature=0.5, top_k=50))
    result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 16, sizes=[16], strategy="reference",
                            options=opts, seed=3)
    assert result.stats.complete and result.stats.forwards <= 4
    again = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 16, sizes=[16], strategy="reference",
                           options=opts, seed=3)
    assert [c.ids for c in again.candidates] == [c.ids for c in result.candidates]


def test_prefix_reuse_is_exact_for_the_same_context(bundled_tokenizer):
    """For an unchanged canvas the reused head K/V are the ones a fresh prefill computes, so every
    row (the 8- and the 16-slot canvas, with its right padding) scores exactly as without reuse."""
    tok = bundled_tokenizer
    cache = PrefixCache(min_tokens=8)
    sampler = make_sampler(tok, prefix_cache=cache)
    pre, suf = tok.encode(PREFIX * 2), tok.encode(SUFFIX)
    opts = DecodeOptions(threshold=0.9, block_size=16)
    fresh = sampler.infill(pre, suf, 16, n=2, options=opts, reuse_prefix=False)
    first = sampler.infill(pre, suf, 16, n=2, options=opts)
    second = sampler.infill(pre, suf, 16, n=2, options=opts)
    assert len(fresh.candidates) == 2  # both canvas sizes are compared
    assert first.stats.reused_prefix == 0 and second.stats.reused_prefix == len(pre) - 1
    for result in (first, second):
        assert [c.ids for c in result.candidates] == [c.ids for c in fresh.candidates]
        assert [c.score for c in result.candidates] == pytest.approx([c.score for c in fresh.candidates], abs=1e-5)
    # a longer prefix with the same head reuses all of it (the stored head ends before the old hole)
    typed = sampler.infill(pre + tok.encode(" math"), suf, 16, options=opts)
    assert typed.stats.reused_prefix == len(pre)
    assert len(cache) == 1  # only the fresh prefill of `first` was stored


def test_prefix_reuse_serves_only_fresh_entries_a_bounded_number_of_times(bundled_tokenizer):
    tok = bundled_tokenizer
    cache = PrefixCache(min_tokens=8, max_uses=2)
    sampler = make_sampler(tok, prefix_cache=cache)
    pre, suf = tok.encode(PREFIX * 2), tok.encode(SUFFIX)
    reused = [sampler.infill(pre + tok.encode(" x" * i), suf, 8, sizes=[8]).stats.reused_prefix for i in range(5)]
    # fresh, reused, reused, then the entry is used up: a fresh prefill stores a new one, which serves again
    assert reused[0] == 0 and reused[1] > 0 and reused[2] > 0 and reused[3] == 0 and reused[4] > 0


def test_prefix_cache_is_bounded(bundled_tokenizer):
    tok = bundled_tokenizer
    cache = PrefixCache(min_tokens=8, max_entries=2)
    sampler = make_sampler(tok, prefix_cache=cache)
    for i in range(4):
        sampler.infill(tok.encode(f"# file {i}\n" + PREFIX), tok.encode(SUFFIX), 8, sizes=[8],
                       options=DecodeOptions(threshold=0.5))
    assert len(cache) == 2
    small = PrefixCache(min_tokens=8, max_bytes=1)
    make_sampler(tok, prefix_cache=small).infill(tok.encode(PREFIX), tok.encode(SUFFIX), 8, sizes=[8])
    assert len(small) == 0 and small.nbytes == 0


def test_fill_holes_fills_every_hole_in_one_decode(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok, max_context=96)
    middle = tok.encode("\n\ndef half(x):\n    return")
    result = sampler.fill_holes([tok.encode(PREFIX), middle, tok.encode(SUFFIX)], [8, 8], n=2,
                                options=DecodeOptions(sampling=SamplingParams(temperature=1.0), threshold=0.5))
    assert result.stats.complete and 1 <= len(result.candidates) <= 2
    for c in result.candidates:
        assert len(c.fills) == 2 and all(len(ids) <= 8 for ids in c.fill_ids)
        assert c.fills == [tok.decode(ids) for ids in c.fill_ids]
    assert result.as_dict()["candidates"][0]["fills"] == result.candidates[0].fills
    # the pieces between holes stay whole; the outer pieces are cut to fit the context
    long = sampler.fill_holes([list(range(1000, 1100)), middle, list(range(2000, 2100))], [8, 8])
    assert long.stats.complete
    with pytest.raises(ValueError, match="2 holes need 3 context pieces"):
        sampler.fill_holes([[1], [2]], [4, 4])
    with pytest.raises(ValueError, match="does not fit"):
        sampler.fill_holes([[1], list(range(1000, 1090)), [2]], [4, 4])


@pytest.mark.parametrize("strategy", ["fast", "reference"])
def test_empty_prefix_and_suffix(bundled_tokenizer, strategy):
    """A canvas that is all hole: the hole starts at slot 0, which has no slot before it to predict
    it. Both decoders really decode it (fast: a refresh, then window steps fed from slot 0)."""
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    result = sampler.infill([], [], 8, strategy=strategy)
    s = result.stats
    assert s.complete and s.steps > 1 and s.tokens >= 1
    if strategy == "fast":
        assert s.full_forwards == 1 and s.window_forwards == s.forwards - 1 > 0
    [c] = result.candidates  # one canvas size, greedy: one row
    assert c.canvas_size == 8 and 0 < len(c.ids) <= 8 and c.text == tok.decode(c.ids)


def test_bad_ids_and_oversized_holes(bundled_tokenizer):
    tok = bundled_tokenizer
    sampler = make_sampler(tok, max_context=64)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sampler.infill([1, 2, 10**7], [], 8)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sampler.infill([], [-1], 8)
    with pytest.raises(ValueError, match="only the hole may be masked"):
        sampler.infill([sampler.ids.mask], [], 8)
    with pytest.raises(ValueError, match="canvas sizes must be positive"):
        sampler.infill([1], [2], 8, sizes=[])
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        sampler.generate([1], -2)
    with pytest.raises(ValueError, match="does not fit the model's context of 64"):
        sampler.infill([1], [2], 65)
    # a context that is too long is cut: prefix from the left, suffix from the right
    head, tail = sampler._fit_context(list(range(100)), list(range(500, 600)), 16)
    assert len(head) + len(tail) == 48 and head[-1] == 99 and tail[0] == 500
    assert sampler.infill(list(range(1000, 1100)), list(range(2000, 2100)), 16, sizes=[16]).stats.complete


def test_first_line_ends_the_decode_once_the_first_line_is_committed(coda_mini_dir):
    """A line hole needs only its first line: the decode stops there, and that line is the one
    the whole decode commits (committed tokens never change, so stopping early loses nothing)."""
    sampler = Sampler.load(str(coda_mini_dir), dtype="float32")
    tok = sampler.tokenizer
    prefix = tok.encode("def mean(values):\n    total = sum(values)\n    count = len(", add_special_tokens=False)
    suffix = tok.encode("\n    return total / count\n\n\ndef median(values):\n    ordered = sorted(values)\n",
                        add_special_tokens=False)
    options = DecodeOptions(sub_block_size=4)  # left to right, a few slots at a time: the first line comes first
    whole = sampler.infill(prefix, suffix, 16, sizes=[16], options=options, reuse_prefix=False)
    first = sampler.infill(prefix, suffix, 16, sizes=[16], options=options, reuse_prefix=False, first_line=True)
    assert "\n" in whole.text, "this hole's fill spans lines; the test needs one that does"
    assert first.stats.settled and not first.stats.complete and first.stats.steps < whole.stats.steps
    assert first.text.split("\n")[0] == whole.text.split("\n")[0]
    # without the option, nothing stops early
    assert whole.stats.complete and not whole.stats.settled


class _LayersEntered:
    """Counts the decoder layers a model enters (forward pre-hooks, removed by close())."""

    def __init__(self, model):
        self.count = 0
        self.handles = [layer.register_forward_pre_hook(self.enter) for layer in model.model.layers]

    def enter(self, module, args):
        self.count += 1

    def close(self):
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("strategy", ["fast", "reference"])
def test_a_stop_between_layers_ends_the_decode_within_a_forward(bundled_tokenizer, strategy):
    """With between_layers (the language server's decodes) a stop is seen before the next layer,
    not only before the next step."""
    tok = bundled_tokenizer
    for between_layers in (True, False):
        sampler = make_sampler(tok)
        layers = len(sampler.model.model.layers)
        entered = _LayersEntered(sampler.model)
        result = sampler.infill(tok.encode(PREFIX), tok.encode(SUFFIX), 16, sizes=[16], strategy=strategy,
                                options=EXACT, reuse_prefix=False, should_stop=lambda: entered.count > 0,
                                between_layers=between_layers)
        entered.close()
        assert result.stats.stopped == "cancelled" and not result.stats.complete
        # the first layer of the first forward, or that whole forward and its step
        assert (entered.count, result.stats.forwards) == ((1, 0) if between_layers else (layers, 1))
        assert all(not layer._forward_pre_hooks for layer in sampler.model.model.layers)  # ours went too


def test_a_stop_between_layers_lets_the_prefill_the_prefix_cache_keeps_finish(bundled_tokenizer):
    """A stopped decode finishes a prefill the prefix cache keeps (the next call reuses it), and stops
    within the forward that reuses it."""
    tok = bundled_tokenizer
    sampler = make_sampler(tok)
    layers = len(sampler.model.model.layers)
    prefix, suffix = tok.encode(PREFIX * 8), tok.encode(SUFFIX)
    for reused in (False, True):
        entered = _LayersEntered(sampler.model)
        result = sampler.infill(prefix, suffix, 16, sizes=[16], options=EXACT, should_stop=lambda: entered.count > 0,
                                between_layers=True)
        entered.close()
        assert result.stats.stopped == "cancelled"
        assert entered.count == (1 if reused else layers) and len(sampler.prefix_cache) == 1
        assert result.stats.reused_prefix == (len(prefix) - 1 if reused else 0)


def test_newline_ids_are_the_tokens_whose_text_breaks_a_line(bundled_tokenizer):
    """Worked out through the Rust tokenizer (fast); the same set transformers' decode gives."""
    sampler = make_sampler(bundled_tokenizer)
    texts = bundled_tokenizer.batch_decode([[i] for i in range(sampler.model.config.vocab_size)])
    wanted = [i for i, text in enumerate(texts) if "\n" in text or "\r" in text]
    assert sampler.newline_ids.tolist() == wanted
    assert any("\r" in texts[i] and "\n" not in texts[i] for i in wanted)  # a lone "\r" counts too
