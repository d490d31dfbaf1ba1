"""The CLI contract, end to end: real subprocesses, a real SQLite store, read back via MLflow."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support import client, results
from dlbench.testing import run_cli



def test_run_json_contract_and_store(toy_env, store_uri):
    out = run_cli(["run", "toy_fit", "-p", "lr=0.2", "--seed", "3", "--run-name", "first",
                   "--experiment-name", "toys", "--json"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)  # stdout holds the JSON object and nothing else
    assert set(summary) >= {"run_id", "experiment_id", "status", "params", "metrics", "artifact_uri"}
    assert summary["status"] == "FINISHED"
    assert summary["params"] == {"lr": "0.2", "epochs": "20", "slope": "2.0", "mode": "plain",
                                 "verbose": "false", "seed": "3", "quick": "false"}
    run = client(store_uri).get_run(summary["run_id"])
    assert run.info.run_name == "first" and run.info.status == "FINISHED"
    assert results(run.data.metrics) == summary["metrics"] and run.data.metrics["slope_error"] < 0.05
    history = client(store_uri).get_metric_history(summary["run_id"], "loss")
    assert [m.step for m in history] == list(range(1, 21))
    assert run.data.tags["dlbench.plugin"] == "toy_plugin_dist"
    assert run.data.tags["dlbench.version"]
    assert client(store_uri).get_experiment(summary["experiment_id"]).name == "toys"
    files = [f.path for f in client(store_uri).list_artifacts(summary["run_id"], "notes")]
    assert files == ["notes/fit.txt"]


def test_quick_and_human_summary(toy_env, store_uri):
    out = run_cli(["run", "toy_fit", "--quick"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    assert "FINISHED" in out.stdout and "slope_error" in out.stdout
    run_id = out.stdout.split()[1]
    assert client(store_uri).get_run(run_id).data.params["epochs"] == "3"


@pytest.mark.parametrize(
    "args, message",
    [(["run", "nope"], "unknown experiment 'nope'"),
     (["run", "toy_fit", "-p", "epochs=many"], "expected int, got 'many'"),
     (["run", "toy_fit", "-p", "lr=5"], "above the maximum 1.0"),
     (["run", "toy_fit", "-p", "colour=red"], "unknown param 'colour'"),
     (["run", "toy_fit", "-p", "mode=wild"], "not one of plain, fancy"),
     (["run", "toy_fit", "-p", "lr"], "-p expects KEY=VALUE"),
     (["run", "toy_fit", "--data", "/no/such/folder"], "no such file or folder"),
     (["describe", "nope"], "unknown experiment")],
)
def test_usage_errors_exit_2_with_one_line_and_no_run(cli, store_uri, tmp_path, args, message):
    out = cli([*args, "--tracking-uri", store_uri] if args[0] == "run" else args)
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing was written


def test_failed_run_is_recorded_failed(toy_env, store_uri):
    out = run_cli(["run", "toy_explode", "--json"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].endswith("FAILED: RuntimeError: the flux capacitor broke")
    assert "Traceback" not in out.stderr
    summary = json.loads(out.stdout)
    run = client(store_uri).get_run(summary["run_id"])
    assert run.info.status == "FAILED" == summary["status"]
    assert run.data.tags["dlbench.error"] == "RuntimeError: the flux capacitor broke"
    trace = client(store_uri).download_artifacts(summary["run_id"], "error/traceback.txt")
    assert "raise RuntimeError" in open(trace).read()


def test_debug_shows_traceback_for_errors(cli, store_uri):
    out = cli(["--debug", "run", "toy_fit", "-p", "epochs=x", "--tracking-uri", store_uri])
    assert out.exit_code == 2 and "Traceback" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: param 'epochs'")


@pytest.mark.parametrize("sig, reason", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_interrupted_run_ends_killed(toy_env, store_uri, tmp_path, sig, reason):
    marker = tmp_path / "started"
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": store_uri, "TOY_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "toy_wait", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    run = client(store_uri).get_run(json.loads(stdout)["run_id"])
    assert run.info.status == "KILLED" and reason in run.data.tags["dlbench.error"]


def test_list_describe_plugins(toy_env):
    listed = json.loads(run_cli(["list", "--json"], env=toy_env).stdout)
    assert {"name": "toy_fit", "plugin": "toy_plugin_dist",
            "summary": "Fit a line by gradient descent."} in listed
    described = json.loads(run_cli(["describe", "toy_fit", "--json"], env=toy_env).stdout)
    assert [p["name"] for p in described["params"]] == ["lr", "epochs", "slope", "mode", "verbose"]
    assert described["quick"] == {"epochs": 3} and described["logs"] == ["loss", "slope_error"]
    text = run_cli(["describe", "toy_fit"], env=toy_env).stdout
    assert "plain|fancy" in text and "[0.0, 1.0]" in text
    plugins = json.loads(run_cli(["plugins", "--json"], env=toy_env).stdout)
    toy = next(p for p in plugins if p["name"] == "toy_plugin_dist")
    assert toy["distribution"] == "toy-plugin-dist" and toy["version"] == "1.0"


def test_list_imports_no_tensorflow_or_mlflow(toy_env):
    code = ("import sys\nfrom dlbench.cli import main\n"
            "for args in (['list'], ['--help'], ['denoise', '--help']):\n"
            "    try:\n        main(args, prog_name='dlbench')\n    except SystemExit:\n        pass\n"
            "main(['describe', 'toy_fit'], standalone_mode=False)\n"
            "heavy = {'tensorflow', 'keras', 'mlflow', 'librosa', 'matplotlib', 'numpy',\n"
            "         'soundfile'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    # Every installed plugin is loaded here, the built-in experiments included.
    env = {**os.environ, **toy_env}
    env.pop("DLBENCH_LOAD_PLUGINS")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr


def test_unwritable_store_fails_before_any_run(toy_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run_cli(["run", "toy_fit"], tracking_uri=f"sqlite:///{blocker}/sub/mlflow.db", env=toy_env)
    assert out.returncode == 1
    assert "not writable" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_default_store_is_sqlite_in_mlruns(toy_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = run_cli(["run", "toy_fit", "--quick", "--json"], cwd=tmp_path, env={**env, **toy_env})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert json.loads(out.stdout)["artifact_uri"].startswith((tmp_path / "mlruns" / "artifacts").as_uri())
