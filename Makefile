# The README's two commands: `make run` and `make test`. Everything they need is installed here,
# from requirements.lock alone (scripts/install): no dependency is resolved at install time.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
STAMP := $(VENV)/.sage-installed

.PHONY: install lock test-tools run test lint docs check-dagster mutation bench-ingest clean

$(STAMP): $(LOCK) pyproject.toml scripts/install
	./scripts/install $(VENV) $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml's ranges into the lock, keeping every pin that still satisfies them.
# Upgrade one package on purpose with: make lock LOCK_ARGS="--upgrade-package NAME[==VERSION]"
lock: install
	$(VENV)/bin/pip-compile --quiet --extra dev --extra ray --extra deploy --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $(LOCK) pyproject.toml
	./scripts/install $(VENV) $(PYTHON)
	touch $(STAMP)

test-tools:
	./scripts/install-test-tools

run: install
	$(VENV)/bin/sage up

# Lint and the dagster CLI first (they fail fast), then the suite; CI runs exactly this.
test: install test-tools lint check-dagster
	$(PY) -m pytest -q

# Mutation testing of the modules listed under [tool.mutmut] in pyproject.toml; scores per module,
# failing under 80% (docs/testing.md: about 20 minutes on 2 cores; not part of `make test`).
mutation: install
	$(PY) scripts/mutation

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/settings-reference --check

# Rewrite docs/configuration.md's settings table from Settings (lint fails when it is out of date).
docs: install
	$(PY) scripts/settings-reference

check-dagster: install
	./scripts/check-dagster $(VENV)

bench-ingest: install
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .sage
