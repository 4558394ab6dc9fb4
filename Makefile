# The two commands a new user needs: `make demo` and `make test`.
# Both create or refresh the virtual environment $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench clean

venv:
	@VENV=$(VENV) PYTHON=$(PYTHON) EXTRAS=test bash tools/venv.sh

demo: venv
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
