"""The `coda` command: the entry point above every package.

`coda_cli.main` parses the command line and hands each subcommand to the
package that owns it: the model commands (info, init-model, infill, rewrite)
to coda_core's library functions, `coda eval` to coda_eval.cli, `coda train`
to coda_train.cli, and `coda bench` to the benchmarks (coda_cli.bench, and
coda_cli.bench_lsp for the language server). The LSP clients that drive the
real coda-lsp, `coda bench lsp` and the `make demo` editor session
(coda_cli.demo), live here too: they stand above the server they test.
Nothing below imports this package.
"""
