"""Recorded parallel speech from a ``--data`` folder, in the layout the folder holds:

- **course**: ``train_clean_<who>.wav`` + ``train_dirty_<who>.wav`` (a sample-aligned pair,
  e.g. ``_male``), optional noisy tests ``test_x_NN.wav`` and clean references
  ``test_s_NN.wav``. Held-out protocol (``shared/data/README.md``): scoring uses every
  ``test_x_NN`` whose ``test_s_NN`` exists; when none has a reference, the last 15 % of the
  training pair is scored instead, cut at a multiple of the hop (512 samples) so no STFT frame
  straddles train and test, and that part is *excluded* from training. Every ``test_x_NN`` is
  also in ``listen`` (denoised and saved for listening), with its reference when it has one.
- **voicebank**: VoiceBank-DEMAND folders ``clean_trainset*_wav/``, ``noisy_trainset*_wav/``
  (the 28spk/56spk suffixes accepted), ``clean_testset_wav/``, ``noisy_testset_wav/``; files are
  matched by name, a noisy file without its clean twin is an error. The test set is scored.

Everything is float32 mono 16 kHz; how each file was adapted (downmix, resampling, trimming)
is listed in ``SpeechData.notes`` (see ``audio.py`` for the validation decisions).

``quick=True`` keeps the protocol but shortens it (about 8 s of training audio, 3 s scored,
3 s per listening clip) so smoke runs take seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dlbench.errors import DataError
from dlbench_plugins.speech import layouts
from dlbench_plugins.speech.audio import (check_noisy, check_reference, check_scorable,
                                          match_pair, read_wav)
from dlbench_plugins.speech.clips import HOP, SAMPLE_RATE, SpeechClip, SpeechData

HELD_OUT_FRACTION = 0.15
QUICK_TRAIN_S = 8.0
QUICK_EVAL_S = 3.0
QUICK_LISTEN_S = 3.0
QUICK_VOICEBANK_FILES = 6


def load_recorded(path: Path, *, quick: bool = False) -> SpeechData:
    """The speech at ``path`` (a folder of one of the layouts, or its parent)."""
    layout, folder = layouts.speech_layout(Path(path))
    if layout == "course":
        return load_course(folder, quick=quick)
    return load_voicebank(folder, quick=quick)


# -- course layout -------------------------------------------------------------------------


def held_out_cut(length: int, fraction: float = HELD_OUT_FRACTION, hop: int = HOP) -> int:
    """Index where the held-out tail starts: ``(1 - fraction)`` of ``length``, down to a hop."""
    return (int(length * (1.0 - fraction)) // hop) * hop


def load_course(folder: Path, *, quick: bool = False) -> SpeechData:
    folder = Path(folder)
    notes: list[str] = []
    pairs = _course_train_pairs(folder)
    train: list[SpeechClip] = []
    for who, clean_path, noisy_path in pairs:
        clean, noisy = _read_pair(clean_path, noisy_path, notes)
        train.append(SpeechClip(f"train_{who}", noisy, clean))

    tests = _course_tests(folder)
    evaluation: list[SpeechClip] = []
    listen: list[SpeechClip] = []
    for ident, noisy_path, clean_path in tests:
        if clean_path is None:
            recording = read_wav(noisy_path)
            notes += recording.notes
            listen.append(SpeechClip(f"test_x_{ident}", recording.samples, None))
        else:
            clean, noisy = _read_pair(clean_path, noisy_path, notes)
            evaluation.append(SpeechClip(f"test_x_{ident}", noisy, clean))
            listen.append(SpeechClip(f"test_x_{ident}", noisy, clean))

    if evaluation:
        notes.append(f"scored on {len(evaluation)} test_x_NN with references; trained on the full pair")
    else:
        held_out = []
        for i, clip in enumerate(train):
            cut = held_out_cut(len(clip.noisy))
            if cut <= 0 or cut >= len(clip.noisy):
                raise DataError(
                    f"{pairs[i][2]}: too short ({len(clip.noisy)} samples) to hold out"
                    f" {HELD_OUT_FRACTION:.0%} cut at a multiple of {HOP}"
                )
            held_out.append(SpeechClip(f"{clip.name}_heldout", clip.noisy[cut:], clip.clean[cut:]))
            train[i] = SpeechClip(clip.name, clip.noisy[:cut], clip.clean[:cut])
            notes.append(
                f"{clip.name}: no test_s_NN reference, so samples {cut}..{len(clip.noisy)}"
                f" (last {HELD_OUT_FRACTION:.0%}, cut at a multiple of {HOP}) are scored"
                " and excluded from training"
            )
        evaluation = held_out

    if quick:
        train = [_head(c, QUICK_TRAIN_S) for c in train]
        evaluation = [_head(c, QUICK_EVAL_S) for c in evaluation]
        listen = [_head(c, QUICK_LISTEN_S) for c in listen]
        notes.append(
            f"quick: first {QUICK_TRAIN_S:g} s of training, {QUICK_EVAL_S:g} s scored,"
            f" {QUICK_LISTEN_S:g} s per listening clip"
        )
    files = [p for _, c, n in pairs for p in (c, n)] + [
        p for _, n, c in tests for p in (n, c) if p is not None
    ]
    source = f"course layout at {folder}"
    return _finish("course", source, train, evaluation, listen, notes, files, quick)


def _course_train_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        match = layouts.COURSE_TRAIN.match(path.name)
        if match:  # not only files: a folder or dangling link of that name gets a clear error
            found.setdefault(match["who"].lower(), {})[match.group(1).lower()] = path
    pairs = []
    for who, sides in sorted(found.items()):
        for side, other in (("clean", "dirty"), ("dirty", "clean")):
            if side in sides and other not in sides:
                raise DataError(
                    f"{sides[side]}: its parallel file train_{other}_{who}.wav is missing"
                    f" in {folder}"
                )
        pairs.append((who, sides["clean"], sides["dirty"]))
    return pairs


def _course_tests(folder: Path) -> list[tuple[str, Path, Path | None]]:
    noisy: dict[str, Path] = {}
    clean: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        match = layouts.COURSE_TEST.match(path.name)
        if match:
            (noisy if match["kind"].lower() == "x" else clean)[match["id"]] = path
    for ident, path in clean.items():
        if ident not in noisy:
            raise DataError(f"{path}: clean reference without its noisy test_x_{ident}.wav")
    return [(ident, path, clean.get(ident)) for ident, path in sorted(noisy.items())]


def _read_pair(clean_path: Path, noisy_path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    clean = read_wav(clean_path)
    noisy = read_wav(noisy_path)
    notes += clean.notes + noisy.notes
    check_reference(clean.samples, str(clean_path))
    check_noisy(noisy.samples, str(noisy_path))
    return match_pair(clean.samples, noisy.samples, clean_path.name, noisy_path.name, notes)


def _head(clip: SpeechClip, seconds: float) -> SpeechClip:
    n = int(seconds * SAMPLE_RATE) // HOP * HOP
    return SpeechClip(clip.name, clip.noisy[:n], None if clip.clean is None else clip.clean[:n])


# -- VoiceBank-DEMAND ----------------------------------------------------------------------


def load_voicebank(folder: Path, *, quick: bool = False) -> SpeechData:
    folder = Path(folder)
    notes: list[str] = []
    train_clean = _one_dir(folder, "clean_trainset*_wav")
    train_noisy = _one_dir(folder, "noisy_trainset*_wav")
    test_clean = _one_dir(folder, "clean_testset_wav")
    test_noisy = _one_dir(folder, "noisy_testset_wav")
    train_pairs = _matched(train_clean, train_noisy)
    test_pairs = _matched(test_clean, test_noisy)
    if quick:
        train_pairs = train_pairs[:QUICK_VOICEBANK_FILES]
        test_pairs = test_pairs[: max(1, QUICK_VOICEBANK_FILES // 3)]
        notes.append(f"quick: first {len(train_pairs)} training and {len(test_pairs)} test files")
    train = [_voicebank_clip(c, n, notes) for c, n in train_pairs]
    evaluation = [_voicebank_clip(c, n, notes) for c, n in test_pairs]
    listen = evaluation[:2]
    notes.append(
        f"voicebank: {len(train)} training pairs from {train_clean.name},"
        f" {len(evaluation)} scored test pairs"
    )
    files = [p for pair in train_pairs + test_pairs for p in pair]
    source = f"VoiceBank-DEMAND at {folder}"
    return _finish("voicebank", source, train, evaluation, listen, notes, files, quick)


def _voicebank_clip(clean_path: Path, noisy_path: Path, notes: list[str]) -> SpeechClip:
    clean, noisy = _read_pair(clean_path, noisy_path, notes)
    return SpeechClip(noisy_path.stem, noisy, clean)


def _one_dir(folder: Path, pattern: str) -> Path:
    found = sorted(p for p in folder.glob(pattern) if p.is_dir())
    if not found:
        raise DataError(f"{folder}: VoiceBank-DEMAND folder {pattern}/ is missing")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DataError(f"{folder}: several folders match {pattern}/ ({names}); keep one")
    return found[0]


def _matched(clean_dir: Path, noisy_dir: Path) -> list[tuple[Path, Path]]:
    noisy = sorted(p for p in noisy_dir.glob("*.wav") if p.is_file())
    if not noisy:
        raise DataError(f"{noisy_dir}: holds no .wav files")
    pairs = []
    for path in noisy:
        clean = clean_dir / path.name
        if not clean.is_file():
            raise DataError(f"{path}: no clean file of the same name in {clean_dir}")
        pairs.append((clean, path))
    return pairs


# -- shared ----------------------------------------------------------------------------------


def _finish(layout, source, train, evaluation, listen, notes, files, quick) -> SpeechData:
    from dlbench.cache import file_digest

    for clip in evaluation:  # checked now, not by PESQ after the training
        check_scorable(clip.noisy, f"{source}: {clip.name}")
    # The digest names the files *and* the protocol that cut them, so a quick run or a
    # change of held-out split never shares cached features with a full one.
    protocol = hashlib.sha256()
    protocol.update(file_digest(files).encode())
    for part in (train, evaluation, listen):
        protocol.update(",".join(f"{c.name}:{len(c.noisy)}" for c in part).encode() + b"|")
    protocol.update(b"quick" if quick else b"full")
    return SpeechData(
        train=train,
        evaluation=evaluation,
        listen=listen,
        sample_rate=SAMPLE_RATE,
        layout=layout,
        source=source,
        digest=protocol.hexdigest(),
        notes=notes,
    )
