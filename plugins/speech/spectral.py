"""Spectral features for magnitude-only speech denoising, as pure functions; the one STFT.

A denoiser here predicts the clean STFT magnitude from the noisy one and borrows the noisy
phase to get back to a waveform, so one set of settings (n_fft, hop, window, input compression
and scaling, context frames) must be shared by training, evaluation and ``dlbench denoise``.
``SpectralSettings`` is that set; it round-trips through JSON so a logged run can be reused.
Every STFT of the plugin goes through :func:`stft` and back through :func:`istft`.

Layout: magnitudes are ``(frames, bins)`` (time first, like Keras examples); librosa's
``(bins, frames)`` is transposed at the edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

N_FFT = 1024
HOP_LENGTH = 512
WINDOW = "hann"
SAMPLE_RATE = 16000
COMPRESSIONS = ("none", "log1p")
OUTPUTS = ("mask", "magnitude")
NORMALIZATIONS = ("none", "recording", "frame")


@dataclass(frozen=True)
class SpectralSettings:
    """Everything needed to turn audio into model input and model output back into audio.

    The network sees the noisy magnitude divided by its level (``normalization``), compressed
    and divided by ``scale`` (the peak of the training input, measured by ``fit_scale``):

    - ``"none"`` (the seed's): the magnitude as recorded, so the input lies in [0, 1] for the
      training audio, but a recording 20 dB quieter shifts every input feature;
    - ``"recording"``: brought to the training audio's level (``reference_level``, the median
      RMS magnitude of the training recordings) by one gain per recording, so the input is the
      same whatever the recording's level, and a mask's output scales with it (a louder copy
      of a recording comes out exactly louder, at the same SNR);
    - ``"frame"``: each frame brought to the training frames' median level (its spectral
      shape alone).

    Normalising to the training level rather than to 1 keeps log1p's compression where the
    training audio put it: the same log1p on magnitudes three times larger compresses harder,
    and harder compression costs SNR (docs/RESULTS.md).

    What it returns depends on ``output``:

    - ``"mask"``: a non-negative gain per bin; the estimate is gain x noisy magnitude. Trained
      on linear magnitudes, the loss weighs each bin by its energy, as SNR does.
    - ``"magnitude"`` (the course seed): the clean magnitude itself, compressed and scaled
      like the input. The loss then weighs quiet and loud bins alike, which is what caps SNR.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    window: str = WINDOW
    compression: str = "log1p"
    context: int = 0
    scale: float = 1.0
    output: str = "mask"
    normalization: str = "none"  # saved before it existed: "none", what those models saw
    reference_level: float = 1.0

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frames_per_example(self) -> int:
        return 2 * self.context + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpectralSettings":
        """Read settings back from JSON, ignoring keys a later version may have added.

        Settings saved before ``output`` existed belong to magnitude models.
        """
        known = {f.name for f in fields(cls)}
        settings = cls(**{"output": "magnitude", **{k: v for k, v in data.items() if k in known}})
        if settings.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {settings.compression!r}; known: {COMPRESSIONS}")
        if settings.output not in OUTPUTS:
            raise ValueError(f"unknown output {settings.output!r}; known: {OUTPUTS}")
        if settings.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {settings.normalization!r}; known: {NORMALIZATIONS}"
            )
        return settings


def stft(signal, settings: SpectralSettings = SpectralSettings()):
    """Complex STFT as ``(frames, bins)``."""
    import librosa
    import numpy as np

    spec = librosa.stft(
        np.asarray(signal, dtype=np.float32),
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        window=settings.window,
    )
    return spec.T


def magnitude_phase(signal, settings: SpectralSettings = SpectralSettings()):
    """``(magnitude, phase)`` of the STFT, each ``(frames, bins)`` float32."""
    import numpy as np

    spec = stft(signal, settings)
    return np.abs(spec).astype(np.float32), np.angle(spec).astype(np.float32)


def istft(magnitude, phase, length: int, settings: SpectralSettings = SpectralSettings()):
    """Waveform of exactly ``length`` samples from a magnitude and a phase, ``(frames, bins)``."""
    import librosa
    import numpy as np

    spec = (np.asarray(magnitude) * np.exp(1j * np.asarray(phase))).T
    audio = librosa.istft(
        spec,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        window=settings.window,
        length=length,
    )
    return audio.astype(np.float32)


def compress(magnitude, kind: str):
    """Squash the magnitude's dynamic range so quiet bins matter to the loss ("log1p")."""
    import numpy as np

    if kind == "log1p":
        return np.log1p(magnitude)
    if kind == "none":
        return np.asarray(magnitude)
    raise ValueError(f"unknown compression {kind!r}; known: {COMPRESSIONS}")


def decompress(values, kind: str):
    """Inverse of ``compress``."""
    import numpy as np

    if kind == "log1p":
        return np.expm1(values)
    if kind == "none":
        return np.asarray(values)
    raise ValueError(f"unknown compression {kind!r}; known: {COMPRESSIONS}")


def stack_context(frames, context: int):
    """``(T, F)`` -> ``(T, F, 2*context + 1)``: each frame with its neighbours as channels.

    The edges repeat the first and last frame, so every output row has a full window and
    the number of rows matches the input (one prediction per STFT frame).
    """
    import numpy as np

    frames = np.asarray(frames)
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if context == 0:
        return frames[:, :, None]
    padded = np.pad(frames, ((context, context), (0, 0)), mode="edge")
    count = len(frames)
    return np.stack([padded[i : i + count] for i in range(2 * context + 1)], axis=-1)


def level(noisy_magnitude, settings: SpectralSettings):
    """The noisy magnitude ``(T, bins)``'s own level as ``settings.normalization`` measures it:
    1 (none), the recording's RMS magnitude, or each frame's (``(T, 1)``, floored at 1/1000 of
    the recording's, so a silent frame stays silent instead of dividing by zero)."""
    import numpy as np

    magnitude = np.asarray(noisy_magnitude, dtype=np.float32)
    if settings.normalization == "none":
        return np.float32(1.0)
    overall = float(np.sqrt(np.mean(np.square(magnitude, dtype=np.float64)))) if magnitude.size else 0.0
    overall = overall or 1.0
    if settings.normalization == "recording":
        return np.float32(overall)
    if settings.normalization == "frame":
        frames = np.sqrt(np.mean(np.square(magnitude), axis=-1, keepdims=True))
        return np.maximum(frames, np.float32(1e-3 * overall))
    raise ValueError(f"unknown normalization {settings.normalization!r}; known: {NORMALIZATIONS}")


def level_gain(noisy_magnitude, settings: SpectralSettings):
    """The gain that brings the noisy magnitude to the training audio's level
    (``reference_level``): a scalar, or ``(T, 1)`` per frame; 1 without normalization."""
    import numpy as np

    if settings.normalization == "none":
        return np.float32(1.0)
    return np.float32(settings.reference_level) / level(noisy_magnitude, settings)


def normalise(noisy_magnitude, settings: SpectralSettings):
    """The noisy magnitude brought to the training audio's level."""
    import numpy as np

    magnitude = np.asarray(noisy_magnitude, dtype=np.float32)
    return magnitude * level_gain(magnitude, settings)


def fit_scale(recordings, settings: SpectralSettings) -> SpectralSettings:
    """Settings fitted to the training input: ``reference_level`` (the median level of the
    recordings, or of their frames, when normalising) and ``scale``, the peak of the
    normalised, compressed input (never zero).

    ``recordings``: the noisy magnitudes ``(T, bins)`` of the training recordings (a list, or
    one array for one recording), each normalised on its own as ``model_input`` does.
    """
    import dataclasses

    import numpy as np

    if not isinstance(recordings, (list, tuple)):
        recordings = [recordings]
    if settings.normalization != "none" and recordings:
        levels = np.concatenate([np.ravel(level(m, settings)) for m in recordings])
        settings = dataclasses.replace(settings, reference_level=float(np.median(levels)) or 1.0)
    peak = max((float(np.max(compress(normalise(m, settings), settings.compression), initial=0.0))
                for m in recordings), default=0.0)
    return dataclasses.replace(settings, scale=peak if peak > 0 else 1.0)


def model_input(noisy_magnitude, settings: SpectralSettings):
    """Network input ``(T, bins, 2*context + 1)`` float32 from a noisy magnitude ``(T, bins)``:
    normalised (``settings.normalization``), compressed, scaled, with context frames."""
    import numpy as np

    scaled = compress(normalise(noisy_magnitude, settings), settings.compression) / settings.scale
    return stack_context(scaled, settings.context).astype(np.float32)


def model_target(clean_magnitude, settings: SpectralSettings, noisy_magnitude=None):
    """Target ``(T, bins)`` of a ``"magnitude"`` network: the clean magnitude, normalised by
    the noisy recording's level, compressed and scaled like the input. (A ``"mask"``
    network's loss compares linear magnitudes.)"""
    import numpy as np

    gain = 1.0 if noisy_magnitude is None else level_gain(noisy_magnitude, settings)
    clean = np.asarray(clean_magnitude, dtype=np.float32) * gain
    return (compress(clean, settings.compression) / settings.scale).astype(np.float32)


def output_magnitude(prediction, settings: SpectralSettings, noisy_magnitude):
    """Estimated clean magnitude ``(T, bins)``, >= 0, from the network's output: the gain
    applied to ``noisy_magnitude`` (mask), or the output unscaled, decompressed and brought
    back to the noisy recording's level."""
    import numpy as np

    values = np.maximum(np.asarray(prediction, dtype=np.float32), 0.0)
    if settings.output == "mask":
        return (values * np.asarray(noisy_magnitude, dtype=np.float32)).astype(np.float32)
    magnitude = decompress(values * settings.scale, settings.compression)
    return np.maximum(magnitude / level_gain(noisy_magnitude, settings), 0.0).astype(np.float32)
