"""Small pure filters that turn a raw model fill into what the editor shows, and their ranking.

Each filter takes the text (and what it needs to know) and returns the text;
`clean` chains them for a hole. An empty result means "show nothing".
`rank_by_syntax` orders the cleaned candidates.
"""

from __future__ import annotations

from .trees import parse, parser_for


def first_line(text: str) -> str:
    """A line hole gets one line."""
    return text.split("\n", 1)[0]


def within_block(text: str, indent: str) -> str:
    """A block hole ends where a later line dedents past the block's indentation."""
    lines = text.split("\n")
    kept = lines[:1]
    for line in lines[1:]:
        if line.strip() and len(line) - len(line.lstrip()) < len(indent):
            break
        kept.append(line)
    return "\n".join(kept)


def strip_trailing_space(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def drop_repeated_suffix(text: str, after: str) -> str:
    """Drop a tail the document already has right after the cursor (e.g. the closing brackets)."""
    tail = after.strip()
    if tail and text.rstrip().endswith(tail):
        return text.rstrip()[: len(text.rstrip()) - len(tail)]
    return text


def clean(text: str, kind: str, indent: str, after: str, replacing: bool) -> str:
    """The filter chain for a hole of `kind` ("line" or "block")."""
    text = first_line(text) if kind == "line" else within_block(text, indent)
    if not replacing:
        text = drop_repeated_suffix(text, after)
    text = strip_trailing_space(text)
    return text if text.strip() else ""


def rank_by_syntax(texts: list[str], before: str, rest: str, language_id: str) -> list[str]:
    """Candidates that would add tree-sitter ERROR nodes go below those that parse."""
    if parser_for(language_id) is None or len(texts) < 2:
        return texts
    if parse(before + rest, language_id).root_node.has_error:
        return texts  # the file has errors already: nothing to tell candidates apart by

    def adds_errors(text: str) -> bool:
        return parse(before + text + rest, language_id).root_node.has_error

    return sorted(texts, key=adds_errors)
