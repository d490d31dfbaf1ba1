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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from dlbench.errors import TrackingError, UsageError, first_line

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
        if db is not None and (not db.name or db.name == ":memory:"):
            raise TrackingError(
                f"tracking URI {uri!r} names no database file (an in-memory store forgets every"
                " run when the command ends); fix: sqlite:///path/to/mlflow.db"
            )
        if db is not None and db.is_dir():
            raise TrackingError(f"tracking URI {uri!r} names a folder, not a database file"
                                f" (fix: sqlite:///{db.resolve() / 'mlflow.db'})")
        # A SQLite store keeps its artifacts beside the database file, not in the cwd.
        return Store(uri, artifact_root=db.resolve().parent / "artifacts") if db else store
    root = DEFAULT_STORE_DIR.resolve()
    return Store(f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")


def open_store(store: Store, *, create: bool = True):
    """Create the store if needed, check it is writable, and return an MlflowClient.

    Commands that only read (``compare``, ``runs``, ``denoise``) pass ``create=False``: a
    mistyped SQLite path is then an error, not a new empty store, and the store is not checked
    for writability, so they work on a full disk or a read-only store.

    Checked before any training starts, so an unwritable, read-only, full or nearly full
    store fails in seconds with one clear line instead of after an hour of work. A new SQLite
    store is built aside and renamed into place (:func:`_create_sqlite`); it is switched to WAL
    mode and its client retries "database is locked", so several runs can share it, and says
    in one line when the disk fills up. Orphaned runs are the caller's business
    (:mod:`dlbench.orphans`).
    """
    db = store.sqlite_path
    if db is not None and not create and not _exists(db):
        raise TrackingError(
            f"no tracking store at {db} (fix: run an experiment first, or pass --tracking-uri)"
        )
    if db is not None and _exists(db):
        _check_is_sqlite(db)
    if create:  # readers must work on a full disk: only a command that writes checks it
        if db is not None:
            _check_writable(db.parent)
            if _exists(db):
                _check_writable_file(db)
        if store.artifact_root is not None:
            _check_writable(store.artifact_root)
    import logging

    from mlflow import MlflowClient

    # MLflow announces schema creation and migrations at INFO; users need only problems.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # It logs a traceback for each failed SQL call, then raises: dlbench reports it in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    if store.uri.startswith(("http://", "https://")):
        _check_reachable(store.uri)
    try:
        if db is None:
            client = MlflowClient(tracking_uri=store.uri)
            client.search_experiments(max_results=1)
        elif not create:
            client = _reader(db, store.uri)
        else:
            from filelock import FileLock

            # Several runs starting at once must not race to create the schema.
            with FileLock(str(db) + ".lock", timeout=120):
                if not _exists(db):
                    _create_sqlite(db, store.artifact_root or db.resolve().parent / "artifacts")
                client = MlflowClient(tracking_uri=store.uri)
                client.search_experiments(max_results=1)
                _use_wal(db)
            client = RetryingClient(client)
    except Exception as exc:
        if _is_out_of_space(exc):
            raise TrackingError(_out_of_space(store.uri, exc)) from exc
        raise TrackingError(f"cannot use tracking store {store.uri}: {first_line(exc)}") from exc
    return client


REACHABLE_TIMEOUT_S = 5.0
"""How long a tracking server may take to answer ``/health`` before dlbench gives up."""


def _check_reachable(uri: str) -> None:
    """Fail in seconds when a server URI does not answer HTTP (MLflow itself retries for
    minutes, and waits for ever on a server that accepts connections but never replies).

    Any HTTP reply counts, an error status too (a proxy in front may not route ``/health``):
    the server is there, and MLflow reports what it says.
    """
    import socket
    import ssl
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=REACHABLE_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return  # it answered the handshake; MLflow's TLS settings decide the rest
        if isinstance(reason, (socket.timeout, TimeoutError)):
            reason = f"no answer within {REACHABLE_TIMEOUT_S:g} s"
        elif isinstance(reason, OSError):
            reason = reason.strerror or reason
        raise TrackingError(
            f"cannot reach tracking server {uri} ({reason});"
            " fix: start it (mlflow server --host ... --port ...) or pass another --tracking-uri"
        ) from exc


def _reader(db: Path, uri: str):
    """A client for commands that only read an existing SQLite store, full disk or not.

    A reader of a WAL-mode database needs room for its 32 KiB index file (``-shm``); on a full
    disk it gets none, and SQLite says "disk I/O error". Then the file is read as it is
    (``immutable``: no index, no locks), which is all ``runs`` and ``compare`` need.
    """
    from urllib.parse import quote

    from mlflow import MlflowClient

    try:
        client = RetryingClient(MlflowClient(tracking_uri=uri))
        client.search_experiments(max_results=1)
    except Exception as exc:
        if not _is_out_of_space(exc):
            raise
        # sqlite+pysqlite: MLflow would otherwise make a folder named "file:" in the cwd.
        frozen = f"sqlite+pysqlite:///file:{quote(str(db.resolve()))}?immutable=1&uri=true"
        client = RetryingClient(MlflowClient(tracking_uri=frozen))
        client.search_experiments(max_results=1)
    return client


def _exists(db: Path) -> bool:
    """A store is there once its file has content (``sqlite3.connect`` leaves empty files)."""
    return db.is_file() and db.stat().st_size > 0


def _check_is_sqlite(db: Path) -> None:
    """A mistyped URI may name any file: refuse it before a lock file appears beside it.

    Read through SQLite, never with a plain ``open()``: closing any descriptor of a database
    file drops every POSIX lock this process holds on it, so a client already open here (a
    notebook, a test, ``compare`` inside a script) would stop excluding other writers and the
    file could be corrupted. SQLite's own descriptors are shared and closed safely, and
    ``immutable`` reads take no lock and need no ``-shm`` file (a full disk has no room for one).
    """
    import sqlite3
    from urllib.parse import quote

    try:
        connection = sqlite3.connect(f"file:{quote(str(db.resolve()))}?immutable=1", uri=True)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc):
            raise TrackingError(f"cannot read tracking store {db} ({exc})") from exc
        raise TrackingError(f"{db} is not an SQLite database (fix: pass the path of an MLflow"
                            " store, or a new file name, in --tracking-uri)") from exc


def _create_sqlite(db: Path, artifact_root: Path) -> None:
    """Build a new store's schema in a temporary file beside ``db``, then rename it into place.

    MLflow makes a SQLite store through dozens of schema migrations that are not one
    transaction: a process killed half way left a file that every later command refused
    ("table _alembic_tmp_runs already exists"). Built aside and renamed (atomic within one
    folder), the store is either absent or complete. Called under the store's file lock, so
    whatever is left of another build was left by a killed process and is removed.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    def remove_leftovers():
        for leftover in db.parent.glob(f".{db.name}.*.creating*"):
            leftover.unlink(missing_ok=True)

    remove_leftovers()
    building = db.with_name(f".{db.name}.{os.getpid()}.creating")
    try:
        with _unsynced(building):
            made = SqlAlchemyStore(f"sqlite:///{building}", artifact_root.as_uri())
            made.engine.dispose()  # every connection closed: the file holds the whole schema
        descriptor = os.open(building, os.O_RDONLY)  # no connection is left to lose its locks
        try:
            os.fsync(descriptor)  # on disk before it has its name
        finally:
            os.close(descriptor)
        os.replace(building, db)
    except BaseException:
        remove_leftovers()
        raise


@contextmanager
def _unsynced(building: Path):
    """Build the schema without a disk sync per migration (about 70 of them): seconds saved on
    every new store. Safe because the file has no readers and no name yet: a crash leaves a
    leftover that the next build removes, and the finished file is synced once before the
    rename gives it its name."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(building.resolve())

    def pragmas(connection, _record):
        if connection.execute("PRAGMA database_list").fetchone()[2] == target:
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA journal_mode=MEMORY")

    event.listen(Engine, "connect", pragmas)
    try:
        yield
    finally:
        event.remove(Engine, "connect", pragmas)


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


OUT_OF_SPACE_MESSAGES = ("database or disk is full", "disk I/O error", "No space left on device")


def _says(exc: BaseException | None, messages: tuple[str, ...]) -> bool:
    """Whether ``exc``, or an exception it was raised from, carries one of ``messages``."""
    while exc is not None:
        if any(message in str(exc) for message in messages):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_locked(exc: BaseException | None) -> bool:
    return _says(exc, LOCKED_MESSAGES)


def _is_out_of_space(exc: BaseException | None) -> bool:
    return _says(exc, OUT_OF_SPACE_MESSAGES)


def _out_of_space(uri: str, exc: BaseException) -> str:
    """SQLite says "disk I/O error" or "database or disk is full"; the user needs the fix."""
    return (f"cannot write tracking store {uri}: the disk is full or failing"
            f" ({first_line(exc).removeprefix('(sqlite3.OperationalError) ')});"
            " fix: free space there, or pass --tracking-uri")


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
                    if _is_out_of_space(exc):
                        raise TrackingError(_out_of_space(self._client.tracking_uri, exc)) from exc
                    if attempt == self._attempts - 1 or not _is_locked(exc):
                        raise
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)

        call.__name__ = name
        return call


MIN_FREE_BYTES = 16 * 2**20
"""Free space a store folder must have before a run starts: SQLite's growth and a few model
files. Below it a run would fail half way with SQLite's "disk I/O error"."""


def _check_writable(folder: Path) -> None:
    import shutil

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dlbench-write-check-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise TrackingError(
            f"tracking store folder {folder} is not writable ({exc.strerror or exc});"
            " fix: free space or permissions there, or pass --tracking-uri"
        ) from exc
    if free < MIN_FREE_BYTES:
        raise TrackingError(
            f"tracking store folder {folder} is nearly full ({free / 2**20:.1f} MiB free, a run"
            f" needs {MIN_FREE_BYTES // 2**20} MiB); fix: free space there, or pass --tracking-uri"
        )


def _check_writable_file(db: Path) -> None:
    """The database file itself (and its WAL files) must be writable: a read-only or immutable
    file in a writable folder otherwise fails at the first write, deep in MLflow.

    Asked with ``access()``, which opens nothing: closing a descriptor of the database would
    drop the locks of any SQLite connection this process already has on it.
    """
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists() and not os.access(path, os.W_OK):
            raise TrackingError(
                f"tracking store {path} is read-only (no write permission, or an immutable"
                " file); fix: make it writable (chmod u+w, chattr -i) or pass --tracking-uri"
            )


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
    location = artifact_folder(store.artifact_root, name).as_uri() if store.artifact_root else None
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:
        # Another process created it between our lookup and our create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def artifact_folder(root: Path, name: str) -> Path:
    """Where experiment ``name`` keeps its artifacts: a folder inside ``root``, whatever the
    name holds (``../x`` or ``/home/me`` would otherwise write artifacts anywhere)."""
    folder = (root / name).resolve()
    if root.resolve() not in folder.parents:
        raise UsageError(
            f"--experiment-name {name!r} would keep its artifacts outside the store, in {folder}"
            " (fix: a name without '..' or a leading '/')"
        )
    return folder


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
