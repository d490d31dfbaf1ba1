"""An example dlbench plugin: the hook that tells dlbench what this package provides.

``dlbench list`` imports this module, so it imports nothing heavy: numpy and matplotlib are
imported inside the experiment's functions (see :mod:`dlbench_example.logistic`).
"""

from dlbench import Experiment, Metric, Param, hookimpl

from dlbench_example.logistic import run

__version__ = "0.1.0"


@hookimpl
def dlbench_experiments():
    return [
        Experiment(
            name="example_logistic",
            summary="Logistic regression by gradient descent on two Gaussian blobs (numpy)",
            run=run,
            params=(
                Param("learning_rate", float, 0.5, "gradient-descent step size",
                      low=0.0, high=10.0),
                Param("epochs", int, 200, "full-batch gradient steps", low=1, high=100_000),
                Param("samples", int, 2000, "points per class", low=10, high=1_000_000),
                Param("separation", float, 2.0, "distance between the class means", low=0.0),
                Param("l2", float, 0.0, "L2 penalty on the weights", low=0.0),
            ),
            # What it logs, and which way is better: `dlbench sweep` ranks by it.
            logs=(Metric("loss", "min", "training cross-entropy per step"),
                  Metric("val_loss", "min", "validation cross-entropy per step"),
                  Metric("val_accuracy", "max", "validation accuracy per step"),
                  Metric("accuracy", "max", "final validation accuracy")),
            quick={"epochs": 20, "samples": 200},
            # Plain numpy: dlbench skips TensorFlow's seeding and version tags.
            tensorflow=False,
        )
    ]
