"""The coda-lsp language server (not built yet: see README.md)."""
