"""CIFAR-10 loading: the real subset, the restricted unpickler, validation, search order, memory."""

from __future__ import annotations

import os
import pickle
import socket
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dlbench_plugins.cifar import dataset as cifar
from dlbench_plugins.cifar.dataset import load_cifar10
from dlbench.errors import DataError


# Each test gets a data root (and Keras cache) of its own: no entry leaks between tests.
pytestmark = pytest.mark.usefixtures("data_root")


def batch(n, labels=None, seed=0, data=None):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"testing batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)] if labels is None else labels,
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data,
    }


def write_folder(folder: Path, sizes=(3, 2, 4, 1, 5), test=2, protocol=2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(sizes, start=1):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(n, seed=i), protocol=protocol))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(test, seed=99), protocol=protocol))
    return folder


# -- the shared subset -----------------------------------------------------------------------


def test_shared_subset_loads_as_uint8_with_the_right_shapes(cifar_dir):
    data = load_cifar10(cifar_dir)
    assert data.x_train.shape == (5170, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.y_train.shape == (5170,) and data.y_train.dtype == np.int64
    assert data.x_test.shape == (500, 32, 32, 3) and data.y_test.dtype == np.int64
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.label_names[0] == "airplane" and len(data.label_names) == 10
    with open(cifar_dir / "data_batch_1", "rb") as handle:
        reference = pickle.load(handle, encoding="bytes")  # trusted file: plain pickle as oracle
    first = reference[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(data.x_train[0], first)
    assert data.y_train[: len(reference[b"labels"])].tolist() == reference[b"labels"]
    assert str(cifar_dir) in data.source
    assert load_cifar10(cifar_dir.parent).digest == data.digest  # the parent folder works too


def test_quick_is_a_seeded_subset(cifar_dir):
    small = load_cifar10(cifar_dir, quick=True, seed=1)
    assert small.x_train.shape == (512, 32, 32, 3) and small.x_test.shape == (256, 32, 32, 3)
    assert load_cifar10(cifar_dir, quick=True, seed=1).digest == small.digest
    assert load_cifar10(cifar_dir, quick=True, seed=2).digest != small.digest


def test_second_load_reads_the_decoded_cache(cifar_dir, monkeypatch, data_root):
    first = load_cifar10(cifar_dir)
    assert list((data_root / "cache" / "cifar10").glob("*.npz"))
    monkeypatch.setattr(cifar, "decode_folder", lambda folder: pytest.fail("decoded twice"))
    second = load_cifar10(cifar_dir)
    np.testing.assert_array_equal(second.x_train, first.x_train)
    assert second.digest == first.digest


def test_loading_keeps_uint8_and_never_builds_a_float_copy(cifar_dir):
    """Peak traced memory stays near the uint8 size: a float32 copy alone would be 4x."""
    tracemalloc.start()
    try:
        data = load_cifar10(cifar_dir)  # cold: unpickles batch by batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.x_train.dtype == np.uint8 and data.x_test.dtype == np.uint8
    assert data.nbytes > 17_000_000
    assert peak < 2.5 * data.nbytes, f"peak {peak / 1e6:.1f} MB for {data.nbytes / 1e6:.1f} MB of data"


# -- search order and the one clear error ---------------------------------------------------


def test_search_order_data_then_root_then_keras_cache(tmp_path, data_root):
    keras_folder = tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py"
    keras_copy = write_folder(keras_folder, sizes=(1,) * 5)
    assert load_cifar10(None).x_train.shape[0] == 5
    assert str(keras_copy) in load_cifar10(None).source
    root_copy = write_folder(data_root / "cifar-10-batches-py", sizes=(2,) * 5)
    assert str(root_copy) in load_cifar10(None).source
    given = write_folder(tmp_path / "mine" / "cifar-10-batches-py", sizes=(3,) * 5)
    assert load_cifar10(tmp_path / "mine").x_train.shape[0] == 15
    assert str(given) in load_cifar10(tmp_path / "mine").source


def test_small_batches_are_concatenated(tmp_path):
    data = load_cifar10(write_folder(tmp_path / "c", sizes=(3, 2, 4, 1, 5), test=2))
    assert data.x_train.shape == (15, 32, 32, 3) and data.x_test.shape == (2, 32, 32, 3)
    assert data.label_names == cifar.LABEL_NAMES  # no batches.meta: the standard names


def test_nothing_found_offline_is_one_error_listing_where_it_looked(tmp_path, data_root):
    with pytest.raises(DataError) as error:
        load_cifar10(tmp_path / "empty")
    message = str(error.value)
    assert str(tmp_path / "empty") in message
    assert str(data_root / "cifar-10-batches-py") in message
    assert str(tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py") in message
    assert "--data" in message and "\n" not in message


def test_failed_download_becomes_the_same_clear_error(monkeypatch):
    monkeypatch.delenv("DLBENCH_OFFLINE")

    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(DataError, match="download failed .*Network is unreachable"):
        load_cifar10(None)


def test_incomplete_user_folder_names_the_missing_batches(tmp_path):
    folder = write_folder(tmp_path / "c")
    (folder / "data_batch_3").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="missing: data_batch_3, test_batch"):
        load_cifar10(folder)


# -- the restricted unpickler ---------------------------------------------------------------


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_malicious_global_is_refused(tmp_path):
    folder = write_folder(tmp_path / "c")
    marker = tmp_path / "pwned"
    payload = batch(2)
    payload[b"batch_label"] = Exploit(marker)
    (folder / "data_batch_2").write_bytes(pickle.dumps(payload, protocol=2))
    refused = r"data_batch_2: not a CIFAR-10 batch \(refused global (posix|os)\.system"
    with pytest.raises(DataError, match=refused):
        load_cifar10(folder)
    assert not marker.exists()


@pytest.mark.parametrize("global_name", ["builtins\neval", "subprocess\ncall", "numpy\nload"])
def test_other_globals_are_refused_before_they_run(tmp_path, global_name):
    module, name = global_name.split("\n")
    bad = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x04\x00\x00\x001+1;\x85R."
    path = tmp_path / "data_batch_1"
    path.write_bytes(bad)
    with pytest.raises(DataError, match=f"refused global {module}.{name}"):
        cifar.read_batch(path)


def test_original_numpy_core_pickles_are_accepted(tmp_path):
    """The real CIFAR files were written by old numpy: ``numpy.core.multiarray._reconstruct``."""
    text = pickle.dumps(batch(2), protocol=2)
    old = text.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert old != text
    path = tmp_path / "data_batch_1"
    path.write_bytes(old)
    images, labels = cifar.read_batch(path)
    assert images.shape == (2, 32, 32, 3) and labels.shape == (2,)


# -- validation ------------------------------------------------------------------------------


def test_truncated_batch_is_named(tmp_path):
    folder = write_folder(tmp_path / "c")
    path = folder / "data_batch_4"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"data_batch_4: truncated or not a CIFAR-10 python batch"):
        load_cifar10(folder)


def test_foreign_file_is_named(tmp_path):
    folder = write_folder(tmp_path / "c")
    (folder / "test_batch").write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match=r"test_batch: truncated or not a CIFAR-10 python batch"):
        load_cifar10(folder)


@pytest.mark.parametrize(
    "payload, message",
    [
        (batch(2, data=np.zeros((2, 100), np.uint8)), r"must be uint8 of shape \(N, 3072\)"),
        (batch(2, data=np.zeros((2, 3072), np.float32)), r"must be uint8 of shape \(N, 3072\)"),
        (batch(2, labels=[0, 10]), r"labels outside 0..9"),
        (batch(2, labels=[-1, 3]), r"labels outside 0..9"),
        (batch(2, labels=[1, 2, 3]), r"2 images but 3 labels"),
        ({b"images": 1}, r"expected keys b'data', b'labels'"),
        ([1, 2, 3], r"expected keys b'data', b'labels'"),
    ],
)
def test_bad_contents_are_named(tmp_path, payload, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: .*" + message):
        cifar.read_batch(path)
