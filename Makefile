# The README's commands. `make serve` and `make test` work on a fresh machine with Python 3.11, pip, make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  := data/models/SmolLM2-135M-Instruct.Q4_1.gguf
EMBED  := data/models/minilm-l6-v2-int8-dynamic.onnx
INDEX  := data/chroma/.ingested

.PHONY: serve test install lint typecheck bench clean prepare index

serve: $(STAMP) prepare index
	$(PY) -m serving

test: $(STAMP) prepare index
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

prepare: $(MODEL) $(EMBED)

# The search index (Chroma on disk under data/chroma); built once, kept in step by re-running the ingest
# (again in full when the embedding model changed: --if-missing compares the model each vector was made by).
index: $(STAMP) $(EMBED)
	$(PY) -m retrieval.ingest --if-missing

# MiniLM with int8 matrix products, derived from the installed package (retrieval/onnx_model.py)
$(EMBED): $(STAMP)
	$(PY) -m retrieval.onnx_model

$(MODEL): $(STAMP)
	$(PY) -m chains.local_llm prepare

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: $(STAMP) prepare
	@echo "see BENCHMARKS.md for each benchmark's command"

clean:
	rm -rf $(VENV) data/chroma data/models .pytest_cache .mypy_cache .ruff_cache
