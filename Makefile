PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

.PHONY: setup setup-system demo test test-all bench clean

$(STAMP): pyproject.toml requirements-data.txt Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -r requirements-data.txt
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python crabnet==2.0.8
	touch $(STAMP)

setup: $(STAMP)

# Optional system packages (root): headless Chromium for the playground test, Debian data sources (UniProt sample, miRBase hairpins).
setup-system:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver mmseqs2-examples >/dev/null

demo: setup
	$(BIN)/naturelm demo

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
