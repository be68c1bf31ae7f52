"""`coda bench lsp`: a scripted typing session against the real server, and the figures it prints."""

import json

from helpers import coda


def test_bench_lsp_reports_latency_percentiles(coda_mini_dir):
    result = coda("bench", "lsp", "--model", coda_mini_dir, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert {"p50_ms", "p95_ms"} <= figures.keys()
    assert figures["answered"] >= 1 and figures["p50_ms"] <= figures["p95_ms"]
    assert figures["answered"] + figures["superseded"] == figures["keystrokes"]
    # coda-mini suggests something on these lines; none at all means the typing landed where the
    # server rightly offers nothing (it once fell inside a docstring of the benchmark file)
    assert 1 <= figures["lines_with_suggestion"] <= figures["lines"] == 8
