"""Self-supervised pretext on unlabelled images, then transfer to a 500-label CIFAR-10 task.

1. ``labeled`` training images (stratified, seeded) form the labelled set; the other training
   images, labels dropped, feed the pretext (disjoint, as in the seed).
2. Pretext: tell apart three views of each unlabelled image: original (0), flipped upside down
   (1), rotated 90 degrees counter-clockwise (2). Same CNN body, 3-way head.
3. Baseline: the 10-class CNN from scratch on the labelled set. Transfer: the pretext body,
   a fresh head, the body trained at ``body_lr`` (1e-5) and the head at ``head_lr`` (1e-3).

Which split decides what: ``validation`` more labelled images (stratified, seeded, disjoint
from the labelled set and from the pretext's images) are scored every ``eval_every`` epochs
(not every epoch: that is where the time would go); each model keeps the weights of its best
validation score. The test images are scored once, by that model: nothing is chosen by test
accuracy. Each downstream child logs its per-image test outcomes (``outcomes/test.json``),
the parent McNemar's exact test of transfer against baseline on the same images
(``transfer_gain_mcnemar_p``, :mod:`dlbench.outcomes`); ``--seeds`` gives the across-seed
interval of the gain.

Why the default transfers the convolutional layers only, and shows the pretext random crops
and flips: docs/RESULTS.md, "CIFAR-10".

Seed settings: ``-p epochs=10000 -p eval_every=100 -p transfer_layers=conv_fc -p
pretext_augment=none`` (the seed trained 10,000 epochs, transferred every layer below the
classifier, and showed the pretext its images as they are; it read the test curve, which
here is a validation curve).
"""

from __future__ import annotations

from dlbench import Experiment, Metric, Param
from dlbench_plugins.cifar.cnn import BODY_LAYERS, CONV_LAYERS

PRETEXT_CLASSES = ("original", "vertical_flip", "rotate_90")

TRANSFER_LAYERS = {"conv": CONV_LAYERS, "conv_fc": BODY_LAYERS}
"""Which pretrained layers the downstream model takes over (and trains at ``body_lr``)."""


def pretext_views(images):
    """uint8 images (N, H, W, C) -> (3N images, 3N labels): original 0, upside down 1,
    rotated 90 degrees counter-clockwise 2 (as displayed, rows top to bottom)."""
    import numpy as np

    views = (images, images[:, ::-1], np.rot90(images, k=1, axes=(1, 2)))
    labels = [np.full(len(images), label, dtype="int64") for label in range(len(views))]
    return np.concatenate(views), np.concatenate(labels)


def stratified_pick(y, count: int, seed: int):
    """Indices of ``count`` images, as equal per class as possible, seeded; sorted."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    picked = [rng.permutation(np.flatnonzero(y == c))[:n] for c, n in zip(classes, per_class)]
    return np.sort(np.concatenate(picked))


def batches(images, labels, batch_size: int, *, shuffle: bool = False, seed: int = 0, augment=None):
    """uint8 images -> a tf.data pipeline of [-1, 1] float batches (no float copy kept);
    ``augment`` (uint8 image -> uint8 image) is drawn afresh for every image, every epoch."""
    import tensorflow as tf

    from dlbench_plugins.cifar.cnn import scale

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment is not None:
        data = data.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch_size).map(lambda x, y: (scale(x), y)).prefetch(2)


def crop_flip(image, pad: int = 4):
    """A random 32x32 crop of the image padded by ``pad`` (mirrored edges), flipped left-right
    half the time. Neither changes which way is up, so every pretext label still holds; both
    keep the pretext from solving its task by the image's border or its exact pixels."""
    import tensorflow as tf

    image = tf.image.random_flip_left_right(image)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    return tf.image.random_crop(padded, tf.shape(image))


PRETEXT_AUGMENTS = {"crop_flip": crop_flip, "none": None}


def evaluate_every(every: int, validation, report):
    """A callback: every ``every`` epochs (and after the last) score ``validation``, call
    ``report(epoch, accuracy)`` with the 1-based epoch, and keep the weights of the best
    score; when training ends the model holds them (``callback.best_epoch`` says which)."""
    import keras

    class EvaluateEvery(keras.callbacks.Callback):
        best_epoch, best_accuracy, best_weights = 0, -1.0, None

        def on_epoch_end(self, epoch, logs=None):
            done = epoch + 1
            if done % every == 0 or done == self.params["epochs"]:
                _, accuracy = self.model.evaluate(validation, verbose=0)
                report(done, float(accuracy))
                if accuracy > self.best_accuracy:  # the first of equal scores: fewer epochs
                    self.best_epoch, self.best_accuracy = done, float(accuracy)
                    self.best_weights = [w.numpy().copy() for w in self.model.weights]

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                for variable, value in zip(self.model.weights, self.best_weights):
                    variable.assign(value)

    return EvaluateEvery()


def train_pretext(ctx, images, test_images):
    """Fit the 3-way pretext CNN on ``images``; return it and its accuracy on ``test_images``."""
    import time

    import keras

    from dlbench_plugins.cifar.cnn import small_cnn

    p = ctx.params
    x, y = pretext_views(images)
    with ctx.strategy_scope():  # all local GPUs with --strategy mirrored; else a no-op
        model = small_cnn(len(PRETEXT_CLASSES), name="pretext")
        model.compile(optimizer=keras.optimizers.Adam(p["pretext_lr"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    augment = PRETEXT_AUGMENTS[p["pretext_augment"]]
    model.fit(batches(x, y, p["pretext_batch_size"], shuffle=True, seed=ctx.seed, augment=augment),
              epochs=p["pretext_epochs"], callbacks=[ctx.keras_callback()], verbose=0)
    ctx.log_metric("seconds_per_epoch", (time.perf_counter() - started) / p["pretext_epochs"])
    _, accuracy = model.evaluate(batches(*pretext_views(test_images), 512), verbose=0)
    return model, float(accuracy)


def downstream_model(pretext, p):
    """The baseline (``pretext`` None: all layers at head_lr) or the transfer model."""
    import keras

    from dlbench_plugins.cifar.cnn import copy_layers, small_cnn
    from dlbench_plugins.cifar.grouped_lr import grouped_lr

    net = small_cnn(10)
    if pretext is None:
        net.compile(optimizer=keras.optimizers.Adam(p["head_lr"]),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return net
    names = TRANSFER_LAYERS[p["transfer_layers"]]
    copy_layers(pretext, net, names)
    body = [net.get_layer(name) for name in names]
    head = [layer for layer in net.layers if layer.trainable_weights and layer.name not in names]
    model = grouped_lr(net, [(body, keras.optimizers.Adam(p["body_lr"])),
                             (head, keras.optimizers.Adam(p["head_lr"]))])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def plot_curves(curves: dict, labeled: int):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        ax.plot(*zip(*points), marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title=f"CIFAR-10 with {labeled} labels")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def run(ctx):
    import time

    import keras
    import numpy as np

    from dlbench.outcomes import log_outcomes, log_paired
    from dlbench_plugins.cifar.cnn import classifier
    from dlbench_plugins.cifar.figures import plot_test_accuracy

    data = ctx.data("cifar10")
    p = ctx.params
    if not 10 <= p["labeled"] + p["validation"] < len(data.y_train):
        from dlbench import UsageError

        raise UsageError(f"labeled={p['labeled']} + validation={p['validation']} must lie in"
                         f" [10, {len(data.y_train)}) for this data")
    labeled, held = split_labelled(data.y_train, p["labeled"], p["validation"], ctx.seed)
    unlabeled = np.setdiff1d(np.arange(len(data.y_train)), np.concatenate([labeled, held]))
    ctx.log(f"{len(labeled)} labelled images, {len(held)} labelled for validation,"
            f" {len(unlabeled)} unlabelled for the pretext")
    ctx.log_params({"pretext_images": 3 * len(unlabeled), "validation_images": len(held)})
    data.log_test_set(ctx)

    with ctx.child("pretext") as child:
        keras.utils.set_random_seed(ctx.seed)
        pretext, pretext_accuracy = train_pretext(child, data.x_train[unlabeled], data.x_test)
        child.log_metric("pretext_accuracy", pretext_accuracy)
    ctx.log_metric("pretext_accuracy", pretext_accuracy)
    ctx.log(f"pretext accuracy on the test images' views: {pretext_accuracy:.3f}")
    weights = ctx.scratch / "pretext_param.h5"
    pretext.save(weights)  # the seed's file name (legacy HDF5)
    ctx.log_artifact(weights)
    ctx.log_model(pretext, "pretext")

    train = batches(data.x_train[labeled], data.y_train[labeled], p["batch_size"], shuffle=True, seed=ctx.seed)
    validation = batches(data.x_train[held], data.y_train[held], 512)
    test = batches(data.x_test, data.y_test, 512)
    curves, outcomes = {}, {}
    for name, source in (("baseline", None), ("transfer", pretext)):
        points = curves.setdefault(name, [])

        def report(epoch, accuracy, name=name, points=points):
            points.append((epoch, accuracy))
            ctx.log_metric(f"{name}_val_accuracy", accuracy, step=epoch)

        with ctx.child(name) as child:
            keras.utils.set_random_seed(ctx.seed + 1)  # same fresh head in both
            with ctx.strategy_scope():
                model = downstream_model(source, p)
            chooser = evaluate_every(p["eval_every"], validation, report)
            started = time.perf_counter()
            model.fit(train, epochs=p["epochs"], verbose=0,
                      callbacks=[child.keras_callback(), chooser])
            # The test images, once, by the model of the best validation epoch.
            net = getattr(model, "net", model)
            predicted = np.argmax(net.predict(test.map(lambda x, y: x), verbose=0), axis=1)
            correct = (predicted == data.y_test).astype(int)
            log_outcomes(child, "test", correct)
            child.log_metrics({"seconds_per_epoch": (time.perf_counter() - started) / p["epochs"],
                               "test_accuracy": float(correct.mean()),
                               "chosen_epoch": chooser.best_epoch})
            # The transfer model is the experiment's answer: the one `--register` registers.
            child.log_model(classifier(net), "model",
                            input_example=data.x_test[:4], primary=name == "transfer")
        outcomes[name] = correct
        ctx.log_metrics({f"{name}_test_accuracy": float(correct.mean()),
                         f"{name}_best_val_accuracy": chooser.best_accuracy,
                         f"{name}_chosen_epoch": chooser.best_epoch})
        ctx.log(f"{name}: epoch {chooser.best_epoch} chosen on validation"
                f" ({chooser.best_accuracy:.3f}); test accuracy {correct.mean():.3f}")

    paired = log_paired(ctx, "transfer_gain", ("baseline", outcomes["baseline"]),
                        ("transfer", outcomes["transfer"]))
    ctx.log(f"transfer - baseline: {100 * paired.difference:+.1f} points on {paired.n} test"
            f" images (McNemar exact p = {paired.p_value:.3g})")
    ctx.log_figure(plot_curves(curves, len(labeled)), "val_accuracy.png")
    ctx.log_figure(plot_test_accuracy(outcomes, f"CIFAR-10 with {len(labeled)} labels"),
                   "test_accuracy.png")


def split_labelled(y, labeled: int, validation: int, seed: int):
    """Indices (labelled training, labelled validation): both stratified and seeded, disjoint;
    the labelled training set is the one ``stratified_pick(y, labeled, seed)`` gives."""
    import numpy as np

    train = stratified_pick(y, labeled, seed)
    rest = np.setdiff1d(np.arange(len(y)), train)
    held = rest[stratified_pick(y[rest], validation, seed + 1)]
    return train, np.sort(held)


EXPERIMENT = Experiment(
    name="pretext_transfer",
    summary="rotation/flip pretext on unlabelled CIFAR-10, transferred to 500 labels",
    run=run,
    params=(
        Param("labeled", int, 500, "labelled training images (stratified, seeded)", low=10,
              high=50_000),
        Param("pretext_epochs", int, 30, "pretext training epochs", low=1, high=100_000),
        Param("pretext_lr", float, 1e-3, "Adam step size of the pretext", low=0.0),
        Param("pretext_batch_size", int, 64, "pretext images per step", low=1, high=65_536),
        Param("pretext_augment", str, "crop_flip", "augmentation of the pretext images:"
              " random crop of the 4-pixel mirrored pad and left-right flip, or none (the"
              " seed)", choices=tuple(PRETEXT_AUGMENTS)),
        Param("epochs", int, 60, "epochs of the baseline and of the transfer", low=1,
              high=100_000),
        Param("validation", int, 500, "more labelled images held out to choose each model's"
              " epoch (stratified, seeded; taken from the pretext's pool)", low=10,
              high=50_000),
        Param("eval_every", int, 5, "score the validation images every N epochs (seed: 100,"
              " on its test set)", low=1, high=100_000),
        Param("batch_size", int, 32, "labelled images per step", low=1, high=65_536),
        Param("body_lr", float, 1e-5, "Adam step size of the transferred layers", low=0.0),
        Param("head_lr", float, 1e-3, "Adam step size of the new head (and of the baseline)",
              low=0.0),
        Param("transfer_layers", str, "conv", "pretrained layers taken over: conv1+conv2,"
              " or those and Dense(20) as in the seed", choices=tuple(TRANSFER_LAYERS)),
    ),
    datasets=("cifar10",),
    logs=(
        Metric("pretext_accuracy", "max", "3-way pretext accuracy on the test images' views"),
        Metric("baseline_test_accuracy", "max", "test accuracy from scratch on the labels"),
        Metric("transfer_test_accuracy", "max", "test accuracy of the pretext body, fine-tuned"),
        Metric("transfer_gain", "max", "transfer - baseline test accuracy"),
        Metric("transfer_gain_mcnemar_p", "min",
               "McNemar exact p-value of transfer vs baseline on the same test images"),
        Metric("baseline_best_val_accuracy", "max", "validation accuracy of the chosen epoch"),
        Metric("transfer_best_val_accuracy", "max", "validation accuracy of the chosen epoch"),
        "baseline_chosen_epoch",
        "transfer_chosen_epoch",
    ),
    quick={"labeled": 100, "validation": 100, "pretext_epochs": 1, "epochs": 2, "eval_every": 1},
)
