# The two commands the README promises, plus the pieces they are made of.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROMPT ?= List the files in the current directory and say which one is largest.

.PHONY: install run demo test lint format clean bench fuzz screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# Main job: set up, write a default config on first use, run one prompt against your provider.
run: install
	@test -f "$${OPENHEIM_HOME:-$$HOME/.openheim}/config.toml" || $(BIN)/openheim init
	$(BIN)/openheim run "$(PROMPT)"

# The same, offline: a scripted fake LLM on 127.0.0.1 plays the model; no key needed.
demo: install
	$(BIN)/python -m openheim.testing.demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

# Every benchmark in bench/ (minutes, not part of CI); writes bench/RESULTS.md. The peers it
# compares with live in their own environment, so they never change what openheim imports.
PEERS := .venv-peers
$(PEERS)/.installed-stamp: bench/peers.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet -r bench/peers.txt
	touch $@

bench: install $(PEERS)/.installed-stamp
	$(BIN)/python bench/run_all.py

# The fuzz suite at full strength (CI runs it in its quick mode as part of `make test`).
fuzz: install
	OPENHEIM_FUZZ=full $(BIN)/pytest -q tests/fuzz

# The browser UI's screenshots in docs/ui/ (headless Chromium, the fake LLM; not part of CI).
screenshots: install
	$(BIN)/python -m tests.ui.screenshots

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
