# The two commands a new user needs: `make demo` and `make test`.
# Both create or refresh the virtual environment $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# one environment for everything: the demo and tests need matplotlib, docs sphinx
EXTRAS ?= test,docs

.PHONY: venv demo test lint docs clean

venv:
	@VENV=$(VENV) PYTHON=$(PYTHON) EXTRAS=$(EXTRAS) bash tools/venv.sh

demo: venv
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

docs: venv
	$(BIN)/python -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html
	@echo "docs built: docs/_build/html/index.html"

clean:
	rm -rf build docs/_build docs/auto_examples docs/generated *.egg-info .pytest_cache .ruff_cache
