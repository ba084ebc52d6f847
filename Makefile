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
	@printf '%s\n' "" \
	  "mailgate listens for mail on 127.0.0.1:2525. From another terminal, send one:" \
	  "  swaks -s 127.0.0.1:2525 -f carla@customer.example -t support@example.org \\" \
	  "        --header 'Subject: Online banking is down' --body 'Nothing works since 9:00.'" \
	  "or, without swaks:" \
	  "  python3 -c \"import smtplib; smtplib.SMTP('127.0.0.1', 2525).sendmail('carla@customer.example', ['support@example.org'], b'Subject: Online banking is down\\r\\n\\r\\nNothing works.')\"" \
	  "Then: $(BIN)/mailgate --config $(CONFIG) tickets list    (the acknowledgement lands in config/var/sent/new/)" \
	  "The web desk is on http://127.0.0.1:8025/ - give an agent a password first:" \
	  "  $(BIN)/mailgate --config $(CONFIG) agents password KEY" \
	  "Stop with Ctrl-C." ""
	@$(BIN)/mailgate --config $(CONFIG) serve

test: $(BIN)/.installed
	$(BIN)/ruff check mailgate tests bench
	$(BIN)/mypy mailgate
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) config/var .pytest_cache .mypy_cache .ruff_cache
