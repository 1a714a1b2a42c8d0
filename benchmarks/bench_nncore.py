"""Benchmark nncore against the course's NumPy code, scikit-learn's MLPClassifier and manual PyTorch.

    .venv/bin/python benchmarks/bench_nncore.py [--quick] [--repeat N] [--repeat-w3 N] [--json PATH]

Everything runs in ONE process with BLAS (and OpenMP) limited to 1 thread, and every
implementation starts from the same initial weights, so the final costs and accuracies printed
next to the times show that each did the same work. Workloads:
  W1  flower, all 400 points, [2, 4, 1] tanh/sigmoid, scaled init, lr 1.2, 10,000 full-batch iterations
  W2  digits (val_fraction 0.2), [64, 64, 32, 10] relu/softmax, he init, mini-batch 128, 200 epochs, lr 0.1
  W3  20,000 x 256 Gaussian, 10 classes, [256, 512, 512, 10] relu/softmax, mini-batch 512, 3 epochs,
      lr 0.01, in float64 and float32, also in GFLOP/s against a plain GEMM of the same dtype.
Every implementation computes the cost at every iteration (every mini-batch), as the course does;
nncore is also timed with cost_every=100 and in float32. Ratios are times (lower = nncore faster).
Data reach every implementation in the memory layout load_dataset gives them (printed per workload).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier  # before threadpool_limits: its libraries get limited too
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import course_baseline as course  # noqa: E402  (the course's code, bugs fixed: see its docstring)

from nncore import Network, fit, load_dataset  # noqa: E402
from results import recorded  # noqa: E402  (benchmarks/results.py)

try:
    import torch
except ImportError:  # the Makefile installs torch==2.13.0 for `make bench`
    torch = None

F64, F32 = "float64", "float32"


@dataclass
class Workload:
    name: str
    sizes: list[int]
    activation: str
    init: str
    lr: float
    iterations: int  # full-batch steps, or epochs with batch_size
    batch_size: int | None
    X: np.ndarray  # (n_x, m) float64
    y: np.ndarray  # (m,) int labels
    dtypes: list[str]
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    Y: np.ndarray = field(init=False)  # (n_y, m): 0/1 row for 1 output unit, else one-hot

    def __post_init__(self):
        n_y = self.sizes[-1]
        self.Y = self.y[None, :].astype(float) if n_y == 1 else np.eye(n_y)[:, self.y]

    @property
    def output(self) -> str:
        return "sigmoid" if self.sizes[-1] == 1 else "softmax"

    def flops(self) -> float:
        """Forward + backward GEMM flops of the whole run: per layer 2 n_l (n_{l-1}+1) per sample
        forward, twice that backward ([dW|db] and dA), except no dA for the first layer."""
        per_sample = sum(2 * n * (n_prev + 1) * (3 if l else 2)
                         for l, (n_prev, n) in enumerate(zip(self.sizes[:-1], self.sizes[1:])))
        return per_sample * self.X.shape[1] * self.iterations


def make_workloads(quick: bool) -> list[Workload]:
    flower = load_dataset("flower", seed=0, val_fraction=0.0)
    digits = load_dataset("digits", seed=0, val_fraction=0.2)
    rng = np.random.default_rng(0)
    m3 = 4096 if quick else 20000
    X3 = rng.standard_normal((256, m3))
    y3 = (rng.standard_normal((10, 256)) @ X3).argmax(axis=0)  # labels from a random linear map
    return [
        Workload("W1", [2, 4, 1], "tanh", "scaled", 1.2, 1000 if quick else 10000, None,
                 flower.X_train, flower.y_train, [F64]),
        Workload("W2", [64, 64, 32, 10], "relu", "he", 0.1, 20 if quick else 200, 128,
                 digits.X_train, digits.y_train, [F64], digits.X_val, digits.y_val),
        Workload("W3", [256, 512, 512, 10], "relu", "he", 0.01, 1 if quick else 3, 512, X3, y3, [F64, F32]),
    ]


def initial_params(wl: Workload, dtype: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """nncore's initial weights [(W (n_l, n_{l-1}), b (n_l, 1))], copied: every implementation starts here."""
    net = Network.create(wl.sizes, activation=wl.activation, init=wl.init, seed=0, dtype=dtype)
    return [(W.copy(), b.copy()) for W, b in net.params]


# --- the implementations: each returns (seconds, trained [(W, b)] as NumPy arrays) ---------------

def run_nncore(wl: Workload, dtype: str, cost_every: int = 1):
    net = Network.create(wl.sizes, activation=wl.activation, init=wl.init, seed=0, dtype=dtype)
    X, Y = wl.X.astype(dtype), wl.Y.astype(dtype)
    t0 = time.perf_counter()
    fit(net, X, Y, learning_rate=wl.lr, iterations=wl.iterations, batch_size=wl.batch_size,
        seed=0, cost_every=cost_every)
    return time.perf_counter() - t0, net.params


def run_course(wl: Workload, dtype: str):
    parameters = {}
    for l, (W, b) in enumerate(initial_params(wl, dtype), start=1):
        parameters["W" + str(l)], parameters["b" + str(l)] = W, b
    X, Y = wl.X.astype(dtype), wl.Y.astype(dtype)
    t0 = time.perf_counter()
    with np.errstate(over="ignore"):  # exp overflow in the course's sigmoid is harmless (gives 0)
        parameters, _ = course.L_layer_model(X, Y, parameters, wl.activation, wl.output, wl.lr,
                                             wl.iterations, wl.batch_size, seed=0)
    seconds = time.perf_counter() - t0
    L = len(wl.sizes) - 1
    return seconds, [(parameters[f"W{l}"], parameters[f"b{l}"]) for l in range(1, L + 1)]


def run_sklearn(wl: Workload, dtype: str):
    m = wl.X.shape[1]
    Xr = np.ascontiguousarray(wl.X.T, dtype=dtype)  # sklearn wants samples as rows
    clf = MLPClassifier(hidden_layer_sizes=tuple(wl.sizes[1:-1]), activation=wl.activation,
                        solver="sgd", learning_rate="constant", learning_rate_init=wl.lr,
                        momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                        batch_size=wl.batch_size or m, shuffle=wl.batch_size is not None,
                        max_iter=1, tol=0.0, n_iter_no_change=10**9, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        k = min(m, 1000)  # untimed: one short fit sets the model up, then it restarts from our weights
        clf.fit(Xr[:k], wl.y[:k])
        clf.coefs_ = [np.ascontiguousarray(W.T) for W, _ in initial_params(wl, dtype)]
        clf.intercepts_ = [b.ravel().copy() for _, b in initial_params(wl, dtype)]
        clf.loss_curve_, clf.best_loss_, clf._no_improvement_count = [], np.inf, 0
        clf.max_iter = wl.iterations
        t0 = time.perf_counter()
        clf.fit(Xr, wl.y)
        seconds = time.perf_counter() - t0
    assert clf.n_iter_ == wl.iterations, "scikit-learn stopped early"
    return seconds, [(W.T, b[:, None]) for W, b in zip(clf.coefs_, clf.intercepts_)]


def run_torch(wl: Workload, dtype: str):
    """The same math as the course with torch tensors: matmuls and a hand-written backward, no autograd."""
    X, Y = torch.from_numpy(wl.X.astype(dtype)), torch.from_numpy(wl.Y.astype(dtype))
    params = [(torch.from_numpy(W), torch.from_numpy(b)) for W, b in initial_params(wl, dtype)]
    relu, lr, m, L = wl.activation == "relu", wl.lr, X.shape[1], len(params)
    gen = torch.Generator().manual_seed(0)
    costs = []  # recorded like the course's cost curve
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(wl.iterations):
            if wl.batch_size is None:
                batches = [(X, Y)]
            else:
                perm = torch.randperm(m, generator=gen)
                batches = [(X[:, idx], Y[:, idx]) for idx in perm.split(wl.batch_size)]
            total = 0.0
            for Xb, Yb in batches:
                As = [Xb]  # the cache: A[0] .. A[L-1]
                for l, (W, b) in enumerate(params):
                    Z = torch.addmm(b, W, As[-1])  # W A + b
                    if l < L - 1:
                        As.append(Z.relu_() if relu else Z.tanh_())
                if wl.output == "sigmoid":  # cost from the logits, then dZ[L] = A[L] - Y
                    cost = (torch.nn.functional.softplus(Z) - Yb * Z).sum()
                    AL = torch.sigmoid(Z)
                else:
                    cost = torch.logsumexp(Z, 0).sum() - (Yb * Z).sum()
                    AL = torch.softmax(Z, 0)
                total += cost.item()
                dZ = (AL - Yb).mul_(lr / Xb.shape[1])  # lr / m folded in once
                for l in range(L - 1, -1, -1):
                    W, b = params[l]
                    dA = W.T @ dZ if l else None  # before W changes
                    W.sub_(dZ @ As[l].T)
                    b.sub_(dZ.sum(1, keepdim=True))
                    if l:
                        A = As[l]
                        dZ = dA.masked_fill_(A <= 0, 0) if relu else dA.mul_(1 - A * A)
            costs.append(total / m)
    return time.perf_counter() - t0, [(W.numpy(), b.numpy()) for W, b in params]


# --- evaluation, GEMM rate, statistics ------------------------------------------------------------

def evaluate(wl: Workload, params, X=None, y=None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in float64 of trained params on X (default: the training set)."""
    X, y = (wl.X, wl.y) if X is None else (X, y)
    A = X
    for l, (W, b) in enumerate(params):
        Z = np.asarray(W, np.float64) @ A + np.asarray(b, np.float64)
        A = Z if l == len(params) - 1 else (np.tanh(Z) if wl.activation == "tanh" else np.maximum(Z, 0))
    if Z.shape[0] == 1:
        return float(np.mean(np.logaddexp(0, Z[0]) - y * Z[0])), float(np.mean((Z[0] > 0) == y))
    zmax = Z.max(axis=0)
    lse = np.log(np.exp(Z - zmax).sum(axis=0)) + zmax
    return float(np.mean(lse - Z[y, np.arange(y.size)])), float(np.mean(Z.argmax(axis=0) == y))


def gemm_rate(dtype: str, seconds: float, use_torch: bool = False) -> float:
    """GFLOP/s of (512 x 512) @ (512 x 512) repeated for about `seconds`: median of 5 rounds."""
    n = 512
    a = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    b, c = a.T.copy(), np.empty_like(a)
    mm = np.matmul
    if use_torch:
        a, b, c = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        mm = torch.mm
    mm(a, b, out=c)  # warm-up
    t0 = time.perf_counter()
    mm(a, b, out=c)
    reps = max(3, int(seconds / 5 / (time.perf_counter() - t0)))  # calls per round
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            mm(a, b, out=c)
        rates.append(2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def blas_info() -> list[str]:
    lines = []
    for lib in threadpool_info():
        keys = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
        desc = ", ".join(f"{k}={lib[k]}" for k in keys if lib.get(k) is not None)
        lines.append(f"  {lib['user_api']:<7} {Path(lib['filepath']).name}: {desc}")
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    lines.append("  environment: " + (", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "(no OPENBLAS_/OMP_/MKL_ variables)"))
    return lines


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer iterations, smaller W3, 1-2 repeats")
    ap.add_argument("--repeat", type=int, help="repeats for W1 and W2 (default 5; 2 with --quick)")
    ap.add_argument("--repeat-w3", type=int, help="repeats for W3 (default 3; 1 with --quick)")
    ap.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    args = ap.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    repeat_w3 = args.repeat_w3 or (1 if args.quick else 3)

    if torch is not None:
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    with threadpool_limits(limits=1), recorded("bench-nncore", "Speed of nncore (`make bench`)", keep=not args.quick):
        report = bench(args.quick, repeat, repeat_w3)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")


def bench(quick: bool, repeat: int, repeat_w3: int) -> dict:
    torch_v = torch.__version__ if torch is not None else "not importable: the PyTorch column is skipped"
    print(f"nncore benchmark{' (--quick: smoke run, fewer iterations)' if quick else ''}, 1 BLAS thread")
    print(f"CPU {cpu_name()}; Python {platform.python_version()}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__}, torch {torch_v}")
    if torch is not None:
        print(f"torch: {torch.get_num_threads()} thread, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
              f"BLAS {'MKL' if torch.backends.mkl.is_available() else 'other'}")
    print("threadpoolctl (inside threadpool_limits(1)):")
    print("\n".join(blas_info()))

    report = {"quick": quick, "env": {"cpu": cpu_name(), "numpy": np.__version__, "sklearn": sklearn.__version__,
              "torch": torch_v, "threadpool_info": threadpool_info(),
              "env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}},
              "gemm_gflops": {}, "workloads": {}, "ratios": []}
    gemm_s = 0.5 if quick else 2.0
    for dt in (F64, F32):
        report["gemm_gflops"][f"numpy_{dt}"] = gemm_rate(dt, gemm_s)
        if torch is not None:
            report["gemm_gflops"][f"torch_{dt}"] = gemm_rate(dt, gemm_s, use_torch=True)
    print("GEMM (512x512)@(512x512), 1 thread: "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in report["gemm_gflops"].items()))

    for wl in make_workloads(quick):
        n_rep = repeat_w3 if wl.name == "W3" else repeat
        res = report["workloads"][wl.name] = run_workload(wl, n_rep, gemm_s / 2)
        print_table(wl, res, n_rep)
        print_ratios(wl, res["runs"], report)
    return report


def implementations(wl: Workload) -> dict:
    """key -> (label, dtype, run function) for one workload."""
    runs = {}
    for dt in wl.dtypes:
        runs[f"nncore_{dt}"] = ("nncore", dt, lambda wl, dt=dt: run_nncore(wl, dt))
        runs[f"nncore_ce100_{dt}"] = ("nncore cost_every=100", dt, lambda wl, dt=dt: run_nncore(wl, dt, 100))
        if F32 not in wl.dtypes:
            runs[f"nncore_{F32}"] = ("nncore", F32, lambda wl: run_nncore(wl, F32))
        runs[f"course_{dt}"] = ("course NumPy (baseline)", dt, lambda wl, dt=dt: run_course(wl, dt))
        runs[f"sklearn_{dt}"] = ("sklearn MLPClassifier", dt, lambda wl, dt=dt: run_sklearn(wl, dt))
        if torch is not None:
            runs[f"torch_{dt}"] = ("torch manual (CPU)", dt, lambda wl, dt=dt: run_torch(wl, dt))
    return runs


def run_workload(wl: Workload, n_rep: int, gemm_s: float) -> dict:
    runs = implementations(wl)
    times, params = {k: [] for k in runs}, {}
    gemm = {dt: [] for dt in wl.dtypes}  # W3: the GEMM rate is measured again between the repeats
    for _ in range(n_rep):  # round-robin, so drifts in machine speed hit every implementation alike
        if wl.name == "W3":
            for dt in wl.dtypes:
                gemm[dt].append(gemm_rate(dt, gemm_s))
        for key, (_, _, fn) in runs.items():
            seconds, params[key] = fn(wl)
            times[key].append(seconds)
    res = {"sizes": wl.sizes, "activation": wl.activation, "iterations": wl.iterations,
           "batch_size": wl.batch_size, "m": int(wl.X.shape[1]), "gflop": wl.flops() / 1e9, "runs": {}}
    if wl.name == "W3":
        res["gemm_gflops"] = {dt: statistics.median(v) for dt, v in gemm.items()}
    for key, (label, dt, _) in runs.items():
        cost, acc = evaluate(wl, params[key])
        row = res["runs"][key] = {"label": label, "dtype": dt, "times": times[key],
                                  "median": statistics.median(times[key]), "cost": cost, "acc": acc}
        if wl.name == "W3":
            row["gflops"] = wl.flops() / row["median"] / 1e9
        if wl.X_val is not None:
            row["val_acc"] = evaluate(wl, params[key], wl.X_val, wl.y_val)[1]
    return res


def print_table(wl: Workload, res: dict, n_rep: int) -> None:
    steps = (f"{wl.iterations} full-batch iterations" if wl.batch_size is None
             else f"mini-batch {wl.batch_size}, {wl.iterations} epochs")
    print(f"\n{wl.name}: m={wl.X.shape[1]}, sizes {wl.sizes}, {wl.activation}/{wl.output}, {wl.init} init, "
          f"lr {wl.lr}, {steps}; seconds = median of {n_rep}")
    order = lambda a: "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided"
    print(f"  data layout: X {order(wl.X)}-ordered, Y {order(wl.Y)}-ordered")
    w3, val = wl.name == "W3", wl.X_val is not None
    print(f"  {'implementation':<24}{'dtype':<9}{'median s':>10}{'min s':>9}{'max s':>9}"
          + (f"{'GFLOP/s':>9}" if w3 else "") + f"{'train cost':>12}{'train acc':>11}"
          + (f"{'val acc':>9}" if val else ""))
    for row in res["runs"].values():
        t = row["times"]
        print(f"  {row['label']:<24}{row['dtype']:<9}{row['median']:>10.3f}{min(t):>9.3f}{max(t):>9.3f}"
              + (f"{row['gflops']:>9.1f}" if w3 else "") + f"{row['cost']:>12.4f}{row['acc']:>11.3f}"
              + (f"{row['val_acc']:>9.3f}" if val else ""))


TARGETS = {  # (workload, numerator, denominator) -> bound on the time ratio
    ("W1", "nncore_float64", "course_float64"): 0.3,
    ("W1", "nncore_float64", "torch_float64"): 0.3,
    ("W2", "nncore_float64", "torch_float64"): 0.7,
}


def print_ratios(wl: Workload, runs: dict, report: dict) -> None:
    print("  ratios (median time / median time; < 1 = nncore faster):")

    def line(what, value, key, target=None, passed=None, unit=""):
        mark = f"   target {target}: {'PASS' if passed else 'MISS'}" if target else ""
        print(f"    {what:<52}{value:>7.3f}{unit}{mark}" if not unit else f"    {what:<52}{value:>6.1f}{unit}{mark}")
        report["ratios"].append({"workload": wl.name, "ratio": key, "value": value, "target": target, "pass": passed})

    def ratio(num, den, what):
        if num not in runs or den not in runs:
            print(f"    {what:<52} skipped ({den.split('_')[0]} not run)")
            return
        r = runs[num]["median"] / runs[den]["median"]
        bound = TARGETS.get((wl.name, num, den))
        line(what, r, f"{num}/{den}", f"<= {bound:g}" if bound else None, r <= bound if bound else None)

    for dt in wl.dtypes:
        for other, name in (("course", "course NumPy"), ("torch", "torch manual"), ("sklearn", "sklearn")):
            ratio(f"nncore_{dt}", f"{other}_{dt}", f"nncore / {name} ({dt})")
        for other, name in (("course", "course NumPy"), ("torch", "torch manual")):
            ratio(f"nncore_ce100_{dt}", f"{other}_{dt}", f"nncore cost_every=100 / {name} ({dt})")
        ratio(f"nncore_ce100_{dt}", f"nncore_{dt}", f"nncore cost_every=100 / cost_every=1 ({dt})")
    ratio(f"nncore_{F32}", f"nncore_{F64}", "nncore float32 / float64")
    if wl.name == "W3":
        for dt in wl.dtypes:
            rate = report["workloads"]["W3"]["gemm_gflops"][dt]  # measured between the W3 repeats
            pct = 100 * runs[f"nncore_{dt}"]["gflops"] / rate
            target = ">= 75%" if dt == F32 else None
            line(f"nncore GFLOP/s as % of numpy GEMM ({rate:.1f}, {dt})", pct, f"nncore_{dt} GFLOP/s % of GEMM",
                 target, pct >= 75 if target else None, unit="%")


if __name__ == "__main__":
    main()
