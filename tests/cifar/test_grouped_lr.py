"""The per-group learning-rate step: the body moves ~100x less than the head."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlbench_plugins.cifar.cnn import small_cnn
from dlbench_plugins.cifar.grouped_lr import grouped_lr


def _moves(body_lr, head_lr):
    """Mean absolute weight change of body and head after a few steps with plain SGD.

    Same data, same initial weights, same gradients for both runs: with SGD the change of each
    weight is lr * gradient, so the ratio of the two groups' moves is the ratio of their rates.
    """
    keras.utils.set_random_seed(0)
    net = small_cnn(10)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 64)
    body = [net.get_layer(n) for n in ("conv1", "conv2", "fc")]
    head = [net.get_layer("classifier")]
    before = {id(w): w.numpy().copy() for w in net.trainable_weights}
    model = grouped_lr(net, [(body, keras.optimizers.SGD(body_lr)), (head, keras.optimizers.SGD(head_lr))])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)

    def move(layers):
        return np.mean([np.abs(w.numpy() - before[id(w)]).mean() for l in layers for w in l.trainable_weights])

    return move(body), move(head), history


def test_body_moves_100x_less_than_head_with_sgd():
    body_equal, head_equal, _ = _moves(1e-3, 1e-3)
    body_small, head_small, history = _moves(1e-5, 1e-3)
    assert head_small == pytest.approx(head_equal, rel=1e-4)  # the head's step is untouched
    assert body_small == pytest.approx(body_equal / 100, rel=1e-3)  # the body's is 100x smaller
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history


def test_adam_groups_keep_their_own_rates():
    """Adam normalises gradients, so its first step moves each weight by about its lr."""
    keras.utils.set_random_seed(0)
    net = small_cnn(10)
    body = [net.get_layer(n) for n in ("conv1", "conv2", "fc")]
    head = [net.get_layer("classifier")]
    before = [w.numpy().copy() for w in net.trainable_weights]
    model = grouped_lr(net, [(body, keras.optimizers.Adam(1e-5)), (head, keras.optimizers.Adam(1e-3))])
    model.compile(loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    model.fit(rng.uniform(-1, 1, (32, 32, 32, 3)), rng.integers(0, 10, 32), batch_size=32, epochs=1, verbose=0)
    steps = [np.abs(w.numpy() - b).max() for w, b in zip(net.trainable_weights, before)]
    body_step, head_step = max(steps[:-2]), max(steps[-2:])
    assert body_step == pytest.approx(1e-5, rel=0.05)
    assert head_step == pytest.approx(1e-3, rel=0.05)


def test_every_trainable_layer_needs_a_group():
    net = small_cnn(10)
    with pytest.raises(ValueError, match="no learning-rate group"):
        grouped_lr(net, [([net.get_layer("classifier")], keras.optimizers.SGD(1e-3))])
    with pytest.raises(ValueError, match="more than one"):
        grouped_lr(net, [(net.layers, keras.optimizers.SGD(1e-3)), ([net.get_layer("fc")], keras.optimizers.SGD(1e-3))])
