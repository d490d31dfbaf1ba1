"""``dlbench datasets [--json]``: lists the built-in datasets without importing TF or MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from dlbench.commands.datasets import command


def test_json_lists_speech_and_cifar10_with_their_status(tmp_path, monkeypatch, cifar_dir):
    root = tmp_path / "root"
    monkeypatch.setenv("DLBENCH_DATA", str(root))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    result = CliRunner().invoke(command, ["--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"speech", "cifar10"} <= set(rows)
    speech, images = rows["speech"], rows["cifar10"]
    assert speech["kind"] == "speech" and speech["ready"] is True
    assert speech["cache"] == str(root / "cache" / "synth")
    assert "generated on first use" in speech["detail"]
    assert images["ready"] is False and "download" in images["source"]
    assert str(root / "cifar-10-batches-py") in images["detail"]

    root.mkdir(parents=True)  # status() created nothing; now put CIFAR under the data root
    os.symlink(cifar_dir, root / "cifar-10-batches-py")
    rows = {row["name"]: row for row in json.loads(CliRunner().invoke(command, ["--json"]).stdout)}
    assert rows["cifar10"]["ready"] is True
    assert rows["cifar10"]["source"] == str(root / "cifar-10-batches-py")


def test_table_output_and_no_heavy_imports(tmp_path):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dlbench.commands.datasets import command\n"
        "result = CliRunner().invoke(command, [])\n"
        "print(result.output)\n"
        "heavy = [m for m in ('tensorflow', 'mlflow', 'keras', 'librosa') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "DLBENCH_DATA": str(tmp_path / "root")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    assert "speech" in out and "cifar10" in out and "ready" in out
    assert f"data root: {tmp_path / 'root'}" in out
    assert "HEAVY []" in out
