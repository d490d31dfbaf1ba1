"""cifar_aug: the augmentation pixel math, the 4x pipeline, and `--quick` through the CLI."""

import numpy as np
import pytest

from dlbench.testing import check_experiment
from support import check_classifiers
from dlbench_plugins.cifar.cifar_aug import VIEWS, augment, image_batches, split_validation


def _image():
    """A 32x32x3 uint8 image whose columns differ, with the extreme values 0 and 255 in it."""
    row = np.linspace(0, 255, 32).round().astype("uint8")
    image = np.stack([np.tile(row, (32, 1))] * 3, axis=-1)
    image[0, 0] = (0, 128, 255)
    return image


def test_views_pixel_math_is_exact():
    image = _image()
    out = augment(np.repeat(image[None], 4, axis=0), np.arange(4)).numpy()
    unit = image.astype("float32") / np.float32(255)
    expected = {
        "original": unit,
        "brightened": np.minimum(unit * np.float32(1.1), 1),
        "darkened": unit * np.float32(0.9),
        "flipped": unit[:, ::-1],
    }
    for view, pixels in expected.items():
        np.testing.assert_array_equal(out[VIEWS.index(view)], pixels * 2 - 1, err_msg=view)
    assert out.dtype == np.float32


def test_views_on_known_pixels():
    image = np.zeros((32, 32, 3), "uint8")
    image[0, 0] = (0, 200, 255)
    out = augment(np.repeat(image[None], 4, axis=0), np.arange(4)).numpy()
    assert out[0, 0, 0].tolist() == pytest.approx([-1.0, 200 / 127.5 - 1, 1.0], abs=1e-6)
    assert out[1, 0, 0].tolist() == pytest.approx([-1.0, 2 * 200 * 1.1 / 255 - 1, 1.0], abs=1e-6)  # 255 clips at 1
    assert out[2, 0, 0].tolist() == pytest.approx([-1.0, 2 * 200 * 0.9 / 255 - 1, 0.8], abs=1e-6)
    assert out[3, 0, 31].tolist() == pytest.approx(out[0, 0, 0].tolist())  # mirrored left-right
    assert out[3, 0, 0].tolist() == [-1.0, -1.0, -1.0]
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_augmented_pipeline_holds_each_image_in_all_four_views_once():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(10)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in image_batches(images, labels, 7, views=4, shuffle=True)))
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (40, 32, 32, 3) and x.dtype == np.float32
    assert sorted(y.tolist()) == sorted(list(range(10)) * 4)
    assert y[:10].tolist() != list(range(10))  # shuffled across the 4x set
    for label in range(10):
        got = x[y == label]
        want = augment(np.repeat(images[label][None], 4, axis=0), np.arange(4)).numpy()
        assert sorted(map(bytes, got)) == sorted(map(bytes, want))


def test_validation_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(10), 50)
    train, validation = split_validation(y, 0.1, seed=3)
    assert len(validation) == 50 and np.bincount(y[validation]).tolist() == [5] * 10
    assert not set(train) & set(validation) and len(train) + len(validation) == 500
    assert split_validation(y, 0.1, seed=3)[1].tolist() == validation.tolist()
    assert split_validation(y, 0.1, seed=4)[1].tolist() != validation.tolist()


def test_quick_run_logs_nested_children_and_figures(cifar_dir, tmp_path):
    from mlflow import MlflowClient

    from dlbench.outcomes import read_outcomes

    checked = check_experiment("cifar_aug", tmp_path, cifar_dir, params={"epochs": 2})
    client = MlflowClient(tracking_uri=checked.tracking_uri)
    parent = client.get_run(checked.summary["run_id"])
    metrics = parent.data.metrics
    test_images = int(parent.data.params["test_images"])
    assert test_images == 256  # --quick's seeded test subset
    assert metrics["test_accuracy_gain"] == pytest.approx(
        metrics["augmented_test_accuracy"] - metrics["baseline_test_accuracy"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_name = {child.info.run_name: child for child in children}
    assert set(by_name) == {"baseline", "augmented"}
    correct_by = {}
    for name, child in by_name.items():
        assert child.info.status == "FINISHED"
        for key in ("val_accuracy", "val_loss", "accuracy", "loss"):
            history = client.get_metric_history(child.info.run_id, key)
            assert [m.step for m in history] == [1, 2], (name, key)
        val = [m.value for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        # The parent's summary is the child's curve: its best epoch and its last.
        assert metrics[f"{name}_best_val_accuracy"] == pytest.approx(max(val))
        assert metrics[f"{name}_final_val_accuracy"] == pytest.approx(val[-1])
        # Scored on the test images, one by one: a whole number of them were right.
        correct = metrics[f"{name}_test_accuracy"] * test_images
        assert correct == pytest.approx(round(correct), abs=1e-3)
        assert child.data.metrics["test_accuracy"] == metrics[f"{name}_test_accuracy"]
        # The epoch is chosen on validation (patience 10 > 2 epochs: the best of the two).
        assert metrics[f"{name}_chosen_epoch"] == int(np.argmax(val)) + 1
        outcomes = read_outcomes(client, child.info.run_id, "test")
        assert len(outcomes) == test_images
        assert np.mean(outcomes) == pytest.approx(metrics[f"{name}_test_accuracy"])
        correct_by[name] = outcomes
    only = sum(1 for a, b in zip(correct_by["baseline"], correct_by["augmented"]) if b and not a)
    assert metrics["test_accuracy_gain_augmented_only"] == only
    assert 0 < metrics["test_accuracy_gain_mcnemar_p"] <= 1
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"val_accuracy.png", "augmentations.png", "test_accuracy.png"} <= artifacts
    check_classifiers(client, by_name, primary="augmented")


@pytest.mark.slow
def test_quick_seeds_give_the_interval_of_the_gain(cifar_dir, tmp_path):
    """`--seeds` on a real experiment: the parent's interval of the paired gain comes from
    the seeds' gains, each measured on the same test images by its own McNemar test."""
    import json
    import statistics

    from dlbench.testing import run_cli
    from support import client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_cli(["run", "cifar_aug", "--quick", "--seeds", "0,1", "--json", "--data", str(cifar_dir),
                   "--no-system-metrics"], tracking_uri=uri, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    gains = [run["metrics"]["test_accuracy_gain"] for run in summary["runs"]]
    assert all("test_accuracy_gain_mcnemar_p" in run["metrics"] for run in summary["runs"])
    parent = client(uri).get_run(summary["run_id"]).data.metrics
    assert parent["test_accuracy_gain_n"] == 2
    assert parent["test_accuracy_gain_mean"] == pytest.approx(statistics.mean(gains))
    assert parent["test_accuracy_gain_ci95_low"] <= statistics.mean(gains) <= parent["test_accuracy_gain_ci95_high"]
