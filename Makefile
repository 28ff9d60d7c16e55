# Everything a fresh machine needs is done by these targets: venv, Python
# packages, Debian packages. `make demo` runs the system, `make test` proves it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit debs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,dlms,mqtt,postgres]'
	touch $(STAMP)

debs:
	./scripts/install-debs

demo: $(STAMP)
	$(BIN)/python -m hil.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) debs
	./scripts/run-pytest $(BIN)/python

test: lint typecheck unit

bench: $(STAMP) debs
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
