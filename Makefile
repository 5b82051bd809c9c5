# Two commands do everything on a fresh machine:
#   make lab    set up if needed, then open the notebook on the bundled demo library
#   make test   set up if needed, then run the whole test suite (lint included)
# Set-up is a stamp file: nothing is reinstalled until pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := lab,dev
# Jupyter refuses to run as root unless told to (containers and CI machines run as root).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup test lab app lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip check
	@touch $@

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/soundslike.ipynb

# The app alone: no code, no notes (markdown cells) and no build log (open_library is quiet there).
app: $(STAMP)
	$(BIN)/voila --VoilaExporter.exclude_markdown=True notebooks/soundslike.ipynb

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/search.py
	$(BIN)/python benchmarks/indexing.py
	$(BIN)/python benchmarks/map_agreement.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
