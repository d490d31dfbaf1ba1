"""Orphaned runs: RUNNING in the store, but the process that ran them is gone.

A run killed by SIGKILL, the OOM killer or a power cut cannot record how it ended, so MLflow
shows it RUNNING forever. Every run records ``dlbench.host``, ``dlbench.pid`` and
``dlbench.pid_start`` (the process's start time, so a recycled pid is not mistaken for the
run's process). Any dlbench command that opens the store checks this host's RUNNING runs and
marks those whose process is gone FAILED, with the reason in ``dlbench.error``;
``dlbench runs --repair`` does the same on demand. Runs of other hosts are left alone: from
here, a live process there cannot be told from a dead one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass

HOST_TAG = "dlbench.host"
PID_TAG = "dlbench.pid"
PID_START_TAG = "dlbench.pid_start"


@dataclass(frozen=True)
class Orphan:
    """A RUNNING run whose process is gone, and why we believe so."""

    run_id: str
    experiment_id: str
    run_name: str
    reason: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (state first), or None without /proc (macOS)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 2 (the command name) may hold spaces and parentheses: split after the last ')'.
    return stat.rpartition(")")[2].split()


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_tags() -> dict[str, str]:
    """The tags that let a later command tell whether this process still runs."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    start = process_start(os.getpid())
    if start is not None:
        tags[PID_START_TAG] = start
    return tags


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process, and the same one when ``start`` is known."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc (macOS): existence is all we can know
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return start is None or len(fields) <= 19 or fields[19] == start


def running_runs(client, host: str | None = None) -> list:
    """Runs marked RUNNING over all active experiments; only ``host``'s when it is given."""
    from dlbench.store import search_all_runs

    query = "attributes.status = 'RUNNING'"
    if host is not None:
        quoted = host.replace("'", "\\'")
        query += f" and tags.`{HOST_TAG}` = '{quoted}'"
    return search_all_runs(client, query)


def find_orphans(client, host: str | None = None) -> list[Orphan]:
    """This host's RUNNING runs, over all active experiments, whose process is gone."""
    host = host or socket.gethostname()
    orphans = []
    for run in running_runs(client, host):
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if process_alive(pid, tags.get(PID_START_TAG)):
            continue
        orphans.append(
            Orphan(
                run_id=run.info.run_id,
                experiment_id=run.info.experiment_id,
                run_name=run.info.run_name or "",
                reason=(
                    f"orphaned: process {pid} on {host} ended without closing the run"
                    " (SIGKILL, out of memory or a crash); marked FAILED by dlbench"
                ),
            )
        )
    return orphans


def repair_orphans(client, host: str | None = None) -> list[Orphan]:
    """Mark every orphan FAILED with its reason; returns what was repaired."""
    from mlflow.entities import RunTag

    repaired = []
    for orphan in find_orphans(client, host):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        client.log_batch(
            orphan.run_id,
            tags=[
                RunTag("dlbench.error", orphan.reason),
                RunTag("dlbench.repaired_at", now),
                RunTag("mlflow.note.content", f"FAILED: {orphan.reason}"),
            ],
            synchronous=True,
        )
        client.set_terminated(orphan.run_id, "FAILED")
        repaired.append(orphan)
    return repaired


def repair_orphans_quietly(client) -> list[Orphan]:
    """What every command does on opening a store: repair, say so on stderr, never fail.

    A store this command cannot search (an old server, a permissions issue) must not stop
    the command the user actually asked for; ``dlbench runs --repair`` reports such errors.
    """
    if os.environ.get("DLBENCH_NO_REPAIR"):
        return []
    repaired: list[Orphan] = []
    with contextlib.suppress(Exception):
        repaired = repair_orphans(client)
    for orphan in repaired:
        print(f"note: run {orphan.run_id} was orphaned (process gone); marked FAILED",
              file=sys.stderr, flush=True)
    return repaired
