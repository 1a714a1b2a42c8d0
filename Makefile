# nnsweeps: `make sweep` runs the main job, `make test` runs the suite. Both build .venv first.
# `make help` lists every target.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# installed: the runtime, requirements.lock and the package (`make sweep`); then (DEV) requirements-dev.lock:
# the tests, torch for the GP sampler and the benchmarks, the UI tests' browser
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
ARGS   ?=
RUN    ?=
HOST   ?= 127.0.0.1
PORT   ?= 5000
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_TRACKING_URI

.DEFAULT_GOAL := help
.PHONY: help venv sweep test test-fast bench bench-sweep bench-search bench-figures bench-honest ui reproduce clean

# the variables the targets' descriptions name, by their values in `make help`
_OPEN  := $$(
_CLOSE := )
HELP_VARS = $(sort $(subst $(_OPEN),,$(subst $(_CLOSE),,$(shell grep -o '$$([A-Z_]*)' $(MAKEFILE_LIST)))))

help: ## List the targets
	@$(foreach v,$(HELP_VARS),$(v)='$($(v))') awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / { \
	    text = $$2; out = ""; \
	    while (match(text, /\$$\([A-Z_]+\)/)) { \
	        out = out substr(text, 1, RSTART - 1) ENVIRON[substr(text, RSTART + 2, RLENGTH - 3)]; \
	        text = substr(text, RSTART + RLENGTH) } \
	    printf "  make %-18s %s\n", $$1, out text }' $(MAKEFILE_LIST)

# The environment is rebuilt when missing or older than the pinned requirements: the runtime for
# a sweep, the development packages (about 2 GB with torch) only for the targets that need them.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --config-settings editable_mode=compat -e .
	@touch $@

$(DEV): $(STAMP) requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	@touch $@

venv: $(DEV) ## Create .venv from the pinned versions (requirements*.lock), development packages included

sweep: $(STAMP) ## Run the default sweep (extra Hydra overrides: ARGS="sweep.n_trials=50 ...")
	$(VENV)/bin/nnsweeps sweep $(ARGS)

test: $(DEV) ## Run the whole test suite, slow end-to-end tests included
	$(PY) -m pytest $(ARGS)

test-fast: $(DEV) ## Run the suite without the slow end-to-end tests
	$(PY) -m pytest -m "not slow" $(ARGS)

bench: $(DEV) ## Benchmark nncore against course-style NumPy, scikit-learn and PyTorch (1 BLAS thread)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0 || echo "torch==2.13.0 is not installable here: the PyTorch column is skipped"
	$(PY) benchmarks/bench_nncore.py $(ARGS)

bench-sweep: $(DEV) ## Benchmark sweep throughput, tracking overhead, Hydra's Optuna sweeper and what each workaround buys
	$(PY) benchmarks/bench_sweep.py $(ARGS)

bench-search: $(DEV) ## Measure search quality: samplers' best val_cost after 10/20/30 trials, pruning's savings
	$(PY) benchmarks/bench_search.py $(ARGS)

bench-honest: $(DEV) ## The winner's curse over 10 default sweeps: search score vs confirmed and test scores, and the confirmation's cost
	$(PY) benchmarks/bench_honest.py $(ARGS)

bench-figures: $(DEV) ## Time each figure the sweep draws against the library's way (what stays hand-written)
	$(PY) benchmarks/bench_figures.py $(ARGS)

ui: $(STAMP) ## Start the MLflow UI on $(HOST):$(PORT) over $(MLFLOW_TRACKING_URI); it prints each experiment's model-training URL
	$(VENV)/bin/nnsweeps ui --host $(HOST) --port $(PORT)

reproduce: $(STAMP) ## Retrain a tracked trial and compare its cost curve bitwise: make reproduce RUN=<run id>
	@test -n "$(RUN)" || { echo "make reproduce needs RUN=<MLflow run id of a trial> (nnsweeps report lists a sweep's trials)"; exit 2; }
	$(VENV)/bin/nnsweeps reproduce $(RUN)

clean: ## Remove generated stores and outputs (keeps .venv)
	rm -rf mlruns mlartifacts mlflow.db outputs multirun .pytest_cache

# ---- comparing runs: the terminal table and Optuna's dashboard ---------------------------------
.PHONY: report dashboard
TOP            ?= 10
# the default sweep's journal: outputs/<sweep.study_name>.journal
STUDY_STORAGE  ?= outputs/flower.journal
DASHBOARD_PORT ?= 8080

report: $(STAMP) ## Table of a sweep's top trials: make report RUN=<parent run id> TOP=10 (no RUN: the latest sweep)
	$(VENV)/bin/nnsweeps report $(RUN) --top $(TOP)

dashboard: $(STAMP) ## optuna-dashboard on $(HOST):$(DASHBOARD_PORT) over the study (STUDY_STORAGE=journal or RDB URL), if installed
	@case "$(STUDY_STORAGE)" in *://*) ;; *) test -f "$(STUDY_STORAGE)" || { echo "make dashboard: there is no study journal at $(STUDY_STORAGE); run \`make sweep\` first, or give STUDY_STORAGE=<a sweep's journal file or RDB URL>."; exit 2; } ;; esac
	@test -x $(VENV)/bin/optuna-dashboard || { echo "optuna-dashboard is not installed (it is optional): $(PY) -m pip install optuna-dashboard"; exit 2; }
	$(VENV)/bin/optuna-dashboard --host $(HOST) --port $(DASHBOARD_PORT) "$(STUDY_STORAGE)"

# ---- scaling out: docs/scaling.md (servers on $(HOST), 127.0.0.1 unless told otherwise) -----
.PHONY: postgres postgres-stop mlflow-server mlflow-server-stop dask-scheduler dask-worker worker bench-scale
PG_DIR      ?= outputs/postgres
PG_PORT     ?= 5432
MLFLOW_PORT ?= 5001
MLFLOW_BACKEND_URI ?= postgresql://postgres@127.0.0.1:$(PG_PORT)/mlflow
MLFLOW_ARTIFACTS   ?= mlartifacts
MLFLOW_ALLOWED_HOSTS ?=
DASK_PORT   ?= 8786
SCHEDULER   ?= tcp://$(HOST):$(DASK_PORT)
NWORKERS    ?= 2

postgres: $(STAMP) ## Start PostgreSQL on $(HOST):$(PG_PORT), data in $(PG_DIR), databases optuna and mlflow
	$(PY) -m sweeps.services postgres start --dir $(PG_DIR) --host $(HOST) --port $(PG_PORT)

postgres-stop: $(STAMP) ## Stop that PostgreSQL server
	$(PY) -m sweeps.services postgres stop --dir $(PG_DIR)

mlflow-server: $(STAMP) ## Start an MLflow server on $(HOST):$(MLFLOW_PORT) over $(MLFLOW_BACKEND_URI), in the background
	$(PY) -m sweeps.services mlflow start --backend-store-uri "$(MLFLOW_BACKEND_URI)" --host $(HOST) --port $(MLFLOW_PORT) --artifacts $(MLFLOW_ARTIFACTS) --allowed-hosts "$(MLFLOW_ALLOWED_HOSTS)"

mlflow-server-stop: $(STAMP) ## Stop that MLflow server (its whole process group)
	$(PY) -m sweeps.services mlflow stop

dask-scheduler: $(STAMP) ## Run a Dask scheduler on $(HOST):$(DASK_PORT) (foreground)
	$(VENV)/bin/dask scheduler --host $(HOST) --port $(DASK_PORT) --dashboard-address $(HOST):8787

dask-worker: $(STAMP) ## Run $(NWORKERS) Dask worker processes of 1 thread for $(SCHEDULER) (foreground)
	$(VENV)/bin/dask worker $(SCHEDULER) --host $(HOST) --nworkers $(NWORKERS) --nthreads 1 --dashboard-address $(HOST):0

worker: $(STAMP) ## Join a running sweep from this machine: make worker ARGS="sweep.storage=... tracking.uri=..."
	$(VENV)/bin/nnsweeps worker $(ARGS)

bench-scale: $(DEV) ## Benchmark trials/min with 1, 2, 4 workers on the journal vs PostgreSQL (needs PostgreSQL)
	$(PY) benchmarks/bench_scale.py $(ARGS)

# ---- a simulated cluster (docs/scaling.md, "A cluster on one machine"; as root) ----------
.PHONY: cluster-demo bench-cluster

cluster-demo: $(DEV) ## A sweep across simulated hosts db, a, b (network namespaces, as root): both stores' counts, then all removed
	$(PY) -m tests.cluster.demo

bench-cluster: $(DEV) ## Trials/min across simulated hosts: 1 and 2 worker hosts, link delay 0 and 20 ms (as root)
	$(PY) benchmarks/bench_cluster.py $(ARGS)
