"""Benchmark the denoising experiments: held-out scores, training time, and dlbench's overhead.

    python bench/bench_denoise.py                      # both models on ../shared/data/course
    python bench/bench_denoise.py --data synth         # the synthesized default (no --data)
    python bench/bench_denoise.py --only denoise_dense --no-bare

For each experiment it runs the real CLI with default params (``dlbench run NAME --json``)
into a throwaway SQLite store and prints the scores and the training time. Then, unless
``--no-bare``, it trains the *same* model on the *same* features in a bare Keras loop (no
MLflow, no dead-output check; early stopping kept) for the same number of epochs, and prints the
per-epoch training-time overhead of the dlbench run (target: <= 10 %). Timings on a shared
CPU are noisy; run it on an idle machine for figures you quote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data")) / "course"
EXPERIMENTS = ("denoise_dense", "denoise_conv1d")
SCORES = ("snr_in_db", "snr_db", "snr_gain_db", "si_sdr_db", "pesq", "stoi", "oracle_snr_db")


def run_dlbench(name: str, data: str | None, store: str, extra: list[str]) -> tuple[dict, float]:
    args = [sys.executable, "-m", "dlbench", "run", name, "--json", "--tracking-uri", store, *extra]
    if data:
        args += ["--data", data]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"{name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout), wall


def bare_keras_seconds(name: str, summary: dict, data: str | None, quick: bool) -> float:
    """Fit time of the same model on the same features in bare Keras, same epochs and batch.

    No MLflow and no dead-output check; early stopping is kept since it is part of the recipe.
    """
    import keras

    from dlbench_plugins.speech import models, training
    from dlbench_plugins.speech.dataset import load as load_speech
    from dlbench_plugins.speech.features import load_features

    params = {k: _typed(v) for k, v in summary["params"].items()}
    speech = load_speech(Path(data) if data else None, quick=quick, seed=params["seed"])

    class Ctx:  # only what load_features reads
        def __init__(self):
            self.params = params
            self.seed = params["seed"]

        def data(self, _name):
            return speech

    _, _, settings, fit, validation = load_features(Ctx())
    keras.utils.set_random_seed(params["seed"])
    build = models.build_dense if name == "denoise_dense" else models.build_conv1d
    model = build(fit.features.shape[1:], params)
    if settings.output == "mask":
        model = training.mask_training_model(model)
    training.compile_for_training(model, params, params["learning_rate"])
    started = time.perf_counter()
    # Early stopping with restored weights is part of the recipe, not of dlbench; a patience
    # beyond the epoch count keeps it from ending the bare run at a different epoch.
    stopping = keras.callbacks.EarlyStopping(patience=10**6, restore_best_weights=True)
    model.fit(fit.inputs(settings.output), fit.target, epochs=int(summary["metrics"]["epochs_trained"]),
              batch_size=params["batch_size"], verbose=0, callbacks=[*training.weight_averaging(model), stopping],
              validation_data=(validation.inputs(settings.output), validation.target))
    return time.perf_counter() - started


def _typed(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(COURSE), help="data folder, or 'synth' for no --data")
    parser.add_argument("--only", choices=EXPERIMENTS, action="append", help="run only this one")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-Keras comparison")
    parser.add_argument("--quick", action="store_true", help="smoke-test this script (seconds)")
    parser.add_argument("-p", "--param", action="append", default=[], help="KEY=VALUE for dlbench run")
    args = parser.parse_args()
    data = None if args.data == "synth" else args.data
    extra = [a for kv in args.param for a in ("-p", kv)] + (["--quick"] if args.quick else [])
    with tempfile.TemporaryDirectory(prefix="bench-denoise-") as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        for name in args.only or EXPERIMENTS:
            summary, wall = run_dlbench(name, data, store, extra)
            m = summary["metrics"]
            print(f"{name} on {data or 'synthesized default'}  (run {summary['run_id']})")
            print("  " + "  ".join(f"{k}={m[k]:.2f}" for k in SCORES if k in m))
            epochs = int(m["epochs_trained"])
            print(f"  training {m['train_seconds']:.1f} s for {epochs} epochs"
                  f" ({m['train_seconds'] / epochs:.2f} s/epoch); whole run {wall:.1f} s wall")
            if not args.no_bare:
                bare = bare_keras_seconds(name, summary, data, args.quick)
                overhead = (m["train_seconds"] - bare) / bare
                print(f"  bare Keras, same features/model/epochs: {bare:.1f} s"
                      f" ({bare / epochs:.2f} s/epoch); dlbench training overhead {overhead:+.1%}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
