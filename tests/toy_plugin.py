"""Source of a tiny third-party plugin used by the core tests (installed as a fake distribution).

Its experiments need no TensorFlow, so the core's tests run in seconds.
"""

TOY_PLUGIN = '''
import os
import time

from dlbench import Experiment, Metric, Param, hookimpl


def fit_line(ctx):
    import numpy as np

    rng = np.random.default_rng(ctx.seed)
    x = rng.normal(size=256)
    y = ctx.params["slope"] * x + rng.normal(scale=0.1, size=256)
    w = 0.0
    for epoch in range(ctx.params["epochs"]):
        w += ctx.params["lr"] * 2 * np.mean((y - w * x) * x)
        ctx.log_metric("loss", float(np.mean((y - w * x) ** 2)), step=epoch + 1)
    ctx.log_metric("slope_error", abs(w - ctx.params["slope"]))
    ctx.log_text(f"slope {w}", "notes/fit.txt")


def explode(ctx):
    ctx.log_metric("before_failure", 1.0)
    raise RuntimeError("the flux capacitor broke")


def wait(ctx):
    open(os.environ["TOY_MARKER"], "w").close()
    for _ in range(600):
        time.sleep(0.1)


@hookimpl
def dlbench_experiments():
    return [
        Experiment(
            name="toy_fit",
            summary="Fit a line by gradient descent.",
            run=fit_line,
            params=(
                Param("lr", float, 0.1, "step size", low=0.0, high=1.0),
                Param("epochs", int, 20, "gradient steps", low=1),
                Param("slope", float, 2.0, "true slope"),
                Param("mode", str, "plain", "a choice", choices=("plain", "fancy")),
                Param("verbose", bool, False, "say more"),
            ),
            logs=(Metric("loss", "min", "squared error per step"),
                  Metric("slope_error", "min", "distance of the fitted slope from the true one")),
            quick={"epochs": 3},
            tensorflow=False,
        ),
        Experiment(name="toy_explode", summary="Always fails.", run=explode, tensorflow=False),
        Experiment(name="toy_wait", summary="Waits to be interrupted.", run=wait, tensorflow=False),
    ]
'''
