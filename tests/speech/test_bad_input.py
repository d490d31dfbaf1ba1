"""Bad speech data, as a table: folders and audio files a user may pass with ``--data``.

Each row runs a probe experiment (no TensorFlow) that loads the real ``speech`` dataset, so
every mistake goes through the same checks the denoisers meet; it must end the run FAILED with
one ``error:`` line naming the file and the fix. The slow row runs ``denoise_dense`` itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbench.testing import fake_distribution
from support import PROBE_PLUGIN, check_bad_input, data_case

RATE = 16000


def wav(path: Path, seconds: float = 2.0, rate: int = RATE, seed: int = 0, gain: float = 0.3,
        subtype: str = "PCM_16", poison: float | None = None, format: str = "WAV") -> Path:
    """Real audio bytes at ``path`` (whatever its name says): noise at ``gain``, in ``format``;
    ``poison`` replaces one sample (NaN, inf) in a float file."""
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-gain, gain, int(seconds * rate))
    if poison is not None:
        samples[len(samples) // 2] = poison
    if format == "MP3":
        subtype = "MPEG_LAYER_III"
    soundfile.write(path, samples.astype(np.float32), rate, subtype=subtype, format=format)
    return path


def claim_huge(path: Path) -> Path:
    """A WAV whose header claims 4 GB of samples but whose data chunk is cut after 44 bytes."""
    data = bytearray(path.read_bytes()[:44])
    data[4:8] = (0xFFFFFFF0).to_bytes(4, "little")  # RIFF size
    data[40:44] = (0xFFFFFFD0).to_bytes(4, "little")  # data chunk size
    path.write_bytes(bytes(data))
    return path


def course(folder: Path, clean=None, dirty=None) -> Path:
    """A course-layout folder; ``clean``/``dirty`` replace the default 2 s recordings."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in (("train_clean_male.wav", clean), ("train_dirty_male.wav", dirty)):
        if make is None:
            wav(folder / name)
        elif make != "absent":
            make(folder / name)
    return folder


CASES = [
    data_case("speech-empty-folder", "probe_speech", lambda d: (d.mkdir() or d),
              "no speech data layout recognised"),
    data_case("speech-data-is-a-file", "probe_speech",
              lambda d: (d.parent.mkdir(exist_ok=True), d.write_text("x"), d)[-1],
              "--data must be a folder"),
    data_case("audio-not-audio", "probe_speech",
              lambda d: course(d, clean=lambda p: p.write_text("hello")), "cannot be read as audio"),
    data_case("audio-empty", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, seconds=0)), "holds no samples"),
    data_case("audio-rate-too-low", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, rate=4000)), "below the supported minimum"),
    data_case("audio-not-parallel", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, seconds=3.0)), "not a parallel pair"),
    data_case("audio-pair-missing", "probe_speech", lambda d: course(d, dirty="absent"),
              "its parallel file"),
    data_case("audio-too-short-to-score", "probe_speech",
              lambda d: course(d, clean=lambda p: wav(p, seconds=0.1),
                               dirty=lambda p: wav(p, seconds=0.1, seed=1)),
              "PESQ and STOI need at least 0.5 s"),
    data_case("audio-noisy-silent", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, gain=0.0)), "noisy recording is silent"),
    data_case("audio-nan-samples", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, subtype="FLOAT", poison=np.nan)),
              "samples are NaN or infinite"),
    data_case("audio-huge-claimed-size", "probe_speech",
              lambda d: course(d, dirty=lambda p: claim_huge(wav(p))), "holds no samples"),
]

SLOW_CASES = [
    data_case("denoise-dense-bad-audio", "denoise_dense",
              lambda d: course(d, clean=lambda p: p.write_text("hello")), "cannot be read as audio"),
]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return fake_distribution(tmp_path_factory.mktemp("site"), "probe_plugin", PROBE_PLUGIN)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_speech_data(case, plugin_site, tmp_path, monkeypatch):
    check_bad_input(case, plugin_site, tmp_path, "probe_plugin,speech", monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: c.id)
def test_bad_speech_data_real_experiment(case, plugin_site, tmp_path, monkeypatch):
    check_bad_input(case, plugin_site, tmp_path, "speech", monkeypatch)
