"""MLflow Models from a run: what ``ctx.log_model`` and ``ctx.log_pyfunc_model`` write, and
registering one (``dlbench run --register NAME``).

A model is logged with MLflow's own model API, so it is an MLflow Model like any other: a
``MLmodel`` file, a signature inferred from an input example and the output the model gave
for it, the example itself, and requirements pinning dlbench, the plugin's distribution and
the TensorFlow/Keras it was trained with. It is a *logged model* of the run (the UI's Logged
models and Models column) and loads as ``runs:/<run_id>/<name>``.

Two kinds, both generic (the core knows nothing of what the model computes):

- :func:`log_keras_model`: MLflow's Keras flavour; its pyfunc ``predict`` is the model's.
- :func:`log_pyfunc_model`: a folder of files the plugin wrote, served by a ``loader_module``
  of the plugin (MLflow's ``_load_pyfunc(path)`` protocol), the files kept at the top of the
  model, where the plugin put them.

MLflow's model functions find the store through the process-wide tracking URI and take the
run by id; :func:`using_store` points them at the run's store for the duration of one call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dlbench.errors import UsageError

PRIMARY_TAG = "dlbench.primary"
"""Set on a logged model an experiment marks as the one ``--register`` registers."""

REGISTERED_TAG = "dlbench.registered_model"
"""Set on a run whose model ``--register`` registered: ``NAME/VERSION``."""


@dataclass(frozen=True)
class LoggedModel:
    """A model logged into a run: where it loads from."""

    name: str
    model_id: str
    run_id: str
    primary: bool = False

    @property
    def uri(self) -> str:
        """``runs:/<run_id>/<name>``: what ``mlflow.pyfunc.load_model`` and
        ``mlflow models serve -m`` take."""
        return f"runs:/{self.run_id}/{self.name}"


def requirements(plugin=None) -> list[str]:
    """Pins for the model's environment: dlbench, the plugin's distribution when it is
    another, and the frameworks this process has loaded (MLflow adds itself)."""
    from importlib import metadata

    import dlbench

    pins = [f"dlbench=={dlbench.__version__}"]
    distribution = getattr(plugin, "distribution", None)
    if distribution and distribution != "dlbench" and getattr(plugin, "version", None):
        pins.append(f"{distribution}=={plugin.version}")
    for module in ("tensorflow", "keras", "numpy"):
        if module in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                pins.append(f"{module}=={metadata.version(module)}")
    return pins


@contextlib.contextmanager
def using_store(uri: str):
    """Point MLflow's process-wide tracking and registry URIs at ``uri`` meanwhile: its
    model functions (logging, ``models:/`` URIs) read them instead of taking a client.

    Restored exactly afterwards, unset ones included: MLflow's setters also export
    ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` to the environment (for subprocesses),
    and its getters report a default where nothing was set, so the previous state is read
    from MLflow's module globals."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environment = {name: os.environ.get(name) for name in variables}
    previous = tracking._tracking_uri, registry._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _log(tracker, name: str, flavor, *, primary: bool, **kwargs) -> LoggedModel:
    """Create the logged model in the run's experiment, with the run's params, then let
    MLflow write it (left to itself, MLflow files it under the process's active experiment).

    The signature was inferred from what the model returned for the example, in this
    process: MLflow's check that reloads the model to serve the example again is skipped
    (tests load and serve the logged models)."""
    from mlflow.models import Model

    client, run_id = tracker.client, tracker.run_id
    run = client.get_run(run_id)
    created = client.create_logged_model(
        run.info.experiment_id, name=name, source_run_id=run_id, params=dict(run.data.params),
        tags={PRIMARY_TAG: str(primary).lower()})
    with using_store(client.tracking_uri):
        Model.log(None, name=name, flavor=flavor, run_id=run_id, model_id=created.model_id,
                  **kwargs)
    return LoggedModel(name=name, model_id=created.model_id, run_id=run_id, primary=primary)


def log_keras_model(tracker, model, name: str, *, input_example, plugin=None,
                    primary: bool = False, metadata: Mapping[str, Any] | None = None) -> LoggedModel:
    """Log a Keras model as MLflow's Keras flavour; the signature is inferred from
    ``input_example`` and what the model returns for it."""
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    return _log(tracker, name, _KerasFlavor, primary=primary, model=model, signature=signature,
                input_example=input_example, pip_requirements=requirements(plugin),
                metadata=dict(metadata or {}) or None, validate_serving_input=False)


class _KerasFlavor:
    """MLflow's Keras flavour, given the folder it writes its input example into before it
    creates it (MLflow 3.17 writes the example first, into a folder not yet there)."""

    __name__ = "keras"

    @staticmethod
    def save_model(path, mlflow_model, validate_serving_input=None, **kwargs):
        import os

        import mlflow.keras

        os.makedirs(path, exist_ok=True)
        mlflow.keras.save_model(path=path, mlflow_model=mlflow_model, **kwargs)


class _FilesFlavor:
    """A "flavour" for :meth:`mlflow.models.Model.log`: a pyfunc whose ``loader_module``
    reads the files of ``folder``, copied to the top of the model."""

    __name__ = "python_function"

    def __init__(self, folder: Path, loader_module: str) -> None:
        self.folder, self.loader_module = Path(folder), loader_module

    def save_model(self, path, mlflow_model, signature=None, input_example=None,
                   pip_requirements=None, metadata=None, **_):
        import mlflow.pyfunc

        # No data_path: MLflow then hands the loader the model's own folder.
        mlflow.pyfunc.save_model(path, loader_module=self.loader_module, mlflow_model=mlflow_model,
                                 signature=signature, input_example=input_example,
                                 pip_requirements=pip_requirements, metadata=metadata)
        shutil.copytree(self.folder, path, dirs_exist_ok=True)


def log_pyfunc_model(tracker, folder: Path, name: str, *, loader_module: str, input_example,
                     output_example, params: Mapping[str, Any] | None = None, plugin=None,
                     primary: bool = False, metadata: Mapping[str, Any] | None = None) -> LoggedModel:
    """Log the files in ``folder`` as a pyfunc model that ``loader_module._load_pyfunc(path)``
    serves; ``output_example`` is what it returns for ``input_example`` (the signature)."""
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, output_example, params=dict(params) if params else None)
    return _log(tracker, name, _FilesFlavor(folder, loader_module), primary=primary,
                signature=signature, input_example=input_example,
                pip_requirements=requirements(plugin), metadata=dict(metadata or {}) or None,
                validate_serving_input=False)


def check_registration(name: str | None, alias: str | None) -> None:
    """Usage errors in ``--register``/``--alias``, found before anything is written."""
    import re

    if alias and not name:
        raise UsageError("--alias needs --register NAME (fix: add --register NAME)")
    if name is not None and not name.strip():
        raise UsageError("--register: the model name is empty (fix: --register my-denoiser)")
    if alias and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", alias):
        raise UsageError(f"--alias {alias!r}: an alias is letters, digits, _ and -"
                         " (fix: --alias champion)")
    if alias and re.fullmatch(r"v\d+|latest", alias, flags=re.IGNORECASE):
        raise UsageError(f"--alias {alias!r} is reserved by MLflow (fix: --alias champion)")


def pick_registered(models: list[LoggedModel], experiment: str) -> LoggedModel:
    """The model ``--register`` registers: the one the experiment marked primary, else the
    only one it logged."""
    primary = [m for m in models if m.primary]
    if len(primary) == 1:
        return primary[0]
    if len(models) == 1:
        return models[0]
    if not models:
        raise UsageError(f"--register: experiment {experiment!r} logged no model to register")
    names = ", ".join(m.uri for m in models)
    raise UsageError(f"--register: experiment {experiment!r} logged several models and marked"
                     f" none primary ({names}); register one with the MLflow client")


def register(client, model: LoggedModel, name: str, alias: str | None = None):
    """A new version of registered model ``name`` (created on first use) from ``model``,
    with ``alias`` pointing at it; returns MLflow's ModelVersion."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    with using_store(client.tracking_uri):  # where MLflow looks the logged model up
        version = client.create_model_version(name, source=f"models:/{model.model_id}",
                                              run_id=model.run_id, model_id=model.model_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    client.set_tag(model.run_id, REGISTERED_TAG, f"{name}/{version.version}")
    return version
