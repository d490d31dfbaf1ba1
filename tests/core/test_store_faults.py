"""Faults in the tracking store itself: a process SIGKILLed while it creates a new SQLite store.

MLflow builds a new store through dozens of schema migrations. The child process below is a
real ``dlbench run`` whose SQLAlchemy engine pauses (and says so in a marker file) right after
a chosen SQL statement of that build; the test then SIGKILLs it there, so every kill point is
hit exactly, not by timing. Whatever the point, the next command must find a working store.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support import client

PAUSING_DLBENCH = '''
import os, sys, time

from sqlalchemy import event
from sqlalchemy.engine import Engine

statement_part, marker = os.environ["PAUSE_AFTER"], os.environ["PAUSE_MARKER"]
left = [int(os.environ["PAUSE_NTH"])]


@event.listens_for(Engine, "after_cursor_execute")
def pause(connection, cursor, statement, *args):
    if statement_part in statement:
        left[0] -= 1
        if left[0] == 0:
            open(marker, "w").close()
            time.sleep(600)  # until SIGKILLed


from dlbench.cli import main

main(prog_name="dlbench")
'''

KILL_POINTS = [
    # (what is half done, a statement of the build, its occurrence)
    ("table-copy", "CREATE TABLE _alembic_tmp_", 1),  # a migration copies a table
    ("between-migrations", "UPDATE alembic_version", 5),  # some migrations done, not all
]


@pytest.mark.parametrize("what, statement, nth", KILL_POINTS, ids=[k[0] for k in KILL_POINTS])
def test_store_killed_during_its_creation_works_afterwards(what, statement, nth, tmp_path,
                                                            toy_env, cli):
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    marker = tmp_path / "paused"
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": uri, "PAUSE_AFTER": statement,
           "PAUSE_NTH": str(nth), "PAUSE_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", PAUSING_DLBENCH, "run", "toy_fit", "--quick"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    out = cli(["run", "toy_fit", "--quick", "--json"], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0, out.stderr
    run = client(uri).get_run(json.loads(out.stdout)["run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics["loss"] > 0
    # The killed build left nothing behind beside the store.
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith(".")) == []


def one_error(stderr: str) -> str:
    """The single ``error:`` line of a failed command (and no traceback)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def runs_in(uri: str) -> list:
    mlflow = client(uri)
    return mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])


@pytest.fixture
def read_only():
    """``read_only(path)``: make a file unwritable even for root (``chattr +i``), or by
    permissions for other users; undone afterwards."""
    made = []

    def make(path):
        if os.geteuid() != 0:
            path.chmod(0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for root here (chattr +i failed)")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o644)


def test_read_only_store_is_one_line_and_readers_still_work(tmp_path, cli, toy_env, read_only):
    from dlbench.testing import run_cli

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    # Made by another process: a connection this one kept open would still write.
    assert run_cli(["run", "toy_fit", "--quick"], tracking_uri=uri, env=toy_env).returncode == 0
    read_only(tmp_path / "mlflow.db")

    out = cli(["run", "toy_fit", "--quick"], env=env)
    assert out.exit_code == 1
    assert "mlflow.db is read-only" in one_error(out.stderr) and len(out.stderr.splitlines()) == 1
    assert len(runs_in(uri)) == 1  # nothing written
    listed = cli(["compare", "toy_fit", "--json"], env=env)
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 1


LOCK_PROBE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    connection.execute("BEGIN IMMEDIATE")
    print("took the write lock")
except sqlite3.OperationalError as exc:
    print(exc)
"""


def test_opening_a_store_keeps_the_locks_this_process_holds_on_it(tmp_path):
    """A process that already has the store open (a test, a notebook) keeps excluding other
    writers after dlbench checks the store: closing any descriptor of a SQLite file drops all of
    the process's locks on it, which let a second writer corrupt the store
    ("database disk image is malformed")."""
    import sqlite3

    from dlbench.store import Store, open_store

    db = tmp_path / "mlflow.db"
    store = Store(f"sqlite:///{db}", artifact_root=tmp_path / "artifacts")
    open_store(store)
    writer = sqlite3.connect(str(db), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # this process holds the store's write lock
    try:
        open_store(store)
        open_store(store, create=False)
        other = subprocess.run([sys.executable, "-c", LOCK_PROBE, str(db)],
                               capture_output=True, text=True, timeout=60)
        assert other.stdout.strip() == "database is locked", other
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MiB tmpfs of its own (root only): a disk that can really fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root only): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk, leave: int = 0):
    """Fill ``disk`` with one file until ``leave`` bytes are free (all of them by default)."""
    import shutil

    with open(disk / "filler", "ab") as filler:
        while shutil.disk_usage(disk).free > leave:
            try:
                filler.write(b"\0" * min(2**20, max(shutil.disk_usage(disk).free - leave, 4096)))
                filler.flush()
            except OSError:
                break


FILLING_PLUGIN = '''
import os

from dlbench import Experiment, hookimpl


def fill_then_log(ctx):
    ctx.log_metric("before", 1.0)
    handle = os.open(os.environ["FILLER"], os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(handle, bytes(65536)):
            pass
    except OSError:  # No space left on device: something else filled the disk meanwhile
        pass
    finally:
        os.close(handle)
    for step in range(1, 200):
        ctx.log_metric("after", float(step), step=step)


@hookimpl
def dlbench_experiments():
    return [Experiment(name="fill_disk", summary="Fills the disk, then logs.", run=fill_then_log,
                       tensorflow=False)]
'''


@pytest.mark.slow  # seven dlbench processes
def test_full_disk_is_one_clear_line_and_readers_still_work(small_disk, toy_env, toy_site):
    """Subprocesses only: a reader of the full disk must not find the WAL index a live
    connection of this process would keep."""
    from dlbench.testing import fake_distribution, run_cli

    fake_distribution(toy_site, "filling_plugin", FILLING_PLUGIN)
    uri = f"sqlite:///{small_disk / 'store' / 'mlflow.db'}"
    env = {**toy_env, "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,filling_plugin",
           "FILLER": str(small_disk / "filler")}
    assert run_cli(["run", "toy_fit", "--quick"], tracking_uri=uri, env=env).returncode == 0

    # The disk fills up while a run logs: one line that says so, not SQLite's "disk I/O error".
    filled = run_cli(["run", "fill_disk"], tracking_uri=uri, env=env)
    assert filled.returncode == 1
    assert "the disk is full or failing" in one_error(filled.stderr)
    assert "free space there" in one_error(filled.stderr)

    # Full: commands that only read still work; a run is refused before it starts.
    fill(small_disk)
    read = {}
    for args in (["compare", "toy_fit", "--json"], ["runs", "--json"]):
        out = run_cli(args, tracking_uri=uri, env=env)
        assert out.returncode == 0, out.stderr
        read[args[0]] = json.loads(out.stdout)
    assert [r["status"] for r in read["compare"]] == ["FINISHED"]
    assert [r["state"] for r in read["runs"]["running"]] == ["orphaned"]  # closed below
    refused = run_cli(["run", "toy_fit", "--quick"], tracking_uri=uri, env=env)
    assert refused.returncode == 1 and "not writable (No space left" in one_error(refused.stderr)

    # Nearly full: refused before any work, with the figures.
    (small_disk / "filler").unlink()
    fill(small_disk, leave=2**20)
    refused = run_cli(["run", "toy_fit", "--quick"], tracking_uri=uri, env=env)
    assert refused.returncode == 1 and "is nearly full (" in one_error(refused.stderr)

    # Space again: the run the full disk could not close is closed FAILED, nothing lost.
    (small_disk / "filler").unlink()
    repaired = run_cli(["runs", "--repair"], tracking_uri=uri, env=env)
    assert repaired.returncode == 0, repaired.stderr
    statuses = sorted((r.data.tags["dlbench.experiment"], r.info.status) for r in runs_in(uri))
    assert statuses == [("fill_disk", "FAILED"), ("toy_fit", "FINISHED")]


class SilentServer:
    """A TCP server on loopback that accepts every connection and never says a word."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.mark.timeout(60)  # MLflow alone waits for ever
def test_server_that_never_answers_fails_in_seconds_like_an_absent_one(cli):
    server = SilentServer()
    try:
        started = time.monotonic()
        out = cli(["run", "toy_fit", "--quick", "--tracking-uri", server.url])
        took = time.monotonic() - started
    finally:
        server.close()
    assert out.exit_code == 1 and server.accepted  # it was reached, and said nothing
    assert one_error(out.stderr).startswith(f"error: cannot reach tracking server {server.url} (")
    assert "fix: start it" in out.stderr and took < 30
