"""How every run ends: FINISHED, FAILED with its reason and traceback, or KILLED, the same way
for `dlbench run`, a sweep's parent and a ``ctx.child`` run (all go through one function)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dlbench.errors import DataError
from dlbench.lifecycle import TRACEBACK_FILE, ending
from dlbench.testing import fake_distribution
from support import client, results


def read(ctx):
    return client(ctx.client.tracking_uri).get_run(ctx.run_id)


def artifacts(ctx):
    return {f.path for f in client(ctx.client.tracking_uri).list_artifacts(ctx.run_id, "error")}


def test_a_block_that_completes_ends_finished(run_ctx):
    ctx = run_ctx({})
    with ending(ctx) as outcome:
        ctx.log_metric("m", 1.0)
    run = read(ctx)
    assert outcome.status == run.info.status == "FINISHED" and run.info.end_time
    assert "dlbench.error" not in run.data.tags and artifacts(ctx) == set()


@pytest.mark.parametrize("error, recorded", [
    (RuntimeError("boom"), "RuntimeError: boom"),
    (DataError("data.wav: holds no samples"), "data.wav: holds no samples"),
])
def test_an_error_ends_failed_with_its_reason_and_traceback(run_ctx, error, recorded):
    ctx = run_ctx({})
    with ending(ctx) as outcome:
        raise error
    run = read(ctx)
    assert outcome.status == run.info.status == "FAILED"
    assert run.data.tags["dlbench.error"] == recorded == outcome.error
    assert run.data.tags["mlflow.note.content"] == f"FAILED: {recorded}"
    assert artifacts(ctx) == {TRACEBACK_FILE}


def test_ctrl_c_ends_killed_and_reraise_passes_it_on(run_ctx):
    ctx = run_ctx({})
    with pytest.raises(KeyboardInterrupt):
        with ending(ctx, reraise=True):
            raise KeyboardInterrupt
    run = read(ctx)
    assert run.info.status == "KILLED" and run.data.tags["dlbench.error"] == "interrupted by SIGINT"


def test_fail_without_an_exception_and_before_end_runs_every_time(run_ctx):
    ctx = run_ctx({})
    summaries = []
    with ending(ctx, before_end=lambda outcome: summaries.append(outcome.status)) as outcome:
        outcome.fail("2 of 4 trials did not finish")
    run = read(ctx)
    assert run.info.status == "FAILED" and summaries == ["FAILED"]
    assert run.data.tags["dlbench.error"] == "2 of 4 trials did not finish"
    assert artifacts(ctx) == set()  # no exception, so no traceback to keep

    killed = run_ctx({})
    with ending(killed, before_end=lambda outcome: killed.log_metric("summary", 1.0)):
        raise KeyboardInterrupt
    assert read(killed).info.status == "KILLED" and results(read(killed).data.metrics) == {"summary": 1.0}


def test_system_exit_is_recorded_and_never_swallowed(run_ctx):
    ctx = run_ctx({})
    with pytest.raises(SystemExit):
        with ending(ctx):
            sys.exit(3)
    assert read(ctx).info.status == "FAILED"


CHILD_PLUGIN = '''
import os
import time

from dlbench import Experiment, hookimpl


def parent(ctx):
    ctx.log_metric("before_child", 1.0)
    with ctx.child("variant") as child:
        child.log_metric("started", 1.0)
        open(os.environ["CHILD_MARKER"], "w").close()
        time.sleep(600)


@hookimpl
def dlbench_experiments():
    return [Experiment(name="toy_parent", summary="Waits inside a child run.", run=parent,
                       tensorflow=False)]
'''


@pytest.mark.parametrize("sig, reason", [(signal.SIGTERM, "terminated by SIGTERM"),
                                         (signal.SIGINT, "interrupted by SIGINT")])
def test_a_stopped_child_run_ends_killed_like_its_parent(tmp_path, store_uri, sig, reason):
    site = fake_distribution(tmp_path / "site", "child_plugin", CHILD_PLUGIN)
    marker = tmp_path / "in-child"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "child_plugin", "MLFLOW_TRACKING_URI": store_uri,
           "CHILD_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "toy_parent", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    parent_id = json.loads(stdout)["run_id"]
    mlflow = client(store_uri)
    parent = mlflow.get_run(parent_id)
    (child,) = mlflow.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent_id}'")
    for run in (parent, child):
        assert run.info.status == "KILLED" and run.data.tags["dlbench.error"] == reason
    assert results(child.data.metrics) == {"started": 1.0}
    assert child.data.tags["dlbench.pid"] == parent.data.tags["dlbench.pid"] == str(proc.pid)
    assert child.data.tags["mlflow.user"] == parent.data.tags["mlflow.user"]
