"""Where data is: recognise a speech folder's layout and find CIFAR-10, without reading it.

Kept free of numpy and audio libraries so ``dlbench datasets`` can report what is ready
quickly. Readers (``speech.py``, ``cifar.py``) do the decoding and validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dlbench.errors import DataError

COURSE_TRAIN = re.compile(r"^train_(clean|dirty)_(?P<who>[A-Za-z0-9]+)\.wav$", re.IGNORECASE)
COURSE_TEST = re.compile(r"^test_(?P<kind>[xs])_(?P<id>[A-Za-z0-9]+)\.wav$", re.IGNORECASE)
VOICEBANK_DIRS = (
    "clean_trainset*_wav", "noisy_trainset*_wav", "clean_testset_wav", "noisy_testset_wav"
)

SPEECH_LAYOUTS = (
    "course: train_clean_male.wav + train_dirty_male.wav (optional test_x_NN.wav, test_s_NN.wav)",
    "voicebank: clean_trainset*_wav/, noisy_trainset*_wav/, clean_testset_wav/, noisy_testset_wav/",
)

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"


def is_course(folder: Path) -> bool:
    return any(COURSE_TRAIN.match(p.name) for p in _files(folder))


def is_voicebank(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in VOICEBANK_DIRS)


def speech_layout(path: Path) -> tuple[str, Path]:
    """``(layout, folder)`` for a user's ``--data``; a parent with one speech subfolder works too.

    Accepting the parent lets one ``--data`` folder serve every dataset (``shared/data`` holds
    both ``course/`` and ``cifar-10-batches-py/``).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: --data folder does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: --data must be a folder holding one of the speech layouts")
    for folder in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
        if is_course(folder):
            return "course", folder
        if is_voicebank(folder):
            return "voicebank", folder
    looked = "; ".join(SPEECH_LAYOUTS)
    raise DataError(
        f"{path}: no speech data layout recognised (looked for {looked}; in the folder and"
        " its subfolders). Fix: point --data at such a folder, or leave --data out to use the"
        " synthesized default"
    )


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if not p.is_dir()]
    except OSError:
        return []


def keras_cache() -> Path:
    """Keras' dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return Path(home) / "datasets" if home else Path.home() / ".keras" / "datasets"


def cifar_candidates(path: Path | None) -> list[Path]:
    """Folders to try, in order: --data (itself or its child), the data root, keras' cache."""
    from dlbench.datasets.cache import data_root

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
