# The two commands a newcomer needs:  make demo   |   make test
# Both create the project virtualenv (.venv) and install everything into it; nothing comes from model hubs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# NVIDIA Dynamo without its `aisimulate` requirement; the rest comes from the `dynamo` extra (pyproject.toml).
DYNAMO := ai-dynamo==1.6.1 ai-dynamo-runtime==1.6.1

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 10), "catalogvlm needs Python >= 3.10"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(DYNAMO)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/catalogvlm demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/catalogvlm bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
