"""Faults: a run killed with SIGKILL is found orphaned and closed FAILED; live runs are left alone."""

import json
import os
import signal
import subprocess
import sys
import time


from dlbench.orphans import process_alive, process_start, process_tags
from dlbench.testing import run_cli
from support import client



def start_waiting_run(toy_env, store_uri, marker):
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": store_uri, "TOY_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "toy_wait", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    return proc


def only_run(uri):
    experiment = client(uri).get_experiment_by_name("toy_wait")
    (run,) = client(uri).search_runs([experiment.experiment_id])
    return run


def sigkill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)  # reaped, as a shell would
    assert proc.returncode == -signal.SIGKILL


def test_sigkilled_run_is_repaired_by_the_next_command(toy_env, store_uri, tmp_path):
    proc = start_waiting_run(toy_env, store_uri, tmp_path / "started")
    run = only_run(store_uri)
    assert run.info.status == "RUNNING" and run.data.tags["dlbench.pid"] == str(proc.pid)
    sigkill(proc)
    assert only_run(store_uri).info.status == "RUNNING"  # nobody could record the end

    out = run_cli(["run", "toy_fit", "--quick"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    assert f"note: run {run.info.run_id} was orphaned" in out.stderr
    repaired = client(store_uri).get_run(run.info.run_id)
    assert repaired.info.status == "FAILED" and repaired.info.end_time
    assert f"process {proc.pid}" in repaired.data.tags["dlbench.error"]
    assert "orphaned" in repaired.data.tags["dlbench.error"]


def test_runs_repair_on_demand_and_live_runs_are_left_alone(toy_env, store_uri, tmp_path):
    proc = start_waiting_run(toy_env, store_uri, tmp_path / "started")
    run_id = only_run(store_uri).info.run_id
    # While the process lives, neither listing nor repair touch its run.
    listed = json.loads(run_cli(["runs", "--repair", "--json"], tracking_uri=store_uri,
                                env=toy_env).stdout)
    assert [r["state"] for r in listed["running"]] == ["running"] and listed["orphans"] == []
    assert client(store_uri).get_run(run_id).info.status == "RUNNING"

    sigkill(proc)
    found = run_cli(["runs", "--json"], tracking_uri=store_uri, env=toy_env)
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert [(r["run_id"], r["state"]) for r in report["running"]] == [(run_id, "orphaned")]
    assert client(store_uri).get_run(run_id).info.status == "RUNNING"  # listing repairs nothing

    fixed = run_cli(["runs", "--repair"], tracking_uri=store_uri, env=toy_env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"repaired: run {run_id} marked FAILED" in fixed.stderr
    assert client(store_uri).get_run(run_id).info.status == "FAILED"
    again = run_cli(["runs", "--repair"], tracking_uri=store_uri, env=toy_env)
    assert "0 orphaned run(s) repaired" in again.stderr and "no runs are marked RUNNING" in again.stderr


def test_runs_on_a_missing_store_is_one_line(toy_env, tmp_path):
    out = run_cli(["runs"], tracking_uri=f"sqlite:///{tmp_path / 'none.db'}", env=toy_env)
    assert out.returncode == 1 and "no tracking store" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_process_identity_survives_pid_reuse():
    me = os.getpid()
    assert process_alive(me) and process_alive(me, process_tags().get("dlbench.pid_start"))
    if process_start(me) is not None:  # Linux: a recycled pid has another start time
        assert not process_alive(me, "1")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid)
