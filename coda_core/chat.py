"""What instruction models answer: the code in a chat answer."""

from __future__ import annotations

import re

_FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def fenced_code(answer: str) -> str | None:
    """The body of the first fenced code block in `answer` (any language tag), or None."""
    match = _FENCED.search(answer)
    return match.group(1) if match else None
