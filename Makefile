# One command for everything; each target creates .venv from Python 3.11 when it is missing
# and reinstalls only when pyproject.toml changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Bytecode is written (into the ignored __pycache__ folders) even where the environment says not
# to: else every `vigie` process of the tests and the demo compiles the project again (about
# 1.2 s of CPU each) and every test worker rewrites the tests' asserts again (6 s each).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Test workers: every core (pytest-xdist); WORKERS=0 (TEST_WORKERS=0 for make test) runs in
# this process (pdb, -s).
WORKERS ?= auto
# make test: two workers more than cores, since its longest tests mostly wait on clocks and
# servers (the Prefect server's trigger windows, a browser) while the others compute: with one
# more, 18% of the CPU stayed idle on 2 cores.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 2)')
# What make check leaves out: a Prefect server, a browser, whole commands, long real-clock waits.
FAST := not server and not e2e and not browser and not slow

.PHONY: demo test check lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11 or newer is needed: set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vigie demo

# The whole suite (what .ci/run runs), spread over the cores; the slowest tests are listed.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25

# The developer's loop: lint, the import contracts and the fast tests (under 5 minutes).
check: lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal -m "$(FAST)" --durations=10

# Figures only, printed side by side; the 10 M-mention warehouse takes about a minute to build.
# bench_load.py runs one watch cycle at 1x and 10x the load (10,000 feeds, 10 M mentions, a
# 100,000-mention burst): about 10 minutes of the whole on 2 cores (--quick: a tenth).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_collection.py
	$(BIN)/python bench/bench_polling.py
	$(BIN)/python bench/bench_detection.py
	$(BIN)/python bench/bench_nab_cv.py
	$(BIN)/python bench/bench_query.py
	$(BIN)/python bench/bench_scenarios.py
	$(BIN)/python bench/bench_sentiment.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_warehouse.py
	$(BIN)/python bench/bench_load.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
