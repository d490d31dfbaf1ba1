"""The array cache: data root, hit/miss by key, corrupt entries, atomic writes under a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlbench import cache


# Each test gets a data root (and Keras cache) of its own: no entry leaks between tests.
pytestmark = pytest.mark.usefixtures("data_root")


def counting(arrays):
    calls = []

    def compute():
        calls.append(1)
        return arrays

    return compute, calls


def test_data_root_follows_env_and_defaults_to_user_cache(data_root, monkeypatch):
    assert cache.data_root() == data_root
    monkeypatch.delenv("DLBENCH_DATA")
    import platformdirs

    assert cache.data_root() == Path(platformdirs.user_cache_dir("dlbench", appauthor=False))


def test_miss_then_hit_and_key_changes_miss(data_root):
    compute, calls = counting({"a": np.arange(5, dtype=np.float32), "b": np.eye(2)})
    first = cache.cached_arrays("unit", {"digest": "x", "n_fft": 1024}, compute)
    second = cache.cached_arrays("unit", {"n_fft": 1024, "digest": "x"}, compute)  # key order irrelevant
    assert len(calls) == 1
    np.testing.assert_array_equal(first["a"], second["a"])
    np.testing.assert_array_equal(second["b"], np.eye(2))
    assert set(second) == {"a", "b"}
    cache.cached_arrays("unit", {"digest": "x", "n_fft": 512}, compute)
    assert len(calls) == 2
    entries = sorted((data_root / "cache" / "unit").glob("*.npz"))
    assert len(entries) == 2


def test_corrupt_entry_is_recomputed_and_rewritten():
    key = {"digest": "y"}
    compute, calls = counting({"a": np.ones(3)})
    cache.cached_arrays("unit", key, compute)
    path = cache.entry_path("unit", key)
    path.write_bytes(path.read_bytes()[:40])  # truncated by something outside our control
    again = cache.cached_arrays("unit", key, compute)
    assert len(calls) == 2
    np.testing.assert_array_equal(again["a"], np.ones(3))
    cache.cached_arrays("unit", key, compute)
    assert len(calls) == 2  # the rewritten entry is whole


def test_entry_with_another_key_is_a_miss():
    key = {"digest": "z"}
    path = cache.entry_path("unit", key)
    path.parent.mkdir(parents=True)
    np.savez(path, a=np.zeros(2), __cache_key__=np.array(cache.key_text({"digest": "other"})))
    compute, calls = counting({"a": np.ones(2)})
    assert cache.cached_arrays("unit", key, compute)["a"].tolist() == [1.0, 1.0]
    assert calls == [1]


def test_object_arrays_are_refused():
    with pytest.raises(ValueError, match="cannot be stored"):
        cache.cached_arrays("unit", {"k": 1}, lambda: {"o": np.array([{"a": 1}], dtype=object)})
    assert not cache.entry_path("unit", {"k": 1}).exists()


def test_failed_write_leaves_no_entry_and_no_temp_file():
    target = cache.cache_dir("unit") / "entry.npz"

    def write(handle):
        handle.write(b"half an entry")
        raise KeyboardInterrupt  # killed mid-write

    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(target, write)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_process_killed_mid_write_never_leaves_a_corrupt_entry(data_root):
    """A real SIGKILL while the entry is being written: the entry is absent, not truncated."""
    key = {"digest": "killed"}
    child = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        from dlbench import cache
        import numpy
        real_savez = numpy.savez
        def slow_savez(handle, **arrays):
            handle.write(b"PK" + b"x" * 100000)
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
        numpy.savez = slow_savez
        cache.cached_arrays("unit", {key!r}, lambda: {{"a": np.ones(1000)}})
        """
    )
    env = {**os.environ, "DLBENCH_DATA": str(data_root)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    path = cache.entry_path("unit", key)
    assert not path.exists()
    leftovers = list(path.parent.glob(".*.tmp"))
    assert leftovers, "the killed writer's temp file should be the only trace"
    compute, calls = counting({"a": np.ones(1000)})
    assert cache.cached_arrays("unit", key, compute)["a"].sum() == 1000
    assert calls == [1]


def test_digests_depend_on_content(tmp_path):
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"abc")
    two.write_bytes(b"abc")
    assert cache.file_digest([one], names=False) == cache.file_digest([two], names=False)
    two.write_bytes(b"abd")
    assert cache.file_digest([one], names=False) != cache.file_digest([two], names=False)
    a = np.arange(6, dtype=np.int16)
    assert cache.array_digest([a]) == cache.array_digest([a.copy()])
    assert cache.array_digest([a]) != cache.array_digest([a.reshape(2, 3)])
    assert cache.array_digest([a]) != cache.array_digest([a.astype(np.int32)])
