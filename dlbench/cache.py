"""The data root, and a content-keyed, crash-safe cache of numpy arrays under it (public API).

Why: decoding a dataset or computing features costs seconds that every run would otherwise
repeat. An entry is keyed by a JSON-able ``key`` that must name everything the arrays depend
on (a content digest of the inputs, the settings, a format version), so a changed input or
setting is a miss, never a stale hit.

Layout: ``<data_root>/cache/<namespace>/<sha256(key)[:24]>.npz``. The key itself is stored in
the entry and compared on read, so a hash collision or a hand-edited file reads as a miss.

Crash safety: an entry is written to a temporary file in the same folder and moved into place
with ``os.replace`` (atomic on POSIX and Windows), so a run killed mid-write leaves at worst a
stray ``.*.tmp`` file, never a truncated entry under the real name. There is no lock: two
concurrent runs that miss the same entry both compute it and the last rename wins, which
costs time once but can never produce a mixed entry. An entry that cannot be read (disk
trouble, a foreign file) is recomputed and rewritten rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

CACHE_FORMAT = 1
_KEY_FIELD = "__cache_key__"


def data_root() -> Path:
    """``$DLBENCH_DATA`` or the user cache dir (``~/.cache/dlbench`` on Linux); not created."""
    configured = os.environ.get("DLBENCH_DATA", "").strip()
    if configured:
        root = Path(configured).expanduser()
        if root.exists() and not root.is_dir():
            from dlbench.errors import DataError

            raise DataError(f"DLBENCH_DATA={configured} is not a folder (fix: point it at a"
                            " folder, or unset it for the user cache dir)")
        return root
    import platformdirs

    return Path(platformdirs.user_cache_dir("dlbench", appauthor=False))


def cache_dir(namespace: str | None = None) -> Path:
    """Where cache entries live (for ``dlbench datasets`` and tests); not created."""
    base = data_root() / "cache"
    return base / namespace if namespace else base


def key_text(key: dict) -> str:
    """The canonical JSON of a key: sorted, compact, so equal keys hash equally."""
    return json.dumps({"format": CACHE_FORMAT, **key}, sort_keys=True, separators=(",", ":"))


def entry_path(namespace: str, key: dict) -> Path:
    digest = hashlib.sha256(key_text(key).encode()).hexdigest()[:24]
    return cache_dir(namespace) / f"{digest}.npz"


def cached_arrays(
    namespace: str, key: dict, compute: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Return ``compute()``'s arrays, from the cache when an entry for ``key`` exists.

    ``compute`` must return a dict of numpy arrays (no object dtype: entries are read with
    ``allow_pickle=False``). The arrays come back as a fresh dict of in-memory arrays.
    """
    import numpy as np

    if not namespace.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"cache namespace must be a simple name, got {namespace!r}")
    path = entry_path(namespace, key)
    expected = key_text(key)
    found = _read_entry(path, expected)
    if found is not None:
        return found
    arrays = compute()
    bad = [name for name, value in arrays.items() if np.asarray(value).dtype == object]
    if bad or _KEY_FIELD in arrays:
        raise ValueError(f"cache entry {namespace}: arrays {bad} cannot be stored")
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload[_KEY_FIELD] = np.array(expected)
    atomic_write(path, lambda handle: np.savez(handle, **payload))
    return {name: np.asarray(value) for name, value in arrays.items()}


def _read_entry(path: Path, expected_key: str) -> dict | None:
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            if _KEY_FIELD not in entry.files or str(entry[_KEY_FIELD]) != expected_key:
                return None
            return {name: entry[name] for name in entry.files if name != _KEY_FIELD}
    except Exception:  # unreadable or foreign: recompute rather than trust it
        return None


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(binary_handle)``: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # The temp file is private (0600); the result gets the usual umask'd permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
        os.replace(handle.name, path)
    except BaseException:
        try:
            os.unlink(handle.name)
        except OSError:
            pass
        raise


def file_digest(paths: Iterable[Path], *, names: bool = True) -> str:
    """sha256 over the files' bytes (and base names), in the given order: a content digest."""
    hasher = hashlib.sha256()
    for path in paths:
        path = Path(path)
        if names:
            hasher.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        hasher.update(b"\0")
    return hasher.hexdigest()


def array_digest(arrays: Iterable[Any]) -> str:
    """sha256 over arrays' dtype, shape and bytes: the digest of data as it is handed out."""
    import numpy as np

    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(array.reshape(-1).view(np.uint8))
    return hasher.hexdigest()
