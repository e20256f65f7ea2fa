# Two commands set up everything on a fresh machine:
#   make run    create .venv, install, build the index from shipped data, serve on 127.0.0.1:8000
#   make test   create .venv, install everything the tests need (incl. a local LLM), run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONPATH := $(CURDIR)
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run serve index embeddings test lint typecheck bench lock clean install install-dev

$(VENV)/.base: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

# llama-cpp-python builds from source; the default native build crashes here in an AMX kernel
$(VENV)/.dev: $(VENV)/.base
	$(PIP) install --quiet torch==2.13.0
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PIP) install --quiet --no-cache-dir -c constraints.txt -e ".[dev,llm,transformers,governance,workbench,evals]"
	touch $@

install: $(VENV)/.base
install-dev: $(VENV)/.dev

var/index/meta-edge.json: $(VENV)/.base data/embeddings/shipped-corpus.npz
	$(VENV)/bin/tosei index

index: $(VENV)/.base
	$(VENV)/bin/tosei index

run: var/index/meta-edge.json
	$(VENV)/bin/tosei serve --host $(HOST) --port $(PORT)

serve: run

# Re-embeds only texts whose content hash is not cached yet (about 40 min from nothing on 2 cores).
embeddings: $(VENV)/.base
	$(VENV)/bin/tosei embeddings build

test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy

bench: $(VENV)/.dev
	$(PY) benchmarks/retrieval.py
	$(PY) benchmarks/latency.py

# Rewrite the lock of every transitive version from the current venv.
lock:
	$(PIP) freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf var/index var/embeddings
