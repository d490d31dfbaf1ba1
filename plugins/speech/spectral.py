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


@dataclass(frozen=True)
class SpectralSettings:
    """Everything needed to turn audio into model input and model output back into audio.

    The network sees the noisy magnitude compressed and divided by ``scale`` (the training
    input's peak, measured by ``fit_scale``), so its input lies in [0, 1] whatever the
    recording level. What it returns depends on ``output``:

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


def fit_scale(noisy_magnitude, settings: SpectralSettings) -> SpectralSettings:
    """Settings whose ``scale`` is the peak of the compressed training input (never zero)."""
    import dataclasses

    import numpy as np

    peak = float(np.max(compress(noisy_magnitude, settings.compression), initial=0.0))
    return dataclasses.replace(settings, scale=peak if peak > 0 else 1.0)


def model_input(noisy_magnitude, settings: SpectralSettings):
    """Network input ``(T, bins, 2*context + 1)`` float32 from a noisy magnitude ``(T, bins)``."""
    import numpy as np

    scaled = compress(noisy_magnitude, settings.compression) / settings.scale
    return stack_context(scaled, settings.context).astype(np.float32)


def model_target(clean_magnitude, settings: SpectralSettings):
    """Target ``(T, bins)`` of a ``"magnitude"`` network: the clean magnitude, compressed and
    scaled like the input. (A ``"mask"`` network's loss compares linear magnitudes.)"""
    import numpy as np

    return (compress(clean_magnitude, settings.compression) / settings.scale).astype(np.float32)


def output_magnitude(prediction, settings: SpectralSettings, noisy_magnitude):
    """Estimated clean magnitude ``(T, bins)``, >= 0, from the network's output: the gain
    applied to ``noisy_magnitude`` (mask), or the output unscaled and decompressed."""
    import numpy as np

    values = np.maximum(np.asarray(prediction, dtype=np.float32), 0.0)
    if settings.output == "mask":
        return (values * np.asarray(noisy_magnitude, dtype=np.float32)).astype(np.float32)
    return np.maximum(decompress(values * settings.scale, settings.compression), 0.0).astype(np.float32)
