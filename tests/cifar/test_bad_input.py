"""Bad CIFAR-10 files, as a table: batch folders a user may pass with ``--data``.

Each row runs a probe experiment (no TensorFlow) that loads the real ``cifar10`` dataset; it
must end the run FAILED with one ``error:`` line naming the file, and a pickle that would run
code must be refused before it can. The slow row runs ``cifar_aug`` itself.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dlbench.testing import fake_distribution
from support import PROBE_PLUGIN, check_bad_input, data_case


def cifar(folder: Path, batch: Callable[[Path], None] | None = None) -> Path:
    """A full cifar-10-batches-py folder of tiny valid batches; ``batch`` rewrites data_batch_1."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                b"labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(data))
    names = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(names))
    if batch is not None:
        batch(folder / "data_batch_1")
    return folder


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


CASES = [
    data_case("cifar-batches-missing", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.unlink()), "batch files missing: data_batch_1"),
    data_case("cifar-truncated", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(p.read_bytes()[:100])),
              "truncated or not a CIFAR-10 python batch"),
    data_case("cifar-wrong-keys", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps({b"x": 1}))),
              "expected keys b'data', b'labels'"),
    data_case("cifar-bad-labels", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps(
                  {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))),
              "labels outside 0..9"),
    data_case("cifar-pickle-runs-code", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps(Evil()))),
              "a dataset file may not run code"),
]

SLOW_CASES = [
    data_case("cifar-aug-truncated", "cifar_aug",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(p.read_bytes()[:100])),
              "truncated or not a CIFAR-10 python batch"),
]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return fake_distribution(tmp_path_factory.mktemp("site"), "probe_plugin", PROBE_PLUGIN)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_cifar_files(case, plugin_site, tmp_path, monkeypatch):
    check_bad_input(case, plugin_site, tmp_path, "probe_plugin,cifar", monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: c.id)
def test_bad_cifar_files_real_experiment(case, plugin_site, tmp_path, monkeypatch):
    check_bad_input(case, plugin_site, tmp_path, "cifar", monkeypatch)
