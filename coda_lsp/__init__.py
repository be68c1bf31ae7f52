"""coda-lsp: the language server serving CoDA completions to editors."""
