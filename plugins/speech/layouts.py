"""Which speech layout a ``--data`` folder holds, told from file names alone.

Kept free of numpy and audio libraries so ``dlbench datasets`` can report quickly; the
readers (``recorded.py``) decode and validate.
"""

from __future__ import annotations

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
