"""One table of dlbench's performance figures, each with the command that reproduces it.

    python bench/bench_all.py                 # every row (minutes: trains the real models)
    python bench/bench_all.py --quick         # smoke mode for the training rows
    python bench/bench_all.py --rows list,sweep

Rows:
- ``list``: ``dlbench list`` start-up, hyperfine-style: warm-up runs, then N timed fresh
  processes; mean +- standard deviation and the fastest.
- ``sweep``: what a trial of ``dlbench sweep`` costs beyond its own work on warm local
  workers, with 1 and 2 workers: the median gap between consecutive trials in a worker
  (the toy experiment: its own work is milliseconds).
- ``cache``, ``overhead``, ``memory``: STFT cache first vs second run, training overhead vs a
  bare Keras script, ``cifar_aug`` peak memory. They call ``bench/bench_cache.py``,
  ``bench_denoise.py`` and ``bench_cifar.py`` (which print fuller reports of their own); a row
  whose data is missing, or that fails, is left out, and the table says so.

Timings on a shared machine are noisy: quote figures taken on an idle one, with this command.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
DATA = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data"))
ROWS = ("list", "sweep", "cache", "overhead", "memory")


def bench_module(name: str):
    """Another bench script of this folder, as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_env(root: Path) -> dict[str, str]:
    """The tests' toy plugin, discoverable as an installed distribution (no TensorFlow)."""
    sys.path.insert(0, str(REPO / "tests"))
    from toy_plugin import TOY_PLUGIN

    from dlbench.testing import fake_distribution

    site = fake_distribution(root / "site", "toy_plugin_dist", TOY_PLUGIN)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def dlbench(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True, text=True,
                         env=full, cwd=cwd)
    if out.returncode != 0:
        raise RuntimeError(f"dlbench {' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
    return out, time.perf_counter() - started


def row_list(args) -> dict:
    for _ in range(args.warmup):
        dlbench(["list"])
    times = [dlbench(["list"])[1] for _ in range(args.runs)]
    sd = statistics.stdev(times) if len(times) > 1 else 0.0
    return {"figure": "dlbench list start-up",
            "value": f"{statistics.mean(times) * 1000:.0f} ms +- {sd * 1000:.0f}",
            "detail": f"min {min(times) * 1000:.0f} ms over {args.runs} runs, {args.warmup} warm-up",
            "command": "python -m dlbench list"}


def row_sweep(args) -> dict | str:
    """Seconds a trial costs beyond its own work on warm workers: within each worker process,
    the median gap between one trial's end and the next's (start-up of the sweep and of the
    workers is outside every gap). The toy's own work is a few metric writes: milliseconds."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        env = {"MLFLOW_TRACKING_URI": uri, **toy_env(tmp), "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist"}
        grid = ["-p", "lr=0.1,0.05,0.02,0.01", "-p", "epochs=3,4,5,6"]
        gaps, walls = {}, {}
        for workers in (1, 2):
            out, walls[workers] = dlbench(["sweep", "toy_fit", *grid, "--quick", "--json",
                                           "--workers", str(workers)], env=env, cwd=tmp)
            ends: dict[str, list[float]] = {}
            for trial in json.loads(out.stdout)["trials"]:
                run = MlflowClient(uri).get_run(trial["run_id"])
                ends.setdefault(run.data.tags["dlbench.pid"], []).append(run.info.end_time / 1000)
            gaps[workers] = statistics.median(
                b - a for times in ends.values() for a, b in zip(sorted(times), sorted(times)[1:]))
    return {"figure": "sweep overhead per trial, toy_fit --quick (goal <= 1 s)",
            "value": f"{gaps[1]:.2f} s (1 worker), {gaps[2]:.2f} s (2 workers)",
            "detail": f"median gap between trials in a worker; 16 trials in {walls[1]:.1f} s"
                      f" (1 worker), {walls[2]:.1f} s (2); {os.cpu_count()} CPUs",
            "command": f"dlbench sweep toy_fit {' '.join(grid)} --quick --workers N"}


def row_cache(args) -> dict | str:
    module = bench_module("bench_cache")
    if not (args.data / "course").is_dir():
        return f"course data not found at {args.data / 'course'}"
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as root:
        first = module.run_stage(module.STAGES["course features"], args.data, Path(root))
        second = module.run_stage(module.STAGES["course features"], args.data, Path(root))
    return {"figure": "STFT cache, course features: first vs second run",
            "value": f"{first['seconds']:.2f} s vs {second['seconds']:.2f} s",
            "detail": f"{first['seconds'] / max(second['seconds'], 1e-9):.1f}x; {first['detail']}",
            "command": "python bench/bench_cache.py"}


def row_overhead(args) -> dict | str:
    module = bench_module("bench_denoise")
    data = str(args.data / "course") if (args.data / "course").is_dir() else None
    extra = ["--quick"] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        summary, _ = module.run_dlbench("denoise_dense", data, f"sqlite:///{tmp}/mlflow.db", extra)
    trained = summary["metrics"]["train_seconds"]
    bare = module.bare_keras_seconds("denoise_dense", summary, data, args.quick)
    return {"figure": "training overhead vs bare Keras, denoise_dense" + (" --quick" if args.quick else ""),
            "value": f"{(trained - bare) / bare:+.1%}",
            "detail": f"dlbench {trained:.1f} s vs bare Keras {bare:.1f} s,"
                      f" {int(summary['metrics']['epochs_trained'])} epochs",
            "command": "python bench/bench_denoise.py --overhead --only denoise_dense"}


def row_memory(args) -> dict | str:
    module = bench_module("bench_cifar")
    data = args.data / "cifar-10-batches-py"
    if not data.is_dir():
        return f"CIFAR data not found at {data}"
    run_args = ["cifar_aug", "--data", str(data)] + (["--quick"] if args.quick else [])
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        _, wall, rss = module.dlbench(run_args, Path(tmp))
    return {"figure": "cifar_aug peak memory" + (" --quick" if args.quick else ""),
            "value": f"{rss / 2**20:.0f} MiB", "detail": f"peak RSS (ru_maxrss), run {wall:.0f} s",
            "command": f"dlbench run {' '.join(run_args)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--quick", action="store_true", help="smoke mode for the training rows")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of dlbench list")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs of dlbench list")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    makers = {"list": row_list, "sweep": row_sweep, "cache": row_cache,
              "overhead": row_overhead, "memory": row_memory}
    rows, left_out = [], []
    for name in args.rows.split(","):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            row = makers[name](args)
        except (Exception, SystemExit) as exc:  # one broken row must not lose the others
            row = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(row, str):
            left_out.append(f"{name}: {row}")
        else:
            rows.append(row)
    from dlbench.tables import format_table

    print(f"dlbench benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs,"
          f" python {sys.version.split()[0]})")
    print(format_table(rows, ["figure", "value", "detail", "command"]))
    for line in left_out:
        print(f"left out: {line}")


if __name__ == "__main__":
    main()
