"""Helpers for testing dlbench plugins with pytest, public for plugin authors.

``fake_distribution`` makes a plugin discoverable exactly as ``pip install`` would (a
``*.dist-info`` folder with an ``entry_points.txt`` on the path) without installing anything;
``run_cli`` runs the real ``dlbench`` command in a subprocess against a given store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Mapping, Sequence


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
