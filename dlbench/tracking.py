"""Everything that talks to MLflow: where the store is, and a logging facade bound to one run.

The default store is SQLite inside ``./mlruns`` (MLflow 3 refuses the old file store), with
artifacts in ``./mlruns/artifacts``. ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` point
elsewhere: another SQLite file, PostgreSQL, or an ``http://`` tracking server.

The facade uses :class:`mlflow.MlflowClient` with an explicit run id rather than MLflow's
fluent "active run" stack, so nested child runs and worker processes can never log into the
wrong run. ``mlflow`` is imported inside functions: ``dlbench list`` must not pay for it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from dlbench.errors import TrackingError, first_line

DEFAULT_STORE_DIR = Path("mlruns")


@dataclass(frozen=True)
class Store:
    """A tracking store: its URI and, for SQLite stores, where new experiments keep artifacts."""

    uri: str
    artifact_root: Path | None = None

    @property
    def sqlite_path(self) -> Path | None:
        if not self.uri.startswith("sqlite:"):
            return None
        path = urlparse(self.uri).path
        # sqlite:///relative.db parses to "/relative.db"; sqlite:////abs.db to "//abs.db".
        return Path(path[1:]) if path.startswith("/") else Path(path)


def resolve_store(uri: str | None = None) -> Store:
    """The store a command uses: the given URI, else MLFLOW_TRACKING_URI, else ./mlruns."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        if "://" not in uri and not uri.startswith("sqlite:"):
            raise TrackingError(
                f"tracking URI {uri!r} is not a URI; MLflow 3 refuses plain folders"
                " (fix: sqlite:///path/to/mlflow.db or http://host:port)"
            )
        store = Store(uri)
        db = store.sqlite_path
        # A SQLite store keeps its artifacts beside the database file, not in the cwd.
        return Store(uri, artifact_root=db.resolve().parent / "artifacts") if db else store
    root = DEFAULT_STORE_DIR.resolve()
    return Store(f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")


def open_store(store: Store, *, repair: bool = True, create: bool = True):
    """Create the store if needed, check it is writable, and return an MlflowClient.

    Commands that only read (``compare``, ``runs``, ``denoise``) pass ``create=False``: a
    mistyped SQLite path is then an error, not a new empty store.

    Checked before any training starts, so an unwritable or full store fails in seconds with
    one clear line instead of after an hour of work. A SQLite store is switched to WAL mode
    and its client retries "database is locked", so several runs can share it. ``repair``
    marks this host's orphaned runs (RUNNING, process gone) FAILED: see :mod:`dlbench.repair`.
    """
    db = store.sqlite_path
    if db is not None and not create and not db.is_file():
        raise TrackingError(
            f"no tracking store at {db} (fix: run an experiment first, or pass --tracking-uri)"
        )
    if db is not None:
        _check_writable(db.parent)
    if store.artifact_root is not None:
        _check_writable(store.artifact_root)
    import logging

    from mlflow import MlflowClient

    # MLflow announces schema creation and migrations at INFO; users need only problems.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if store.uri.startswith(("http://", "https://")):
        _check_reachable(store.uri)
    try:
        if db is None:
            client = MlflowClient(tracking_uri=store.uri)
            client.search_experiments(max_results=1)
        else:
            from filelock import FileLock

            # Several runs starting at once must not race to create the schema.
            with FileLock(str(db) + ".lock", timeout=120):
                client = MlflowClient(tracking_uri=store.uri)
                client.search_experiments(max_results=1)
                _use_wal(db)
            client = RetryingClient(client)
    except Exception as exc:
        raise TrackingError(f"cannot use tracking store {store.uri}: {first_line(exc)}") from exc
    if repair:
        from dlbench.repair import repair_orphans_quietly

        repair_orphans_quietly(client)
    return client


def _check_reachable(uri: str) -> None:
    """Fail in seconds when nothing listens at a server URI (MLflow itself retries for minutes)."""
    import socket

    parsed = urlparse(uri)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=10):
            pass
    except OSError as exc:
        raise TrackingError(
            f"cannot reach tracking server {uri} ({exc.strerror or exc});"
            " fix: start it (mlflow server --host ... --port ...) or pass another --tracking-uri"
        ) from exc


def _use_wal(db: Path) -> None:
    """Write-ahead logging: readers stop blocking the writer, so concurrent runs wait less.

    The mode is stored in the database file, so this costs one pragma per command.
    """
    import sqlite3

    connection = sqlite3.connect(str(db), timeout=60)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


LOCKED_MESSAGES = ("database is locked", "database table is locked", "SQLITE_BUSY")


def _is_locked(exc: BaseException | None) -> bool:
    while exc is not None:
        if any(message in str(exc) for message in LOCKED_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class RetryingClient:
    """An MlflowClient whose calls are retried, with jittered back-off, while SQLite is locked.

    MLflow sets a 20 s busy timeout, but SQLite still answers "locked" at once when two
    transactions both try to upgrade from reading to writing; a locked write was rolled
    back, so calling it again is safe. Everything else passes straight through.
    """

    def __init__(self, client, attempts: int = 10, first_delay: float = 0.05) -> None:
        self._client = client
        self._attempts = attempts
        self._first_delay = first_delay

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            import random

            delay = self._first_delay
            for attempt in range(self._attempts):
                try:
                    return attribute(*args, **kwargs)
                except Exception as exc:
                    if attempt == self._attempts - 1 or not _is_locked(exc):
                        raise
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)

        call.__name__ = name
        return call


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dlbench-write-check-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise TrackingError(
            f"tracking store folder {folder} is not writable ({exc.strerror or exc});"
            " fix: free space or permissions there, or pass --tracking-uri"
        ) from exc


def all_experiment_ids(client) -> list[str]:
    """Ids of every active MLflow experiment in the store, page by page."""
    found, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        found.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return found


def search_all_runs(client, filter_string: str, order_by: list[str] | None = None) -> list:
    """Every active run of every experiment matching ``filter_string``, page by page."""
    experiment_ids = all_experiment_ids(client)
    runs, token = [], None
    while experiment_ids:
        page = client.search_runs(experiment_ids, filter_string=filter_string,
                                  order_by=order_by, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def experiment_id(client, name: str, store: Store) -> str:
    """The id of the MLflow experiment called ``name``, created on first use."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it in the UI or pass"
                " --experiment-name with another name"
            )
        return found.experiment_id
    location = (store.artifact_root / name).as_uri() if store.artifact_root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process created it between our lookup and our create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


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

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch, synchronous=True)

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
        """Log a mono signal as a 16-bit .wav: MLflow's artifact viewer plays it."""
        import numpy as np
        import soundfile

        path = self._scratch_file(artifact_file)
        clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
        soundfile.write(path, clipped, int(sample_rate), subtype="PCM_16")
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

    def log_model(self, model, name: str) -> Path:
        """Save a Keras model as ``<name>/<name>.keras`` (:func:`model_file`) in the run;
        returns the local folder.

        Extra files a plugin writes into the returned folder before the run ends are not
        uploaded; log them with :meth:`log_artifact` under the same ``name``.
        """
        folder = self.scratch / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / model_file(name))
        self.client.log_artifacts(self.run_id, str(folder), name)
        return folder

    def flush_metrics(self) -> None:
        """Write what Keras callbacks still buffer: before a checkpoint, and when a run ends
        early (a failed or killed run keeps its curve up to the last epoch)."""
        for callback in self._metric_callbacks:
            callback.flush()

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


def _parent(artifact_file: str) -> str | None:
    parent = str(Path(artifact_file).parent)
    return None if parent in ("", ".") else parent


def _param_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def ui_command(uri: str | None, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line that shows ``uri``, artifacts included."""
    import sys

    store = resolve_store(uri)
    if store.uri.startswith(("http://", "https://")):
        raise TrackingError(f"{store.uri} is already a tracking server: open it in a browser")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store.uri]
    if store.artifact_root is not None:
        store.artifact_root.mkdir(parents=True, exist_ok=True)
        command += ["--artifacts-destination", store.artifact_root.as_uri()]
    return command + ["--host", host, "--port", str(port)]
