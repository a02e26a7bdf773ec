# The two set-up commands of the README. Each creates .venv if missing and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.msam-installed
DEV := $(VENV)/.msam-dev-installed
UV := $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY)

.PHONY: install demo test bench lint clean

# The package and what the demo plots with: all `make demo` needs.
$(CORE): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: this exact version has a CPU wheel; a looser spec pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0 uv
	# The rest with uv, which keeps the torch above: about 3 times faster than pip, bytecode compiled as pip does.
	$(UV) -e '.[plots]'
	touch $(CORE)

# The test suite's extras on top (pytest, FAISS, Gradio, Selenium, ruff).
$(DEV): $(CORE)
	$(UV) -e '.[dev]'
	touch $(DEV)

install: $(DEV)

demo: $(CORE)
	$(PY) -m msam_hf.demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_model.py

# Lint and format checks (ruff, configured in pyproject.toml); `ruff format .` and `ruff check --fix .` apply them.
lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
