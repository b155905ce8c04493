# Two entry points, both creating the environment when it is missing:
#   make demo   answer a question about the bundled sample with the embedded local model
#   make test   run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= Who was the first keeper of the Kessel Point Lighthouse, and when was the light first lit?

.PHONY: demo test bench

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e ".[all]" --group dev
	touch $@

demo: $(VENV)/.installed
	$(BIN)/docqa ask samples/harbor_light_report.md -q "$(QUESTION)"

test: $(VENV)/.installed
	@# The app's browser test drives Debian's headless Chromium; install it once if missing.
	test -x /usr/bin/chromium || { SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/pipeline_overhead.py
