"""Generate completions with a CoDA model: presets, prompting, post-processing."""

from __future__ import annotations

from dataclasses import dataclass, field

from coda_core.chat import fenced_code
from coda_core.denoise import DecodeOptions
from coda_core.progress import progress
from coda_core.token_choice import SamplingParams

from .tasks import Problem

# Stop a base model's completion where a new top-level statement starts (as HumanEval does).
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")


@dataclass(frozen=True)
class Preset:
    strategy: str
    max_new_tokens: int
    options: DecodeOptions = field(default_factory=DecodeOptions)


DECODE_PRESETS = {
    # The published CoDA evaluation settings: 768 new tokens over 768 steps, entropy order, T 0.1, top-p 0.9.
    "published": Preset("reference", 768, DecodeOptions(alg="entropy", steps=768,
                                                        sampling=SamplingParams(temperature=0.1, top_p=0.9))),
    # Ours: the fast sampler at tau 0.9 in blocks of 32, greedy.
    "fast": Preset("fast", 256, DecodeOptions(threshold=0.9, block_size=32)),
    # Ours, more parallel: a lower threshold and the factor rule.
    "fast-parallel": Preset("fast", 256, DecodeOptions(threshold=0.7, factor=1.0, block_size=32)),
}


def truncate_completion(text: str) -> str:
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(text))
    return text[:cut]


def extract_code(answer: str) -> str:
    """The first fenced code block of a chat answer, else the whole answer."""
    code = fenced_code(answer)
    return answer if code is None else code


def generate(problems: list[Problem], sampler, *, max_new_tokens: int, samples: int = 1, chat: bool = False,
             seed: int = 0) -> list[dict]:
    """One row per (problem, sample) with the completion and its decoding stats."""
    tok = sampler.tokenizer
    rows = []
    for problem in progress(problems, desc="generating", unit="problem"):
        for sample in range(samples):
            full, ended = False, None
            if problem.infill:
                result = sampler.infill(tok.encode(problem.prefix), tok.encode(problem.suffix), max_new_tokens,
                                        seed=seed + sample)
                completion = result.text
                ended = bool(result.candidates) and result.candidates[0].ended
            elif chat:
                prompt = sampler.chat_prompt([{"role": "user", "content": "Complete the following Python code. "
                                               "Answer with the whole program in one ```python block.\n\n"
                                               f"```python\n{problem.prefix}```"}])
                result = sampler.generate(prompt, max_new_tokens, seed=seed + sample)
                completion, full = extract_code(result.text), True
            else:
                result = sampler.generate(tok.encode(problem.prefix), max_new_tokens, seed=seed + sample)
                completion = truncate_completion(result.text)
            row = dict(task_id=problem.task_id, sample=sample, completion=completion, full_program=full,
                       forwards=result.stats.forwards, tokens=result.stats.tokens, ms=round(result.ms, 2))
            if ended is not None:
                row["ended"] = ended  # the fill committed an end token before its canvas ran out
            rows.append(row)
    return rows
