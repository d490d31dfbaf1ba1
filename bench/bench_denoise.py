"""Benchmark the denoisers across datasets: does a default hold up on recordings it never heard?

    python bench/bench_denoise.py                         # both denoisers, defaults vs previous, seeds 0-2
    python bench/bench_denoise.py --recipes default,previous,seed --seeds 0,1,2,3,4
    python bench/bench_denoise.py --only denoise_conv1d --train course --recipes default,previous
    python bench/bench_denoise.py --first-run             # `dlbench run denoise_conv1d`, fresh data root
    python bench/bench_denoise.py --overhead              # dlbench vs the same fit in bare Keras

The cross-dataset protocol. Each recipe of each denoiser is trained with the real CLI
(``dlbench run NAME --json --seed S``) on two datasets: the course pair (``--data course``,
held-out protocol) and the synthesized default (no ``--data``). Each trained model is scored on
both datasets' evaluation clips, so one seed gives four evaluations:

- ``course``: trained and scored on the course pair (its last 15 %, held out);
- ``synth``: trained on the synthesized default, scored on its unseen voices;
- ``course>synth``: trained on the course pair, scored on the synthesized evaluation clips;
- ``synth>course``: trained on the synthesized default, scored on the course hold-out.

The synthesized set is made per seed (as ``dlbench run --seed S`` makes it), so its clips, and
their input SNR, differ from seed to seed: compare recipes at the same seed, or by their gain
over the noisy input (printed per run in brackets), not one seed's score with another's.
In-domain scores are the run's own ``snr_db``; cross-domain ones come from the run's logged
``model/`` (fetched as ``dlbench denoise --run`` fetches it) applied here to the other set's clips.
A recipe is judged by the mean over the four, per seed and over seeds, beside the noisy input and
the oracle ceiling (the clean magnitude on the noisy phase). Training seconds are the run's
``train_seconds``; CPU seconds are the user + system time of the whole ``dlbench run`` process
tree (synthesis included), which a busy machine inflates less than wall time.

It also prints the achieved training GFLOP/s of each run (layer shapes: forward, backward and
validation work, see :func:`training_flops`) beside this machine's float32 peak, measured by a
large TensorFlow matmul in the same process. Timings on a shared CPU are noisy: compare the
recipes of one invocation with each other (they ran side by side), not with figures of another day.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
COURSE = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data")) / "course"
EXPERIMENTS = ("denoise_dense", "denoise_conv1d")
DATASETS = ("course", "synth")
EVALUATIONS = ("course", "synth", "course>synth", "synth>course")

PREVIOUS = {  # the defaults before the cross-dataset round, as -p values
    "denoise_dense": ["normalization=none", "jit_compile=false"],
    "denoise_conv1d": ["normalization=none", "schedule=constant", "learning_rate=3e-4",
                       "patience=8", "ema_momentum=0.995", "train_frames=0",
                       "output_init=he_normal", "loss_weighting=energy"],
}
SEED = {  # the course seed's full settings (README, experiments table)
    "denoise_dense": ["output=magnitude", "compression=none", "scaling=none", "frame_shifts=1",
                      "normalization=none", "jit_compile=false"],
    "denoise_conv1d": ["output=magnitude", "target=magnitude", "compression=none", "scaling=none",
                       "kernel_size=3", "pool_size=2", "dropout=0", "ema_momentum=0",
                       "learning_rate=1e-3", "normalization=none", "schedule=constant",
                       "patience=8", "train_frames=0", "output_init=he_normal"],
}
RECIPES = {"default": {}, "previous": PREVIOUS, "seed": SEED}


# -- running dlbench -----------------------------------------------------------------------


def run_dlbench(name: str, data: str | None, store: str, extra: list[str],
                env: dict | None = None) -> tuple[dict, float]:
    """``dlbench run NAME --json`` in a subprocess: (its summary, wall seconds)."""
    summary, wall, _ = run_timed(name, data, store, extra, env)
    return summary, wall


def run_timed(name, data, store, extra, env=None) -> tuple[dict, float, float]:
    """(summary, wall seconds, CPU seconds of the process tree) of one ``dlbench run``."""
    args = [sys.executable, "-m", "dlbench", "run", name, "--json", "--tracking-uri", store, *extra]
    if data:
        args += ["--data", data]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        sys.exit(f"{name} {' '.join(extra)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout), wall, cpu


def data_arg(dataset: str) -> str | None:
    return str(COURSE) if dataset == "course" else None


# -- scoring a logged model on another dataset ---------------------------------------------

_speech: dict = {}


def speech(dataset: str, seed: int):
    """The evaluation clips of ``dataset`` (the synthesized set is made per seed, as a run does)."""
    from dlbench_plugins.speech.dataset import load

    key = (dataset, seed if dataset == "synth" else 0)
    if key not in _speech:
        _speech[key] = load(COURSE if dataset == "course" else None, seed=seed)
    return _speech[key]


def cross_scores(store: str, run_id: str, dataset: str, seed: int) -> dict:
    """SNR of the run's logged denoiser on ``dataset``'s evaluation clips (mean over clips),
    beside the noisy input's and the oracle's, as ``evaluation.summarize`` averages them."""
    import numpy as np

    from dlbench_plugins.speech import spectral
    from dlbench_plugins.speech.command import fetch_denoiser
    from dlbench_plugins.speech.metrics import snr_db

    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        denoiser = fetch_denoiser(run_id, store, Path(tmp))
    rows = []
    for clip in speech(dataset, seed).evaluation:
        spectrum = spectral.stft(clip.noisy, denoiser.settings)
        oracle = spectral.istft(np.abs(spectral.stft(clip.clean, denoiser.settings)),
                                np.angle(spectrum), len(clip.noisy), denoiser.settings)
        rows.append((snr_db(clip.clean, clip.noisy), snr_db(clip.clean, denoiser.denoise(clip.noisy)),
                     snr_db(clip.clean, oracle)))
    snr_in, snr, oracle = (float(np.mean(column)) for column in zip(*rows))
    return {"snr_in_db": snr_in, "snr_db": snr, "oracle_snr_db": oracle}


# -- counting the work ---------------------------------------------------------------------


def training_flops(name: str, params: dict) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per frame of NAME's network, from its layer shapes.

    A Dense or Conv1D of M multiply-adds costs 2M FLOPs forward, as much again for the weight
    gradient and again for the input gradient (all but the first layer). Pooling, activations,
    the mask's product and the optimizer step are left out: they are a few per cent.
    """
    import keras

    from dlbench_plugins.speech import models

    build = models.build_dense if name == "denoise_dense" else models.build_conv1d
    frames = 2 * int(params.get("context", 0)) + 1
    network = build((513, frames), params)
    forward = backward = 0.0
    first = True
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            macs = layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv1D):
            length = layer.output.shape[1]
            macs = length * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        else:
            continue
        forward += 2 * macs
        backward += 2 * macs * (1 if first else 2)
        first = False
    return forward, forward + backward


def peak_gflops(size: int = 2048, repeats: int = 10) -> tuple[float, float]:
    """Measured float32 matmul speed through TensorFlow (its threads, its oneDNN kernels):
    (GFLOP per wall second, best of ``repeats``; GFLOP per CPU second, over all of them).
    On a shared machine the second is the steadier figure."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.linalg.matmul(a, b).numpy()  # warm-up
    best = float("inf")
    cpu = time.process_time()
    for _ in range(repeats):
        started = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return 2 * size**3 / best / 1e9, 2 * size**3 * repeats / cpu / 1e9


# -- the protocol --------------------------------------------------------------------------


def train_and_score(name, recipe, dataset, seed, store, extra) -> dict:
    """One training run on ``dataset`` and its scores on both datasets' evaluation clips."""
    args = ["--seed", str(seed)] + [a for kv in RECIPES[recipe].get(name, []) for a in ("-p", kv)]
    summary, wall, cpu = run_timed(name, data_arg(dataset), store, args + extra)
    metrics = summary["metrics"]
    other = next(d for d in DATASETS if d != dataset)
    params = {k: _typed(v) for k, v in summary["params"].items()}
    forward, step = training_flops(name, params)
    work = metrics["epochs_trained"] * (metrics["fit_frames"] * step
                                        + metrics["validation_frames"] * forward)
    return {
        "name": name, "recipe": recipe, "dataset": dataset, "seed": seed, "run_id": summary["run_id"],
        dataset: {k: metrics[k] for k in ("snr_in_db", "snr_db", "oracle_snr_db")},
        f"{dataset}>{other}": cross_scores(store, summary["run_id"], other, seed),
        "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs_trained"],
        "wall_seconds": wall, "cpu_seconds": cpu, "gflops": work / metrics["train_seconds"] / 1e9,
        "gflop_per_cpu_second": work / cpu / 1e9,  # CPU of the whole run: a lower bound
        "gflop_per_frame": step / 1e9,
    }


def report(results: list[dict], seeds: list[int]) -> None:
    """Per denoiser and recipe: each evaluation's mean over seeds, the mean of the four,
    the per-seed means, training and CPU time; then the input and ceiling per evaluation."""
    print("\ncross-dataset SNR (dB), mean over seeds " + ",".join(map(str, seeds)))
    header = (f"{'denoiser':15} {'recipe':9} " + " ".join(f"{e:>12}" for e in EVALUATIONS)
              + f" {'mean':>6}  {'per seed':24} {'train s (course/synth)':>22} {'cpu s':>7} {'GFLOP/s':>8}")
    print(header)
    for name in EXPERIMENTS:
        for recipe in RECIPES:
            mine = [r for r in results if r["name"] == name and r["recipe"] == recipe]
            if not mine:
                continue
            cells, per_seed = [], {}
            for evaluation in EVALUATIONS:
                values = [r[evaluation]["snr_db"] for r in mine if evaluation in r]
                cells.append(statistics.mean(values) if values else float("nan"))
                for r in mine:
                    if evaluation in r:
                        per_seed.setdefault(r["seed"], []).append(r[evaluation]["snr_db"])
            complete = [c for c in cells if c == c]
            mean = statistics.mean(complete) if complete else float("nan")
            seeds_text = " ".join(f"{statistics.mean(v):.2f}" for _, v in sorted(per_seed.items()))
            train = "/".join(f"{statistics.mean(r['train_seconds'] for r in mine if r['dataset'] == d):.0f}"
                             if any(r["dataset"] == d for r in mine) else "-" for d in DATASETS)
            cpu = statistics.mean(r["cpu_seconds"] for r in mine)
            gflops = statistics.mean(r["gflops"] for r in mine)
            print(f"{name:15} {recipe:9} " + " ".join(f"{c:12.2f}" for c in cells)
                  + f" {mean:6.2f}  {seeds_text:24} {train:>22} {cpu:7.0f} {gflops:8.1f}")
    for key, label in (("snr_in_db", "noisy input"), ("oracle_snr_db", "oracle ceiling")):
        cells = []
        for evaluation in EVALUATIONS:
            values = [r[evaluation][key] for r in results if evaluation in r]
            cells.append(statistics.mean(values) if values else float("nan"))
        print(f"{label:25} " + " ".join(f"{c:12.2f}" for c in cells))
    print("\nper run:")
    for r in results:
        scores = " ".join(f"{e}={r[e]['snr_db']:.2f} ({r[e]['snr_db'] - r[e]['snr_in_db']:+.2f})"
                          for e in EVALUATIONS if e in r)
        print(f"  {r['name']:15} {r['recipe']:9} {r['dataset']:6} seed {r['seed']}: {scores}"
              f"  train {r['train_seconds']:.1f} s, {int(r['epochs'])} epochs,"
              f" {r['gflop_per_frame']:.3f} GFLOP/frame, {r['gflops']:.1f} GFLOP/s,"
              f" cpu {r['cpu_seconds']:.0f} s, wall {r['wall_seconds']:.0f} s  ({r['run_id']})")


def throughput(results: list[dict], peak: float, per_cpu: float) -> None:
    """Achieved training GFLOP/s of each denoiser and recipe beside the matmul peak."""
    print(f"\nfloat32 matmul peak here: {peak:.0f} GFLOP/s, {per_cpu:.0f} per CPU second")
    for name, recipe in dict.fromkeys((r["name"], r["recipe"]) for r in results):
        mine = [r for r in results if r["name"] == name and r["recipe"] == recipe]
        wall = statistics.mean(r["gflops"] for r in mine)
        cpu = statistics.mean(r["gflop_per_cpu_second"] for r in mine)
        print(f"  {name} {recipe}: training {wall:.1f} GFLOP/s ({wall / peak:.0%} of the peak);"
              f" {cpu:.0f} per CPU second of the whole run, start-up and scoring included"
              f" ({cpu / per_cpu:.0%})")


def first_run(store: str) -> None:
    """A newcomer's first command, on a fresh data root: synthesis, training, evaluation."""
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as root:
        summary, wall, cpu = run_timed("denoise_conv1d", None, store, [], env={"DLBENCH_DATA": root})
    m = summary["metrics"]
    print(f"first run: dlbench run denoise_conv1d (fresh data root): {wall:.1f} s wall,"
          f" {cpu:.1f} s CPU (user+sys, process tree), training {m['train_seconds']:.1f} s for"
          f" {int(m['epochs_trained'])} epochs; SNR {m['snr_db']:.2f} dB on the unseen voices"
          f" (input {m['snr_in_db']:.2f}, ceiling {m['oracle_snr_db']:.2f})")


def bare_keras_seconds(name: str, summary: dict, data: str | None, quick: bool) -> float:
    """Fit time of the same model on the same features in bare Keras, same epochs and batch.

    No MLflow and no dead-output check; early stopping is kept since it is part of the recipe.
    """
    import keras

    from dlbench_plugins.speech import models, training
    from dlbench_plugins.speech.dataset import load as load_speech
    from dlbench_plugins.speech.features import load_features

    params = {k: _typed(v) for k, v in summary["params"].items()}
    speech_data = load_speech(Path(data) if data else None, quick=quick, seed=params["seed"])

    class Ctx:  # only what load_features reads
        def __init__(self):
            self.params = params
            self.seed = params["seed"]

        def data(self, _name):
            return speech_data

    _, _, settings, fit, validation = load_features(Ctx())
    keras.utils.set_random_seed(params["seed"])
    build = models.build_dense if name == "denoise_dense" else models.build_conv1d
    model = build(fit.features.shape[1:], params)
    if settings.output == "mask":
        model = training.mask_training_model(model)
    training.compile_for_training(model, params, params["learning_rate"], len(fit))
    started = time.perf_counter()
    # Early stopping with restored weights is part of the recipe, not of dlbench; a patience
    # beyond the epoch count keeps it from ending the bare run at a different epoch.
    stopping = keras.callbacks.EarlyStopping(patience=10**6, restore_best_weights=True)
    model.fit(fit.inputs(settings.output), fit.target, epochs=int(summary["metrics"]["epochs_trained"]),
              batch_size=params["batch_size"], verbose=0, callbacks=[*training.weight_averaging(model), stopping],
              validation_data=(validation.inputs(settings.output), validation.target))
    return time.perf_counter() - started


def overhead(names, store, extra, quick) -> None:
    """dlbench's training overhead against the same fit in bare Keras, on the course data."""
    for name in names:
        summary, wall = run_dlbench(name, str(COURSE), store, extra)
        m = summary["metrics"]
        epochs = int(m["epochs_trained"])
        bare = bare_keras_seconds(name, summary, str(COURSE), quick)
        print(f"{name}: dlbench {m['train_seconds']:.1f} s for {epochs} epochs, bare Keras {bare:.1f} s;"
              f" dlbench training overhead {(m['train_seconds'] - bare) / bare:+.1%}"
              f" (whole run {wall:.1f} s wall)")


def _typed(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=EXPERIMENTS, action="append", help="run only this denoiser")
    parser.add_argument("--recipes", default="default,previous",
                        help=f"comma-separated, of {', '.join(RECIPES)} (default: default,previous)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--train", default=",".join(DATASETS),
                        help="datasets to train on: course,synth (each run is scored on both)")
    parser.add_argument("--first-run", action="store_true",
                        help="time `dlbench run denoise_conv1d` on a fresh data root, then stop")
    parser.add_argument("--overhead", action="store_true",
                        help="dlbench vs bare Keras training time on the course data, then stop")
    parser.add_argument("--quick", action="store_true", help="smoke-test this script (seconds)")
    parser.add_argument("-p", "--param", action="append", default=[], help="KEY=VALUE for every run")
    args = parser.parse_args()
    extra = [a for kv in args.param for a in ("-p", kv)] + (["--quick"] if args.quick else [])
    names = args.only or EXPERIMENTS
    recipes = args.recipes.split(",")
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(sorted(unknown))}; known: {', '.join(RECIPES)}")
    with tempfile.TemporaryDirectory(prefix="bench-denoise-") as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        if args.first_run:
            first_run(store)
            return
        if args.overhead:
            overhead(names, store, extra, args.quick)
            return
        peak, per_cpu = peak_gflops()
        print(f"float32 matmul peak here: {peak:.0f} GFLOP/s, {per_cpu:.0f} GFLOP per CPU second"
              " (TensorFlow, 2048^2)", flush=True)
        results = []
        seeds = [int(s) for s in args.seeds.split(",")]
        for seed in seeds:
            for dataset in args.train.split(","):
                for name in names:
                    for recipe in recipes:
                        result = train_and_score(name, recipe, dataset, seed, store, extra)
                        results.append(result)
                        print(json.dumps(result), flush=True)
        report(results, seeds)
        throughput(results, peak, per_cpu)


if __name__ == "__main__":
    main()
