# Every target creates the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
ARGS ?=

DIR ?= $(lastword $(sort $(wildcard outputs/multirun/*)))

.PHONY: install train sweep report test lint format clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: any other torch spec may pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/activate

install: $(BIN)/activate  ## create .venv with torch (CPU) and the project

train: install  ## train the default model on the built-in cohort: make train ARGS="head=split loss=ce"
	$(BIN)/python train.py $(ARGS)

sweep: install  ## fused/split x bce/ce over 5-fold CV (experiment=compare) and its table
	$(BIN)/python train.py experiment=compare $(ARGS)

report: install  ## comparison report of a sweep (default: the newest): make report DIR=outputs/multirun/...
	@if [ -z "$(DIR)" ]; then echo "no sweep in outputs/multirun yet: run 'make sweep' first, or give one: make report DIR=path/to/sweep" >&2; exit 2; fi
	$(BIN)/python -m multihead.report $(DIR) $(ARGS)

test: install  ## the whole test suite
	$(BIN)/python -m pytest -q $(ARGS)

lint: install
	$(BIN)/ruff check src tests scripts train.py
	$(BIN)/ruff format --check src tests scripts train.py

format: install
	$(BIN)/ruff check --fix src tests scripts train.py
	$(BIN)/ruff format src tests scripts train.py

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
