"""A logging facade bound to one MLflow run: what ``ctx.log_*`` does.

It uses :class:`mlflow.MlflowClient` with an explicit run id rather than MLflow's fluent
"active run" stack, so nested child runs and worker processes can never log into the wrong
run. Heavy libraries are imported inside the methods that need them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping


def model_file(name: str) -> str:
    """The file name :meth:`Tracker.log_model` gives model ``name`` inside its artifact folder."""
    return f"{name}.keras"


class Tracker:
    """Logging calls bound to one MLflow run; what ``ctx.log_*`` does."""

    def __init__(self, client, run_id: str, scratch: Path) -> None:
        self.client = client
        self.run_id = run_id
        self.scratch = scratch
        self._metric_callbacks: list = []  # what keras_callback() handed out; flushed together
        self.logged_models: list = []  # dlbench.models.LoggedModel, this run's and its children's
        self.plugin = None  # the experiment's PluginInfo: its distribution is pinned in models
        self._step_observers: list = []  # see observe_steps()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        if step is not None:
            self.step_logged(metrics, step)

    def observe_steps(self, observer) -> None:
        """Call ``observer(key, value, step)`` for every metric logged with a step, from
        ``log_metric(..., step=)`` and ``keras_callback()`` alike (how a sweep's pruner
        watches a trial, whatever the plugin logs with). It may raise to stop the run."""
        self._step_observers.append(observer)

    def step_logged(self, metrics: Mapping[str, float], step: int) -> None:
        """Tell the observers that ``metrics`` of ``step`` were logged (or buffered)."""
        for observer in self._step_observers:
            for key, value in metrics.items():
                observer(key, float(value), step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, _param_text(v)) for k, v in params.items()]
        self.client.log_batch(self.run_id, params=batch, synchronous=True)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        self.client.log_batch(self.run_id, tags=batch, synchronous=True)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        local_path = Path(local_path)
        if local_path.is_dir():
            self.client.log_artifacts(self.run_id, str(local_path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(obj, indent=2, default=str), artifact_file)

    def log_figure(self, figure, artifact_file: str) -> None:
        """Log a matplotlib figure as an image and close it (figures are not freed otherwise).

        Plugins draw with plain ``pyplot``: the runner selects the file-only Agg backend
        (``MPLBACKEND``) before any plugin code runs, so no window or display is needed.
        """
        import matplotlib.pyplot as plt

        try:
            self.client.log_figure(self.run_id, figure, artifact_file)
        finally:
            plt.close(figure)

    def log_audio(self, samples, sample_rate: int, artifact_file: str) -> None:
        """Log a mono signal (floats in [-1, 1]) as a 16-bit PCM .wav: MLflow's artifact
        viewer plays it. Written with the standard library: the core needs no audio package."""
        import wave

        import numpy as np

        path = self._scratch_file(artifact_file)
        clipped = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
        pcm = np.round(clipped * 32767.0).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
        self.client.log_artifact(self.run_id, str(path), _parent(artifact_file))

    def log_table(self, rows: list[Mapping[str, Any]], artifact_file: str) -> None:
        """Log rows of a table as .json (a list of objects) or .csv (by the file's suffix)."""
        if artifact_file.endswith(".csv"):
            import csv

            path = self._scratch_file(artifact_file)
            columns = list(dict.fromkeys(key for row in rows for key in row))
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
            self.client.log_artifact(self.run_id, str(path), _parent(artifact_file))
        else:
            self.log_dict([dict(row) for row in rows], artifact_file)

    def log_model(self, model, name: str, *, input_example=None, primary: bool = False) -> Path:
        """Log a Keras model as an MLflow Model named ``name`` (Keras flavour: ``MLmodel``,
        signature, input example, pinned requirements; loads as ``runs:/<run_id>/<name>``),
        and keep ``<name>/<name>.keras`` (:func:`model_file`) in the run as before; returns
        the local folder of that file.

        ``input_example``: a few real inputs (default: one batch of zeros of the model's input
        shape). ``primary``: this is the model ``dlbench run --register`` registers.
        """
        from dlbench.models import log_keras_model

        folder = self.scratch / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / model_file(name))
        self.client.log_artifacts(self.run_id, str(folder), name)
        if input_example is None:
            input_example = _zeros_like_input(model)
        self.logged_models.append(log_keras_model(
            self, model, name, input_example=input_example, plugin=self.plugin, primary=primary))
        return folder

    def log_pyfunc_model(self, folder: str | Path, name: str, *, loader_module: str,
                         input_example, output_example, params: Mapping[str, Any] | None = None,
                         metadata: Mapping[str, Any] | None = None, primary: bool = False):
        """Log the files in ``folder`` as an MLflow pyfunc model named ``name``, served by
        ``loader_module`` (a module of the plugin with ``_load_pyfunc(path)``, which gets the
        model's folder, the files at its top). The signature comes from ``input_example``,
        ``output_example`` (what the model returns for it) and ``params`` (inference params
        with their defaults). Returns the :class:`dlbench.models.LoggedModel`."""
        from dlbench.models import log_pyfunc_model

        logged = log_pyfunc_model(
            self, Path(folder), name, loader_module=loader_module, input_example=input_example,
            output_example=output_example, params=params, metadata=metadata, plugin=self.plugin,
            primary=primary)
        self.logged_models.append(logged)
        return logged

    def log_dataset(self, name: str, *, digest: str, source: str, context: str = "training",
                    features: Mapping[str, tuple] | None = None,
                    targets: Mapping[str, tuple] | None = None,
                    profile: Mapping[str, Any] | None = None) -> None:
        """Record a dataset as an input of the run, in MLflow's Datasets (``context``:
        ``training``, ``evaluation``, ...). ``ctx.data`` records what it loads; log the other
        parts (e.g. the evaluation clips) with this.

        ``features`` and ``targets`` map a column name to ``(dtype, shape)`` (``-1``: any
        size), shown as the dataset's schema; ``profile`` is a JSON-able summary (counts,
        durations). MLflow keeps 36 characters of a digest: the full one goes into tag
        ``dlbench.dataset.<name>.digest`` (``dlbench.dataset.<name>.<context>.digest`` for a
        context other than training).
        """
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        schema = _tensor_schema(features, targets) if features else None
        entity = Dataset(name=name, digest=digest[:36], source_type="dlbench", source=source,
                         schema=schema, profile=json.dumps(profile, default=str) if profile else None)
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(entity, tags=[tag])])
        where = f"dlbench.dataset.{name}" + ("" if context == "training" else f".{context}")
        self.set_tags({f"{where}.digest": digest, f"{where}.source": source})

    def flush_metrics(self) -> None:
        """Write what Keras callbacks still buffer: before a checkpoint, and when a run ends
        early (a failed or killed run keeps its curve up to the last epoch)."""
        for callback in self._metric_callbacks:
            callback.flush()

    def record_epoch(self, model, epoch: int, logs) -> None:
        """Have the metric callbacks of ``model``'s fit buffer epoch ``epoch`` now (once)."""
        for callback in self._metric_callbacks:
            if getattr(callback, "model", None) is model:
                callback.record(epoch, logs)

    def keras_callback(self, prefix: str = ""):
        """A Keras callback that logs every epoch's metrics (step = epoch, batched writes)."""
        from dlbench.keras_logging import MetricsCallback

        callback = MetricsCallback(self, prefix=prefix)
        # Checkpoints flush these first, so a resumed run's history has no gap.
        self._metric_callbacks.append(callback)
        return callback

    def _scratch_file(self, artifact_file: str) -> Path:
        path = self.scratch / "artifacts" / self.run_id / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _tensor_schema(features, targets) -> str:
    """MLflow's JSON form of a tensor dataset schema (what the UI's dataset view shows)."""
    import json

    import numpy as np
    from mlflow.types import Schema, TensorSpec

    def schema(columns):
        return Schema([TensorSpec(np.dtype(dtype), tuple(shape), name)
                       for name, (dtype, shape) in columns.items()]).to_json()

    return json.dumps({"mlflow_tensorspec": {
        "features": schema(features), "targets": schema(targets) if targets else None}})


def _zeros_like_input(model):
    """One input of zeros shaped like ``model``'s input (the batch dimension set to 1)."""
    import numpy as np

    shape = tuple(1 if size is None else size for size in model.input_shape)
    return np.zeros(shape, dtype=getattr(model.inputs[0], "dtype", None) or "float32")


def _parent(artifact_file: str) -> str | None:
    parent = str(Path(artifact_file).parent)
    return None if parent in ("", ".") else parent


def _param_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


