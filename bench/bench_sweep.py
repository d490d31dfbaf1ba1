"""A grid against a pruned Bayesian search, side by side: compute spent and the best found.

    python bench/bench_sweep.py                 # denoise_dense on ../shared/data/course
    python bench/bench_sweep.py --trials 8      # a smaller budget for the search
    python bench/bench_sweep.py --quick         # smoke mode: seconds, meaningless scores

Both sweeps search learning rate x batch size x frame shifts of ``denoise_dense``:

- ``grid``: every combination of the values below (12 trials), each trained to its end;
- ``tpe + asha``: ``--search tpe --prune asha --prune-metric val_loss`` with at most as many
  trials, the learning rate searched on a log scale between the grid's end points, the
  others as choices of the grid's values; trials stop early when their validation loss
  lags (ASHA: at epochs 1, 3, 9, 27, ... keep the best third).

Compute is the CPU time of the whole sweep: the sweep process and every worker process
under it (``RUSAGE_CHILDREN`` of this script, which waits for them all). The best is the
held-out ``snr_db`` of the best trial (the last 15 % of the course recording, never trained
on). Goal: the search within 0.2 dB of the grid's best for at most 40 % of its compute.
Both run in one invocation, one after the other, under whatever else shares the machine:
compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data")) / "course"
GRID = {"learning_rate": "3e-4,1e-3,3e-3", "batch_size": "32,128", "frame_shifts": "1,4"}
SEARCH = {"learning_rate": "loguniform(3e-4,3e-3)", "batch_size": "choice(32,128)",
          "frame_shifts": "choice(1,4)"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(space: dict[str, str], extra: list[str], args, store: str) -> dict:
    """One ``dlbench sweep`` in a subprocess: its summary, wall time and CPU seconds."""
    command = [sys.executable, "-m", "dlbench", "sweep", "denoise_dense", "--json",
               "--tracking-uri", store, "--data", str(args.data), "--workers", str(args.workers),
               "--seed", str(args.seed), *(["--quick"] if args.quick else []), *extra]
    for name, axis in space.items():
        command += ["-p", f"{name}={axis}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cpu, started = children_cpu(), time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    if out.returncode != 0:
        sys.exit(f"sweep failed ({out.returncode}):\n{out.stderr[-4000:]}")
    summary = json.loads(out.stdout)
    best = summary["best"] or {}
    return {"trials": summary["trials"], "cpu": cpu, "wall": wall,
            "best": best.get("metrics", {}).get("snr_db"), "params": best.get("sweep_params"),
            "command": "dlbench sweep denoise_dense " + " ".join(
                f"-p {n}={a}" for n, a in space.items()) + " " + " ".join(extra)}


def epochs(trial: dict) -> int:
    """Epochs a trial trained: where it was pruned, else what it logged."""
    if trial["pruned_at_step"] is not None:
        return int(trial["pruned_at_step"])
    return int(trial["metrics"].get("epochs_trained", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=COURSE)
    parser.add_argument("--trials", type=int, default=12, help="the search's budget (grid: 12)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--store", type=Path, help="keep the runs in this folder's mlflow.db")
    parser.add_argument("--only", choices=("grid", "search"), help="run one of the two sweeps")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no course data at {args.data}; set DLBENCH_TEST_DATA")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        store = f"sqlite:///{args.store or tmp}/mlflow.db"
        # Both sweeps find the STFT features cached: neither pays for computing them.
        warm = sweep({"frame_shifts": "1,4"}, ["-p", "epochs=1"], args, store)
        print(f"bench: features cached ({warm['wall']:.0f} s)", file=sys.stderr)
        plans = {"grid": (GRID, []),
                 "tpe + asha": (SEARCH, ["--search", "tpe", "--trials", str(args.trials),
                                         "--prune", "asha", "--prune-metric", "val_loss"])}
        if args.only:
            plans = {k: v for k, v in plans.items() if (k == "grid") == (args.only == "grid")}
        results = {name: sweep(space, extra, args, store) for name, (space, extra) in plans.items()}
    for name, result in results.items():
        print(f"{name}, trial by trial:")
        for trial in sorted(result["trials"], key=lambda t: t["index"]):
            print(f"  {trial['index']:>2} {trial['state']:<9} epochs {epochs(trial):>3}"
                  f"  snr_db {trial['metrics'].get('snr_db', float('nan')):6.2f}"
                  f"  val_loss {trial['metrics'].get('val_loss', float('nan')):.5f}  "
                  + " ".join(f"{k}={v}" for k, v in trial["sweep_params"].items()))
    if len(results) < 2:
        return
    from dlbench.tables import format_table

    grid = results["grid"]
    rows = []
    for name, result in results.items():
        trials = result["trials"]
        rows.append({
            "sweep": name, "trials": len(trials),
            "pruned": sum(t["state"] == "pruned" for t in trials),
            "epochs": sum(epochs(t) for t in trials),
            "CPU s": f"{result['cpu']:.0f}", "CPU vs grid": f"{result['cpu'] / grid['cpu']:.0%}",
            "wall s": f"{result['wall']:.0f}",
            "best snr_db": f"{result['best']:.2f}" if result["best"] is not None else "-",
            "best params": " ".join(f"{k}={v}" for k, v in (result["params"] or {}).items()),
        })
    print(f"bench_sweep ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, workers"
          f" {args.workers}, seed {args.seed}{', quick' if args.quick else ''})")
    print(format_table(rows, list(rows[0])))
    search = results["tpe + asha"]
    gap = grid["best"] - search["best"]
    share = search["cpu"] / grid["cpu"]
    met = gap <= 0.2 and share <= 0.4
    print(f"search vs grid: {gap:+.2f} dB below the grid's best for {share:.0%} of its CPU time"
          f" -> goal (<= 0.2 dB, <= 40 %) {'met' if met else 'NOT met'}")
    for name, result in results.items():
        print(f"{name}: {result['command']}")


if __name__ == "__main__":
    main()
