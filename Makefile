# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest venv clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all,test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/exhunt demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: $(STAMP) lint typecheck
	bash tests/services/run-with-services.sh $(BIN)/python -m pytest -q

# Every benchmark with its peer, as BENCHMARKS.md reports them (long; peers installed first).
bench: $(STAMP)
	bash bench/run-all.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
