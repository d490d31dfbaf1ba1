"""Speech denoising on STFT magnitudes: the course seed's dense and conv1d models.

Both read like the Keras example they came from:

1. data: noisy and clean STFT magnitudes (n_fft 1024, hop 512, Hann; 513 bins per frame);
   the network's input is the noisy one brought to the training audio's level
   (``normalization``), log1p-compressed and scaled by the training input's peak, each frame
   stacked with ``context`` neighbours on either side (``features.py``);
2. model: ``denoise_dense`` or ``denoise_conv1d`` (``models.py``);
3. train: the ReLU output is a gain per bin (``output=mask``, the default; ``max_gain`` caps
   it) whose product with the noisy magnitude is fitted to the clean magnitude by MSE on
   linear magnitudes, or (``output=magnitude``, the seed) the compressed clean magnitude
   itself; ``target=phase_sensitive`` fits the part of the clean magnitude in phase with the
   noisy STFT instead; Adam at a constant rate or warmed up and decayed over a budget of
   training frames (``schedule``, ``train_frames``; ``training.py``);
4. evaluate: the denoised audio against the clean reference, beside the noisy input and the
   oracle (``evaluation.py``, through the same :class:`Denoiser` as ``dlbench denoise``);
5. keep: every clip's audio, spectrograms, the loss curve, and the denoiser (network and
   spectral settings) as the run's MLflow pyfunc model ``model`` (``served.py``).

Why a mask: SNR sums squared errors over bins, so it is decided by the loud ones, and a loss
on compressed magnitudes weighs a quiet bin as much as a loud one.
"""

from __future__ import annotations

from dlbench import Experiment, Metric, Param
from dlbench_plugins.speech.evaluation import evaluate, summarize
from dlbench_plugins.speech.features import LOSS_WEIGHTINGS, TARGETS, load_features
from dlbench_plugins.speech.inference import MODEL_ARTIFACT, Denoiser
from dlbench_plugins.speech.models import OUTPUT_INITS, build_conv1d, build_dense
from dlbench_plugins.speech.plots import plot_loss, plot_spectrograms
from dlbench_plugins.speech.served import log_denoiser
from dlbench_plugins.speech.spectral import COMPRESSIONS, NORMALIZATIONS, OUTPUTS
from dlbench_plugins.speech.training import SCHEDULES, train


def run_experiment(ctx, build):
    data, stfts, settings, fit, validation = load_features(ctx)
    ctx.log(
        f"{len(fit)} training frames ({ctx.params['remix']} noise remixes),"
        f" {len(validation)} validation frames, input {fit.features.shape[1:]},"
        f" {settings.output} output, {data.layout} data"
    )
    ctx.log_dict(data.describe(), "data.json")
    ctx.log_dataset("speech", digest=data.evaluation_digest(), source=data.source,
                    context="evaluation", **data.input_schema(),
                    profile={"clips": len(data.evaluation),
                             "seconds": round(data.seconds("evaluation"), 2)})
    ctx.log_metrics({"fit_frames": len(fit), "validation_frames": len(validation)})

    network, history = train(ctx, build, fit, validation)
    denoiser = Denoiser(network, settings)

    rows, examples = evaluate(ctx, denoiser, data, stfts)
    ctx.log_table(rows, "per_file.csv")
    metrics = summarize(rows)
    ctx.log_metrics(metrics)
    ctx.log(
        "SNR {snr_db:.2f} dB (input {snr_in_db:.2f}, ceiling {oracle_snr_db:.2f})".format(**metrics)
    )
    if any(r["output_all_zero"] for r in rows):
        ctx.set_tags({"dlbench.dead_output": "evaluation output is all zeros"})

    name, noisy, clean = examples[0]
    figure = plot_spectrograms(name, noisy, denoiser.estimate(noisy), clean, settings)
    ctx.log_figure(figure, "spectrograms.png")
    ctx.log_figure(plot_loss(history, settings.output), "loss.png")

    log_denoiser(ctx, denoiser, data.evaluation[0].noisy, name=MODEL_ARTIFACT)
    ctx.set_tags({"dlbench.denoiser": "true"})


def run_dense(ctx):
    run_experiment(ctx, build_dense)


def run_conv1d(ctx):
    run_experiment(ctx, build_conv1d)


def common_params(*, learning_rate, epochs, batch_size, patience, target, max_gain, compression,
                  context, frame_shifts, remix, remix_gain, dropout, ema_momentum,
                  normalization="none", schedule="constant", warmup_epochs=0.0,
                  loss_weighting="energy",
                  train_frames=0, jit_compile=False, output_init="he_normal"):
    return (
        Param("learning_rate", float, learning_rate, "Adam step size", low=0.0),
        Param("epochs", int, epochs, "most epochs (early stopping usually ends sooner)",
              low=1, high=100_000),
        Param("batch_size", int, batch_size, "frames per gradient step", low=1, high=65_536),
        Param("validation_split", float, 0.1,
              "last fraction of training frames held for early stopping", low=0.01, high=0.5),
        Param("patience", int, patience,
              "epochs without val_loss improvement before stopping (best weights restored)", low=1,
              high=100_000),
        Param("output", str, "mask",
              "what the last layer predicts: a gain per bin applied to the noisy magnitude, trained"
              " on linear magnitudes (mask), or the compressed clean magnitude (magnitude: the seed)",
              choices=OUTPUTS),
        Param("target", str, target,
              "the clean magnitude the output is fitted to: as is (magnitude), or its part in"
              " phase with the noisy STFT (phase_sensitive), the part a noisy-phase"
              " reconstruction can recover", choices=TARGETS),
        Param("loss_weighting", str, loss_weighting,
              "how the mask's loss weighs the training clips: by their energy, loud clips more"
              " (energy), or each alike, as the mean of per-clip SNRs does (clip)",
              choices=LOSS_WEIGHTINGS),
        Param("max_gain", float, max_gain,
              "ceiling of the mask's ReLU: no bin is amplified beyond it (0: none; mask output"
              " only)", low=0.0),
        Param("compression", str, compression,
              "magnitude compression of the input (and of the target with output=magnitude)",
              choices=COMPRESSIONS),
        Param("scaling", str, "peak",
              "divide the compressed input (and a magnitude target) by the training input's peak,"
              " or leave it as is (none)", choices=("peak", "none")),
        Param("normalization", str, normalization,
              "divide each noisy magnitude by its level before compression: none (as recorded:"
              " the input moves with the recording's level), recording (its RMS magnitude: the"
              " same input at any level) or frame (each frame's own)", choices=NORMALIZATIONS),
        Param("context", int, context,
              "neighbouring STFT frames on each side fed with each frame", low=0, high=16),
        Param("frame_shifts", int, frame_shifts,
              "training frames taken at hop/N: N times the examples (and their memory), each a"
              " real STFT window shifted in time; evaluation keeps the hop. Use 1 on large"
              " datasets", low=1, high=16),
        Param("remix", int, remix,
              "extra noisy copies of the training audio: its clean speech plus its own noise"
              " circularly shifted by a random (seeded) offset", low=0, high=32),
        Param("remix_gain", float, remix_gain,
              "each remix scales its noise by a random gain in 1 +/- this", low=0.0, high=0.9),
        Param("output_init", str, output_init,
              "how the output Dense starts: he_normal (the seed's), or half_gain (mask output"
              " only: zero weights and a bias of half the gain ceiling, so every bin starts at"
              " gain 0.5, inside the ReLU's range where the gradient flows)",
              choices=OUTPUT_INITS),
        Param("dropout", float, dropout,
              "dropout rate before the output Dense (0: no Dropout layer)", low=0.0, high=0.9),
        Param("ema_momentum", float, ema_momentum,
              "keep an exponential moving average of the weights with this momentum per step;"
              " validation, early stopping and the saved model use the average (0: off)",
              low=0.0, high=0.9999),
        Param("schedule", str, schedule,
              "step size over training: constant, or cosine (linear warm-up over warmup_epochs,"
              " then a cosine decay to 0 at the last epoch)", choices=SCHEDULES),
        Param("train_frames", int, train_frames,
              "training length in frames passed through the network (epochs x training frames),"
              " so it costs the same on any dataset: whole epochs up to `epochs` (0: `epochs`"
              " alone decides)", low=0, high=10**9),
        Param("warmup_epochs", float, warmup_epochs,
              "epochs of linear warm-up from 0 to learning_rate (schedule=cosine)", low=0.0,
              high=1000.0),
        Param("jit_compile", bool, jit_compile,
              "compile the training step with XLA (measured here: dense -10 % CPU time per"
              " epoch, conv1d no gain); recorded as tag dlbench.speech.jit_compile too"),
        Param("dead_output_retries", int, 2,
              "fresh restarts (each at 1/4 the learning rate) if the output dies", low=0, high=5),
        Param("checkpoint_every", int, 10,
              "save the model into the run every N epochs, for --resume (0: never)", low=0,
              high=100_000),
    )


LOGS = (
    Metric("snr_db", "max", "SNR of the denoised evaluation audio against the clean reference"),
    Metric("snr_in_db", "max", "SNR of the noisy input: where the denoiser starts"),
    Metric("snr_gain_db", "max", "snr_db - snr_in_db"),
    Metric("si_sdr_db", "max", "scale-invariant SDR of the denoised audio"),
    Metric("pesq", "max", "wide-band PESQ (MOS-LQO, about 1 to 4.6)"),
    Metric("stoi", "max", "short-time objective intelligibility (0 to 1)"),
    Metric("oracle_snr_db", "max", "SNR of the clean magnitude on the noisy phase: the ceiling"),
    Metric("loss", "min", "training MSE per epoch"),
    Metric("val_loss", "min", "validation MSE per epoch (early stopping watches it)"),
    Metric("train_seconds", "min", "wall-clock seconds spent in training"),
)
QUICK = {"epochs": 1, "remix": 0, "frame_shifts": 1}


EXPERIMENTS = [
    Experiment(
        name="denoise_dense",
        summary="Speech denoising: STFT magnitude frame -> Dense(256, ELU) -> Dense(513, ReLU)",
        run=run_dense,
        params=common_params(
            learning_rate=1e-3, epochs=200, batch_size=32, patience=15,
            target="magnitude", max_gain=0.0, compression="log1p", context=0,
            frame_shifts=4, remix=0, remix_gain=0.3, dropout=0.0, ema_momentum=0.0,
            normalization="recording", jit_compile=True,
        ),
        datasets=("speech",),
        logs=LOGS,
        quick=QUICK,
    ),
    Experiment(
        name="denoise_conv1d",
        summary="Speech denoising: Conv1D over frequency, context frames as channels -> Dense(513, ReLU)",
        run=run_conv1d,
        params=common_params(
            # Each departure from the seed's recipe, and what it measured: docs/RESULTS.md.
            learning_rate=1e-3, epochs=200, batch_size=128, patience=200,
            target="phase_sensitive", max_gain=1.0, compression="log1p", context=0,
            frame_shifts=1, remix=0, remix_gain=0.3, dropout=0.3, ema_momentum=0.0,
            normalization="recording", schedule="cosine", warmup_epochs=1.0,
            train_frames=60_000, output_init="half_gain", loss_weighting="clip",
        )
        + (
            Param("kernel_size", int, 5, "Conv1D kernel size along frequency", low=1, high=63),
            Param("pool_size", int, 4,
                  "MaxPool size along frequency after each Conv1D (the seed: 2); the"
                  " Flatten -> Dense(513) holds 513 x 256 x bins/pool^2 weights",
                  low=1, high=16),
        ),
        datasets=("speech",),
        logs=LOGS,
        quick=QUICK,
    ),
]
