"""Fitting a denoiser: Adam on the MSE, early stopping, an optional moving average of the
weights, and a guard against a dead (all-zero) ReLU output, retried at a lower rate.

In mask mode the network is trained inside a wrapper that multiplies its gain by the noisy
magnitude (:func:`mask_training_model`), so the loss compares linear magnitudes and weighs
each bin by its energy, as SNR does; only the inner network is kept.
"""

from __future__ import annotations

import time

from dlbench_plugins.speech.features import Frames

SCHEDULES = ("constant", "cosine")


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


def training_epochs(frames: int, params) -> int:
    """Epochs to run on ``frames`` training frames: ``epochs``, or fewer when ``train_frames``
    (frames passed through the network in all) is set and reached sooner; whole epochs, >= 1.

    A budget in frames costs the same on a 2,000-frame recording as on an 8,000-frame set,
    where a count of epochs would cost four times as much on the larger one.
    """
    budget = int(params.get("train_frames", 0))
    if not budget:
        return int(params["epochs"])
    return max(1, min(int(params["epochs"]), -(-budget // max(frames, 1))))


def steps_per_epoch(frames: int, params) -> int:
    return max(-(-frames // params["batch_size"]), 1)


def learning_rate_schedule(params, learning_rate: float, frames: int):
    """The step size: constant (``schedule=constant``), or (``cosine``) a linear warm-up from 0
    over ``warmup_epochs`` to ``learning_rate``, then a cosine decay to 0 at the last epoch.

    The decay ends training on small steps, so the last weights sit near the bottom of the
    valley without an average kept on the side; the warm-up lets the first steps start
    without killing the ReLU output.
    """
    import keras

    if params.get("schedule", "constant") == "constant":
        return learning_rate
    per_epoch = steps_per_epoch(frames, params)
    total = max(training_epochs(frames, params) * per_epoch, 2)
    warmup = min(int(round(params.get("warmup_epochs", 0) * per_epoch)), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=total - warmup, alpha=0.0,
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup)


def compile_for_training(model, params, learning_rate, frames: int):
    """Adam on the MSE at the rate of :func:`learning_rate_schedule` for ``frames`` training
    frames; with ``ema_momentum`` > 0 Adam also keeps a moving average of the weights."""
    import keras

    momentum = params["ema_momentum"]
    averaging = {"use_ema": True, "ema_momentum": momentum} if momentum else {}
    rate = learning_rate_schedule(params, learning_rate, frames)
    model.compile(optimizer=keras.optimizers.Adam(rate, **averaging), loss="mse",
                  jit_compile=bool(params.get("jit_compile", False)))


def weight_averaging(model):
    """Callbacks that put the weights' moving average into the model for validation and at
    every epoch's end; none when the model's optimizer keeps no average.

    With ~2,000 training frames the weights jitter around their optimum from one minibatch
    to the next; their average along the way sits closer to it. So validation scores the
    average, early stopping keeps the best average, and that is the network saved.
    Callbacks that read the weights (early stopping,
    the dead-output check) go after these. The optimizer, not the params, decides, so a model
    restored by ``--resume`` gets the callbacks its saved optimizer needs.
    """
    import keras

    averaging = getattr(model.optimizer, "use_ema", False)
    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if averaging else []


def compute_tags(model) -> dict:
    """The settings that decide how fast a fit runs here: XLA, TensorFlow's thread pools (0:
    its default, one per core) and oneDNN (on by default in TensorFlow on x86)."""
    import os

    import tensorflow as tf

    return {
        "dlbench.speech.jit_compile": str(bool(model.jit_compile)).lower(),
        "dlbench.speech.intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "dlbench.speech.inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "dlbench.speech.onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1 (default)"),
    }


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
                compile_for_training(model, p, learning_rate, len(fit))
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
            epochs=training_epochs(len(fit), p),
            batch_size=p["batch_size"],
            validation_data=(validation.inputs(output), validation.target),
            callbacks=callbacks,
            verbose=0,
        )
        seconds = time.perf_counter() - started
        if dead.dead_at_epoch is None:
            ctx.log_metrics({"train_seconds": seconds, "epochs_trained": initial_epoch + len(history.history["loss"])})
            ctx.set_tags({"dlbench.train_attempts": attempt, **compute_tags(model)})
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
    scale = "" if p["compression"] == "log1p" else ", or use -p compression=log1p so inputs are scaled"
    raise RuntimeError(
        f"denoiser output is all zeros (dead ReLU) after {attempt} attempt(s); lower"
        f" -p learning_rate{scale}"
    )
