# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 3000

.PHONY: run test setup broker bench clean stop resume

$(BIN)/ops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(BIN)/ops

setup: $(BIN)/ops

## Start Postgres (embedded), chDB, migrations, demo data, the Dagster UI and daemon on 127.0.0.1:$(PORT).
run: setup
	$(BIN)/ops up --port $(PORT)

## Redis for the Celery test (Debian's redis-server, when missing).
broker:
	@scripts/install-redis.sh

## Set up and run the whole test suite (what CI runs): two workers, each with its own Postgres and chDB.
test: setup broker
	$(BIN)/pytest -q -n 2

bench: setup
	$(BIN)/python benchmarks/foundation.py
	$(BIN)/python benchmarks/notification_storm.py

clean:
	rm -rf $(VENV) .ops

## Stop everything in one command (the kill switch), and lift it again.
stop: setup
	$(BIN)/ops controls kill-switch on

resume: setup
	$(BIN)/ops controls kill-switch off
