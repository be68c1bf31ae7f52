"""Snippets of other files for the model: which windows of lines, in what order, within a budget.

Repository-level completion (RepoCoder, CrossCodeEval, RepoBench) and the assistants people use
(Copilot's neighbouring tabs, Continue's imports and recent edits) give the model code from other
files; it matters most where the answer names something defined there. Here:

- The query is the code around the cursor: QUERY_BEFORE lines above the cursor's line and
  QUERY_AFTER below it, but not the cursor's line itself, so typing on a line does not change
  the ranking, the snippets stay the same, and the prefix cache keeps their K/V.
- Each related file is cut into windows of WINDOW_LINES lines, every WINDOW_STEP lines, and a
  window scores its Jaccard similarity to the query over identifier tokens (Copilot's measure).
  Measured against BM25 in docs/EVAL.md ("Cross-file context"): the same hit rates; Jaccard's
  score of a window does not move when another tab opens, BM25's (through IDF) does.
- A name used near the cursor (the cursor's line included) that another file defines puts that
  definition first: the window starting at it ranks above every similar one.
- Next come a recent edit's lines (what the user just changed is often what they use now) and the
  definitions of the names the file imports (`from m import a`) that the cursor's lines do not
  name. Definitions first, named then imported, took the definition a held-out hole needs into
  the snippets for 38-60% of holes, from 16-18% by similarity alone (docs/EVAL.md).
- Windows are taken best first, one per stretch of a file, until the token budget is spent.
  They go before the document's prefix, each after a comment line naming its file, laid out by
  reason (named definitions last, nearest the cursor), then file and line (`pack`).
"""

from __future__ import annotations

import keyword
import math
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

from .project import RelatedFile
from .trees import line_comment_markers

WINDOW_LINES = 20
WINDOW_STEP = 10
QUERY_BEFORE = 20
QUERY_AFTER = 10
MIN_SIMILARITY = 0.05  # below this a window shares only a word or two with the query: noise
MAX_SNIPPETS = 8
MIN_LINES = 3  # a window's part left beside the ones taken from its file is kept if it is at least this long
DEFINITION, IMPORTED, EDIT, SIMILAR = "definition", "imported", "edit", "similar"
# Added to the similarity: the reason orders first. IMPORTED: the definition of a name the file
# imports but the lines around the cursor do not use.
_RANK = {DEFINITION: 2.0, IMPORTED: 1.0, EDIT: 1.0, SIMILAR: 0.0}
IMPORTS_SCANNED = 20_000  # characters at the start of the file where its imports are looked for
# `from m import a, b as c` (also in parentheses) and `import {a, b as c} from` / `import a from`
_IMPORTED_NAMES = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n]*))"
                             r"|import[ \t]+(?:\{([^}]*)\}|(\w+))[^\n]*from)", re.M)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words every file shares: they would make any two windows look alike.
COMMON = frozenset(keyword.kwlist) | {"self", "cls", "this", "const", "let", "var", "function", "return", "func",
                                      "fn", "pub", "mut", "int", "str", "string", "bool", "void", "new", "import",
                                      "export", "default", "static", "public", "private", "true", "false", "null",
                                      "undefined", "args", "kwargs", "i", "j", "k", "x", "y", "n", "s"}
_DEFINES = re.compile(r"^[ \t]*(?:export\s+)?(?:async\s+)?(?:pub\s+)?(?:def|class|function|fn|func|struct|enum|"
                      r"interface|type|trait|const|let|var)\s+([A-Za-z_]\w*)|^([A-Za-z_]\w*)\s*[:=][^=]", re.M)


@dataclass(frozen=True)
class Snippet:
    path: str
    first_line: int  # 1-based, inclusive
    last_line: int
    text: str
    reason: str  # DEFINITION, IMPORTED, EDIT or SIMILAR
    score: float
    tokens: int = 0  # with its comment line, once packed


def words_of(text: str) -> Counter:
    """The identifier tokens of `text` and how often each occurs, the words every file shares left out."""
    return Counter(word for word in IDENTIFIER.findall(text) if word not in COMMON)


def identifiers(text: str) -> set[str]:
    return set(words_of(text))


def jaccard(query: Counter, windows: list[Counter]) -> list[float]:
    """|Q & W| / |Q | W| over the sets of identifiers: Copilot's measure for neighbouring tabs."""
    q = query.keys()
    return [len(q & w.keys()) / len(q | w.keys()) if q and w else 0.0 for w in windows]


def bm25(query: Counter, windows: list[Counter], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each window for the query's identifiers, the windows being the corpus; scaled
    so that the best is 1, to compare with Jaccard's range."""
    if not windows:
        return []
    lengths = [sum(w.values()) for w in windows]
    average = sum(lengths) / len(windows) or 1.0
    df = Counter(word for w in windows for word in w.keys() & query.keys())
    idf = {word: math.log(1 + (len(windows) - n + 0.5) / (n + 0.5)) for word, n in df.items()}
    scores = [sum(idf[word] * w[word] * (k1 + 1) / (w[word] + k1 * (1 - b + b * length / average))
                  for word in w.keys() & idf.keys()) for w, length in zip(windows, lengths)]
    best = max(scores) or 1.0
    return [score / best for score in scores]


MEASURES = {"jaccard": jaccard, "bm25": bm25}


class _Index:
    """A file's windows (first line, last line, identifiers) and its definitions (name -> line),
    computed once per text: a file changes far less often than the cursor moves."""

    def __init__(self, text: str):
        self.lines = text.split("\n")
        self.windows = []
        for start in range(0, max(1, len(self.lines) - WINDOW_LINES + WINDOW_STEP), WINDOW_STEP):
            end = min(len(self.lines), start + WINDOW_LINES)
            self.windows.append((start, end, words_of("\n".join(self.lines[start:end]))))
        self.definitions: dict[str, tuple[int, int]] = {}  # name -> its lines [start, end)
        row, counted = 0, 0  # lines counted up to `counted`, one pass over the text
        for match in _DEFINES.finditer(text):
            name = match.group(1) or match.group(2)
            row, counted = row + text.count("\n", counted, match.start()), match.start()
            if name not in self.definitions:
                self.definitions[name] = (row, self._end_of(row))

    def _end_of(self, start: int) -> int:
        """Where the definition at line `start` ends: before the next line indented no deeper that
        is not a closer (a `}` or `)` at its depth ends it too), at most WINDOW_LINES on."""
        depth = _indent(self.lines[start])
        for row in range(start + 1, min(len(self.lines), start + WINDOW_LINES)):
            line = self.lines[row]
            if line.strip() and _indent(line) <= depth:
                return row + 1 if line.strip()[0] in ")]}" else row
        return min(len(self.lines), start + WINDOW_LINES)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class _Indexes:
    def __init__(self, size: int = 64):
        self.size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], _Index] = OrderedDict()

    def get(self, path: str, text: str) -> _Index:
        key = (path, text)
        with self._lock:
            index = self._kept.get(key)
            if index is not None:
                self._kept.move_to_end(key)
                return index
        index = _Index(text)
        with self._lock:
            self._kept[key] = index
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return index


_indexes = _Indexes()


def rank(files: list[RelatedFile], before: str, after: str, measure: str = "jaccard",
         definitions: bool = True) -> list[Snippet]:
    """Windows of `files` for a cursor between `before` and `after`, best first, none overlapping.
    `measure` ("jaccard" or "bm25") and `definitions` (named definitions first) are the choices
    `coda bench crossfile` compares."""
    above = before[:before.rfind("\n") + 1]
    cursor_line = before[len(above):] + after.split("\n", 1)[0]
    below = after.split("\n", 1)[1] if "\n" in after else ""
    region = _last_lines(above, QUERY_BEFORE) + "\n".join(below.split("\n", QUERY_AFTER)[:QUERY_AFTER])
    query = words_of(region)
    indexes = [_indexes.get(file.path, file.text) for file in files]
    named = query.keys() | identifiers(cursor_line)
    imported = imported_names(before[:IMPORTS_SCANNED]) - named
    if definitions:  # the names matter only where a file defines them
        defined = set().union(*(index.definitions.keys() for index in indexes))
        named, imported = named & defined, imported & defined
    # While the user types on a line, the region and the files stay, and so does the answer.
    key = (region, frozenset(named), frozenset(imported), measure, definitions,
           tuple((f.path, id(f.text), f.source, f.lines) for f in files))
    with _last_lock:
        if _last and _last[0] == key:
            return _last[1]
    chosen = _rank(files, indexes, query, named, imported, measure, definitions)
    with _last_lock:
        _last[:] = [key, chosen, files]  # the files too: their texts' ids stay theirs while kept
    return chosen


def _last_lines(text: str, n: int) -> str:
    """The last `n` lines of `text`, which ends with a line break or is empty (without splitting a
    256 kB document on every keystroke)."""
    cut = len(text)
    for _ in range(n + 1):
        cut = text.rfind("\n", 0, cut)
        if cut < 0:
            return text
    return text[cut + 1:]


_last: list = []  # [key, snippets, files] of the latest ranking
_last_lock = threading.Lock()


def imported_names(text: str) -> set[str]:
    """The names `text`'s import statements bind (`as` aliases give the imported name, which is the
    one a file defines)."""
    names = set()
    for match in _IMPORTED_NAMES.finditer(text):
        listed = re.sub(r"#[^\n]*", "", next((group for group in match.groups() if group), ""))
        names |= {part.split()[0] for part in listed.replace("\n", ",").split(",") if part.split()}
    return names - COMMON


def _rank(files, indexes, query: Counter, named: set[str], imported: set[str], measure: str,
          definitions: bool) -> list[Snippet]:
    windows = []  # (path, lines, start, end, reason, words)
    for file, index in zip(files, indexes):
        if file.source == "edit":
            start, end = (min(line, len(index.lines)) for line in file.lines)  # the file may have shrunk since
            if start < end:
                windows.append((file.path, index.lines, start, end, EDIT, None))
            continue
        for reason, names in ((DEFINITION, named), (IMPORTED, imported)) if definitions else ():
            windows += [(file.path, index.lines, *index.definitions[name], reason, None)
                        for name in names & index.definitions.keys()]
        windows += [(file.path, index.lines, start, end, SIMILAR, words) for start, end, words in index.windows]
    words = [w if w is not None else words_of("\n".join(lines[start:end])) for _, lines, start, end, _, w in windows]
    found = []
    for (path, lines, start, end, reason, _), similarity in zip(windows, MEASURES[measure](query, words)):
        if reason == SIMILAR and similarity < MIN_SIMILARITY:
            continue
        while end > start + 1 and not lines[end - 1].strip():  # trailing blank lines say nothing
            end -= 1
        found.append(Snippet(path, start + 1, end, "\n".join(lines[start:end]), reason, _RANK[reason] + similarity))
    found.sort(key=lambda s: (-s.score, s.path, s.first_line))
    chosen: list[Snippet] = []
    for candidate in found:
        part = _outside(candidate, [c for c in chosen if c.path == candidate.path])
        if part is not None:
            chosen.append(part)
            if len(chosen) == MAX_SNIPPETS:
                break
    return chosen


def _outside(snippet: Snippet, taken: list[Snippet]) -> Snippet | None:
    """The longest run of the snippet's lines that no taken snippet shows (a small file's one window
    still shows what lies outside the definition taken from it), or None when under MIN_LINES."""
    free = [(snippet.first_line, snippet.last_line)]
    for t in taken:
        free = [part for a, b in free for part in ((a, min(b, t.first_line - 1)), (max(a, t.last_line + 1), b))
                if part[0] <= part[1]]
    if not free:
        return None
    a, b = max(free, key=lambda part: part[1] - part[0])
    if (a, b) == (snippet.first_line, snippet.last_line):
        return snippet
    lines = snippet.text.split("\n")[a - snippet.first_line:b - snippet.first_line + 1]
    while lines and not lines[-1].strip():  # blank lines at its ends say nothing
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
        a += 1
    if len(lines) < MIN_LINES:
        return None
    return Snippet(snippet.path, a, a + len(lines) - 1, "\n".join(lines), snippet.reason, snippet.score)


def render(snippet: Snippet, language_id: str) -> str:
    """The snippet as the model sees it: a comment line naming its file, then its lines."""
    marker = line_comment_markers(language_id)[0]
    return f"{marker} {snippet.path}\n{snippet.text.rstrip()}\n\n"


def pack(encode, snippets: list[Snippet], budget: int, language_id: str) -> tuple[list[int], list[Snippet]]:
    """Token ids of the snippets that fit `budget`, taken best first, and the snippets taken (with
    their token counts). `encode(text)` gives a text's token ids.

    They are laid out by reason, definitions last (nearest the code), and within a reason by file
    and line, not by score: when the cursor moves a line the scores shift and the order would
    with them, while the set mostly stays, and the same set laid out the same way keeps the prefix
    cache's K/V (`coda bench lsp` on a long-context model: see docs/PERFORMANCE.md)."""
    taken: list[tuple[Snippet, list[int]]] = []
    left = budget
    for snippet in snippets:
        ids = encode(render(snippet, language_id))
        if len(ids) <= left:
            taken.append((Snippet(**{**snippet.__dict__, "tokens": len(ids)}), ids))
            left -= len(ids)
    taken.sort(key=lambda t: (_RANK[t[0].reason], t[0].path, t[0].first_line))
    return [i for _, ids in taken for i in ids], [s for s, _ in taken]
