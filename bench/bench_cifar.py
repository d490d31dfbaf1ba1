"""Benchmark cifar_aug and pretext_transfer: the issue's target comparisons, time and memory.

    python bench/bench_cifar.py                      # defaults, shared subset, 3 seeds
    python bench/bench_cifar.py --variant transfer_layers=conv_fc --variant pretext_epochs=30
    python bench/bench_cifar.py --skip-memory --seeds 0

Every run goes through the real ``dlbench run`` command into a throwaway SQLite store, so the
numbers are what a user gets. Prints, as markdown:

- cifar_aug at its defaults: baseline vs augmented test accuracy (target: +2 points or more);
- pretext_transfer at its defaults, mean over ``--seeds`` (target: transfer beats the
  500-label baseline by 2 points or more), and each ``--variant`` (extra ``-p`` settings) the
  same way, for the ablations;
- seconds per epoch of every child (read back from the runs) and each run's wall time;
- peak resident memory of each run (``ru_maxrss`` of that process, from ``os.wait4``); and the
  full-CIFAR-10 memory check: the subset tiled to CIFAR-10's size (50,000 training images in
  five 10,000-image batches, 10,000 test images, the real file format) and ``cifar_aug -p
  epochs=1`` run on it, whose peak must stay below 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data")) / "cifar-10-batches-py"
GIB = 1024**3


def dlbench(args: list[str], store: Path) -> tuple[dict, float, int]:
    """Run ``dlbench ARGS --json`` into ``store``; return (summary, wall seconds, peak RSS bytes)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "DLBENCH_DATA": str(store / "data-cache")}
    command = [sys.executable, "-m", "dlbench", "run", *args, "--json",
               "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}"]
    print(f"$ dlbench run {' '.join(args)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with open(store / "stdout.json", "w") as out, open(store / "stderr.log", "a") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=store, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"dlbench run {' '.join(args)} failed; see {store / 'stderr.log'}")
    summary = json.loads((store / "stdout.json").read_text())
    return summary, wall, usage.ru_maxrss * 1024  # Linux reports KiB


def child_epoch_seconds(store: Path, run_id: str) -> dict[str, float]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    return {c.info.run_name: c.data.metrics["seconds_per_epoch"] for c in children}


def tile_to_full_cifar(subset: Path, folder: Path) -> Path:
    """Write a CIFAR-10-sized copy of ``subset`` (images repeated) in the real batch format."""
    import numpy as np

    def read(path):
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        return np.asarray(batch[b"data"]), list(batch[b"labels"])

    parts = [read(subset / f"data_batch_{i}") for i in range(1, 6)]
    data = np.concatenate([d for d, _ in parts])
    labels = sum((l for _, l in parts), [])
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        pick = np.arange(i * 10_000, (i + 1) * 10_000) % len(data)
        with open(folder / f"data_batch_{i + 1}", "wb") as f:
            pickle.dump({b"data": data[pick], b"labels": [labels[j] for j in pick]}, f)
    test, test_labels = read(subset / "test_batch")
    pick = np.arange(10_000) % len(test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": test[pick], b"labels": [test_labels[j] for j in pick]}, f)
    (folder / "batches.meta").write_bytes((subset / "batches.meta").read_bytes())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="0,1,2", help="pretext_transfer seeds (comma separated)")
    parser.add_argument("--aug-seeds", default="0", help="cifar_aug seeds (comma separated)")
    parser.add_argument("--variant", action="append", default=[],
                        help="extra pretext_transfer settings to compare, e.g. transfer_layers=conv_fc"
                             " (several -p separated by spaces)")
    parser.add_argument("--skip-aug", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    data = ["--data", str(args.data)]
    work = Path(tempfile.mkdtemp(prefix="bench_cifar_"))
    print(f"# bench_cifar on {args.data}  (store and logs under {work}; CPU: {os.cpu_count()} cores)\n")

    if not args.skip_aug:
        print("## cifar_aug (defaults)\n\n| seed | baseline test acc | augmented test acc | gain (points)"
              " | s/epoch baseline | s/epoch augmented | wall s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|")
        for seed in args.aug_seeds.split(","):
            store = work / f"aug-{seed}"
            store.mkdir()
            summary, wall, rss = dlbench(["cifar_aug", "--seed", seed, *data], store)
            m, epoch = summary["metrics"], child_epoch_seconds(store, summary["run_id"])
            print(f"| {seed} | {m['baseline_test_accuracy']:.3f} | {m['augmented_test_accuracy']:.3f}"
                  f" | {100 * m['test_accuracy_gain']:+.1f} | {epoch['baseline']:.2f} | {epoch['augmented']:.2f}"
                  f" | {wall:.0f} | {rss / 2**20:.0f} |", flush=True)
        print(f"\ncommand: dlbench run cifar_aug --seed SEED --data {args.data}\n")

    print("## pretext_transfer (mean over seeds)\n\n| settings | seeds | baseline test acc | transfer test acc"
          " | gain (points) | per-seed gains | pretext acc | s/epoch pretext / baseline / transfer"
          " | wall s (max) | peak RSS MiB (max) |\n|---|---|---|---|---|---|---|---|---|---|")
    for variant in ["", *args.variant]:
        extra = [item for pair in variant.split() for item in ("-p", pair)]
        rows = []
        for seed in args.seeds.split(","):
            store = work / f"pt-{len(rows)}-{seed}-{abs(hash(variant))}"
            store.mkdir()
            summary, wall, rss = dlbench(["pretext_transfer", "--seed", seed, *extra, *data], store)
            rows.append((summary["metrics"], child_epoch_seconds(store, summary["run_id"]), wall, rss))
        mean = lambda key: statistics.mean(m[key] for m, *_ in rows)  # noqa: E731
        epochs = " / ".join(f"{statistics.mean(e[k] for _, e, *_ in rows):.2f}" for k in ("pretext", "baseline", "transfer"))
        gains = ", ".join(f"{100 * m['transfer_gain']:+.1f}" for m, *_ in rows)
        print(f"| {variant or 'defaults'} | {args.seeds} | {mean('baseline_test_accuracy'):.3f}"
              f" | {mean('transfer_test_accuracy'):.3f} | {100 * mean('transfer_gain'):+.1f} | {gains}"
              f" | {mean('pretext_accuracy'):.3f} | {epochs} | {max(r[2] for r in rows):.0f}"
              f" | {max(r[3] for r in rows) / 2**20:.0f} |", flush=True)
    print(f"\ncommand: dlbench run pretext_transfer --seed SEED [-p KEY=VALUE ...] --data {args.data}\n")

    if not args.skip_memory:
        full = tile_to_full_cifar(args.data, work / "cifar-full-size")
        store = work / "aug-full-size"
        store.mkdir()
        summary, wall, rss = dlbench(["cifar_aug", "-p", "epochs=1", "--data", str(full)], store)
        epoch = child_epoch_seconds(store, summary["run_id"])
        print("## cifar_aug on a CIFAR-10-sized set (subset tiled to 50,000 + 10,000 images), 1 epoch\n")
        print(f"peak RSS {rss / 2**20:.0f} MiB ({rss / GIB:.2f} GiB; limit 2 GiB: "
              f"{'fits' if rss < 2 * GIB else 'DOES NOT FIT'}); s/epoch baseline {epoch['baseline']:.1f},"
              f" augmented {epoch['augmented']:.1f}; wall {wall:.0f} s")
        print(f"command: dlbench run cifar_aug -p epochs=1 --data {full}")


if __name__ == "__main__":
    main()
