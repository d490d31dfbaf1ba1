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


def wav(path: Path, seconds: float = 2.0, rate: int = RATE, seed: int = 0, gain: float = 0.3) -> Path:
    """Real 16-bit PCM bytes at ``path``: uniform noise at ``gain``."""
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-gain, gain, int(seconds * rate))
    soundfile.write(path, samples.astype(np.float32), rate, subtype="PCM_16")
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


def test_a_header_that_claims_gigabytes_reads_as_empty(tmp_path):
    """The RIFF and data sizes claim 4 GB; the file ends after its 44-byte header. Nothing is
    allocated for the claim: the recording is refused as empty."""
    from dlbench.errors import DataError
    from dlbench_plugins.speech.audio import read_audio

    path = wav(tmp_path / "huge.wav")
    header = bytearray(path.read_bytes()[:44])
    header[4:8] = (0xFFFFFFF0).to_bytes(4, "little")  # RIFF size
    header[40:44] = (0xFFFFFFD0).to_bytes(4, "little")  # data chunk size
    path.write_bytes(bytes(header))
    with pytest.raises(DataError, match="huge.wav: holds no samples"):
        read_audio(path)
