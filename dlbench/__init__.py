"""dlbench: a plugin-based registry of deep-learning experiments, tracked in MLflow.

The public surface for plugin authors is small and imports nothing heavy:

    from dlbench import hookimpl, Experiment, Param, Dataset
"""

__version__ = "0.1.0"

from dlbench.hookspecs import hookimpl
from dlbench.experiment import Experiment, Param
from dlbench.dataset import Dataset
from dlbench.errors import DlbenchError, UsageError, DataError

__all__ = [
    "__version__",
    "hookimpl",
    "Experiment",
    "Param",
    "Dataset",
    "DlbenchError",
    "UsageError",
    "DataError",
]
