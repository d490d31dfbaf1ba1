"""Read and check speech recordings: every problem becomes one DataError that names the file.

Decisions (recorded per file in the returned notes, which end up in ``SpeechData.notes``):

- Output is always float32 mono at 16 kHz, the rate every denoising experiment assumes.
- Stereo (or more channels) is *downmixed* by averaging the channels, with a note, rather than
  rejected: recordings made on a phone or a laptop are often two identical channels, and
  refusing them would only send the user to a converter that does the same average.
- Other sample rates are resampled to 16 kHz with soxr (high quality), with a note. Rates
  below 8 kHz are rejected: they have no content above 4 kHz, so a "16 kHz" version would be
  missing most of the consonant band the experiments score.
- NaN/inf samples, empty files and files that are not audio are rejected.
- A clean reference that is silent is rejected: SNR = 10 log10(|s|^2 / |s - y|^2) is
  undefined (or meaningless) when |s|^2 is zero. A silent noisy recording is rejected too:
  there is nothing to denoise, and training on it only ends in a dead output.
- A scored clip shorter than 0.5 s is rejected when the data is loaded, not after training:
  PESQ and STOI cannot score it.
- A clean/noisy pair may differ in length by at most one hop (512 samples, ~32 ms: one STFT
  frame); the longer is trimmed with a note. Beyond that the files are not a parallel pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlbench.errors import DataError, first_line
from dlbench_plugins.speech.clips import HOP, SAMPLE_RATE

MIN_SAMPLE_RATE = 8_000
SILENCE_RMS = 1e-6  # below ~ -120 dBFS: no speech in it
MIN_SCORED_SECONDS = 0.5  # PESQ: 0.25 s; STOI: 30 frames of 256 samples at 10 kHz, hop 128


@dataclass
class Recording:
    samples: np.ndarray  # float32 mono at SAMPLE_RATE
    notes: list[str] = field(default_factory=list)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """``(samples (n, channels) float32, rate)``, checked: a DataError names the file.

    The channels and rate are kept as they are: ``dlbench denoise`` writes its output in
    the input's format; :func:`read_wav` turns them into what the experiments train on.
    """
    import soundfile

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file is missing (fix: check the --data folder)")
    if not path.is_file():
        raise DataError(f"{path}: is not a file")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile.LibsndfileError, RuntimeError, OSError, ...
        raise DataError(
            f"{path}: cannot be read as audio ({first_line(exc)}; fix: provide a WAV/FLAC file)"
        ) from None
    if samples.shape[0] == 0:
        raise DataError(f"{path}: holds no samples (empty recording)")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise DataError(f"{path}: {bad} samples are NaN or infinite (fix: re-export the file)")
    if rate < MIN_SAMPLE_RATE:  # and resampling 1 Hz to 16 kHz would need 16,000x the memory
        raise DataError(
            f"{path}: sample rate {rate} Hz is below the supported minimum"
            f" {MIN_SAMPLE_RATE} Hz (fix: provide a recording at 16 kHz)"
        )
    return samples, int(rate)


def read_wav(path: Path) -> Recording:
    """Read ``path`` as float32 mono 16 kHz, downmixing and resampling with notes."""
    path = Path(path)
    samples, rate = read_audio(path)
    notes: list[str] = []
    if samples.shape[1] > 1:
        notes.append(f"{path.name}: {samples.shape[1]} channels downmixed to mono (mean)")
        mono = samples.mean(axis=1, dtype=np.float32)
    else:
        mono = samples[:, 0]
    if rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
        notes.append(f"{path.name}: resampled {rate} Hz -> {SAMPLE_RATE} Hz with soxr (HQ)")
    return Recording(np.ascontiguousarray(mono, dtype=np.float32), notes)


def check_reference(samples: np.ndarray, where: str) -> None:
    """A clean reference must carry signal, or the SNR against it is undefined."""
    _check_not_silent(samples, where, "clean reference", "SNR is undefined",
                      "the clean recording that matches the noisy one")


def check_noisy(samples: np.ndarray, where: str) -> None:
    """A silent noisy recording holds nothing to denoise: the network would learn to output
    zeros (a "dead" model), after minutes of training."""
    _check_not_silent(samples, where, "noisy recording", "there is nothing to denoise",
                      "the noisy recording that matches the clean one")


def _check_not_silent(samples: np.ndarray, where: str, what: str, why: str, fix: str) -> None:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms < SILENCE_RMS:
        raise DataError(f"{where}: {what} is silent (RMS {rms:.1e}), so {why} (fix: provide {fix})")


def check_scorable(samples: np.ndarray, where: str) -> None:
    """A scored clip must be long enough for every score: PESQ refuses clips under 0.25 s
    and STOI needs 30 frames of 25.6 ms (it returns a meaningless 1e-5 below that)."""
    seconds = len(samples) / SAMPLE_RATE
    if seconds < MIN_SCORED_SECONDS:
        raise DataError(
            f"{where}: the scored clip is {seconds:.2f} s long; PESQ and STOI need at least"
            f" {MIN_SCORED_SECONDS:g} s (fix: provide longer recordings)"
        )


def match_pair(
    clean: np.ndarray, noisy: np.ndarray, clean_name: str, noisy_name: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Trim a parallel pair to a common length; more than one hop apart is an error."""
    gap = abs(len(clean) - len(noisy))
    if gap > HOP:
        raise DataError(
            f"{noisy_name}: {len(noisy)} samples but its clean reference {clean_name} has"
            f" {len(clean)} (differ by {gap} > one hop of {HOP}); they are not a parallel pair"
        )
    if gap:
        notes.append(f"{clean_name}/{noisy_name}: lengths differ by {gap} samples; trimmed")
        length = min(len(clean), len(noisy))
        clean, noisy = clean[:length], noisy[:length]
    return clean, noisy
