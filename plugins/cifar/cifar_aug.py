"""Does a 4x augmented training set beat the original images? The seed's small CNN on CIFAR-10.

Two child runs under one parent, same seed, epochs and validation split:
``baseline`` trains on the original training images; ``augmented`` on the 4x set made of each
image as it is, brightened (x1.1, clipped), darkened (x0.9) and flipped left-right.

The 4x set is never materialised: a tf.data pipeline draws shuffled indices into the 4N set,
gathers the uint8 originals and applies the view's pixel math per batch, so memory stays at the
uint8 training set plus one batch (full CIFAR-10 fits well inside 2 GiB; see bench/bench_cifar.py).

Which split decides what: the validation hold-out (``validation_fraction`` of the training
images, stratified, seeded) chooses each child's epoch: training stops when validation
accuracy has not improved for ``patience`` epochs (at most ``epochs``) and the weights of the
best validation epoch are kept. The test images are scored once, by that model; nothing is
chosen by test accuracy. Each child logs its per-image outcomes on the test set
(``outcomes/test.json``) and the parent McNemar's exact test of augmented against baseline
on the same images (``test_accuracy_gain_mcnemar_p``, :mod:`dlbench.outcomes`); ``--seeds``
gives the across-seed interval of the gain.

Seed settings: the full CIFAR-10 training set with 5,000 of its 50,000 images held out for
validation, 30 epochs and no early stopping, i.e. ``--data <full cifar-10-batches-py>
-p epochs=30 -p patience=0`` (the default validation fraction is the seed's 0.1); the
defaults here are sized for the shared 5,170-image subset on a 2-core CPU.
"""

from __future__ import annotations

from dlbench import Experiment, Metric, Param

VIEWS = ("original", "brightened", "darkened", "flipped")
"""The four views of every training image, in the order of their view index."""

BRIGHTNESS = (1.0, 1.1, 0.9, 1.0)
"""Per-view brightness factor, applied to pixels in [0, 1] then clipped to [0, 1]."""


def augment(images, views):
    """uint8 images (B, 32, 32, 3) and their view index (B,) -> float32 in [-1, 1].

    View 1 multiplies the [0, 1] pixels by 1.1 and clips at 1, view 2 multiplies them by 0.9,
    view 3 mirrors left-right; view 0 is the image as it is.
    """
    import tensorflow as tf

    factor = tf.gather(tf.constant(BRIGHTNESS, tf.float32), views)[:, None, None, None]
    pixels = tf.clip_by_value(tf.cast(images, tf.float32) / 255.0 * factor, 0.0, 1.0)
    flip = tf.equal(views, VIEWS.index("flipped"))[:, None, None, None]
    pixels = tf.where(flip, tf.reverse(pixels, axis=[2]), pixels)
    return pixels * 2.0 - 1.0


def image_batches(images, labels, batch_size: int, *, views: int = 1, shuffle: bool = False, seed: int = 0):
    """A tf.data pipeline over ``views`` x the uint8 ``images`` (views=4: the augmented set).

    Element ``i`` of the virtual set is view ``i // N`` of image ``i % N``; shuffling shuffles
    indices only, so no float copy of the enlarged set ever exists.
    """
    import tensorflow as tf

    count = len(images)
    images = tf.constant(images)
    labels = tf.constant(labels)
    index = tf.data.Dataset.range(views * count)
    if shuffle:
        index = index.shuffle(views * count, seed=seed, reshuffle_each_iteration=True)

    def load(i):
        return augment(tf.gather(images, i % count), i // count), tf.gather(labels, i % count)

    return index.batch(batch_size).map(load).prefetch(2)


def split_validation(y, fraction: float, seed: int):
    """Indices (train, validation): a seeded, stratified ``fraction`` held out of training."""
    import numpy as np

    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(y == c))[: round(fraction * np.sum(y == c))] for c in np.unique(y)]
    validation = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(y)), validation), validation


def train_one(ctx, data, train, validation, *, views: int):
    """Train a fresh CNN on ``views`` x the training images, keep the weights of its best
    validation epoch, log it as the run's model and its per-image test outcomes; return
    (history, per-image test correctness)."""
    import time

    import keras
    import numpy as np

    from dlbench.outcomes import log_outcomes
    from dlbench_plugins.cifar.cnn import classifier, small_cnn

    p = ctx.params
    keras.utils.set_random_seed(ctx.seed)  # both children start from the same weights
    model = small_cnn(10)
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = data.x_train, data.y_train
    callbacks = [ctx.keras_callback()]
    if p["patience"] > 0:  # choose the epoch on validation: never on the test images
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=p["patience"], restore_best_weights=True))
    started = time.perf_counter()
    history = model.fit(
        image_batches(x[train], y[train], p["batch_size"], views=views, shuffle=True, seed=ctx.seed),
        validation_data=image_batches(x[validation], y[validation], 512),
        epochs=p["epochs"],
        callbacks=callbacks,
        verbose=0,
    )
    val = history.history["val_accuracy"]
    best = int(np.argmax(val)) + 1 if p["patience"] > 0 else len(val)
    ctx.log_metrics({"seconds_per_epoch": (time.perf_counter() - started) / len(val),
                     "epochs_trained": len(val), "chosen_epoch": best})
    # The test images, once, by the chosen model: one outcome per image.
    probabilities = model.predict(image_batches(data.x_test, data.y_test, 512), verbose=0)
    correct = (np.argmax(probabilities, axis=1) == data.y_test).astype(int)
    log_outcomes(ctx, "test", correct)
    ctx.log_metric("test_accuracy", float(correct.mean()))
    # The augmented model is the experiment's answer: the one `--register` registers.
    ctx.log_model(classifier(model), "model", input_example=data.x_test[:4], primary=views > 1)
    return history.history, correct, best


def plot_validation(curves: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, history in curves.items():
        epochs = range(1, len(history["val_accuracy"]) + 1)
        ax.plot(epochs, history["val_accuracy"], marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="CIFAR-10: original vs 4x augmented")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_views(images, names):
    """A grid: one row per example image (``names`` label the rows), one column per view."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(len(images), len(VIEWS), figsize=(2 * len(VIEWS), 2 * len(images)), squeeze=False)
    for row, image in enumerate(images):
        batch = np.repeat(image[None], len(VIEWS), axis=0)
        shown = (augment(batch, np.arange(len(VIEWS))).numpy() + 1.0) / 2.0
        for col, view in enumerate(VIEWS):
            axes[row, col].imshow(shown[col])
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(view)
        axes[row, 0].set_ylabel(names[row])
    fig.tight_layout()
    return fig


def run(ctx):
    import numpy as np

    from dlbench.outcomes import log_paired
    from dlbench_plugins.cifar.figures import plot_test_accuracy

    data = ctx.data("cifar10")
    p = ctx.params
    train, validation = split_validation(data.y_train, p["validation_fraction"], ctx.seed)
    ctx.log(f"{len(train)} training images ({4 * len(train)} augmented), {len(validation)} validation, {len(data.y_test)} test")
    ctx.log_params({"train_images": len(train), "validation_images": len(validation), "test_images": len(data.y_test)})
    data.log_test_set(ctx)

    curves, outcomes = {}, {}
    for name, views in (("baseline", 1), ("augmented", len(VIEWS))):
        with ctx.child(name) as child:
            history, correct, best = train_one(child, data, train, validation, views=views)
        curves[name], outcomes[name] = history, correct
        val = history["val_accuracy"]
        ctx.log_metrics({
            f"{name}_test_accuracy": float(correct.mean()),
            f"{name}_best_val_accuracy": float(np.max(val)),
            f"{name}_final_val_accuracy": float(val[-1]),
            f"{name}_chosen_epoch": best,
        })
        ctx.log(f"{name}: epoch {best} of {len(val)} chosen on validation ({val[best - 1]:.3f});"
                f" test accuracy {correct.mean():.3f}")

    paired = log_paired(ctx, "test_accuracy_gain", ("baseline", outcomes["baseline"]),
                        ("augmented", outcomes["augmented"]))
    ctx.log(f"augmented - baseline: {100 * paired.difference:+.1f} points on {paired.n} test"
            f" images (right only by augmented {paired.b_only}, only by baseline"
            f" {paired.a_only}; McNemar exact p = {paired.p_value:.3g})")
    ctx.log_figure(plot_validation(curves), "val_accuracy.png")
    ctx.log_figure(plot_test_accuracy(outcomes, "CIFAR-10"), "test_accuracy.png")
    classes = np.unique(data.y_train)[:4]
    examples = [data.x_train[np.flatnonzero(data.y_train == c)[0]] for c in classes]
    ctx.log_figure(plot_views(examples, [data.label_names[c] for c in classes]), "augmentations.png")


EXPERIMENT = Experiment(
    name="cifar_aug",
    summary="small CNN on CIFAR-10: original images vs a 4x set (bright, dark, flipped)",
    run=run,
    params=(
        Param("epochs", int, 60, "most training epochs of each child", low=1, high=100_000),
        Param("patience", int, 10, "stop when validation accuracy has not improved for this"
              " many epochs and keep the best validation epoch's weights (0: train every"
              " epoch and keep the last, as the seed)", low=0, high=100_000),
        Param("batch_size", int, 32, "images per gradient step", low=1, high=65_536),
        Param("learning_rate", float, 1e-3, "Adam step size", low=0.0),
        Param("validation_fraction", float, 0.1,
              "share of the training images held out for validation (stratified, seeded)",
              low=0.01, high=0.5),
    ),
    datasets=("cifar10",),
    logs=(
        Metric("baseline_test_accuracy", "max", "test accuracy trained on the original images"),
        Metric("augmented_test_accuracy", "max", "test accuracy trained on the 4x set"),
        Metric("baseline_best_val_accuracy", "max", "best validation accuracy over the epochs"),
        Metric("augmented_best_val_accuracy", "max", "best validation accuracy over the epochs"),
        Metric("baseline_final_val_accuracy", "max", "validation accuracy after the last epoch"),
        Metric("augmented_final_val_accuracy", "max", "validation accuracy after the last epoch"),
        Metric("test_accuracy_gain", "max", "augmented - baseline test accuracy"),
        Metric("test_accuracy_gain_mcnemar_p", "min",
               "McNemar exact p-value of augmented vs baseline on the same test images"),
        # The epochs chosen on validation: facts, with no better direction.
        "baseline_chosen_epoch",
        "augmented_chosen_epoch",
    ),
    quick={"epochs": 1},
)
