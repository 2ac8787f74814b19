# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

# Pins live here; pyproject.toml keeps ranges.
TORCH_PIN      := torch==2.13.0
TORCHRL_PIN    := torchrl==0.14.1
TENSORDICT_PIN := tensordict==0.14.3
RUFF_PIN       := ruff==0.8.6

.PHONY: setup demo baselines lint test test-all bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch only when none is importable: a CPU build of 2.13.0 lies on this machine's disk,
	# any other request downloads several GB.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_PIN)"
	$(PIP) install --quiet "$(TENSORDICT_PIN)" "$(TORCHRL_PIN)"
	# the test extra includes ray (~100 MB): tests/training/test_ray_collector.py runs 2 Ray workers
	$(PIP) install --quiet -e ".[test,plot,real]" "$(RUFF_PIN)"
	touch $(STAMP)

# The main job: PPO with the Slot Transformer on the 1x3 grid (a fresh run folder each time).
demo: setup
	$(PY) examples/ppo_slots.py --output-dir runs/demo-$$(date +%Y%m%d-%H%M%S)

baselines: setup
	$(PY) examples/baselines.py --episodes 256 --grids 1x3,2x5,5x10 --auto-advance-grids 5x10

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q -m "not slow" tests --doctest-modules torchrl_slots

test-all: setup
	$(PY) -m pytest -q tests --doctest-modules torchrl_slots

bench: setup
	$(PY) benchmarks/bench_env.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
