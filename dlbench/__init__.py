"""dlbench: a plugin-based registry of deep-learning experiments, tracked in MLflow.

The public surface for plugin authors is small and imports nothing heavy:

    from dlbench import hookimpl, Experiment, Param, Metric, Dataset

plus :mod:`dlbench.cache` (the data root and a content-keyed, atomic array cache),
:mod:`dlbench.unpickle` (pickled arrays without running code) and :mod:`dlbench.testing`
(the kit a plugin's own tests use).
"""

__version__ = "0.2.0"

from dlbench.hookspecs import hookimpl
from dlbench.declarations import Dataset, Experiment, Metric, Param
from dlbench.errors import DataError, DlbenchError, UsageError

__all__ = [
    "__version__",
    "hookimpl",
    "Experiment",
    "Param",
    "Metric",
    "Dataset",
    "DlbenchError",
    "UsageError",
    "DataError",
]
