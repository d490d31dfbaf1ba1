"""A denoiser as an MLflow pyfunc model: a waveform in, the denoised waveform out.

Logged by the experiments as the run's ``model`` (``runs:/<run_id>/model``): the folder that
:meth:`Denoiser.save` writes (``model.keras`` beside ``spectral_settings.json``), plus the
``MLmodel`` that names this module as its loader. So ``mlflow.pyfunc.load_model``,
``mlflow models serve`` and ``dlbench denoise`` all run :meth:`Denoiser.denoise_audio`, the
code the experiment scores its evaluation clips with.

Input schema: one mono recording, a 1-D float32 tensor of samples in [-1, 1] (shape ``(-1,)``)
at the model's sample rate (16 kHz; ``sample_rate`` in the model's metadata), e.g. over REST
``{"inputs": [0.01, -0.02, ...]}``. Param ``sample_rate`` (default: the model's) names another
rate: the input is resampled to the model's and back. Output: the denoised waveform, float32,
as many samples as the input.
"""

from __future__ import annotations

from dlbench_plugins.speech.inference import Denoiser

EXAMPLE_SAMPLES = 2048
"""Length of the input example logged with the model (0.128 s at 16 kHz)."""


class DenoiserModel:
    """What MLflow's pyfunc wraps: ``predict(waveform, params)`` -> denoised waveform."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser

    def predict(self, model_input, params=None):
        import numpy as np

        signal = np.asarray(model_input, dtype=np.float32).reshape(-1)
        rate = int((params or {}).get("sample_rate") or self.denoiser.settings.sample_rate)
        return self.denoiser.denoise_audio(signal[:, None], rate)[:, 0]

    def get_raw_model(self) -> Denoiser:
        return self.denoiser


def _load_pyfunc(path):
    """MLflow's loader protocol: ``path`` is the model's folder."""
    return DenoiserModel(Denoiser.load(path))


def log_denoiser(ctx, denoiser: Denoiser, example, name: str = "model"):
    """Log ``denoiser`` into the run as pyfunc model ``name``; ``example`` is a real noisy
    recording, whose start becomes the input example."""
    import numpy as np

    rate = denoiser.settings.sample_rate
    waveform = np.asarray(example[:EXAMPLE_SAMPLES], dtype=np.float32)
    model = DenoiserModel(denoiser)
    return ctx.log_pyfunc_model(
        denoiser.save(ctx.scratch / name), name, loader_module=__name__,
        input_example=waveform, output_example=model.predict(waveform),
        params={"sample_rate": rate},
        metadata={"sample_rate": rate, "input": "mono waveform, float32 in [-1, 1]",
                  "output": "denoised waveform, same length"},
        primary=True,
    )
