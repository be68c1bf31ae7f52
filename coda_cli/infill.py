"""`coda infill FILE:LINE:COL`: the language server's context builder, from the command line.

The model is given what the server would give it for a cursor there (coda_lsp.context.model_input):
the file around the cursor within the server's default budgets, and snippets of other files
within `--context-files` tokens. The other files are the ones named with `--related` (as if open
in an editor beside FILE) and the files FILE imports, read inside the current folder (FILE's own
folder when it is outside) as the server reads them inside the workspace folders.
`--show-context` says what the model was given.
"""

from __future__ import annotations

import json
from pathlib import Path

from coda_core.errors import CodaError
from coda_core.syntax import LANGUAGE_BY_SUFFIX


def language_of(path: str) -> str:
    return LANGUAGE_BY_SUFFIX.get(Path(path).suffix, "")


def related_files(path: str, source: str, related: list[str], read_source, imports: bool = True):
    """The RelatedFile texts a cursor in `path` may take snippets from."""
    from coda_lsp.project import Project

    named = [(Path(p).resolve().as_uri(), language_of(p), read_source(p)) for p in related]  # errors name the file
    here = Path(path).resolve()
    project = Project(open_documents=lambda: named)
    project.set_roots([Path.cwd() if here.is_relative_to(Path.cwd().resolve()) else here.parent])
    return project.files(here.as_uri(), language_of(path), source, open_files=True, imports=imports,
                         recent_edits=False)


def infill(args, make_sampler, path: str, source: str, before: str, after: str) -> None:
    from coda_lsp.context import model_input
    from coda_lsp.settings import Settings

    from .main import read_source

    defaults = Settings(model="")
    budget = defaults.context_files if args.context_files is None else args.context_files
    if budget < 0:
        raise CodaError(f"--context-files must be 0 or more, got {budget}")
    files = related_files(path, source, args.related or [], read_source) if budget > 0 else []
    sampler = make_sampler(args)  # after the files: a wrong path is told before the model loads
    given = model_input(sampler.tokenizer, before, after, language_of(path), defaults.context_before,
                        defaults.context_after, sampler.max_context - args.max_new_tokens, files, budget)
    result = sampler.infill(given.prefix, given.suffix, args.max_new_tokens, n=args.n, seed=args.seed)
    if args.json:
        out = result.as_dict()
        if args.show_context:
            out["context"] = {"snippets": [{"path": s.path, "first_line": s.first_line, "last_line": s.last_line,
                                            "tokens": s.tokens, "reason": s.reason} for s in given.snippets],
                              "related_tokens": len(given.prefix) - given.document_prefix,
                              "related_budget": given.related_budget, "prefix_tokens": given.document_prefix,
                              "suffix_tokens": len(given.suffix)}
        print(json.dumps(out))
        return
    if args.show_context:
        print("the model was given:")
        print("\n".join("  " + line for line in given.describe()))
        print("completion:")
    print(result.text)
