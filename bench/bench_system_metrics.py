"""What MLflow's system-metrics monitor costs a training: the same Keras fit, side by side in
one process, with the monitor sampling into a real run and without it.

The model and data have the shape of ``denoise_dense`` (513 STFT bins in, Dense(256, ELU),
Dense(513, ReLU) out, batch 32), on random frames, so no dataset is needed. Blocks of epochs
alternate monitor on / off (ABAB...), so a neighbour's load falls on both alike; the figure
is the median of the per-pair ratios. Run at MLflow's default sampling interval (10 s) and at
1 s, ten times as often, to see the cost grow if there is one.

    python bench/bench_system_metrics.py [--pairs 6] [--epochs 5] [--frames 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="on/off block pairs per interval")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per block")
    parser.add_argument("--frames", type=int, default=20000, help="training frames")
    parser.add_argument("--intervals", default="10,1", help="sampling intervals, seconds")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras
    import numpy as np
    from dlbench import system_metrics
    from dlbench.store import Store, experiment_id, open_store

    rng = np.random.default_rng(0)
    x = rng.random((args.frames, 513), dtype=np.float32)
    y = rng.random((args.frames, 513), dtype=np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((513,)), keras.layers.Dense(256, activation="elu"),
                              keras.layers.Dense(513, activation="relu")])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # warm-up: graphs traced

    root = Path(tempfile.mkdtemp(prefix="bench-sysmetrics-"))
    store = Store(f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")
    client = open_store(store)
    run_id = client.create_run(experiment_id(client, "bench", store)).info.run_id

    def block(monitored: bool) -> float:
        monitor = system_metrics.start(client, run_id) if monitored else None
        started = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0)
        seconds = time.perf_counter() - started
        system_metrics.stop(monitor)
        return seconds

    print(f"{args.epochs} epochs of {args.frames} frames per block, {args.pairs} pairs per interval")
    print("interval  monitor on s  monitor off s  median ratio  (per pair)")
    for interval in (float(i) for i in args.intervals.split(",")):
        os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = str(interval)
        on, off = [], []
        for pair in range(args.pairs):
            first = pair % 2 == 0  # on-off, then off-on: neither goes first every time
            results = {first: block(first), not first: block(not first)}
            on.append(results[True])
            off.append(results[False])
        ratios = [a / b for a, b in zip(on, off)]
        print(f"{interval:>6g} s  {statistics.median(on):12.2f}  {statistics.median(off):13.2f}"
              f"  {statistics.median(ratios):12.4f}  ({', '.join(f'{r:.3f}' for r in ratios)})")
    series = [k for k in client.get_run(run_id).data.metrics if system_metrics.is_system_metric(k)]
    print(f"system metrics logged into the run: {len(series)} series")


if __name__ == "__main__":
    main()
