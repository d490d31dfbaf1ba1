"""Where CIFAR-10's python batches are, found from file names alone (no decoding), and what
``dlbench datasets`` reports about them."""

from __future__ import annotations

import os
from pathlib import Path

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"


def keras_cache() -> Path:
    """Keras' dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return Path(home) / "datasets" if home else Path.home() / ".keras" / "datasets"


def cifar_candidates(path: Path | None) -> list[Path]:
    """Folders to try, in order: --data (itself or its child), the data root, keras' cache."""
    from dlbench.cache import data_root

    found: list[Path] = []
    if path is not None:
        path = Path(path).expanduser()
        found += [path, path / CIFAR_FOLDER]
    found += [data_root() / CIFAR_FOLDER, keras_cache() / CIFAR_FOLDER]
    return found


def has_cifar(folder: Path) -> bool:
    return (folder / CIFAR_TEST_FILE).is_file() and any(
        (folder / name).is_file() for name in CIFAR_TRAIN_FILES
    )


def find_cifar(path: Path | None) -> Path | None:
    """The first candidate folder holding CIFAR-10 batches, or None."""
    for folder in cifar_candidates(path):
        if has_cifar(folder):
            return folder
    return None


def status() -> dict:
    """What ``dlbench datasets`` shows: where CIFAR-10 was found, or where it was looked for."""
    from dlbench.cache import cache_dir, data_root

    found = find_cifar(None)
    if found is not None:
        ready, source, detail = True, str(found), "found"
    else:
        looked = "; ".join(str(p) for p in cifar_candidates(None))
        ready, source = False, "download from www.cs.toronto.edu on first use (or --data PATH)"
        detail = f"not found locally (looked in {looked})"
    return {"source": source, "cache": str(cache_dir("cifar10")), "ready": ready,
            "detail": detail, "data_root": str(data_root())}
