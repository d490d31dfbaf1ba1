"""How every run starts and ends: ``dlbench run``, a sweep's parent run and ``ctx.child`` runs.

:func:`start_run` creates the MLflow run with the tags every run carries (who started it,
from what, in which process: how orphans are found later). :func:`ending` wraps the work and
records how it ended, the same way for every kind of run:

- FINISHED when the block completes;
- FAILED when it raises (reason in tag ``dlbench.error``, traceback in artifact
  ``error/traceback.txt``), or when the block calls ``outcome.fail(reason)``;
- KILLED on Ctrl-C or SIGTERM (turned into :class:`Terminated` while the block runs);
- KILLED when a sweep's pruner stops it (:class:`dlbench.errors.Pruned`), tagged
  ``dlbench.pruned=true`` and ``dlbench.pruned_at_step``, without an error.

While the block runs, MLflow's monitor samples system metrics into the run
(:mod:`dlbench.system_metrics`); a finished run ends with a Markdown description
(:mod:`dlbench.notes`).

A run is never left RUNNING by an exception; only SIGKILL or a power cut can do that, and
:mod:`dlbench.orphans` closes those afterwards.
"""

from __future__ import annotations

import contextlib
import getpass
import platform
import signal
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import dlbench
from dlbench import system_metrics
from dlbench.errors import DlbenchError, Pruned, TrackingError, UsageError, first_line
from dlbench.notes import NOTE_TAG, write_note
from dlbench.orphans import PID_START_TAG, PID_TAG, process_alive, process_tags

PARENT_TAG = "mlflow.parentRunId"
ERROR_TAG = "dlbench.error"
TRACEBACK_FILE = "error/traceback.txt"
PRUNED_TAG = "dlbench.pruned"
PRUNED_STEP_TAG = "dlbench.pruned_at_step"


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so a terminated run unwinds like Ctrl-C."""


STOPS = (KeyboardInterrupt, Terminated)
"""What ends a run KILLED rather than FAILED: the user, or the system, stopped it."""


def stop_reason(exc: BaseException) -> str:
    """Why a KILLED run stopped: Ctrl-C, or SIGTERM turned into :class:`Terminated`."""
    return "interrupted by SIGINT" if isinstance(exc, KeyboardInterrupt) else "terminated by SIGTERM"


@contextlib.contextmanager
def sigterm_raises():
    """Turn SIGTERM into :class:`Terminated` for the duration of a run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_user() -> str:
    """Who started the run, as MLflow's fluent API finds it: the tracking server's user name
    (``MLFLOW_TRACKING_USERNAME`` or ``~/.mlflow/credentials``), else the login name."""
    try:
        from mlflow.utils.credentials import read_mlflow_creds

        username = read_mlflow_creds().username
    except Exception:  # an unreadable credentials file is no reason to fail a run
        username = None
    if username:
        return username
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def context_tags() -> dict[str, str]:
    """Tags every run gets, as MLflow's fluent API would set them, plus this process."""
    return {
        "mlflow.user": run_user(),
        "mlflow.source.type": "LOCAL",
        "dlbench.version": dlbench.__version__,
        "dlbench.python": platform.python_version(),
        **process_tags(),  # host, pid and pid start: how orphans are found
    }


def start_run(client, experiment_id: str, *, name: str | None = None,
              parent_run_id: str | None = None, tags: Mapping[str, str] = ()) -> str:
    """Create a RUNNING run with :func:`context_tags`, ``tags``, nested under ``parent_run_id``."""
    all_tags = {**context_tags(), **dict(tags)}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    return client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id


@dataclass
class Outcome:
    """How a run ended (``status`` stays RUNNING while it runs)."""

    status: str = "RUNNING"
    error: str | None = None
    trace: str | None = None
    tags: dict = field(default_factory=dict)  # recorded with the end

    def fail(self, error: str) -> None:
        """End the run FAILED with ``error`` although nothing raised (a sweep's failed trials)."""
        self.status, self.error = "FAILED", error

    def caught(self, exc: BaseException) -> None:
        if isinstance(exc, Pruned):
            self.status = "KILLED"
            self.tags = {PRUNED_TAG: "true", PRUNED_STEP_TAG: exc.step,
                         NOTE_TAG: f"KILLED: {exc} by the sweep's pruner"}
            return
        self.trace = traceback.format_exc()
        if isinstance(exc, STOPS):
            self.status, self.error = "KILLED", stop_reason(exc)
        elif isinstance(exc, DlbenchError):
            self.status, self.error = "FAILED", str(exc)
        else:
            self.status, self.error = "FAILED", f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def ending(tracker, *, reraise: bool = False,
           before_end: Callable[[Outcome], None] | None = None) -> Iterator[Outcome]:
    """Run the block, then record how the run of ``tracker`` ended (see the module doc).

    An exception is recorded and swallowed, unless ``reraise`` (child runs pass it up, so
    their parent ends the same way); anything that is not an ordinary error or a stop
    (``SystemExit``) is always passed on. ``before_end(outcome)`` runs first in every case:
    what a parent logs about its children, even when stopped half way.
    """
    outcome = Outcome()
    monitor = system_metrics.start(tracker.client, tracker.run_id)
    try:
        with sigterm_raises():
            yield outcome
    except BaseException as exc:
        outcome.caught(exc)
        _record_end(tracker, outcome, before_end, monitor)
        if reraise or not isinstance(exc, (Exception, *STOPS)):
            raise
    else:
        if outcome.status == "RUNNING":
            outcome.status = "FINISHED"
        _record_end(tracker, outcome, before_end, monitor)


def _record_end(tracker, outcome: Outcome, before_end, monitor=None) -> None:
    """Best effort on the error path (the store may be the problem), then the status.

    A finished run gets its description (:mod:`dlbench.notes`), a failed or killed one its
    reason; the system-metrics monitor stops first, while the run is still RUNNING.
    """
    with contextlib.suppress(Exception):
        tracker.flush_metrics()
    with contextlib.suppress(Exception):
        system_metrics.stop(monitor)
    if before_end is not None:
        with contextlib.suppress(Exception):
            before_end(outcome)
    if outcome.status == "FINISHED":
        with contextlib.suppress(Exception):
            experiment = getattr(tracker, "experiment", None)
            write_note(tracker.client, tracker.run_id,
                       declared=experiment.metric_names if experiment else (),
                       models=getattr(tracker, "logged_models", ()))
    if outcome.tags:
        with contextlib.suppress(Exception):
            tracker.set_tags(outcome.tags)
    if outcome.error is not None:
        with contextlib.suppress(Exception):
            tracker.set_tags({ERROR_TAG: outcome.error,
                              NOTE_TAG: f"{outcome.status}: {outcome.error}"})
            if outcome.trace:
                tracker.log_text(outcome.trace, TRACEBACK_FILE)
    tracker.client.set_terminated(tracker.run_id, outcome.status)


def resumable_run(client, run_id: str, experiment_name: str, what: str = "run"):
    """Run ``run_id`` of ``experiment_name``, if ``--resume`` may continue it: it exists, has
    not FINISHED and its process is gone; a UsageError (TrackingError) saying why not."""
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        raise TrackingError(f"--resume {run_id}: no such run in this store ({first_line(exc)})") from None
    tags = run.data.tags
    if tags.get("dlbench.experiment") != experiment_name:
        raise UsageError(f"--resume {run_id}: that {what} is of experiment"
                         f" {tags.get('dlbench.experiment')!r}, not {experiment_name!r}")
    if run.info.status == "FINISHED":
        raise UsageError(f"--resume {run_id}: the {what} already FINISHED; nothing to continue")
    if run.info.status == "RUNNING" and tags.get(PID_TAG, "").isdigit() \
            and process_alive(int(tags[PID_TAG]), tags.get(PID_START_TAG)):
        raise UsageError(f"--resume {run_id}: the {what} is still running (pid {tags[PID_TAG]})")
    return run


def reopen_run(client, run_id: str, tags: Mapping[str, str]) -> None:
    """Mark an ended run RUNNING again, owned by this process (``tags``: at least
    :func:`context_tags`); its old failure note goes. How ``--resume`` continues a run."""
    from mlflow.entities import RunTag

    client.update_run(run_id, status="RUNNING")
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()], synchronous=True)
    for key in (ERROR_TAG, NOTE_TAG):
        with contextlib.suppress(Exception):  # the tag was not there
            client.delete_tag(run_id, key)
