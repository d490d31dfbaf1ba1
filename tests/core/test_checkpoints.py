"""Epoch checkpoints and ``--resume``: a Keras run killed with SIGKILL continues where its last
checkpoint left it, in the same run, with a complete metric history."""

import json
import os
import signal

import pytest

from dlbench.testing import fake_distribution, run_cli
from support import client

KERAS_PLUGIN = '''
import os
import signal

from dlbench import Experiment, Metric, Param, hookimpl


def fit(ctx):
    import keras
    import numpy as np

    rng = np.random.default_rng(ctx.seed)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    model = ctx.restore_model()
    if model is None:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    kill_at = int(os.environ.get("KERAS_TOY_KILL_AT", "0"))

    class Die(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [ctx.keras_callback(), ctx.checkpoint_callback(every=2)]
    if os.environ.get("KERAS_TOY_CHECKPOINT_FIRST"):
        callbacks.reverse()
    model.fit(x, y, epochs=ctx.params["epochs"], initial_epoch=ctx.initial_epoch, batch_size=32,
              verbose=0, callbacks=[*callbacks, Die()])
    ctx.log_metric("final_loss", float(model.evaluate(x, y, verbose=0)))


@hookimpl
def dlbench_experiments():
    return [Experiment(name="keras_toy", summary="A linear fit in Keras, checkpointed.", run=fit,
                       params=(Param("epochs", int, 6, "epochs", low=1),),
                       logs=(Metric("loss", "min"),))]
'''


# The reversed callback order is the same check on another path: in the slow suite.
@pytest.mark.parametrize("checkpoint_first", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_sigkilled_keras_run_resumes_from_its_last_checkpoint(store_uri, tmp_path, checkpoint_first):
    """Killed at epoch 5 after a checkpoint at 4, then resumed: the history has every epoch,
    the checkpoint's own included, whichever callback comes first."""
    root = fake_distribution(tmp_path / "site", "keras_toy_plugin", KERAS_PLUGIN)
    env = {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "keras_toy_plugin",
           **({"KERAS_TOY_CHECKPOINT_FIRST": "1"} if checkpoint_first else {})}
    killed = run_cli(["run", "keras_toy", "--seed", "4", "--json"], tracking_uri=store_uri,
                     env={**env, "KERAS_TOY_KILL_AT": "5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    experiment = client(store_uri).get_experiment_by_name("keras_toy")
    (run,) = client(store_uri).search_runs([experiment.experiment_id])
    run_id = run.info.run_id
    files = {f.path for f in client(store_uri).list_artifacts(run_id, "checkpoints")}
    assert files == {"checkpoints/last.keras", "checkpoints/epoch.json"}

    with_params = run_cli(["run", "keras_toy", "--resume", run_id, "-p", "epochs=9"],
                          tracking_uri=store_uri, env=env)
    assert with_params.returncode == 2 and "drop the -p options" in with_params.stderr

    resumed = run_cli(["run", "keras_toy", "--resume", run_id, "--json"], tracking_uri=store_uri,
                      env=env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == run_id and summary["status"] == "FINISHED"
    assert summary["params"]["seed"] == "4" and summary["params"]["epochs"] == "6"
    run = client(store_uri).get_run(run_id)
    assert run.data.tags["dlbench.resumed_from_epoch"] == "4" and "dlbench.error" not in run.data.tags
    history = client(store_uri).get_metric_history(run_id, "loss")
    by_step = {}
    for metric in sorted(history, key=lambda m: m.timestamp):
        by_step[metric.step] = metric.value  # a re-run epoch 5 replaces the lost one
    assert sorted(by_step) == [1, 2, 3, 4, 5, 6]
    # Training continued from the checkpoint: no jump back to an untrained model's loss.
    assert by_step[5] < by_step[1] / 2 and by_step[6] < by_step[1] / 2

    again = run_cli(["run", "keras_toy", "--resume", run_id], tracking_uri=store_uri, env=env)
    assert again.returncode == 2 and "already FINISHED" in again.stderr
