"""Shared fixtures: the real data beside the repo, and a throwaway tracking store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlbench.testing import fake_distribution
from toy_plugin import TOY_PLUGIN

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data"))


def _shared(sub: str, what: str) -> Path:
    path = DATA / sub
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}; set DLBENCH_TEST_DATA to the shared data folder")
    return path


@pytest.fixture
def shared_data() -> Path:
    return _shared("", "shared test data")


@pytest.fixture
def course_dir() -> Path:
    return _shared("course", "shared course speech data")


@pytest.fixture
def cifar_dir() -> Path:
    return _shared("cifar-10-batches-py", "shared CIFAR-10 subset")


@pytest.fixture
def store_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory, monkeypatch):
    """Caches and synthesized data go to a per-session temp dir, never the user's cache."""
    if "DLBENCH_DATA" not in os.environ:
        monkeypatch.setenv("DLBENCH_DATA", str(tmp_path_factory.getbasetemp() / "dlbench-data"))


@pytest.fixture
def toy_env(tmp_path) -> dict[str, str]:
    """Environment for `dlbench` subprocesses that see the toy plugin (tests/toy_plugin.py) only.

    The allow-list keeps these tests independent of whatever else is installed.
    """
    root = fake_distribution(tmp_path / "site", "toy_plugin_dist", TOY_PLUGIN)
    return {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
            "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist"}
