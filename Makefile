# The two commands of the README: `make run` and `make test`.
# Each creates ./.venv on first use and installs what it needs by itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/mailgate.toml

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	@$(BIN)/mailgate --config $(CONFIG) db upgrade
	@$(BIN)/mailgate --config $(CONFIG) serve

test: $(BIN)/.installed
	$(BIN)/ruff check mailgate tests bench
	$(BIN)/mypy mailgate
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
