"""A scripted experiment: a small sweep, its best trial reproduced bit for bit, its network loaded.

    python examples/scripted_experiment.py [FOLDER]   # FOLDER defaults to a new temporary folder
"""

import sys
import tempfile
from pathlib import Path

import nncore
import sweeps

# Stores of its own, so the script neither resumes nor mixes with the sweeps of `make sweep`.
folder = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="nnsweeps-")).resolve()
folder.mkdir(parents=True, exist_ok=True)
uri = f"sqlite:///{folder / 'mlflow.db'}"

# The same overrides as `python -m sweeps ...`; a bad one raises sweeps.errors.ConfigError.
result = sweeps.run([
    "sweep.study_name=scripted",
    f"sweep.storage={folder / 'optuna.journal'}",  # running the script again on FOLDER resumes the study
    f"tracking.uri={uri}",
    f"hydra.run.dir={folder / 'hydra'}",  # receives .hydra/config.yaml, the config that ran
    "sweep.n_trials=6",
    "sweep.n_jobs=2",
])
best = result.best
if best is None:  # every trial pruned or diverged: nothing to reproduce
    sys.exit("no trial completed")
print(f"\nbest trial {best.number}: val_cost {best.value:.4f} (MLflow run {best.run_id})")

# Train the best trial again from its logged config and seed: the cost curve must match bit for bit.
rep = sweeps.reproduce(best.run_id, tracking_uri=uri)
if rep.max_abs_diff != 0.0:
    sys.exit(f"NOT reproduced exactly: the cost curves differ by up to {rep.max_abs_diff!r}")
print(f"reproduced exactly: {rep.costs.size} cost points, max_abs_diff = {rep.max_abs_diff}")

# The trained network as logged (weights.npz), scored on the validation split the sweep used.
net = sweeps.load_network(best.run_id, tracking_uri=uri)
d = result.config.dataset
data = nncore.load_dataset(d.name, seed=result.config.seed, val_fraction=d.val_fraction,
                           test_fraction=d.test_fraction, **d.kwargs)
print(f"loaded network {net.sizes}: validation accuracy {net.accuracy(data.X_val, data.Y_val):.4f} "
      f"(logged: {best.metrics['val_accuracy']:.4f})")

# The three best complete trials, best first.
top = result.top(3)
names = sorted({name for t in top for name in t.params})
show = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
print("\n" + "  ".join(["trial", f"{result.config.sweep.metric:<8}", *names]))
for t in top:
    print("  ".join([f"{t.number:>5}", f"{t.value:<8.4f}", *(f"{show(t.params.get(n)):>{len(n)}}" for n in names)]))
print(f"\nstores in {folder}")
