"""The server's settings: the one schema that editors' settings are checked against.

Editors send them as initializationOptions and in workspace/didChangeConfiguration
(camelCase; snake_case and kebab-case are read too). Each setting is validated on
arrival: a value of the wrong type is refused with a message that names the setting
and the previous value stays; a number out of bounds is clamped. The VS Code
extension's `contributes.configuration` and coda.nvim's defaults are tested against
`SCHEMA` (tests/test_settings_schema.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields

from coda_core.bundled import default_model
from coda_core.choices import DTYPES, QUANTIZE


def _bounds(low: float | None = None, high: float | None = None) -> dict:
    return {"min": low, "max": high}


@dataclass
class Settings:
    # $CODA_MODEL, else the bundled coda-mini: an editor that names no model still gets one.
    model: str = field(default_factory=default_model, metadata={"empty_is_null": True})
    device: str = "auto"  # cpu, cuda, cuda:N or auto
    dtype: str = field(default="auto", metadata={"choices": DTYPES})
    # int8 weights where measured faster here: a quarter of fp32's bytes per step (coda_core.quantize, kernels)
    quantize: str = field(default="none", metadata={"choices": QUANTIZE})
    # The longest completion in tokens; bounded because the decode's cost grows with it (2,048 took 212 s).
    max_new_tokens: int = field(default=64, metadata=_bounds(1, 256))
    threshold: float = field(default=0.9, metadata=_bounds(0.01, 1.0))
    block_size: int = field(default=32, metadata=_bounds(1, 256))
    context_before: int = field(default=1536, metadata=_bounds(0, 32768))  # tokens of prefix
    context_after: int = field(default=512, metadata=_bounds(0, 32768))  # tokens of suffix
    # Tokens of snippets from other files (coda_lsp.related), before the prefix and out of its
    # contextBefore tokens (so typing costs what it did); 0 turns them off. 512: about four windows of
    # 20 lines, and a third of contextBefore, leaving the document the 1,024 tokens nearest the cursor.
    context_files: int = field(default=512, metadata=_bounds(0, 8192))
    context_open_files: bool = True  # snippets from the other documents open in the editor
    context_imports: bool = True  # from the files the current one imports, inside the workspace folders
    context_recent_edits: bool = True  # from the user's last edits in other open documents
    candidates: int = field(default=3, metadata=_bounds(1, 8))
    languages: list[str] | None = None  # None: every language
    complete_in_comments: bool = False

    def __post_init__(self):
        self._refused: dict[str, tuple] = {}  # setting -> (type, value) last refused or clamped (not a field)
        # What an editor's null goes back to: the values these settings were made with, then the
        # server's command line (`start_with`). Not the value an editor set last: a user who clears
        # coda.model after trying another model expects the server's own model back.
        self._defaults = {f.name: getattr(self, f.name) for f in fields(self)}

    def start_with(self, options: dict) -> list[str]:
        """The server's command line (--model, --device, ...): applied like an editor's settings, and
        what a setting goes back to when an editor clears it."""
        problems = self.update(options)
        for name in (snake_case(key) for key, value in options.items() if value is not None):
            if name in SCHEMA:
                self._defaults[name] = getattr(self, name)
        return problems

    def update(self, options: dict | None) -> list[str]:
        """Apply editor settings; returns one message per setting refused or clamped.

        null resets a setting to the server's default for it (the command line's
        value, else the built-in one; `languages`: every language), and so does ""
        for `model` (the settings UI's empty box). Unknown keys
        are ignored: editors send their own settings in the same section.
        Editors send the whole section on every change: a value already
        refused is not reported again until it changes.
        """
        problems = []
        if options is not None and not isinstance(options, dict):
            return [f"settings must be an object, got {type(options).__name__}"]
        for key, value in (options or {}).items():
            name = snake_case(key)
            spec = SCHEMA.get(name)
            if spec is None:
                continue
            if value is None or (spec.metadata.get("empty_is_null") and value == ""):
                self._refused.pop(name, None)
                setattr(self, name, self._defaults[name])
                continue
            checked, problem = _check(spec, key, value)
            seen = (type(value), value)  # type too: true is not 1
            if problem is None:
                self._refused.pop(name, None)
            elif self._refused.get(name) != seen:
                self._refused[name] = seen
                problems.append(problem)
            if checked is not None:
                setattr(self, name, checked)
        return problems


SCHEMA = {f.name: f for f in fields(Settings)}


def snake_case(key: str) -> str:
    """maxNewTokens, max-new-tokens and max_new_tokens all name `max_new_tokens`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).replace("-", "_").lower()


def camel_case(name: str) -> str:
    """The spelling editors use: max_new_tokens -> maxNewTokens."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _default(spec):
    return spec.default if spec.default_factory is MISSING else spec.default_factory()


def _check(spec, key: str, value) -> tuple[object | None, str | None]:
    """(the value to set or None to keep the old one, a message or None)."""
    kind = type(_default(spec))
    meta = spec.metadata
    if spec.name == "languages":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value, None
        return None, f"setting {key}: expected a list of language ids or null, got {value!r}; it stays as it was"
    if kind is bool:
        if isinstance(value, bool):
            return value, None
        return None, f"setting {key}: expected true or false, got {value!r}; it stays as it was"
    if kind is str:
        if not isinstance(value, str):
            return None, f"setting {key}: expected a string, got {value!r}; it stays as it was"
        if "choices" in meta and value not in meta["choices"]:
            return None, f"setting {key}: expected one of {', '.join(meta['choices'])}, got {value!r}; it stays as it was"
        return value, None
    # numbers: JSON has one number type, so 32.0 is an int setting's 32, but "3" and true are not numbers
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"setting {key}: expected a number, got {value!r}; it stays as it was"
    if kind is int:
        if value != int(value):
            return None, f"setting {key}: expected a whole number, got {value!r}; it stays as it was"
        value = int(value)
    else:
        value = float(value)
    low, high = meta.get("min"), meta.get("max")
    clamped = max(low, value) if low is not None else value
    clamped = min(high, clamped) if high is not None else clamped
    if clamped != value:
        return clamped, f"setting {key}: {value!r} is outside {low}..{high}; using {clamped!r}"
    return value, None
