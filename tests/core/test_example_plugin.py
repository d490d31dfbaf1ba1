"""The third-party plugin kit, as a plugin author lives it: pip install the example into a
fresh virtualenv, find it in ``dlbench list``, run it, run its own tests, switch it off with
the environment, uninstall it.

The venv sees the system site-packages (TensorFlow, MLflow and the editable dlbench are not
reinstalled) and borrows the system pip, so the whole cycle takes seconds, not minutes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dlbench-example-plugin"
DISTRIBUTION = "dlbench-example-plugin"


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DLBENCH_") or k == "DLBENCH_DATA"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PYTHONPATH", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return {**env, **extra}


class Venv:
    def __init__(self, root: Path):
        self.root = root
        self.python = root / "bin" / "python"

    def run(self, *args, env=None, cwd=None, timeout=300):
        return subprocess.run([str(self.python), *args], capture_output=True, text=True,
                              env=env or _clean_env(), cwd=cwd, timeout=timeout)

    def dlbench(self, *args, **kwargs):
        return self.run("-m", "dlbench", *args, **kwargs)

    def listed(self, **env):
        out = self.dlbench("list", "--json", env=_clean_env(**env))
        assert out.returncode == 0, out.stderr
        return {row["name"]: row["plugin"] for row in json.loads(out.stdout)}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin-kit")
    created = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                              "--without-pip", str(root / "venv")], capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    env = Venv(root / "venv")
    if sys.prefix != sys.base_prefix:
        # Run from inside a virtualenv: "system" site-packages would mean the base
        # interpreter's, so chain this one's (with its .pth files: the editable dlbench).
        import site
        import sysconfig

        inner = Path(env.run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                     .stdout.strip())
        lines = [f"import site; site.addsitedir({p!r})"
                 for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])]
        (inner / "_outer_venv.pth").write_text("\n".join(lines) + "\n")
    assert env.run("-c", "import dlbench").returncode == 0, "dlbench not visible in the venv"
    # Build from a copy: the build leaves build/ and *.egg-info beside the sources.
    source = shutil.copytree(EXAMPLE, root / "src", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    return env, source


def test_install_list_run_test_uninstall(venv, tmp_path):
    env, source = venv
    assert "example_logistic" not in env.listed()

    installed = env.run("-m", "pip", "install", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", str(source))
    assert installed.returncode == 0, installed.stderr
    try:
        assert env.listed()["example_logistic"] == "example"
        plugins = json.loads(env.dlbench("plugins", "--json").stdout)
        info = next(p for p in plugins if p["name"] == "example")
        assert (info["distribution"], info["version"]) == (DISTRIBUTION, "0.1.0")

        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        out = env.dlbench("run", "example_logistic", "--quick", "--json",
                          env=_clean_env(MLFLOW_TRACKING_URI=uri), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout)
        assert summary["status"] == "FINISHED" and summary["params"]["epochs"] == "20"
        assert summary["metrics"]["accuracy"] > 0.75

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(summary["run_id"])
        assert run.data.tags["dlbench.plugin_distribution"] == DISTRIBUTION
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(1, 21))
        assert [f.path for f in client.list_artifacts(run.info.run_id, "plots")] == ["plots/boundary.png"]

        # The example's own suite, written with dlbench.testing, passes where it is installed.
        suite = env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests"),
                        cwd=tmp_path)
        assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
        assert "2 passed" in suite.stdout
    finally:
        removed = env.run("-m", "pip", "uninstall", "-y", DISTRIBUTION)
    assert removed.returncode == 0, removed.stderr
    listed = env.listed()
    assert "example_logistic" not in listed and "example" not in listed.values()
    described = env.dlbench("describe", "example_logistic")
    assert described.returncode == 2 and "unknown experiment 'example_logistic'" in described.stderr


@pytest.fixture
def two_plugins(tmp_path):
    """Two installed (fake) plugins, so allow- and deny-lists have something to choose from."""
    from dlbench.testing import fake_distribution
    from toy_plugin import TOY_PLUGIN

    root = fake_distribution(tmp_path / "site", "toy_plugin_dist", TOY_PLUGIN)
    fake_distribution(root, "other_plugin_dist", '''
        from dlbench import Experiment, hookimpl

        @hookimpl
        def dlbench_experiments():
            return [Experiment(name="other_exp", summary="Another.", run=print, tensorflow=False)]
    ''')
    return {"PYTHONPATH": str(root)}


def _names(out):
    assert out.returncode == 0, out.stderr
    return {row["name"] for row in json.loads(out.stdout)}


def test_disable_load_and_trace_switches_through_the_cli(two_plugins):
    from dlbench.testing import run_cli

    everything = _names(run_cli(["list", "--json"], env=_clean_env(**two_plugins)))
    assert {"toy_fit", "other_exp"} <= everything

    disabled = _names(run_cli(["list", "--json"], env=_clean_env(
        **two_plugins, DLBENCH_DISABLE_PLUGINS="toy_plugin_dist, other_plugin_dist")))
    assert disabled == everything - {"toy_fit", "toy_explode", "toy_wait", "other_exp"}

    allowed = _names(run_cli(["list", "--json"], env=_clean_env(
        **two_plugins, DLBENCH_LOAD_PLUGINS="other_plugin_dist")))
    assert allowed == {"other_exp"}

    blocked = run_cli(["run", "toy_fit"], env=_clean_env(
        **two_plugins, DLBENCH_LOAD_PLUGINS="other_plugin_dist"))
    assert blocked.returncode == 2 and "unknown experiment 'toy_fit'" in blocked.stderr

    traced = run_cli(["list"], env=_clean_env(**two_plugins, DLBENCH_TRACE="1",
                                              DLBENCH_LOAD_PLUGINS="other_plugin_dist"))
    assert traced.returncode == 0
    assert "dlbench_experiments [other_plugin_dist] -> ['other_exp']" in traced.stderr
    assert "toy_plugin_dist" not in traced.stderr
    quiet = run_cli(["list"], env=_clean_env(**two_plugins))
    assert "dlbench_experiments [" not in quiet.stderr


BAD_PLUGIN = '''
from dlbench import Experiment, Param, hookimpl


def quiet(ctx):
    pass


def liar(ctx):
    ctx.log_metric("loss", 0.5)


def broken(ctx):
    raise ValueError("no convergence")


@hookimpl
def dlbench_experiments():
    return [
        Experiment(name="quiet", summary="Logs nothing.", run=quiet, tensorflow=False),
        Experiment(name="liar", summary="Declares accuracy, logs loss.", run=liar,
                   logs=("loss", "accuracy"), tensorflow=False),
        Experiment(name="broken", summary="Fails.", run=broken, tensorflow=False),
    ]
'''


@pytest.mark.parametrize("name, message", [
    ("quiet", "quiet logged no metric"),
    ("liar", "never logged ['accuracy']"),
    ("broken", "ValueError: no convergence"),
    ("missing", "unknown experiment 'missing'"),
])
def test_check_experiment_fails_where_it_should(tmp_path, name, message):
    from dlbench.testing import check_experiment, fake_distribution

    site = fake_distribution(tmp_path / "site", "bad_plugin_dist", BAD_PLUGIN)
    env = _clean_env(PYTHONPATH=str(site), DLBENCH_LOAD_PLUGINS="bad_plugin_dist")
    with pytest.raises(AssertionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_experiment(name, tmp_path, env=env)


def test_check_plugin_names_every_bad_declaration():
    import types

    from dlbench import Experiment, Param, hookimpl
    from dlbench.testing import check_plugin, plugin_problems

    def experiments():
        return [Experiment(name="Bad-Name", summary="x", run=print),
                Experiment(name="ok_name", summary="fine", run=print,
                           params=(Param("rate", float, 5.0, "a rate", high=1.0),),
                           quick={"epochs": 1})]

    bad = types.SimpleNamespace(dlbench_experiments=hookimpl(experiments))
    problems = plugin_problems(bad, "bad")
    assert any("'Bad-Name' must be lower_snake_case" in p for p in problems)
    assert any("default is invalid" in p and "above the maximum 1.0" in p for p in problems)
    assert any("quick sets unknown param 'epochs'" in p for p in problems)
    with pytest.raises(AssertionError, match="invalid plugin declarations"):
        check_plugin(bad)
    empty = types.SimpleNamespace()
    assert plugin_problems(empty) == ["plugin_under_test: registers no experiment, dataset or"
                                      " command (missing @hookimpl?)"]

    def good():
        return [Experiment(name="fine", summary="Fine.", run=print)]

    check_plugin(types.SimpleNamespace(dlbench_experiments=hookimpl(good)))
