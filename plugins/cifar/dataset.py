"""CIFAR-10 from the python pickle batches, read safely, kept as uint8, cached decoded.

Where it looks, in order: ``--data`` (a ``cifar-10-batches-py`` folder or its parent), the
data root (``$DLBENCH_DATA/cifar-10-batches-py``), keras' cache (``~/.keras/datasets``), and
only then a download through ``keras.utils.get_file`` into the data root, after a 3 s
reachability check and with a 20 s socket timeout so an offline machine fails in seconds with
one DataError listing every place looked and how to provide the data (``DLBENCH_OFFLINE=1``
skips the download attempt altogether).

Safety: the batches are pickles, read with :mod:`dlbench.unpickle`, which rebuilds numpy
arrays and plain containers only: any other global (``os.system``, ``builtins.eval``, ...) is
refused with a DataError before it can be called.

Validation: every batch must be a dict with ``data`` uint8 of shape (N, 3072) and ``labels``
N ints in 0..9; batches may hold fewer than 10,000 images (``shared/data`` holds a real subset
of ~1,000 per batch). A truncated or foreign file is a DataError naming it.

Memory: images stay uint8 (N, 32, 32, 3) and labels int64; there is never a float32 copy of
the whole set. Full CIFAR-10 is 50,000 x 3,072 B = 154 MB + 31 MB test; batches are decoded
one file at a time (peak ~2x the uint8 set while concatenating). The 4x augmentation of the
CIFAR experiments is applied on the fly per mini-batch from these uint8 arrays: a 4x
*materialized* float32 copy would be 50,000 x 4 x 3,072 x 4 B = 2.46 GB (over 2 GiB), as uint8
614 MB, while on the fly costs one float32 batch (128 x 3,072 x 4 B = 1.6 MB) per step. So the
full set with 4x augmentation stays well under 2 GiB.

``quick=True`` keeps a seeded random 512 training and 256 test images.
"""

from __future__ import annotations

import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.errors import DataError
from dlbench.unpickle import RefusedGlobal, load_arrays
from dlbench_plugins.cifar import location

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
QUICK_TRAIN = 512
QUICK_TEST = 256
CACHE_VERSION = 1

@dataclass
class Cifar10:
    x_train: np.ndarray  # uint8 (N, 32, 32, 3)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray  # uint8 (M, 32, 32, 3)
    y_test: np.ndarray  # int64 (M,)
    label_names: list[str]
    source: str
    digest: str

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_test, self.y_test))

    def input_schema(self) -> dict:
        """Columns, for the run's dataset record: a uint8 image in, its class index out."""
        return {"features": {"image": ("uint8", (-1, 32, 32, 3))},
                "targets": {"label": ("int64", (-1,))}}

    def describe(self) -> dict:
        """Counts, for the run's dataset record (its profile)."""
        return {"train_images": len(self.y_train), "test_images": len(self.y_test),
                "classes": list(self.label_names)}

    def log_test_set(self, ctx) -> None:
        """Record the test images as the run's evaluation data."""
        from dlbench.cache import array_digest

        ctx.log_dataset("cifar10", digest=array_digest((self.x_test, self.y_test)),
                        source=self.source, context="evaluation", **self.input_schema(),
                        profile={"test_images": len(self.y_test)})


def safe_load(path: Path):
    """Unpickle ``path`` without running code (python-2 era pickles: bytes keys)."""
    try:
        return load_arrays(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file is missing") from None
    except RefusedGlobal as exc:
        raise DataError(f"{path}: not a CIFAR-10 batch ({exc}: a dataset file may not"
                        " run code)") from None
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path}: truncated or not a CIFAR-10 python batch ({exc})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: truncated or not a CIFAR-10 python batch ({type(exc).__name__}: {exc})"
        ) from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 (N, 32, 32, 3), int64 (N,)), checked."""
    batch = safe_load(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch)[:5] if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path}: not a CIFAR-10 batch (expected keys b'data', b'labels'; got {keys})")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072 or data.shape[0] == 0:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: b'data' must be uint8 of shape (N, 3072), got {dtype} {shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: b'labels' are not integers") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels outside 0..9 (found {labels.min()}..{labels.max()})")
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _read_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(LABEL_NAMES)
    content = safe_load(meta)
    names = content.get(b"label_names") if isinstance(content, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise DataError(f"{meta}: b'label_names' must list 10 class names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def decode_folder(folder: Path) -> dict[str, np.ndarray]:
    """Every batch in ``folder`` decoded and concatenated (uint8 images, int64 labels)."""
    train = [folder / name for name in location.CIFAR_TRAIN_FILES if (folder / name).is_file()]
    parts = [read_batch(path) for path in train]
    x_test, y_test = read_batch(folder / location.CIFAR_TEST_FILE)
    return {
        "x_train": np.concatenate([x for x, _ in parts]),
        "y_train": np.concatenate([y for _, y in parts]),
        "x_test": x_test,
        "y_test": y_test,
    }


def load_cifar10(path: Path | None, *, quick: bool = False, seed: int = 0) -> Cifar10:
    """CIFAR-10 from ``path`` or the usual places (see module doc); decoded once, then cached."""
    from dlbench.cache import array_digest, cached_arrays, file_digest

    folder = _find_or_download(path)
    _check_complete(folder)
    files = [folder / n for n in (*location.CIFAR_TRAIN_FILES, location.CIFAR_TEST_FILE)
             if (folder / n).is_file()]
    content = file_digest(files)
    arrays = cached_arrays("cifar10", {"files": content, "version": CACHE_VERSION},
                           lambda: decode_folder(folder))
    names = _read_names(folder)
    source = f"cifar-10-batches-py at {folder}"
    if quick:
        rng = np.random.default_rng(seed)
        pick_train = np.sort(rng.choice(len(arrays["y_train"]),
                                        min(QUICK_TRAIN, len(arrays["y_train"])), replace=False))
        pick_test = np.sort(rng.choice(len(arrays["y_test"]),
                                       min(QUICK_TEST, len(arrays["y_test"])), replace=False))
        arrays = {"x_train": arrays["x_train"][pick_train], "y_train": arrays["y_train"][pick_train],
                  "x_test": arrays["x_test"][pick_test], "y_test": arrays["y_test"][pick_test]}
        source += f" (quick: {len(pick_train)} train / {len(pick_test)} test, seed {seed})"
        digest = array_digest(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    else:
        digest = content
    return Cifar10(x_train=arrays["x_train"], y_train=arrays["y_train"].astype(np.int64),
                   x_test=arrays["x_test"], y_test=arrays["y_test"].astype(np.int64),
                   label_names=names, source=source, digest=digest)


def _check_complete(folder: Path) -> None:
    missing = [n for n in (*location.CIFAR_TRAIN_FILES, location.CIFAR_TEST_FILE)
               if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: CIFAR-10 batch files missing: {', '.join(missing)}"
                        " (fix: provide the complete cifar-10-batches-py folder)")


def _find_or_download(path: Path | None) -> Path:
    if path is not None:
        for folder in (Path(path), Path(path) / location.CIFAR_FOLDER):
            partial = folder.is_dir() and any(
                (folder / n).is_file() for n in (*location.CIFAR_TRAIN_FILES, location.CIFAR_TEST_FILE))
            if partial:
                return folder  # the user's folder: a missing batch is an error, not a fallback
    found = location.find_cifar(path)
    if found is not None:
        return found
    looked = [str(p) for p in location.cifar_candidates(path)]
    try:
        return download()
    except DownloadFailed as exc:
        raise DataError(
            f"CIFAR-10 not found (looked in: {'; '.join(looked)}) and the download failed"
            f" ({exc}). Fix: pass --data with a cifar-10-batches-py folder (or its parent), or"
            f" extract {CIFAR_URL} into {location.cifar_candidates(None)[0].parent}"
        ) from None


class DownloadFailed(Exception):
    pass


def download(timeout: float = 20.0) -> Path:
    """Fetch CIFAR-10 with keras into the data root; quick failure when offline."""
    from dlbench.cache import data_root

    if os.environ.get("DLBENCH_OFFLINE", "").strip() not in ("", "0"):
        raise DownloadFailed("DLBENCH_OFFLINE is set")
    try:
        socket.create_connection(("www.cs.toronto.edu", 443), timeout=3).close()
    except OSError as exc:
        raise DownloadFailed(f"www.cs.toronto.edu unreachable: {exc}") from None
    root = data_root()
    root.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        import keras

        keras.utils.get_file("cifar-10-python.tar.gz", CIFAR_URL, cache_dir=str(root),
                             cache_subdir=".", extract=True, file_hash=CIFAR_MD5)
    except Exception as exc:  # keras wraps URL/HTTP/timeout errors in plain Exception
        raise DownloadFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        socket.setdefaulttimeout(previous)
    found = [p for p in root.rglob(location.CIFAR_FOLDER) if location.has_cifar(p)]
    if not found:
        raise DownloadFailed(f"archive extracted but no {location.CIFAR_FOLDER} under {root}")
    target = root / location.CIFAR_FOLDER
    if found[0] != target and not target.exists():
        os.replace(found[0], target)  # keras 3 extracts into <name>_extracted/
        return target
    return found[0]
