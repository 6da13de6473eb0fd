# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment (.venv) and build the ROS message package on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint model data clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/*.txt scripts/setup_env.sh
	bash scripts/setup_env.sh $(PYTHON) $(VENV)
	touch $@

demo: setup
	$(PY) -m gapcam.demo

test: setup
	bash scripts/run_tests.sh $(VENV)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Reproduce the shipped model from scratch (data -> train -> export -> evaluate).
model: setup
	$(PY) -m gapcam.training.make_model

clean:
	rm -rf build out runs $(VENV)
