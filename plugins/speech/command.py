"""``dlbench denoise (--run RUN_ID | --model URI) INPUT.wav [OUTPUT.wav]``: apply a logged
denoiser to a recording.

The run's model (``runs:/RUN_ID/model``, or a registered version ``models:/NAME/VERSION``,
``models:/NAME@ALIAS``) holds the network and the spectral settings it was trained with, so
any recording is denoised exactly as the evaluation clips were (:class:`Denoiser`). A run
logged before models were MLflow Models keeps the same two files under ``model/``: ``--run``
reads them alike. The output has the input's rate, channel count and length (each channel is
denoised on its own) and is written as PCM WAV (16-bit, or the input's 24/32-bit PCM depth)
to a temporary file renamed into place: a failure never leaves a partial file or touches an
existing one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from dlbench.errors import DataError, TrackingError, UsageError
from dlbench.frameworks import import_tensorflow
from dlbench.options import tracking_uri_option

KEPT_DEPTHS = ("PCM_24", "PCM_32")
"""Input subtypes whose depth the output keeps; every other input is written as PCM_16."""


@click.command("denoise")
@click.option("--run", "run_id", help="MLflow run id of a denoise_* run (its model).")
@click.option("--model", "model_uri", metavar="URI",
              help="The denoiser's MLflow model: runs:/RUN_ID/model, models:/NAME/VERSION"
                   " or models:/NAME@ALIAS.")
@tracking_uri_option
@click.argument("input_path", metavar="INPUT.wav", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="[OUTPUT.wav]", required=False, type=click.Path(path_type=Path))
def denoise_command(run_id, model_uri, tracking_uri, input_path, output_path):
    """Denoise INPUT.wav with the model of run RUN_ID, or the model at URI (default output:
    INPUT.denoised.wav)."""
    import soundfile

    from dlbench_plugins.speech.audio import read_audio

    if (run_id is None) == (model_uri is None):
        raise UsageError("give the denoiser as --run RUN_ID or as --model URI (one of them)")
    output_path = output_path or default_output(input_path)
    check_output(input_path, output_path)
    audio, rate = read_audio(input_path)  # checked: one DataError naming the file
    subtype = soundfile.info(str(input_path)).subtype
    import_tensorflow()  # quietly, before the model loads it
    with tempfile.TemporaryDirectory(prefix="dlbench-denoise-") as tmp:
        if model_uri is None:
            denoiser = fetch_denoiser(run_id, tracking_uri, Path(tmp))
        else:
            denoiser = load_denoiser(model_uri, tracking_uri, Path(tmp))
        denoised = denoiser.denoise_audio(audio, rate)
    write_wav(output_path, denoised, rate, subtype if subtype in KEPT_DEPTHS else "PCM_16")
    click.echo(f"wrote {output_path} ({len(audio) / rate:.2f} s at {rate} Hz,"
               f" {'run ' + run_id if run_id else model_uri})", err=True)


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

    from dlbench.models import using_store
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
    # The run's model/ folder: its logged model's files, or (logged before models were
    # MLflow Models) the same two files among the run's own artifacts.
    with using_store(client.tracking_uri):
        files = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT)}
        needed = {f"{MODEL_ARTIFACT}/{SETTINGS_FILE}", f"{MODEL_ARTIFACT}/{NETWORK_FILE}"}
        if not needed <= files:
            what = run.data.tags.get("dlbench.experiment") or run.info.run_name
            if run.info.status != "FINISHED" and str(what).startswith("denoise_"):
                raise UsageError(
                    f"run {run_id} ({what}) is {run.info.status}: it did not finish, so it saved"
                    f" no model; fix: pass a FINISHED run, or finish this one with"
                    f" `dlbench run {what} --resume {run_id}`"
                )
            raise UsageError(
                f"run {run_id} ({what}) is not a denoiser: it has no {' and '.join(sorted(needed - files))};"
                " fix: pass the run id of a denoise_dense or denoise_conv1d run"
            )
        local = Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(folder)))
    return Denoiser.load(local)


def load_denoiser(uri: str, tracking_uri: str | None, folder: Path):
    """The :class:`Denoiser` of the MLflow model at ``uri`` (``runs:/``, ``models:/NAME/V``,
    ``models:/NAME@ALIAS``): the files its pyfunc loads, read by the same code."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from dlbench.errors import first_line
    from dlbench.models import using_store
    from dlbench.store import open_store, resolve_store
    from dlbench_plugins.speech.inference import NETWORK_FILE, SETTINGS_FILE, Denoiser

    if not uri.startswith(("runs:/", "models:/")):
        raise UsageError(f"--model {uri!r}: expected runs:/RUN_ID/model, models:/NAME/VERSION"
                         " or models:/NAME@ALIAS")
    client = open_store(resolve_store(tracking_uri), create=False)
    try:
        with using_store(client.tracking_uri):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    except MlflowException as exc:
        raise TrackingError(f"--model {uri}: {first_line(exc)} (fix: check the name, version or"
                            f" alias in the MLflow UI, or pass --tracking-uri)") from exc
    missing = [name for name in (NETWORK_FILE, SETTINGS_FILE) if not (local / name).is_file()]
    if missing:
        raise UsageError(f"--model {uri} is not a denoiser: it has no {' and '.join(missing)};"
                         " fix: give the model of a denoise_dense or denoise_conv1d run")
    return Denoiser.load(local)
