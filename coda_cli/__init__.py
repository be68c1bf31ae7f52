"""The `coda` command: the entry point above every package.

`coda_cli.main` parses the command line and hands each subcommand to the
package that owns it: the model commands (info, init-model, infill, rewrite)
to coda_core's library functions, `coda eval` to coda_eval.cli, `coda train`
to coda_train.cli, and `coda bench` to the benchmarks (coda_cli.bench, and
coda_lsp.bench for the language server). Nothing below imports this package.
"""
