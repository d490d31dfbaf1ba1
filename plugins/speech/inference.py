"""A trained denoiser applied to audio: the one path evaluation and ``dlbench denoise`` share.

A :class:`Denoiser` is the network and the :class:`SpectralSettings` it was trained with.
It takes the STFT of the noisy waveform, predicts the clean magnitude, puts it on the noisy
phase and inverts the STFT at the input's length. In a run it is kept as the ``model/``
artifact: ``model.keras`` beside ``spectral_settings.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench_plugins.speech.spectral import SpectralSettings

MODEL_ARTIFACT = "model"
"""A denoiser run's artifact folder, which ``dlbench denoise --run`` reads back."""

NETWORK_FILE = f"{MODEL_ARTIFACT}.keras"
SETTINGS_FILE = "spectral_settings.json"


@dataclass
class Denoiser:
    network: Any  # keras.Model: model input (spectral.model_input) -> gain or magnitude
    settings: SpectralSettings

    def estimate(self, noisy_magnitude):
        """The estimated clean magnitude ``(frames, bins)`` from the noisy one."""
        from dlbench_plugins.speech import spectral

        x = spectral.model_input(noisy_magnitude, self.settings)
        prediction = self.network.predict(x, verbose=0, batch_size=256)
        return spectral.output_magnitude(prediction, self.settings, noisy_magnitude)

    def denoise(self, signal, noisy_spectrum=None):
        """The denoised waveform, as long as ``signal`` (mono, at the settings' rate).

        ``noisy_spectrum`` is ``spectral.stft(signal)`` when the caller has it already (the
        experiment caches its STFTs); otherwise it is computed here.
        """
        import numpy as np

        from dlbench_plugins.speech import spectral

        spectrum = spectral.stft(signal, self.settings) if noisy_spectrum is None else noisy_spectrum
        magnitude = self.estimate(np.abs(spectrum))
        return spectral.istft(magnitude, np.angle(spectrum), len(signal), self.settings)

    def denoise_audio(self, audio, rate: int):
        """Denoise every channel of ``audio`` ``(samples, channels)`` recorded at ``rate``.

        The network works at the settings' rate: other rates are resampled with soxr on the
        way in and back on the way out. Same shape out.
        """
        import numpy as np
        import soxr

        model_rate = self.settings.sample_rate
        out = np.empty_like(audio)
        for channel in range(audio.shape[1]):
            signal = audio[:, channel]
            if rate != model_rate:
                signal = soxr.resample(signal, rate, model_rate, quality="HQ")
            clean = self.denoise(signal)
            if rate != model_rate:
                clean = soxr.resample(clean, model_rate, rate, quality="HQ")
            out[:, channel] = fit_length(clean, len(audio))
        return out

    def save(self, folder: Path) -> Path:
        """Write the network and its settings into ``folder`` (the ``model/`` artifact)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.network.save(folder / NETWORK_FILE)
        (folder / SETTINGS_FILE).write_text(json.dumps(self.settings.to_dict(), indent=2))
        return folder

    @classmethod
    def load(cls, folder: Path) -> "Denoiser":
        """The denoiser saved in ``folder`` by :meth:`save`."""
        import keras

        folder = Path(folder)
        settings = SpectralSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
        return cls(keras.models.load_model(folder / NETWORK_FILE, compile=False), settings)


def fit_length(signal, length: int):
    """Trim or zero-pad to ``length`` (resampling round trips can be a sample off)."""
    import numpy as np

    if len(signal) >= length:
        return signal[:length]
    return np.pad(signal, (0, length - len(signal)))
