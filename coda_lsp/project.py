"""The rest of the project, as a completion sees it: other open files, imported files, recent edits.

A completion's model sees the code around the cursor; the code it names often lives in other
files. Three sources offer it, each switched by a setting (coda_lsp.settings):

    open files     the other documents open in the editor (`didOpen` gave their text)
    imports        the files the current one imports, for the languages with a grammar, read
                   from the workspace folders the client named
    recent edits   the user's last edits in other open files

`Project.files` gathers them as `RelatedFile`s; coda_lsp.related picks the snippets the model
is given. Which files a document's imports may name is coda_lsp.imports; this module keeps the
ones that exist inside the workspace folders, and reads them. Files are read only inside the workspace folders: a path whose real location (symlinks
resolved) leaves them is not read, nor is a file over MAX_FILE_BYTES, and a missing or
unreadable one is skipped, logged once, not per keystroke.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .imports import MAX_FILE_BYTES, candidate_paths, import_statements

logger = logging.getLogger(__name__)

MAX_IMPORTS = 16  # imported files read per document, in the order they are imported
MAX_OPEN = 32  # open documents offered, the most recently opened (an editor with hundreds open ranks these)
RECENT_EDITS = 16  # edits remembered, newest first; one per document and line area
EDIT_LINES = 6  # an edit's snippet: this many lines above the edited line and below it
READ_CACHE = 64  # imported files kept in memory, checked against their size and mtime before use
IMPORTS_TTL = 10.0  # seconds a document's resolved imports are kept while its import statements stay


@dataclass(frozen=True)
class RelatedFile:
    path: str  # as the model is shown it: relative to a workspace folder where inside one
    text: str
    source: str  # "open", "import" or "edit"
    lines: tuple[int, int] | None = None  # for an edit: the 0-based line range around it


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None  # c%3A/ on Windows too


def _read_regular(path: Path) -> bytes:
    """At most MAX_FILE_BYTES of a regular file, read without following a symlink put in its place
    since it was checked, and without blocking on a FIFO (OSError otherwise)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat_module.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.read(fd, MAX_FILE_BYTES)
    finally:
        os.close(fd)


def _unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _folder_path(folder) -> Path | None:
    return uri_to_path(folder) if "://" in str(folder) else Path(folder) if folder else None


def _real_folder(folder) -> Path | None:
    """A folder's real path (symlinks resolved), from a path or a file URI; None if it is not a folder."""
    path = _folder_path(folder)
    return Path(os.path.realpath(path)) if path is not None and path.is_dir() else None


class Project:
    """Workspace folders, the open documents (a callable: the server's Documents), and recent edits."""

    def __init__(self, open_documents=lambda: ()):
        self.roots: list[Path] = []  # real paths of the workspace folders
        self._folders: list[Path] = []
        self.open_documents = open_documents  # () -> iterable of (uri, language_id, source)
        self._edits: deque[tuple[str, int]] = deque(maxlen=RECENT_EDITS)  # (uri, line), newest first
        self._reads: OrderedDict[Path, tuple[tuple[int, int], str]] = OrderedDict()
        self._resolved: OrderedDict[str, tuple] = OrderedDict()  # uri -> (statements and roots, when, files)
        self._skipped: set[Path] = set()  # logged once each
        self._lock = threading.Lock()

    def set_roots(self, folders) -> None:
        """The client's workspace folders (paths or file URIs); imports are read only inside them."""
        self.roots = [root for root in map(_real_folder, folders) if root is not None]
        # As the client names them too (a folder may be a symlink): candidates are checked against
        # these by their text before any is looked up on disk.
        self._folders = [Path(os.path.normpath(p)) for p in map(_folder_path, folders) if p is not None]

    def change_roots(self, added, removed) -> None:
        """`workspace/didChangeWorkspaceFolders`: folders (URIs or paths) opened and closed."""
        gone = {_real_folder(folder) for folder in removed}
        self.set_roots([root for root in self.roots if root not in gone] + list(added))

    def edited(self, uri: str, line: int) -> None:
        """The user changed `line` of `uri`: an edit near one already remembered replaces it."""
        with self._lock:
            for kept in list(self._edits):
                if kept[0] == uri and abs(kept[1] - line) <= EDIT_LINES:
                    self._edits.remove(kept)
            self._edits.appendleft((uri, line))

    def files(self, uri: str, language_id: str, source: str, *, open_files: bool = True, imports: bool = True,
              recent_edits: bool = True) -> list[RelatedFile]:
        """What the other sources offer a completion in `uri`, each file once, edits first."""
        # An open document over the cap (a minified bundle, a log) would cost every keystroke its windows.
        # Text that is not valid Unicode (JSON allows lone surrogates) cannot be tokenized.
        others = {u: (lang, text) for u, lang, text in list(self.open_documents())[-MAX_OPEN:]
                  if unquote(u) != unquote(uri) and len(text) <= MAX_FILE_BYTES and _unicode(text)}
        out: list[RelatedFile] = []
        if recent_edits:
            with self._lock:
                edits = list(self._edits)
            for edit_uri, line in edits:
                if edit_uri in others:
                    out.append(RelatedFile(self.shown_path(edit_uri), others[edit_uri][1], "edit",
                                           (max(0, line - EDIT_LINES), line + EDIT_LINES + 1)))
        if open_files:
            out += [RelatedFile(self.shown_path(u), text, "open") for u, (_, text) in others.items()]
        if imports and len(source) <= MAX_FILE_BYTES:  # a larger document is never parsed whole (coda_lsp.window)
            out += self._imported(uri, language_id, source, {uri_to_path(u) for u in others} | {uri_to_path(uri)})
        return out

    def _imported(self, uri: str, language_id: str, source: str, seen: set) -> list[RelatedFile]:
        """The first MAX_IMPORTS files the document imports that exist inside the folders and have text."""
        out = []
        for path in self._existing_imports(uri, language_id, source):
            if path in seen:
                continue
            seen.add(path)
            text = self.read(path)
            if text and text.strip():  # an empty __init__.py has nothing to show
                out.append(RelatedFile(self.shown_path(path), text, "import"))
                if len(out) == MAX_IMPORTS:
                    break
        return out

    def _existing_imports(self, uri: str, language_id: str, source: str) -> list[Path]:
        """The files the document's imports name that exist, in import order. Each import has several
        places its module may be (a 100-import file has hundreds, 4 ms of stats), so the answer is kept
        per document while its import statements and the folders stay the same, for IMPORTS_TTL
        seconds (a module created meanwhile is found then)."""
        path = uri_to_path(uri)
        statements = import_statements(language_id, source) if path is not None else ()
        key = (statements, tuple(self.roots))
        with self._lock:
            kept = self._resolved.get(uri)
        if kept is not None and kept[0] == key and time.monotonic() - kept[1] < IMPORTS_TTL:
            return kept[2]
        found = []
        inside = [*self.roots, *self._folders]
        for candidate in candidate_paths(path, language_id, statements, self.roots):
            candidate = Path(os.path.normpath(candidate))
            # Not even a stat outside the folders: `import //host/share/x` must not reach a network share.
            if any(candidate.is_relative_to(folder) for folder in inside) and candidate.is_file():
                found.append(candidate)
                if len(found) == 2 * MAX_IMPORTS:  # room for empty and unreadable ones
                    break
        with self._lock:
            self._resolved[uri] = (key, time.monotonic(), found)
            self._resolved.move_to_end(uri)
            while len(self._resolved) > READ_CACHE:
                self._resolved.popitem(last=False)
        return found

    def shown_path(self, where) -> str:
        path = uri_to_path(where) if isinstance(where, str) else where
        if path is None:
            return str(where)
        for root in self.roots:
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return path.name

    def read(self, path: Path) -> str | None:
        """The text of a file inside the workspace folders, or None: outside them once symlinks are
        resolved, over MAX_FILE_BYTES, missing, unreadable or not text."""
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(root) for root in self.roots):
            return self._skip(path, "outside the workspace folders")
        try:
            stat = real.stat()
        except OSError:
            return self._skip(path, "missing")
        if not real.is_file() or stat.st_size > MAX_FILE_BYTES:
            return self._skip(path, f"not a regular file of at most {MAX_FILE_BYTES} bytes")
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            hit = self._reads.get(real)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            text = _read_regular(real).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return self._skip(path, "unreadable, not a regular file, or not UTF-8")
        with self._lock:
            self._reads[real] = (key, text)
            self._reads.move_to_end(real)
            while len(self._reads) > READ_CACHE:
                self._reads.popitem(last=False)
        return text

    def _skip(self, path: Path, why: str) -> None:
        if path not in self._skipped:
            self._skipped.add(path)
            logger.debug("related file %s skipped: %s", path, why)
        return None
