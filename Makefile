# mmcrs — two commands on a fresh machine: `make demo` and `make test`.
# Both build .venv from nothing when needed, and are quick when it is current.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mmcrs-installed

# Packages whose data we read but whose dependencies we do not want (installed with --no-deps).
NODEPS := recbole==1.2.1 bokeh-sampledata==2026.1

export PREFECT_HOME ?= $(CURDIR)/.prefect-home
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: venv demo test test-all bench lint clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mmcrs needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev,dask]'
	$(BIN)/pip install --no-deps $(NODEPS)
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/mmcrs demo

test: venv
	$(BIN)/pytest -q

test-all: venv
	$(BIN)/pytest -q -m ''

bench: venv
	$(BIN)/python -m bench.ingest_dialogues
	$(BIN)/python -m bench.crawl_posters
	$(BIN)/python -m bench.train_quality

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf lake .demo .prefect-home bench/out artifacts
