"""Helpers for testing dlbench plugins with pytest, public for plugin authors.

For a plugin's own test suite (in the spirit of pytest's ``pytester``)::

    from dlbench.testing import check_experiment, check_plugin
    import my_package.experiments

    def test_declarations_are_valid():
        check_plugin(my_package.experiments)

    def test_quick_run_logs_metrics(tmp_path):
        checked = check_experiment("my_experiment", tmp_path)
        assert checked.metrics["accuracy"] > 0.5
        assert "plots/boundary.png" in checked.artifacts()

``check_plugin`` validates what a plugin module registers (every ``Experiment.problems()``)
without running anything. ``check_experiment`` runs one experiment ``--quick`` through the
real ``dlbench`` command, as a user would, into a fresh SQLite store under ``tmp_path``, and
fails unless the run FINISHED and logged metrics (every name in ``Experiment.logs``).

``fake_distribution`` makes a plugin discoverable exactly as ``pip install`` would (a
``*.dist-info`` folder with an ``entry_points.txt`` on the path) without installing anything;
``run_cli`` runs the real ``dlbench`` command in a subprocess against a given store.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence


def fake_distribution(
    root: Path, module: str, source: str, *, distribution: str | None = None,
    version: str = "1.0", entry_name: str | None = None,
) -> Path:
    """Write ``module.py`` and a matching dist-info under ``root``; put ``root`` on PYTHONPATH.

    The entry point ``entry_name`` (default: the module name) in group ``dlbench`` points at
    the module, so ``dlbench`` discovers it like an installed plugin.
    """
    root.mkdir(parents=True, exist_ok=True)
    distribution = distribution or module.replace("_", "-")
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[dlbench]\n{entry_name or module} = {module}\n")
    return root


def run_cli(
    args: Sequence[str], *, tracking_uri: str | None = None, cwd: Path | None = None,
    env: Mapping[str, str] | None = None, timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``dlbench ARGS`` in a fresh interpreter, as a user would; never raises on exit code."""
    full_env = {**os.environ, **(env or {})}
    if tracking_uri:
        full_env["MLFLOW_TRACKING_URI"] = tracking_uri
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *args], capture_output=True, text=True,
        cwd=cwd, env=full_env, timeout=timeout,
    )


def last_json(stdout: str):
    """The JSON document ``--json`` prints; fails if stdout holds anything else."""
    return json.loads(stdout)


def plugin_problems(plugin: Any, name: str = "plugin_under_test") -> list[str]:
    """What is wrong with what ``plugin`` (a module or object with hookimpls) registers.

    Only ``plugin`` is loaded (installed entry points are ignored), so the answer does not
    depend on what else is installed. An empty list means every declaration is valid.
    """
    from dlbench.registry import load_registry

    from unittest import mock

    # An empty allow-list: no installed entry point loads, only ``plugin``.
    with mock.patch.dict(os.environ, {"DLBENCH_LOAD_PLUGINS": ","}):
        registry = load_registry(extra_plugins=[(name, plugin)])
    info = registry.plugins[name]
    problems = [f"{name}: {error}" for error in info.errors]
    if not problems and not (info.experiments or info.datasets or info.commands):
        problems.append(f"{name}: registers no experiment, dataset or command (missing @hookimpl?)")
    return problems


def check_plugin(plugin: Any, name: str = "plugin_under_test") -> None:
    """Fail (AssertionError) unless ``plugin``'s declarations are all valid."""
    problems = plugin_problems(plugin, name)
    assert not problems, "invalid plugin declarations:\n  " + "\n  ".join(problems)


@dataclass
class CheckedRun:
    """A run made by :func:`check_experiment`, for further assertions."""

    summary: dict
    tracking_uri: str
    stderr: str

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary["metrics"]

    @property
    def params(self) -> dict[str, str]:
        return self.summary["params"]

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def artifacts(self) -> list[str]:
        """Every artifact file of the run, as paths relative to the run's artifact root."""
        client, found, folders = self.client(), [], [None]
        while folders:
            for item in client.list_artifacts(self.run_id, folders.pop()):
                (folders if item.is_dir else found).append(item.path)
        return sorted(found)

    def metric_history(self, key: str) -> list[float]:
        history = self.client().get_metric_history(self.run_id, key)
        return [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]


def check_experiment(
    name: str, tmp_path: Path, data: Path | str | None = None, *,
    params: Mapping[str, Any] | None = None, seed: int = 0,
    env: Mapping[str, str] | None = None, timeout: float = 600,
) -> CheckedRun:
    """Run experiment ``name`` with ``--quick`` through the real CLI and check the run.

    The experiment must be installed (``pip install -e .`` of the plugin, or
    :func:`fake_distribution`). Checks, each failing with the CLI's own stderr:
    ``dlbench describe`` finds it (so its declaration is valid), the run exits 0 and ends
    FINISHED in a fresh SQLite store under ``tmp_path``, at least one metric was logged, every
    metric named in ``Experiment.logs`` was logged, and no metric is NaN or infinite.
    """
    tmp_path = Path(tmp_path)
    store = tmp_path / "dlbench-check"
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    described = run_cli(["describe", name, "--json"], env=env, timeout=timeout)
    assert described.returncode == 0, (
        f"dlbench describe {name} failed (not installed, or its declaration is invalid):\n"
        + described.stderr
    )
    declared = last_json(described.stdout)
    args = ["run", name, "--quick", "--seed", str(seed), "--json"]
    for key, value in (params or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{key}={text}"]
    if data is not None:
        args += ["--data", str(data)]
    out = run_cli(args, tracking_uri=uri, cwd=store, env=env, timeout=timeout)
    assert out.returncode == 0, (
        f"dlbench {' '.join(args)} exited {out.returncode}:\n{out.stderr[-4000:]}"
    )
    summary = last_json(out.stdout)
    assert summary["status"] == "FINISHED", f"run ended {summary['status']}: {summary['error']}"
    metrics = summary["metrics"]
    assert metrics, f"{name} logged no metric (use ctx.log_metric or ctx.keras_callback())"
    missing = [key for key in declared["logs"] if key not in metrics]
    assert not missing, f"{name} declares logs={declared['logs']} but never logged {missing}"
    bad = {key: value for key, value in metrics.items() if not math.isfinite(value)}
    assert not bad, f"{name} logged non-finite metrics: {bad}"
    return CheckedRun(summary=summary, tracking_uri=uri, stderr=out.stderr)
