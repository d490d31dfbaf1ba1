"""`--strategy mirrored`: one run over several devices (CPU split into logical devices here)."""

import json
import os

import pytest

from dlbench.testing import fake_distribution, run_cli

MIRRORED_PLUGIN = '''
from dlbench import Experiment, hookimpl


def fit(ctx):
    import keras
    import numpy as np

    x = np.random.default_rng(ctx.seed).normal(size=(128, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    with ctx.strategy_scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[ctx.keras_callback()])
    replicas = ctx.strategy.num_replicas_in_sync if ctx.strategy else 1
    ctx.log_metric("replicas", replicas)
    ctx.log_metric("variable_replicas", len(getattr(model.layers[0].kernel.value, "values", [0])))


@hookimpl
def dlbench_experiments():
    return [Experiment(name="mirrored_toy", summary="A linear fit under a strategy.", run=fit,
                       logs=("loss",))]
'''


@pytest.fixture
def env(tmp_path):
    root = fake_distribution(tmp_path / "site", "mirrored_plugin", MIRRORED_PLUGIN)
    return {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
            "DLBENCH_LOAD_PLUGINS": "mirrored_plugin,toy_plugin_dist"}


def test_mirrored_strategy_on_two_logical_cpus(env, store_uri):
    out = run_cli(["run", "mirrored_toy", "--strategy", "mirrored", "--json"],
                  tracking_uri=store_uri, env={**env, "DLBENCH_CPU_DEVICES": "2"})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["metrics"]["replicas"] == 2.0
    assert summary["metrics"]["variable_replicas"] == 2.0  # the kernel is mirrored, one per device
    from mlflow import MlflowClient

    tags = MlflowClient(tracking_uri=store_uri).get_run(summary["run_id"]).data.tags
    assert tags["dlbench.strategy"] == "mirrored" and tags["dlbench.strategy.replicas"] == "2"
    history = MlflowClient(tracking_uri=store_uri).get_metric_history(summary["run_id"], "loss")
    assert [m.step for m in history] == [1, 2, 3]


def test_strategy_needs_a_tensorflow_experiment(env, store_uri, tmp_path):
    from toy_plugin import TOY_PLUGIN

    fake_distribution(tmp_path / "site", "toy_plugin_dist", TOY_PLUGIN)
    out = run_cli(["run", "toy_fit", "--strategy", "mirrored"], tracking_uri=store_uri, env=env)
    assert out.returncode == 2 and "does not use TensorFlow" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()
