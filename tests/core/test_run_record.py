"""What every run records beyond its numbers: the training view of its experiment, who ran
it, a description, system metrics; `dlbench rerun`; `--register` on a run without a model;
progress lines and TensorFlow's start-up noise filter (no TensorFlow needed here)."""

from __future__ import annotations

import io
import json
import os

import pytest

from dlbench.testing import fake_distribution
from support import client
from toy_plugin import TOY_PLUGIN


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    """The toy plugin and a store of its own for this module, and one toy_fit --quick run
    in it by user "ada" (as MLflow finds a user: MLFLOW_TRACKING_USERNAME first)."""
    root = tmp_path_factory.mktemp("record")
    site = fake_distribution(root / "site", "toy_plugin_dist", TOY_PLUGIN)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.setenv("DLBENCH_LOAD_PLUGINS", "toy_plugin_dist")
        patch.setenv("MLFLOW_TRACKING_USERNAME", "ada")
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        out = _invoke(["run", "toy_fit", "--quick", "--json"])
        assert out.exit_code == 0, out.stderr
        yield {"uri": os.environ["MLFLOW_TRACKING_URI"], "summary": json.loads(out.stdout)}


def _invoke(args):
    """The real `dlbench` command in this process."""
    from click.testing import CliRunner

    from dlbench.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def toy_cli(toy_store, monkeypatch):
    """``--no-system-metrics`` sets its switch in the environment: restored afterwards."""
    monkeypatch.setenv("DLBENCH_NO_SYSTEM_METRICS", "0")
    return _invoke


def test_finished_run_has_user_note_system_metrics_and_training_view(toy_store):
    mlflow = client(toy_store["uri"])
    run = mlflow.get_run(toy_store["summary"]["run_id"])
    tags = run.data.tags
    assert tags["mlflow.user"] == "ada"
    assert mlflow.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == (
        "custom_model_development")
    # MLflow's own monitor sampled the machine into the run (a point even for a short run)...
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(
        run.data.metrics)
    # ... which the summary leaves out: it reports the experiment's results.
    assert not [k for k in toy_store["summary"]["metrics"] if k.startswith("system/")]
    note = tags["mlflow.note.content"]
    assert note.startswith("**toy_fit**") and "quick" in note
    loss = run.data.metrics["loss"]
    assert f"| loss | {loss:.4g} |" in note and "| slope_error |" in note


def test_no_system_metrics_switch(toy_cli, toy_store):
    out = toy_cli(["run", "toy_fit", "--quick", "--no-system-metrics", "--json"])
    assert out.exit_code == 0, out.stderr
    run = client(toy_store["uri"]).get_run(json.loads(out.stdout)["run_id"])
    assert run.data.metrics and not [k for k in run.data.metrics if k.startswith("system/")]
    assert os.environ["DLBENCH_NO_SYSTEM_METRICS"] == "1"


def test_rerun_reproduces_and_says_so(toy_cli, toy_store):
    original = toy_store["summary"]["run_id"]
    out = toy_cli(["rerun", original, "--json"])
    assert out.exit_code == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["reproduced"] and report["warnings"] == [] and report["status"] == "FINISHED"
    rows = {r["metric"]: r for r in report["metrics"]}
    assert set(rows) == {"loss", "slope_error"}
    assert rows["loss"]["rerun"] == rows["loss"]["original"] and rows["loss"]["reproduced"]
    rerun = client(toy_store["uri"]).get_run(report["run_id"])
    assert rerun.data.tags["dlbench.rerun_of"] == original
    assert rerun.data.params == client(toy_store["uri"]).get_run(original).data.params


def test_rerun_names_what_differs_and_fails_outside_the_tolerance(toy_cli, toy_store):
    mlflow = client(toy_store["uri"])
    out = toy_cli(["run", "toy_fit", "-p", "epochs=4", "--json"])
    original = json.loads(out.stdout)["run_id"]
    slope_error = mlflow.get_run(original).data.metrics["slope_error"]
    # As if recorded by another dlbench, and with another final value.
    mlflow.set_tag(original, "dlbench.version", "0.0.1")
    mlflow.log_metric(original, "slope_error", slope_error + 0.5, step=1)

    out = toy_cli(["rerun", original, "--tolerance", "0.1"])
    assert out.exit_code == 1
    assert "warning: dlbench version differs: 0.0.1 ->" in out.stderr
    table = out.stdout.splitlines()
    assert any(line.split()[0] == "slope_error" and line.split()[-1] == "NO" for line in table[1:])
    assert any(line.split()[0] == "loss" and line.split()[-1] == "yes" for line in table[1:])
    assert table[-1] == "NOT reproduced"
    assert toy_cli(["rerun", original, "--tolerance", "0.6"]).exit_code == 0


def test_register_needs_a_model_and_alias_needs_register(toy_cli, toy_store):
    mlflow = client(toy_store["uri"])
    before = len(mlflow.search_runs([toy_store["summary"]["experiment_id"]]))
    usage = toy_cli(["run", "toy_fit", "--quick", "--alias", "champion"])
    assert usage.exit_code == 2 and "--alias needs --register" in usage.stderr
    assert len(mlflow.search_runs([toy_store["summary"]["experiment_id"]])) == before

    out = toy_cli(["run", "toy_fit", "--quick", "--register", "toy", "--json"])
    assert out.exit_code == 1
    summary = json.loads(out.stdout)
    assert summary["status"] == "FAILED" and "logged no model to register" in summary["error"]


def test_progress_line_per_epoch():
    from dlbench.progress import EpochProgress, duration

    ticks = iter([100.0, 130.0, 160.0])
    stream = io.StringIO()
    progress = EpochProgress("exp/child", 10, stream=stream, clock=lambda: next(ticks))
    progress.epoch_end(0, {"loss": 0.123456, "val_loss": 0.5, "val_accuracy": 0.75})
    progress.epoch_end(1, {"loss": 0.1})
    first, second = stream.getvalue().splitlines()
    assert first == "[exp/child] epoch 1/10  loss 0.1235  val_accuracy 0.75  val_loss 0.5  30 s, ~4:30 left"
    assert second == "[exp/child] epoch 2/10  loss 0.1  1:00, ~4:00 left"
    assert duration(4000) == "1:06:40"


def test_tensorflow_start_up_noise_is_dropped_and_the_rest_kept(capfd):
    from dlbench.frameworks import native_stderr_filtered

    with native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are"
                    b" written to STDERR\n")
        os.write(2, b"I0000 00:00:1796222333.668447   25068 port.cc:153] oneDNN custom ops\n")
        os.write(2, b"E0000 00:00:1796222333.668447   25068 cuda.cc:52] a real error\n")
        os.write(2, b"something else\n")
    err = capfd.readouterr().err
    assert err == ("E0000 00:00:1796222333.668447   25068 cuda.cc:52] a real error\n"
                   "something else\n")
