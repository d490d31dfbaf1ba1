"""The same seed twice gives the same final metrics on CPU; another seed does not."""

import types

from dlbench import Experiment, Param, hookimpl
from dlbench.registry import load_registry
from dlbench.runner import RunRequest, execute
from dlbench.store import Store


def train_tiny_model(ctx):
    import keras
    import numpy as np

    x = np.random.normal(size=(256, 8)).astype("float32")
    y = (x @ np.arange(8, dtype="float32") > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(ctx.params["lr"]), loss="binary_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, shuffle=True, verbose=0,
              callbacks=[ctx.keras_callback()], validation_split=0.25)


PLUGIN = types.SimpleNamespace(
    dlbench_experiments=hookimpl(lambda: [Experiment(
        name="tiny_keras", summary="A tiny Keras model.", run=train_tiny_model,
        params=(Param("lr", float, 0.01, "step size"),))]))


def test_same_seed_same_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "none")
    registry = load_registry(extra_plugins=[("tiny", PLUGIN)])
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    first, second, other = (
        execute(RunRequest("tiny_keras", seed=seed), registry, store) for seed in (7, 7, 8)
    )
    assert first.status == second.status == "FINISHED"
    assert set(first.metrics) == {"loss", "val_loss"}
    assert first.metrics == second.metrics
    assert first.metrics != other.metrics
    assert first.params["seed"] == "7"
