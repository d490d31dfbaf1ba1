"""``dlbench denoise --run RUN_ID INPUT.wav [OUTPUT.wav]``: apply a logged denoiser to a recording.

The run's ``model/`` artifact holds the network and the spectral settings it was trained with,
so any recording is denoised exactly as the evaluation clips were (:class:`Denoiser`). The
output has the input's rate, channel count and length (each channel is denoised on its own)
and is written as PCM WAV (16-bit, or the input's 24/32-bit PCM depth) to a temporary file
renamed into place: a failure never leaves a partial file or touches an existing one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from dlbench.errors import DataError, TrackingError, UsageError
from dlbench.options import tracking_uri_option

KEPT_DEPTHS = ("PCM_24", "PCM_32")
"""Input subtypes whose depth the output keeps; every other input is written as PCM_16."""


@click.command("denoise")
@click.option("--run", "run_id", required=True, help="MLflow run id of a denoise_* run.")
@tracking_uri_option
@click.argument("input_path", metavar="INPUT.wav", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="[OUTPUT.wav]", required=False, type=click.Path(path_type=Path))
def denoise_command(run_id, tracking_uri, input_path, output_path):
    """Denoise INPUT.wav with the model of run RUN_ID (default output: INPUT.denoised.wav)."""
    import soundfile

    from dlbench_plugins.speech.audio import read_audio

    output_path = output_path or default_output(input_path)
    check_output(input_path, output_path)
    audio, rate = read_audio(input_path)  # checked: one DataError naming the file
    subtype = soundfile.info(str(input_path)).subtype
    with tempfile.TemporaryDirectory(prefix="dlbench-denoise-") as tmp:
        denoiser = fetch_denoiser(run_id, tracking_uri, Path(tmp))
        denoised = denoiser.denoise_audio(audio, rate)
    write_wav(output_path, denoised, rate, subtype if subtype in KEPT_DEPTHS else "PCM_16")
    click.echo(f"wrote {output_path} ({len(audio) / rate:.2f} s at {rate} Hz, run {run_id})", err=True)


def default_output(input_path: Path) -> Path:
    """``talk.wav`` -> ``talk.denoised.wav``, next to the input."""
    return input_path.with_name(f"{input_path.stem}.denoised.wav")


def check_output(input_path: Path, output_path: Path) -> None:
    """Refuse, before any work, an output that would overwrite the input or cannot be written."""
    if output_path.suffix.lower() != ".wav":
        raise UsageError(f"{output_path}: the output is written as WAV (fix: name it *.wav)")
    if output_path.exists() and input_path.exists() and os.path.samefile(output_path, input_path):
        raise UsageError(f"{output_path} is the input recording; it would be overwritten"
                         " (fix: give another OUTPUT.wav, or leave it out)")
    if output_path.is_dir():
        raise UsageError(f"{output_path} is a folder (fix: give a file name, OUTPUT.wav)")
    folder = output_path.parent if str(output_path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{output_path}: folder {folder} does not exist (fix: create it first)")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{output_path}: folder {folder} is not writable (fix: write elsewhere)")


def write_wav(path: Path, audio, rate: int, subtype: str) -> None:
    """Write PCM WAV atomically: a temporary file in the same folder, renamed into place."""
    import numpy as np
    import soundfile

    from dlbench.cache import atomic_write

    try:
        atomic_write(path, lambda handle: soundfile.write(
            handle, np.clip(audio, -1.0, 1.0), rate, subtype=subtype, format="WAV"))
    except OSError as exc:
        raise DataError(f"{path}: cannot write the output ({exc.strerror or exc})") from exc
    except Exception as exc:  # soundfile.LibsndfileError
        raise DataError(f"{path}: cannot write the output ({exc})") from exc


def fetch_denoiser(run_id: str, tracking_uri: str | None, folder: Path):
    """The run's :class:`Denoiser`, downloaded through MLflow."""
    from mlflow.exceptions import MlflowException

    from dlbench.store import open_store, resolve_store
    from dlbench_plugins.speech.inference import (MODEL_ARTIFACT, NETWORK_FILE, SETTINGS_FILE,
                                                  Denoiser)

    client = open_store(resolve_store(tracking_uri), create=False)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(
            f"run {run_id!r} not found in {client.tracking_uri}; fix: take the run_id from"
            " `dlbench run ... --json` or the MLflow UI, or pass --tracking-uri"
        ) from exc
    files = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT)}
    needed = {f"{MODEL_ARTIFACT}/{SETTINGS_FILE}", f"{MODEL_ARTIFACT}/{NETWORK_FILE}"}
    if not needed <= files:
        what = run.data.tags.get("dlbench.experiment") or run.info.run_name
        if run.info.status != "FINISHED" and str(what).startswith("denoise_"):
            raise UsageError(
                f"run {run_id} ({what}) is {run.info.status}: it did not finish, so it saved no"
                f" model; fix: pass a FINISHED run, or finish this one with"
                f" `dlbench run {what} --resume {run_id}`"
            )
        raise UsageError(
            f"run {run_id} ({what}) is not a denoiser: it has no {' and '.join(sorted(needed - files))};"
            " fix: pass the run id of a denoise_dense or denoise_conv1d run"
        )
    local = Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(folder)))
    return Denoiser.load(local)
