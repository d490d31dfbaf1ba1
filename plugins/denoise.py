"""Speech denoising on STFT magnitudes: the course seed's dense and conv1d models.

Both read like the Keras example they came from:

1. data: noisy and clean STFT magnitudes (n_fft 1024, hop 512, Hann; 513 bins per frame);
   the network's input is the noisy one log1p-compressed and scaled by the training input's
   peak, each frame stacked with ``context`` neighbours on either side;
2. model: ``denoise_dense`` 513 -> Dense(256, ELU) -> Dense(513, ReLU), or ``denoise_conv1d``
   with the *frequency* axis as the 1-D sequence (context frames are its channels):
   Conv1D(128) -> MaxPool -> Conv1D(256) -> MaxPool -> Flatten -> Dense(513, ReLU);
3. train: the ReLU output is a gain per bin (``output=mask``, the default; ``max_gain`` caps
   it) whose product with the noisy magnitude is fitted to the clean magnitude by MSE on
   linear magnitudes, or (``output=magnitude``, the seed) the compressed clean magnitude
   itself. ``target=phase_sensitive`` fits the part of the clean magnitude in phase with the
   noisy STFT instead. Adam (``ema_momentum``: scored and kept as a moving average of its
   weights), early stopping that restores the best weights, and a check that the output has
   not died (all zeros: 0 dB);
4. evaluate: the estimated magnitude with the noisy phase, inverse STFT at the input's
   length, scored against the clean reference (SNR, SI-SDR, PESQ, STOI) beside the noisy
   input and the oracle (clean magnitude + noisy phase, the ceiling of any magnitude-only
   model);
5. keep: every clip's audio, spectrograms, the loss curve, and the model with the spectral
   settings ``dlbench denoise`` needs to reuse it.

Why a mask: SNR sums squared errors over bins, so it is decided by the loud ones. A loss on
compressed magnitudes weighs a quiet bin as much as a loud one; on the course hold-out the
seed's dense model scores ~10 dB that way and ~11 dB with the mask (bench/bench_denoise.py).
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass
from typing import Any

from dlbench import Experiment, Param, hookimpl
from dlbench.spectral import COMPRESSIONS, MODEL_ARTIFACT, OUTPUTS, SETTINGS_FILE

#: What the network's output is fitted to (see ``clean_target``).
TARGETS = ("magnitude", "phase_sensitive")

# -- data --------------------------------------------------------------------------------------


@dataclass
class Frames:
    """Training examples, one per STFT frame: the network's input ``features`` (compressed,
    scaled, with context), the ``noisy`` magnitude a mask multiplies, and the ``target`` the
    loss compares against (linear magnitudes divided by one level for a mask; the compressed
    clean magnitude for a magnitude network)."""

    features: Any
    noisy: Any
    target: Any

    def inputs(self, output: str):
        return (self.features, self.noisy) if output == "mask" else self.features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        return Frames(self.features[index], self.noisy[index], self.target[index])

    @staticmethod
    def concat(parts):
        import numpy as np

        return Frames(*(np.concatenate(column) for column in zip(*(astuple(f) for f in parts))))


def clip_frames(noisy, clean, settings, level: float) -> Frames:
    """The examples of one clip from its noisy and clean magnitudes ``(T, bins)``."""
    import numpy as np

    from dlbench import spectral

    if settings.output == "mask":
        target = clean / level
    else:
        target = spectral.model_target(clean, settings)
    return Frames(
        spectral.model_input(noisy, settings),
        (noisy / level).astype(np.float32),
        np.asarray(target, dtype=np.float32),
    )


def load_features(ctx):
    """Speech clips, their cached STFTs, the spectral settings, and the fit and validation frames.

    Validation is the last ``validation_split`` of the training frames, as Keras would take
    it, but split off here *before* augmentation so that early stopping only ever sees real
    recordings; the ``remix`` copies are made of the remaining frames' audio only.
    """
    import numpy as np

    from dlbench import spectral
    from dlbench.datasets.speech import spectrograms

    p = ctx.params
    data = ctx.data("speech")
    stfts = spectrograms(data, n_fft=spectral.N_FFT, hop=spectral.HOP_LENGTH)
    noisy_specs = [stfts[f"train/{i}/noisy"] for i in range(len(data.train))]
    clean_specs = [stfts[f"train/{i}/clean"] for i in range(len(data.train))]
    noisy = [np.abs(spec) for spec in noisy_specs]
    clean = [clean_target(c, n, p["target"]) for c, n in zip(clean_specs, noisy_specs)]
    settings = spectral.SpectralSettings(
        sample_rate=data.sample_rate,
        compression=p["compression"],
        context=p["context"],
        output=p["output"],
    )
    if p["scaling"] == "peak":
        settings = spectral.fit_scale(np.concatenate(noisy), settings)
    # One level for all linear magnitudes, so a mask's loss is O(1) whatever the recording level.
    level = float(np.std(np.abs(np.concatenate(clean_specs)))) or 1.0
    # Context is stacked clip by clip, so no example mixes the end of one clip with the
    # start of the next.
    frames = Frames.concat([clip_frames(n, c, settings, level) for n, c in zip(noisy, clean)])
    split = int(len(frames) * (1 - p["validation_split"]))

    counts = [len(m) for m in noisy]
    shifts = p["frame_shifts"]
    # At the declared hop the training frames are the cached ones; finer hops need new STFTs.
    if shifts == 1:
        fit = [frames[:split]]
    else:
        fit = [training_frames(data.train, counts, split, settings, level, p["target"], shifts)]
    rng = np.random.default_rng(ctx.seed)
    remix = (rng, p["remix_gain"])
    # Each remix is another noisy copy of the same audio, cut into frames the same way.
    fit += [training_frames(data.train, counts, split, settings, level, p["target"], shifts, remix)
            for _ in range(p["remix"])]
    return data, stfts, settings, Frames.concat(fit), frames[split:]


def training_frames(clips, frame_counts, split, settings, level, target, shifts=1, remix=None):
    """Examples from the training audio that lies before the validation frames.

    ``shifts`` > 1 takes the STFT at ``hop / shifts``: every extra frame is a real window of
    the same recordings, shifted in time, so the network sees ``shifts`` times as many
    (correlated) examples. Inference still uses the declared hop. ``remix`` is
    ``(rng, gain_jitter)`` to put each clip's speech under its own noise moved in time.
    """
    import dataclasses

    import numpy as np

    from dlbench import spectral

    shifted = dataclasses.replace(settings, hop_length=max(settings.hop_length // shifts, 1))
    parts, start = [], 0
    for clip, frames in zip(clips, frame_counts):
        count = min(frames, max(split - start, 0))  # this clip's frames before the split
        start += frames
        if not count:
            continue
        length = count * settings.hop_length
        clean = clip.clean[:length]
        noisy = clip.noisy[:length] if remix is None else remix_noise(clip, length, *remix)
        kept = count * settings.hop_length // shifted.hop_length  # frames centred before the cut
        noisy_spec = spectral.stft(noisy, shifted)[:kept]
        clean_spec = spectral.stft(clean, shifted)[:kept]
        parts.append(clip_frames(np.abs(noisy_spec), clean_target(clean_spec, noisy_spec, target),
                                 settings, level))
    return Frames.concat(parts)


def clean_target(clean_spec, noisy_spec, target: str):
    """What the network learns to output (times the mask), from the clean and noisy STFTs.

    ``magnitude``: the clean magnitude. ``phase_sensitive``: the clean magnitude times the
    cosine of its phase's difference from the noisy phase, floored at 0. The denoiser puts its
    estimate on the noisy phase, so the error it makes in a bin is
    ``|clean - estimate * e^(i noisy phase)|^2 = (|clean| cos d - estimate)^2 + |clean|^2 sin^2 d``:
    the phase-sensitive target is the estimate that minimises it, and an MSE against it is
    the squared error SNR counts, less a part no magnitude can change (Erdogan et al., 2015).
    """
    import numpy as np

    magnitude = np.abs(clean_spec)
    if target == "magnitude":
        return magnitude.astype(np.float32)
    cosine = np.cos(np.angle(clean_spec) - np.angle(noisy_spec))
    return np.maximum(magnitude * cosine, 0.0).astype(np.float32)


def remix_noise(clip, length, rng, gain_jitter):
    """The clip's first ``length`` samples of clean speech plus its own noise there, circularly
    shifted and rescaled.

    The training pairs are sample-aligned with additive noise, so ``noisy - clean`` is the
    noise itself. Sliding it to a random offset (and a gain within 1 +/- ``gain_jitter``)
    gives the same speech under new noise. Only audio before the validation frames is used,
    so early stopping never scores noise the model was trained on. (Measured on the course
    data: it does not raise SNR; kept as a param for other data.)
    """
    import numpy as np

    clean = clip.clean[:length]
    noise = clip.noisy[:length] - clean
    shift = int(rng.integers(1, len(noise))) if len(noise) > 1 else 0
    gain = rng.uniform(1 - gain_jitter, 1 + gain_jitter)
    return (clean + gain * np.roll(noise, shift)).astype(np.float32)


# -- models ------------------------------------------------------------------------------------


def dropout(params):
    """A Dropout layer before the output Dense when ``dropout`` is set (none at 0)."""
    from keras import layers

    rate = params.get("dropout", 0.0)
    return [layers.Dropout(rate)] if rate > 0 else []


def output_layers(bins, params):
    """Dense(bins) with its ReLU; in mask mode the ReLU stops at ``max_gain`` (0: no ceiling).

    A gain above 1 amplifies a noisy bin, which a clean signal under additive noise rarely
    needs; on the course hold-out the ceiling at 1 lifted conv1d by ~0.3 dB at batch 64 and
    was needed for the larger batches to help at all (README, "Experiments").
    """
    from keras import layers

    ceiling = params.get("max_gain", 0.0) if params.get("output") == "mask" else 0.0
    if not ceiling:
        return [layers.Dense(bins, activation="relu", kernel_initializer="he_normal")]
    return [
        layers.Dense(bins, kernel_initializer="he_normal"),
        layers.ReLU(max_value=ceiling, name="gain"),
    ]


def build_dense(input_shape, params):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dense(256, activation="elu", kernel_initializer="he_normal"),
            *dropout(params),
            *output_layers(input_shape[0], params),
        ],
        name="denoise_dense",
    )


def build_conv1d(input_shape, params):
    import keras
    from keras import layers

    size, pool = params["kernel_size"], params["pool_size"]
    return keras.Sequential(
        [
            keras.Input(input_shape),  # (513 frequency bins, 2*context+1 frames as channels)
            layers.Conv1D(128, size, padding="same", activation="elu", kernel_initializer="he_normal"),
            layers.MaxPooling1D(pool),
            layers.Conv1D(256, size, padding="same", activation="elu", kernel_initializer="he_normal"),
            layers.MaxPooling1D(pool),
            layers.Flatten(),
            *dropout(params),  # the Flatten -> Dense(513) step holds nearly all the weights
            *output_layers(input_shape[0], params),
        ],
        name="denoise_conv1d",
    )


# -- training ----------------------------------------------------------------------------------


def dead_output_check(probe):
    """A callback that stops training as soon as the ReLU output is zero for every probe frame.

    Once every output unit is zero for every input, no gradient flows and training can never
    recover: a conv1d trained carelessly here ended at exactly 0 dB this way. Stopping at
    once saves the remaining epochs; ``train`` then retries or fails loudly.
    """
    import keras
    import numpy as np

    class DeadOutputCheck(keras.callbacks.Callback):
        dead_at_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            # A direct call, not predict(): it costs one small forward pass per epoch.
            output = np.asarray(self.model(probe, training=False))
            if not np.any(output > 0):
                self.dead_at_epoch = epoch + 1
                self.model.stop_training = True

    return DeadOutputCheck()


def mask_training_model(network):
    """The network as trained in mask mode: (features, noisy magnitude) -> gain x noisy.

    The loss then compares linear magnitudes, so it weighs each bin by its energy, as SNR
    does. Only ``network`` (features -> gain) is kept; ``spectral.output_magnitude`` applies
    the gain at inference.
    """
    import keras
    from keras import layers

    features = keras.Input(network.input_shape[1:], name="features")
    noisy = keras.Input(network.output_shape[1:], name="noisy_magnitude")
    estimate = layers.Multiply(name="clean_magnitude")([network(features), noisy])
    return keras.Model([features, noisy], estimate, name=f"{network.name}_masked")


def inner_network(model):
    """The features -> output network inside a (possibly restored) mask training model."""
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else model


def compile_for_training(model, params, learning_rate):
    """Adam on the MSE; with ``ema_momentum`` > 0 Adam also keeps a moving average of the weights."""
    import keras

    momentum = params["ema_momentum"]
    averaging = {"use_ema": True, "ema_momentum": momentum} if momentum else {}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, **averaging), loss="mse")


def weight_averaging(model):
    """Callbacks that put the weights' moving average into the model for validation and at
    every epoch's end; none when the model's optimizer keeps no average.

    With ~2,000 training frames the weights jitter around their optimum from one minibatch
    to the next; their average along the way sits closer to it. So validation scores the
    average, early stopping keeps the best average, and that is the network saved: on the
    course hold-out, momentum 0.995 lifted conv1d from 12.48 to 12.68 dB (mean of seeds 0-4)
    and its worst seed from 12.25 to 12.54. Callbacks that read the weights (early stopping,
    the dead-output check) go after these. The optimizer, not the params, decides, so a model
    restored by ``--resume`` gets the callbacks its saved optimizer needs.
    """
    import keras

    averaging = getattr(model.optimizer, "use_ema", False)
    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if averaging else []


def train(ctx, build, fit: Frames, validation: Frames):
    """Fit with early stopping; on a dead output, retry from a fresh start at a quarter of the step.

    Returns the network (features -> gain or magnitude, as ``ctx.params["output"]`` says; the
    builders read the same param) and the Keras history.
    """
    import keras
    import numpy as np

    p = ctx.params
    output = p["output"]
    probe = fit[np.linspace(0, len(fit) - 1, num=min(64, len(fit))).astype(int)].inputs(output)
    learning_rate = p["learning_rate"]
    for attempt in range(1, p["dead_output_retries"] + 2):
        keras.utils.set_random_seed(ctx.seed + attempt - 1)
        with ctx.strategy_scope():  # all local GPUs with --strategy mirrored; else a no-op
            # `dlbench run --resume RUN_ID` continues from the run's last checkpoint.
            model = ctx.restore_model() if attempt == 1 else None
            initial_epoch = ctx.initial_epoch if model is not None else 0
            if model is None:
                model = build(fit.features.shape[1:], p)
                if output == "mask":
                    model = mask_training_model(model)
                compile_for_training(model, p, learning_rate)
        dead = dead_output_check(probe)
        # The checkpoint (for --resume) comes first: it must save the raw weights and the
        # average as the optimizer holds them, before the average is swapped in.
        callbacks = [ctx.checkpoint_callback(every=p["checkpoint_every"])] if p["checkpoint_every"] else []
        callbacks += [
            *weight_averaging(model),
            ctx.keras_callback(),
            keras.callbacks.EarlyStopping(patience=p["patience"], restore_best_weights=True),
            dead,
        ]
        started = time.perf_counter()
        history = model.fit(
            fit.inputs(output),
            fit.target,
            initial_epoch=initial_epoch,
            epochs=p["epochs"],
            batch_size=p["batch_size"],
            validation_data=(validation.inputs(output), validation.target),
            callbacks=callbacks,
            verbose=0,
        )
        seconds = time.perf_counter() - started
        if dead.dead_at_epoch is None:
            ctx.log_metrics({"train_seconds": seconds, "epochs_trained": initial_epoch + len(history.history["loss"])})
            ctx.set_tags({"dlbench.train_attempts": attempt})
            if attempt == 1:
                ctx.set_tags({"dlbench.dead_output": "no"})
            return inner_network(model), history.history
        message = (
            f"attempt {attempt}: output collapsed to all zeros at epoch {dead.dead_at_epoch}"
            f" (dead ReLU) with learning_rate={learning_rate:g}"
        )
        ctx.log(message)
        ctx.set_tags({"dlbench.dead_output": message})
        learning_rate /= 4
    raise RuntimeError(
        f"denoiser output is all zeros (dead ReLU) after {attempt} attempt(s); lower"
        " -p learning_rate, or use -p compression=log1p so inputs are scaled"
    )


# -- evaluation --------------------------------------------------------------------------------


def evaluate(ctx, model, data, stfts, settings):
    """Score every evaluation clip and log its audio; returns per-file rows."""
    import numpy as np

    from dlbench import audio_metrics as am
    from dlbench import spectral

    rows, examples = [], []
    rate = data.sample_rate
    for i, clip in enumerate(data.evaluation):
        noisy_spec = stfts[f"evaluation/{i}/noisy"]
        clean_spec = stfts[f"evaluation/{i}/clean"]
        phase = np.angle(noisy_spec)
        magnitude = spectral.denoise_magnitude(model, np.abs(noisy_spec), settings)
        denoised = spectral.istft(magnitude, phase, len(clip.noisy), settings)
        oracle = spectral.istft(np.abs(clean_spec), phase, len(clip.noisy), settings)
        rows.append(
            {
                "file": clip.name,
                "seconds": round(len(clip.noisy) / rate, 3),
                "snr_in_db": am.snr_db(clip.clean, clip.noisy),
                "snr_db": am.snr_db(clip.clean, denoised),
                "si_sdr_in_db": am.si_sdr_db(clip.clean, clip.noisy),
                "si_sdr_db": am.si_sdr_db(clip.clean, denoised),
                "pesq_in": am.pesq_wb(clip.clean, clip.noisy, rate),
                "pesq": am.pesq_wb(clip.clean, denoised, rate),
                "stoi_in": am.stoi(clip.clean, clip.noisy, rate),
                "stoi": am.stoi(clip.clean, denoised, rate),
                "oracle_snr_db": am.snr_db(clip.clean, oracle),
                "output_all_zero": bool(not np.any(magnitude > 0)),
            }
        )
        save_audio(ctx, clip.name, rate, noisy=clip.noisy, denoised=denoised, clean=clip.clean)
        examples.append((clip.name, np.abs(noisy_spec), magnitude, np.abs(clean_spec)))
    for i, clip in enumerate(data.listen):
        noisy_spec = stfts[f"listen/{i}/noisy"]
        magnitude = spectral.denoise_magnitude(model, np.abs(noisy_spec), settings)
        denoised = spectral.istft(magnitude, np.angle(noisy_spec), len(clip.noisy), settings)
        save_audio(ctx, clip.name, rate, noisy=clip.noisy, denoised=denoised, clean=clip.clean)
    return rows, examples


def save_audio(ctx, name, rate, **signals):
    for kind, signal in signals.items():
        if signal is not None:
            ctx.log_audio(signal, rate, f"audio/{name}/{kind}.wav")


def summarize(rows):
    """Means over evaluation files; PESQ ignores files where it found no speech."""
    import math

    import numpy as np

    keys = [k for k in rows[0] if k not in ("file", "seconds", "output_all_zero")]
    means = {}
    for key in keys:
        values = [r[key] for r in rows if not (isinstance(r[key], float) and math.isnan(r[key]))]
        means[key] = float(np.mean(values)) if values else math.nan
    means["snr_gain_db"] = means["snr_db"] - means["snr_in_db"]
    return {k: v for k, v in means.items() if math.isfinite(v)}


# -- plots -------------------------------------------------------------------------------------


def plot_spectrograms(name, noisy, denoised, clean, settings):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    seconds = len(noisy) * settings.hop_length / settings.sample_rate
    extent = (0, seconds, 0, settings.sample_rate / 2000)
    floor = 20 * np.log10(max(float(np.max(clean)), 1e-8)) - 80
    for ax, title, magnitude in zip(axes, ("noisy", "denoised", "clean"), (noisy, denoised, clean)):
        db = np.maximum(20 * np.log10(np.maximum(magnitude.T, 1e-8)), floor)
        image = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma")
        ax.set(title=f"{name}: {title}", ylabel="kHz")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=axes, label="dB")
    return fig


def plot_loss(history, output):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    epochs = range(1, len(history["loss"]) + 1)
    ax.semilogy(epochs, history["loss"], label="loss")
    if "val_loss" in history:
        ax.semilogy(epochs, history["val_loss"], label="val_loss")
    quantity = "linear magnitude / level" if output == "mask" else "compressed magnitude"
    ax.set(xlabel="epoch", ylabel=f"MSE ({quantity})", title="training")
    ax.legend()
    return fig


# -- the experiment ----------------------------------------------------------------------------


def run_experiment(ctx, build):
    data, stfts, settings, fit, validation = load_features(ctx)
    ctx.log(
        f"{len(fit)} training frames ({ctx.params['remix']} noise remixes),"
        f" {len(validation)} validation frames, input {fit.features.shape[1:]},"
        f" {settings.output} output, {data.layout} data"
    )
    ctx.log_dict(data.describe(), "data.json")

    model, history = train(ctx, build, fit, validation)

    rows, examples = evaluate(ctx, model, data, stfts, settings)
    ctx.log_table(rows, "per_file.csv")
    metrics = summarize(rows)
    ctx.log_metrics(metrics)
    ctx.log(
        "SNR {snr_db:.2f} dB (input {snr_in_db:.2f}, ceiling {oracle_snr_db:.2f})".format(**metrics)
    )
    if any(r["output_all_zero"] for r in rows):
        ctx.set_tags({"dlbench.dead_output": "evaluation output is all zeros"})

    name, noisy, denoised, clean = examples[0]
    ctx.log_figure(plot_spectrograms(name, noisy, denoised, clean, settings), "spectrograms.png")
    ctx.log_figure(plot_loss(history, settings.output), "loss.png")

    ctx.log_model(model, MODEL_ARTIFACT)
    ctx.log_dict(settings.to_dict(), f"{MODEL_ARTIFACT}/{SETTINGS_FILE}")
    ctx.set_tags({"dlbench.denoiser": "true"})


def run_dense(ctx):
    run_experiment(ctx, build_dense)


def run_conv1d(ctx):
    run_experiment(ctx, build_conv1d)


def common_params(*, learning_rate, epochs, batch_size, patience, target, max_gain, compression,
                  context, frame_shifts, remix, remix_gain, dropout, ema_momentum):
    return (
        Param("learning_rate", float, learning_rate, "Adam step size", low=0.0),
        Param("epochs", int, epochs, "most epochs (early stopping usually ends sooner)", low=1),
        Param("batch_size", int, batch_size, "frames per gradient step", low=1),
        Param("validation_split", float, 0.1,
              "last fraction of training frames held for early stopping", low=0.01, high=0.5),
        Param("patience", int, patience,
              "epochs without val_loss improvement before stopping (best weights restored)", low=1),
        Param("output", str, "mask",
              "what the last layer predicts: a gain per bin applied to the noisy magnitude, trained"
              " on linear magnitudes (mask), or the compressed clean magnitude (magnitude: the seed)",
              choices=OUTPUTS),
        Param("target", str, target,
              "the clean magnitude the output is fitted to: as is (magnitude), or its part in"
              " phase with the noisy STFT (phase_sensitive), the part a noisy-phase"
              " reconstruction can recover", choices=TARGETS),
        Param("max_gain", float, max_gain,
              "ceiling of the mask's ReLU: no bin is amplified beyond it (0: none; mask output"
              " only)", low=0.0),
        Param("compression", str, compression,
              "magnitude compression of the input (and of the target with output=magnitude)",
              choices=COMPRESSIONS),
        Param("scaling", str, "peak",
              "divide the compressed input (and a magnitude target) by the training input's peak,"
              " or leave it as is (none)", choices=("peak", "none")),
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
        Param("dropout", float, dropout,
              "dropout rate before the output Dense (0: no Dropout layer)", low=0.0, high=0.9),
        Param("ema_momentum", float, ema_momentum,
              "keep an exponential moving average of the weights with this momentum per step;"
              " validation, early stopping and the saved model use the average (0: off)",
              low=0.0, high=0.9999),
        Param("dead_output_retries", int, 2,
              "fresh restarts (each at 1/4 the learning rate) if the output dies", low=0, high=5),
        Param("checkpoint_every", int, 10,
              "save the model into the run every N epochs, for --resume (0: never)", low=0),
    )


LOGS = (
    "snr_db", "snr_in_db", "snr_gain_db", "si_sdr_db", "pesq", "stoi", "oracle_snr_db",
    "loss", "val_loss", "train_seconds",
)
QUICK = {"epochs": 1, "remix": 0, "frame_shifts": 1}


@hookimpl
def dlbench_experiments():
    return [
        Experiment(
            name="denoise_dense",
            summary="Speech denoising: STFT magnitude frame -> Dense(256, ELU) -> Dense(513, ReLU)",
            run=run_dense,
            params=common_params(
                # Mask output and 4 frame shifts: 10.92 / 11.11 / 11.20 dB (seeds 0 / 1 / 2) on
                # the course hold-out, against 10.13 for log1p magnitude output, 8.94 raw (seed).
                learning_rate=1e-3, epochs=200, batch_size=32, patience=15,
                target="magnitude", max_gain=0.0, compression="log1p", context=0,
                frame_shifts=4, remix=0, remix_gain=0.3, dropout=0.0, ema_momentum=0.0,
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
                # On the course hold-out (seeds 0-4): 12.78 / 12.66 / 12.54 / 12.56 / 12.86 dB
                # with these defaults (12.50 / 12.68 / 12.25 / 12.74 / 12.25 without the weight
                # average), against 11.21 (seed 0) at batch 64, MaxPool(2), kernel 3, plain
                # magnitude target and no gain ceiling. What each change brought is in the
                # README, "Experiments and results".
                learning_rate=3e-4, epochs=200, batch_size=128, patience=8,
                target="phase_sensitive", max_gain=1.0, compression="log1p", context=0,
                frame_shifts=1, remix=0, remix_gain=0.3, dropout=0.3, ema_momentum=0.995,
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
