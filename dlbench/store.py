"""The tracking store: where it is, opening it (checked, shared safely), and finding runs in it.

The default store is SQLite inside ``./mlruns`` (MLflow 3 refuses the old file store), with
artifacts in ``./mlruns/artifacts``. ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` point
elsewhere: another SQLite file, PostgreSQL, or an ``http://`` tracking server.

Everything goes through :class:`mlflow.MlflowClient` with explicit run ids (see
:mod:`dlbench.tracker`). ``mlflow`` is imported inside functions: ``dlbench list`` must not
pay for it.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
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


def open_store(store: Store, *, create: bool = True):
    """Create the store if needed, check it is writable, and return an MlflowClient.

    Commands that only read (``compare``, ``runs``, ``denoise``) pass ``create=False``: a
    mistyped SQLite path is then an error, not a new empty store.

    Checked before any training starts, so an unwritable or full store fails in seconds with
    one clear line instead of after an hour of work. A SQLite store is switched to WAL mode
    and its client retries "database is locked", so several runs can share it. Orphaned runs
    are the caller's business (:mod:`dlbench.orphans`).
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


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""Makes the MLflow UI open an experiment in its model-training view (runs, charts), not the
GenAI one (traces) it picks for an experiment without a kind."""


def experiment_id(client, name: str, store: Store) -> str:
    """The id of the MLflow experiment called ``name``, created on first use (as a
    model-training experiment: :data:`EXPERIMENT_KIND`, also given to one that has no kind)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted; restore it in the UI or pass"
                " --experiment-name with another name"
            )
        for key, value in EXPERIMENT_KIND.items():
            if key not in found.tags:
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    location = (store.artifact_root / name).as_uri() if store.artifact_root else None
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:
        # Another process created it between our lookup and our create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


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
