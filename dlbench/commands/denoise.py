"""``dlbench denoise --run RUN_ID INPUT.wav [OUTPUT.wav]``: apply a logged denoiser to a recording.

The run's ``model/`` artifact holds the Keras model and the spectral settings it was trained
with (``spectral_settings.json``: STFT size, compression, scale, context frames), so any
recording can be denoised exactly as the evaluation clips were. Models work at 16 kHz; other
rates are resampled with soxr on the way in and back on the way out, and the output has the
input's rate, channel count and length (each channel is denoised on its own).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from dlbench.cli import TRACKING_URI_OPTION
from dlbench.errors import DataError, TrackingError, UsageError
from dlbench.spectral import MODEL_ARTIFACT, SETTINGS_FILE


@click.command("denoise")
@click.option("--run", "run_id", required=True, help="MLflow run id of a denoise_* run.")
@TRACKING_URI_OPTION
@click.argument("input_path", metavar="INPUT.wav", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="[OUTPUT.wav]", required=False, type=click.Path(path_type=Path))
def command(run_id, tracking_uri, input_path, output_path):
    """Denoise INPUT.wav with the model of run RUN_ID (default output: INPUT.denoised.wav)."""
    output_path = output_path or default_output(input_path)
    audio, rate, subtype = read_audio(input_path)
    with tempfile.TemporaryDirectory(prefix="dlbench-denoise-") as tmp:
        model, settings = fetch_denoiser(run_id, tracking_uri, Path(tmp))
        denoised = denoise_audio(model, settings, audio, rate)
    write_audio(output_path, denoised, rate, subtype)
    click.echo(f"wrote {output_path} ({len(audio) / rate:.2f} s at {rate} Hz, run {run_id})", err=True)


def default_output(input_path: Path) -> Path:
    """``talk.wav`` -> ``talk.denoised.wav``, next to the input."""
    return input_path.with_name(f"{input_path.stem}.denoised.wav")


def read_audio(path: Path):
    """``(samples (n, channels) float32, rate, subtype)``; the subtype is kept for the output."""
    import soundfile

    from dlbench.datasets.audio_io import read_audio as read_checked

    audio, rate = read_checked(path)
    return audio, rate, soundfile.info(str(path)).subtype


def write_audio(path: Path, audio, rate: int, subtype: str) -> None:
    import numpy as np
    import soundfile

    if not soundfile.check_format("WAV", subtype):
        subtype = "PCM_16"
    if subtype.startswith("PCM") or subtype in ("ULAW", "ALAW"):
        audio = np.clip(audio, -1.0, 1.0)
    try:
        soundfile.write(str(path), audio, rate, subtype=subtype, format="WAV")
    except Exception as exc:
        raise DataError(f"{path}: cannot write the output ({exc})") from exc


def fetch_denoiser(run_id: str, tracking_uri: str | None, folder: Path):
    """The run's Keras model and SpectralSettings, downloaded through MLflow."""
    import json

    import keras
    from mlflow.exceptions import MlflowException

    from dlbench.spectral import SpectralSettings
    from dlbench.tracking import model_file, open_store, resolve_store

    client = open_store(resolve_store(tracking_uri), create=False)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(
            f"run {run_id!r} not found in {client.tracking_uri}; fix: take the run_id from"
            " `dlbench run ... --json` or the MLflow UI, or pass --tracking-uri"
        ) from exc
    network = model_file(MODEL_ARTIFACT)
    files = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT)}
    needed = {f"{MODEL_ARTIFACT}/{SETTINGS_FILE}", f"{MODEL_ARTIFACT}/{network}"}
    if not needed <= files:
        what = run.data.tags.get("dlbench.experiment") or run.info.run_name
        raise UsageError(
            f"run {run_id} ({what}) is not a denoiser: it has no {' and '.join(sorted(needed - files))};"
            " fix: pass the run id of a denoise_dense or denoise_conv1d run"
        )
    local = Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(folder)))
    settings = SpectralSettings.from_dict(json.loads((local / SETTINGS_FILE).read_text()))
    model = keras.models.load_model(local / network, compile=False)
    return model, settings


def denoise_audio(model, settings, audio, rate: int):
    """Denoise every channel of ``audio`` (n, channels) at ``rate``; same shape out."""
    import numpy as np
    import soxr

    out = np.empty_like(audio)
    for channel in range(audio.shape[1]):
        signal = audio[:, channel]
        if rate != settings.sample_rate:
            signal = soxr.resample(signal, rate, settings.sample_rate, quality="HQ")
        clean = denoise_signal(model, settings, signal)
        if rate != settings.sample_rate:
            clean = soxr.resample(clean, settings.sample_rate, rate, quality="HQ")
        out[:, channel] = fit_length(clean, len(audio))
    return out


def denoise_signal(model, settings, signal):
    """Predicted magnitude with the noisy phase, inverse STFT at the signal's length."""
    from dlbench import spectral

    magnitude, phase = spectral.magnitude_phase(signal, settings)
    predicted = spectral.denoise_magnitude(model, magnitude, settings)
    return spectral.istft(predicted, phase, len(signal), settings)


def fit_length(signal, length: int):
    """Trim or zero-pad to ``length`` (resampling round trips can be a sample off)."""
    import numpy as np

    if len(signal) >= length:
        return signal[:length]
    return np.pad(signal, (0, length - len(signal)))
