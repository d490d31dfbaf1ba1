"""pretext_transfer: pretext labels (flip axis, rotation direction), the data split, `--quick`."""

import numpy as np
import pytest

from dlbench.models import using_store
from dlbench.testing import check_experiment
from support import check_classifiers
from dlbench_plugins.cifar.pretext_transfer import (
    PRETEXT_CLASSES, TRANSFER_LAYERS, crop_flip, downstream_model, pretext_views, stratified_pick)


def _marked():
    """A 4x4 grayscale-ish image with one bright pixel in the top-left corner, one mid-grey
    pixel in the top-right corner."""
    image = np.zeros((1, 4, 4, 3), "uint8")
    image[0, 0, 0] = 255  # top-left
    image[0, 0, 3] = 100  # top-right
    return image


def test_pretext_labels_and_views():
    x, y = pretext_views(_marked())
    assert y.tolist() == [0, 1, 2] and PRETEXT_CLASSES == ("original", "vertical_flip", "rotate_90")
    original, flipped, rotated = x[:, :, :, 0]
    assert (original[0, 0], original[0, 3]) == (255, 100)
    # Flipped upside down: the top row becomes the bottom row, left stays left.
    assert (flipped[3, 0], flipped[3, 3]) == (255, 100) and flipped[0].sum() == 0
    # Rotated 90 degrees counter-clockwise: top-right goes to top-left, top-left to bottom-left.
    assert (rotated[0, 0], rotated[3, 0]) == (100, 255)
    assert x.dtype == np.uint8


def test_pretext_views_keep_image_order_per_class():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    x, y = pretext_views(images)
    assert np.bincount(y).tolist() == [5, 5, 5]
    np.testing.assert_array_equal(x[y == 0], images)
    np.testing.assert_array_equal(x[y == 1], images[:, ::-1])
    np.testing.assert_array_equal(x[y == 2][0], np.rot90(images[0]))


def test_crop_flip_is_a_window_of_the_mirrored_pad_and_keeps_up_up():
    tf = pytest.importorskip("tensorflow")
    tf.random.set_seed(0)
    image = np.arange(32 * 32 * 3, dtype=np.int64).reshape(32, 32, 3) % 251
    image = image.astype(np.uint8)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    windows = {(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (0, 1)}
    seen = set()
    for _ in range(40):
        out = crop_flip(tf.constant(image)).numpy()
        assert out.shape == image.shape and out.dtype == np.uint8
        match = [(dy, dx, flip) for dy, dx, flip in windows
                 if np.array_equal(out, (padded[:, ::-1] if flip else padded)[dy:dy + 32, dx:dx + 32])]
        assert match, "not a 32x32 window of the (possibly left-right flipped) mirrored pad"
        seen.add(match[0][2])
    # Only left-right flips: an upright image stays upright, so the pretext labels hold.
    assert seen == {0, 1}


def test_validation_is_stratified_seeded_and_disjoint_from_the_labels():
    from dlbench_plugins.cifar.pretext_transfer import split_labelled

    y = np.repeat(np.arange(10), 120)
    train, held = split_labelled(y, 500, 500, seed=1)
    assert train.tolist() == stratified_pick(y, 500, seed=1).tolist()
    assert np.bincount(y[held]).tolist() == [50] * 10 and len(set(held)) == 500
    assert not set(train) & set(held)
    assert split_labelled(y, 500, 500, seed=2)[1].tolist() != held.tolist()


def test_labelled_pick_is_stratified_seeded_and_disjoint_from_pretext():
    y = np.repeat(np.arange(10), 60)
    picked = stratified_pick(y, 500, seed=1)
    assert np.bincount(y[picked]).tolist() == [50] * 10 and len(set(picked)) == 500
    assert stratified_pick(y, 500, seed=1).tolist() == picked.tolist()
    assert stratified_pick(y, 500, seed=2).tolist() != picked.tolist()
    assert np.bincount(y[stratified_pick(y, 25, seed=0)]).tolist() == [3] * 5 + [2] * 5


@pytest.mark.parametrize("layers", sorted(TRANSFER_LAYERS))
def test_transfer_takes_over_the_pretext_layers_only(layers):
    keras = pytest.importorskip("keras")
    from dlbench_plugins.cifar.cnn import small_cnn

    keras.utils.set_random_seed(0)
    pretext = small_cnn(3)
    params = {"transfer_layers": layers, "body_lr": 1e-5, "head_lr": 1e-3}
    model = downstream_model(pretext, params)
    for name in ("conv1", "conv2", "fc"):
        same = np.array_equal(model.net.get_layer(name).get_weights()[0], pretext.get_layer(name).get_weights()[0])
        assert same == (name in TRANSFER_LAYERS[layers]), name
    assert model.net.get_layer("classifier").get_weights()[0].shape == (20, 10)
    (body, body_opt), (head, head_opt) = model.groups
    assert [layer.name for layer in body] == list(TRANSFER_LAYERS[layers])
    assert float(body_opt.learning_rate) == pytest.approx(1e-5)
    assert float(head_opt.learning_rate) == pytest.approx(1e-3)


def test_quick_run_logs_curves_weights_and_figure(cifar_dir, tmp_path):
    from mlflow import MlflowClient

    checked = check_experiment("pretext_transfer", tmp_path, cifar_dir)
    client = MlflowClient(tracking_uri=checked.tracking_uri)
    run_id = checked.summary["run_id"]
    metrics = client.get_run(run_id).data.metrics
    assert metrics["transfer_gain"] == pytest.approx(
        metrics["transfer_test_accuracy"] - metrics["baseline_test_accuracy"])
    # Scored on the 3 views of each of --quick's 256 test images: a whole number right.
    correct = metrics["pretext_accuracy"] * 3 * 256
    assert correct == pytest.approx(round(correct), abs=1e-3)
    for name in ("baseline", "transfer"):  # --quick: epochs=2, eval_every=1
        # Validation every epoch chooses the model; the test images are scored once.
        val = client.get_metric_history(run_id, f"{name}_val_accuracy")
        assert [m.step for m in val] == [1, 2]
        best = max(val, key=lambda m: (m.value, -m.step))
        assert metrics[f"{name}_best_val_accuracy"] == pytest.approx(best.value)
        assert metrics[f"{name}_chosen_epoch"] == best.step
        assert len(client.get_metric_history(run_id, f"{name}_test_accuracy")) == 1
    parent = client.get_run(run_id)
    assert parent.data.params["validation_images"] == "100"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert {child.info.run_name for child in children} == {"pretext", "baseline", "transfer"}
    by_name = {child.info.run_name: child for child in children}
    # Per-image test outcomes in each model's run; the paired test on them in the parent.
    from dlbench.outcomes import read_outcomes

    base = read_outcomes(client, by_name["baseline"].info.run_id, "test")
    transfer = read_outcomes(client, by_name["transfer"].info.run_id, "test")
    assert len(base) == len(transfer) == 256 and set(base) | set(transfer) <= {0.0, 1.0}
    assert np.mean(base) == pytest.approx(metrics["baseline_test_accuracy"])
    assert np.mean(transfer) == pytest.approx(metrics["transfer_test_accuracy"])
    only = sum(1 for a, b in zip(base, transfer) if b and not a)
    assert metrics["transfer_gain_transfer_only"] == only
    assert metrics["transfer_gain_baseline_only"] == sum(1 for a, b in zip(base, transfer) if a and not b)
    assert 0 < metrics["transfer_gain_mcnemar_p"] <= 1
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == (
            [1] if child.info.run_name == "pretext" else [1, 2])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"pretext_param.h5", "test_accuracy.png", "val_accuracy.png", "pretext"} <= artifacts
    with using_store(checked.tracking_uri):  # pretext/ is also the run's MLflow model now
        pretext = {a.path for a in client.list_artifacts(run_id, "pretext")}
    assert {"pretext/pretext.keras", "pretext/MLmodel"} <= pretext
    check_classifiers(client, {c.info.run_name: c for c in children if c.info.run_name != "pretext"},
                      primary="transfer")


def test_the_best_validation_epoch_is_the_model_kept():
    keras = pytest.importorskip("keras")
    import tensorflow as tf

    from dlbench_plugins.cifar.pretext_transfer import evaluate_every

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    y = np.argmax(model.predict(x, verbose=0), axis=1)
    x, y = x[y != 0], y[y != 0]  # labelled as this model predicts, and never class 0
    validation = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    seen = []
    chooser = evaluate_every(1, validation, lambda epoch, accuracy: seen.append((epoch, accuracy)))
    chooser.set_model(model)
    chooser.set_params({"epochs": 2})
    good = [w.numpy().copy() for w in model.weights]
    chooser.on_epoch_end(0)  # epoch 1: every validation image right
    for w in model.weights:  # epoch 2: all-zero weights predict class 0: every image wrong
        w.assign(np.zeros(w.shape, "float32"))
    chooser.on_epoch_end(1)
    assert seen == [(1, 1.0), (2, 0.0)] and chooser.best_epoch == 1
    chooser.on_train_end()
    for kept, want in zip(model.weights, good):
        np.testing.assert_array_equal(kept.numpy(), want)
