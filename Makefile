# nnsweeps: `make sweep` runs the main job, `make test` runs the suite. Both build .venv first.
# `make help` lists every target.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=
RUN    ?=
HOST   ?= 127.0.0.1
PORT   ?= 5000
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_TRACKING_URI

.DEFAULT_GOAL := help
.PHONY: help venv sweep test test-fast bench bench-sweep ui reproduce clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The environment is rebuilt when missing or older than the pinned requirements.
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --config-settings editable_mode=compat -e .
	@touch $@

venv: $(STAMP) ## Create .venv from the pinned versions (requirements*.lock)

sweep: $(STAMP) ## Run the default sweep (extra Hydra overrides: ARGS="sweep.n_trials=50 ...")
	$(PY) -m sweeps $(ARGS)

test: $(STAMP) ## Run the whole test suite, slow end-to-end tests included
	$(PY) -m pytest $(ARGS)

test-fast: $(STAMP) ## Run the suite without the slow end-to-end tests
	$(PY) -m pytest -m "not slow" $(ARGS)

bench: $(STAMP) ## Benchmark nncore against course-style NumPy, scikit-learn and PyTorch (1 BLAS thread)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0 || echo "torch==2.13.0 is not installable here: the PyTorch column is skipped"
	$(PY) benchmarks/bench_nncore.py $(ARGS)

bench-sweep: $(STAMP) ## Benchmark sweep throughput, tracking overhead and Hydra's Optuna sweeper
	$(PY) benchmarks/bench_sweep.py $(ARGS)

ui: $(STAMP) ## Start the MLflow UI on 127.0.0.1:$(PORT) over $(MLFLOW_TRACKING_URI)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host $(HOST) --port $(PORT) --workers 1

reproduce: $(STAMP) ## Retrain a tracked trial and compare its cost curve bitwise: make reproduce RUN=<run id>
	@test -n "$(RUN)" || { echo "make reproduce needs RUN=<MLflow run id of a trial>"; exit 2; }
	$(PY) -m sweeps.reproduce $(RUN)

clean: ## Remove generated stores and outputs (keeps .venv)
	rm -rf mlruns mlartifacts mlflow.db outputs multirun .pytest_cache
