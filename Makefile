# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install
# what they need (Python packages into the venv, Debian packages through apt when missing).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint unit system-deps newer-nginx bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

system-deps:
	@scripts/install-debian-packages

demo: $(STAMP) system-deps
	$(BIN)/remediate demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy remediate
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --offline playbooks/

unit: $(STAMP) system-deps newer-nginx
	$(BIN)/pytest

test: lint unit

# nginx from Debian 13, unpacked under build/ (not installed) for the 1.25.1+ syntax tests.
newer-nginx:
	@scripts/fetch-newer-nginx || echo "could not fetch a newer nginx; its tests will be skipped" >&2

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
