"""denoise_dense / denoise_conv1d end to end: the real CLI, a real SQLite store, the course data.

Metrics and artifacts are read back through MLflow, as a user of the UI would see them, and
`dlbench denoise` is applied to a real recording with the model the quick run logged.
"""

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from dlbench.models import using_store
from dlbench.testing import run_cli
from support import COURSE, client

SCORES = ("snr_db", "snr_in_db", "snr_gain_db", "si_sdr_db", "pesq", "stoi", "oracle_snr_db")

# One worker runs this module, so its shared store and quick run are made once per session.
pytestmark = pytest.mark.xdist_group("speech-e2e")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not COURSE.is_dir():
        pytest.skip(f"shared course speech data not found at {COURSE}; set DLBENCH_TEST_DATA")
    return f"sqlite:///{tmp_path_factory.mktemp('denoise-store') / 'mlflow.db'}"


REGISTERED = "course-denoiser"


@pytest.fixture(scope="module")
def quick_run(store, tmp_path_factory):
    """One `dlbench run denoise_dense --quick` shared by the tests below (it takes seconds),
    its model registered as REGISTERED@champion; the summary plus the run's stderr."""
    out = run_cli(["run", "denoise_dense", "--quick", "--json", "--tracking-uri", store,
                   "--data", str(COURSE), "--register", REGISTERED, "--alias", "champion"],
                  cwd=tmp_path_factory.mktemp("cwd"), env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)  # stdout is the JSON document and nothing else
    assert summary["status"] == "FINISHED"
    return {**summary, "stderr": out.stderr}


def test_progress_lines_on_stderr_without_tensorflow_noise(quick_run):
    lines = quick_run["stderr"].splitlines()
    epochs = [line for line in lines if line.startswith("[denoise_dense] epoch ")]
    assert len(epochs) == 1, quick_run["stderr"]
    assert re.fullmatch(r"\[denoise_dense\] epoch 1/1  loss \S+  val_loss \S+  \d+ s", epochs[0])
    assert not [line for line in lines if "absl::InitializeLog" in line or line.startswith("I0000")]


def test_quick_run_logs_every_score(quick_run, store):
    metrics = client(store).get_run(quick_run["run_id"]).data.metrics
    assert set(SCORES) <= set(metrics) and set(SCORES) <= set(quick_run["metrics"])
    assert {"loss", "val_loss", "train_seconds"} <= set(metrics)
    assert metrics["snr_gain_db"] == pytest.approx(metrics["snr_db"] - metrics["snr_in_db"])
    # The oracle (clean magnitude, noisy phase) is the ceiling and well above the input.
    assert metrics["oracle_snr_db"] > metrics["snr_in_db"] + 5
    assert [m.step for m in client(store).get_metric_history(quick_run["run_id"], "loss")] == [1]


def test_quick_run_scores_are_the_scores_of_the_logged_audio(quick_run, store, tmp_path):
    """Every score is what the logged clips give: the seed's SNR by hand, PESQ and STOI of the
    denoised clip a listener gets against its clean reference, and of the noisy input."""
    from dlbench_plugins.speech.metrics import pesq_wb, stoi

    mlflow = client(store)
    folder = mlflow.download_artifacts(quick_run["run_id"], "audio/train_male_heldout", str(tmp_path))
    noisy, rate = soundfile.read(f"{folder}/noisy.wav", dtype="float64")
    clean, _ = soundfile.read(f"{folder}/clean.wav", dtype="float64")
    denoised, _ = soundfile.read(f"{folder}/denoised.wav", dtype="float64")
    assert rate == 16000 and len(noisy) == len(clean) == len(denoised)
    metrics = quick_run["metrics"]

    def snr(estimate):
        return 10 * math.log10(np.sum(clean**2) / np.sum((clean - estimate) ** 2))

    # The input clips are the 16-bit recordings themselves: their scores match exactly.
    assert metrics["snr_in_db"] == pytest.approx(snr(noisy), abs=1e-6)
    assert metrics["pesq_in"] == pytest.approx(pesq_wb(clean, noisy), abs=1e-6)
    assert metrics["stoi_in"] == pytest.approx(stoi(clean, noisy), abs=1e-6)
    # The denoised clip was scored before its 16-bit export: PESQ hears that quantization
    # (it moves by ~0.04 on this quiet clip), SNR and STOI hardly.
    assert metrics["snr_db"] == pytest.approx(snr(denoised), abs=0.01)
    assert metrics["pesq"] == pytest.approx(pesq_wb(clean, denoised), abs=0.1)
    assert metrics["stoi"] == pytest.approx(stoi(clean, denoised), abs=0.005)


def test_quick_run_artifacts(quick_run, store, tmp_path):
    mlflow = client(store)
    run_id = quick_run["run_id"]

    def files(path=None):
        return {f.path for f in mlflow.list_artifacts(run_id, path)}

    assert {"spectrograms.png", "loss.png", "per_file.csv"} <= files()
    # The model/ folder of old, now the run's MLflow model (listed through the run too).
    with using_store(store):
        assert files("model") == {f"model/{name}" for name in (
            "model.keras", "spectral_settings.json", "MLmodel", "requirements.txt",
            "input_example.json", "serving_input_example.json", "conda.yaml", "python_env.yaml")}
    assert files("audio/train_male_heldout") == {
        f"audio/train_male_heldout/{k}.wav" for k in ("noisy", "denoised", "clean")}
    # test_x_NN have no clean reference: only noisy and denoised, for listening.
    for name in ("test_x_01", "test_x_02"):
        assert files(f"audio/{name}") == {f"audio/{name}/{k}.wav" for k in ("noisy", "denoised")}
    with using_store(store):
        local = mlflow.download_artifacts(run_id, "model/spectral_settings.json", str(tmp_path))
    settings = json.loads(open(local).read())
    assert settings["n_fft"] == 1024 and settings["hop_length"] == 512 and settings["scale"] > 0
    table = open(mlflow.download_artifacts(run_id, "per_file.csv", str(tmp_path))).read()
    assert table.startswith("file,") and "train_male_heldout," in table


def test_logged_model_is_an_mlflow_model_on_the_evaluation_path(quick_run, store, tmp_path):
    """mlflow.pyfunc loads the run's model; it denoises a waveform to one of the same length,
    with the code that denoised the run's own evaluation clip (the logged .wav)."""
    import mlflow.pyfunc

    run = client(store).get_run(quick_run["run_id"])
    (output,) = run.outputs.model_outputs  # the UI's Logged models / Models column
    with using_store(store):
        model = mlflow.pyfunc.load_model(f"runs:/{quick_run['run_id']}/model")
        folder = client(store).download_artifacts(quick_run["run_id"], "audio/train_male_heldout",
                                                  str(tmp_path))
    assert model.metadata.model_id == output.model_id
    assert model.metadata.metadata["sample_rate"] == 16000
    spec = model.metadata.get_input_schema().inputs[0]
    assert (spec.type, spec.shape) == (np.dtype("float32"), (-1,))
    assert model.metadata.get_params_schema().to_dict()[0]["name"] == "sample_rate"
    assert model.metadata.flavors["python_function"]["loader_module"] == (
        "dlbench_plugins.speech.served")

    noisy, rate = soundfile.read(f"{folder}/noisy.wav", dtype="float32")
    logged, _ = soundfile.read(f"{folder}/denoised.wav", dtype="float32")
    denoised = model.predict(noisy)
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    # The evaluation's output, as the run saved it (16-bit): the same numbers.
    assert np.max(np.abs(np.clip(denoised, -1, 1) - logged)) <= 1.5 / 32767


def test_model_requirements_pin_dlbench_and_frameworks(quick_run, store, tmp_path):
    import keras
    import tensorflow as tf

    import dlbench

    with using_store(store):
        local = client(store).download_artifacts(quick_run["run_id"], "model/requirements.txt",
                                                 str(tmp_path))
    pins = set(Path(local).read_text().split())
    assert {f"dlbench=={dlbench.__version__}", f"tensorflow=={tf.__version__}",
            f"keras=={keras.__version__}"} <= pins
    assert any(pin.startswith("mlflow==") for pin in pins)


def test_registered_alias_denoises_through_the_cli(quick_run, store, tmp_path, cli):
    mlflow = client(store)
    version = mlflow.get_model_version_by_alias(REGISTERED, "champion")
    assert quick_run["registered_model"] == f"models:/{REGISTERED}/{version.version}"
    assert version.run_id == quick_run["run_id"]
    assert mlflow.get_run(quick_run["run_id"]).data.tags["dlbench.registered_model"] == (
        f"{REGISTERED}/{version.version}")

    source, target = tmp_path / "talk.wav", tmp_path / "clean.wav"
    shutil.copy(COURSE / "test_x_01.wav", source)
    out = cli(["denoise", "--model", f"models:/{REGISTERED}@champion", "--tracking-uri", store,
               str(source), str(target)], env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr
    noisy, _ = soundfile.read(source, dtype="float32")
    denoised, _ = soundfile.read(target, dtype="float32")
    with using_store(store):
        served = mlflow_pyfunc_predict(f"models:/{REGISTERED}/{version.version}", noisy)
    assert np.max(np.abs(np.clip(served, -1, 1) - denoised)) <= 1.5 / 32767

    missing = cli(["denoise", "--model", f"models:/{REGISTERED}@nobody", "--tracking-uri", store,
                   str(source), str(tmp_path / "x.wav")], env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert missing.exit_code == 1 and "nobody" in missing.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.wav").exists()


def mlflow_pyfunc_predict(uri, signal):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri).predict(signal)


def test_a_model_logged_before_mlflow_models_still_loads_through_run(quick_run, store, tmp_path,
                                                                    cli):
    """A run whose model/ holds only model.keras and spectral_settings.json, among the run's
    own artifacts (as every run had before), denoises as it did."""
    mlflow = client(store)
    with using_store(store):
        model = Path(mlflow.download_artifacts(quick_run["run_id"], "model", str(tmp_path)))
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.keras", "spectral_settings.json"):
        shutil.copy(model / name, old / name)
    run = mlflow.create_run(mlflow.get_run(quick_run["run_id"]).info.experiment_id)
    mlflow.log_artifacts(run.info.run_id, str(old), "model")
    mlflow.set_terminated(run.info.run_id)

    source = tmp_path / "talk.wav"
    shutil.copy(COURSE / "test_x_01.wav", source)
    out = cli(["denoise", "--run", run.info.run_id, "--tracking-uri", store, str(source)],
              env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr
    denoised, _ = soundfile.read(tmp_path / "talk.denoised.wav", dtype="float32")
    noisy, _ = soundfile.read(source, dtype="float32")
    with using_store(store):
        served = mlflow_pyfunc_predict(f"runs:/{quick_run['run_id']}/model", noisy)
    assert np.max(np.abs(np.clip(served, -1, 1) - denoised)) <= 1.5 / 32767


def test_datasets_recorded_for_training_and_evaluation(quick_run, store):
    run = client(store).get_run(quick_run["run_id"])
    by_context = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    assert set(by_context) == {"training", "evaluation"}
    digest = run.data.tags["dlbench.dataset.speech.digest"]
    assert len(digest) == 64 and by_context["training"].digest == digest[:36]
    schema = json.loads(by_context["evaluation"].schema)["mlflow_tensorspec"]
    assert [c["name"] for c in json.loads(schema["features"])] == ["noisy"]
    assert [c["name"] for c in json.loads(schema["targets"])] == ["clean"]
    assert json.loads(by_context["training"].profile)["layout"] == "course"
    assert run.data.tags["dlbench.dataset.speech.evaluation.digest"][:36] == (
        by_context["evaluation"].digest)
    note = run.data.tags["mlflow.note.content"]
    assert "`audio/train_male_heldout/`" in note and "`spectrograms.png`" in note
    assert f"runs:/{quick_run['run_id']}/model" in note


def test_quick_rerun_reproduces_exactly(quick_run, store, cli):
    """`dlbench rerun`: the same params, seed, quick flag and data give every metric again,
    bit for bit, on CPU with op determinism."""
    out = cli(["rerun", quick_run["run_id"], "--tracking-uri", store, "--json"],
              env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["reproduced"] and report["warnings"] == []
    compared = {r["metric"]: r for r in report["metrics"] if r["compared"]}
    assert set(SCORES) | {"loss", "val_loss"} <= set(compared)
    assert all(r["difference"] == 0.0 for r in compared.values())
    rerun = client(store).get_run(report["run_id"])
    assert rerun.data.tags["dlbench.rerun_of"] == quick_run["run_id"]
    assert rerun.data.tags["dlbench.data_path"] == str(COURSE.resolve())


def denoise_a_course_recording(run_id, store, folder):
    """`dlbench denoise` on a copy of test_x_01: (noisy, its rate, denoised, its rate)."""
    source = folder / "talk.wav"
    shutil.copy(COURSE / "test_x_01.wav", source)
    out = run_cli(["denoise", "--run", run_id, "--tracking-uri", store, str(source)])
    assert out.returncode == 0, out.stderr[-3000:]
    return (*soundfile.read(source), *soundfile.read(folder / "talk.denoised.wav"))


def test_denoise_command_on_a_real_recording(quick_run, store, tmp_path):
    noisy, rate, denoised, out_rate = denoise_a_course_recording(quick_run["run_id"], store, tmp_path)
    assert out_rate == rate and denoised.shape == noisy.shape
    assert np.all(np.isfinite(denoised)) and not np.allclose(denoised, noisy, atol=1e-3)
    assert np.std(denoised) > 0.01 * np.std(noisy)  # not silence


def test_conv1d_quick_run_and_its_capped_model_through_dlbench_denoise(store, tmp_path, cli):
    """The conv1d defaults end to end: logged run, a .keras model whose gain stops at
    max_gain when loaded back, and `dlbench denoise` with it."""
    import keras

    out = run_cli(["run", "denoise_conv1d", "--quick", "--json", "--tracking-uri", store,
                   "--data", str(COURSE)], cwd=tmp_path, env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    run = client(store).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and set(SCORES) <= set(run.data.metrics)
    params = run.data.params
    assert params["target"] == "phase_sensitive"
    assert params["max_gain"] == "1.0" and params["pool_size"] == "4"
    assert params["normalization"] == "recording" and params["output_init"] == "half_gain"
    assert run.data.tags["dlbench.speech.jit_compile"] == "false"

    with using_store(store):  # model/ is the run's logged model: MLflow looks it up globally
        local = client(store).download_artifacts(summary["run_id"], "model/model.keras", str(tmp_path))
    network = keras.saving.load_model(local)
    assert network.layers[-1].name == "gain" and float(network.layers[-1].max_value) == 1.0
    loud = 5 * np.random.default_rng(0).random((8, 513, 1), dtype="float32")
    gains = network.predict(loud, verbose=0)
    assert gains.min() >= 0 and gains.max() <= 1.0

    source = tmp_path / "talk.wav"
    shutil.copy(COURSE / "test_x_01.wav", source)
    out = cli(["denoise", "--run", summary["run_id"], "--tracking-uri", store, str(source)],
              env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr[-3000:]
    noisy, denoised = soundfile.read(source)[0], soundfile.read(tmp_path / "talk.denoised.wav")[0]
    assert denoised.shape == noisy.shape and np.all(np.isfinite(denoised))
    # A gain of at most 1 per bin cannot add energy beyond the overlap-add's rounding.
    assert np.sum(denoised**2) <= 1.01 * np.sum(noisy**2)


def test_denoise_command_resamples_and_keeps_channels_and_length(quick_run, store, tmp_path,
                                                                 cli):
    import soxr

    noisy, rate = soundfile.read(COURSE / "test_x_01.wav", dtype="float32")
    fast = soxr.resample(noisy[: 2 * rate], rate, 22050)
    stereo = np.stack([fast, 0.5 * fast], axis=1)
    source, target = tmp_path / "in.wav", tmp_path / "out" / "cleaned.wav"
    target.parent.mkdir()
    soundfile.write(source, stereo, 22050, subtype="FLOAT")
    out = cli(["denoise", "--run", quick_run["run_id"], "--tracking-uri", store,
               str(source), str(target)], env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr[-3000:]
    denoised, out_rate = soundfile.read(target)
    assert out_rate == 22050 and denoised.shape == stereo.shape
    assert soundfile.info(target).subtype == "PCM_16"  # PCM WAV, whatever the input held
    # Each channel is denoised on its own: the half-level channel comes out quieter.
    assert np.std(denoised[:, 1]) < np.std(denoised[:, 0])


def test_denoise_command_errors_are_one_clear_line(quick_run, store, tmp_path, cli):
    """Mistakes found before any audio is written, in-process: one line, the right exit code,
    no output file."""
    recording = tmp_path / "a.wav"
    shutil.copy(COURSE / "test_x_01.wav", recording)

    def denoise(run_id, path):
        return cli(["denoise", "--run", run_id, "--tracking-uri", store, str(path)],
                   env={"DLBENCH_LOAD_PLUGINS": "speech"})

    unknown = denoise("0" * 32, recording)
    assert unknown.exit_code == 1 and "not found" in unknown.stderr.strip().splitlines()[-1]

    experiment = client(store).create_experiment("other")
    other = client(store).create_run(experiment).info.run_id
    not_denoiser = denoise(other, recording)
    assert not_denoiser.exit_code == 2
    assert "is not a denoiser" in not_denoiser.stderr.strip().splitlines()[-1]

    killed = client(store).create_run(experiment, tags={"dlbench.experiment": "denoise_dense"})
    client(store).set_terminated(killed.info.run_id, "KILLED")
    unfinished = denoise(killed.info.run_id, recording)
    assert unfinished.exit_code == 2
    assert "is KILLED: it did not finish" in unfinished.stderr.strip().splitlines()[-1]

    bad = tmp_path / "bad.wav"
    bad.write_text("not audio at all")
    one_hertz = tmp_path / "slow.wav"  # resampled to 16 kHz it would need 16,000x the memory
    soundfile.write(one_hertz, np.zeros(40_000, np.float32) + 0.1, 1)
    for path, message in ((bad, "cannot be read as audio"),
                          (tmp_path / "missing.wav", "file is missing"),
                          (one_hertz, "sample rate 1 Hz is below the supported minimum")):
        out = denoise(quick_run["run_id"], path)
        assert out.exit_code == 1 and message in out.stderr.strip().splitlines()[-1]
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "bad.denoised.wav").exists()
    assert not list(tmp_path.glob("*.denoised.wav"))


def test_denoise_gives_the_same_snr_20_db_quieter_or_louder(quick_run, store, tmp_path, cli):
    """A recording 20 dB quieter or louder than the training audio comes out at the same SNR
    (within 0.5 dB): the held-out clip, scaled, through the logged model. The quieter and the
    original level go through `dlbench denoise` (32-bit PCM in and out); the louder one peaks
    near 4, which no PCM file holds, so it goes through the same loaded denoiser in-process."""
    from dlbench_plugins.speech.command import fetch_denoiser
    from dlbench_plugins.speech.metrics import snr_db
    from dlbench_plugins.speech.recorded import held_out_cut

    noisy, rate = soundfile.read(COURSE / "train_dirty_male.wav", dtype="float32")
    clean, _ = soundfile.read(COURSE / "train_clean_male.wav", dtype="float32")
    cut = held_out_cut(len(noisy))
    noisy, clean = noisy[cut:], clean[cut:]  # the held-out 11.8 s
    assert np.abs(noisy).max() * 10 > 1  # +20 dB cannot be written as PCM

    def through_the_command(gain):
        source = tmp_path / f"at_{gain:g}.wav"
        soundfile.write(source, gain * noisy, rate, subtype="PCM_32")
        out = cli(["denoise", "--run", quick_run["run_id"], "--tracking-uri", store, str(source)],
                  env={"DLBENCH_LOAD_PLUGINS": "speech"})
        assert out.exit_code == 0, out.stderr[-2000:]
        return soundfile.read(tmp_path / f"at_{gain:g}.denoised.wav", dtype="float32")[0]

    snr = {gain: snr_db(gain * clean, through_the_command(gain)) for gain in (1.0, 0.1)}
    denoiser = fetch_denoiser(quick_run["run_id"], store, tmp_path / "model")
    snr[10.0] = snr_db(10 * clean, denoiser.denoise_audio(10 * noisy[:, None], rate)[:, 0])
    assert abs(snr[0.1] - snr[1.0]) < 0.5 and abs(snr[10.0] - snr[1.0]) < 0.5, snr


def test_denoise_never_harms_the_input_or_an_existing_file(quick_run, store, tmp_path, cli):
    """Refused before any work: the input as output (by name or by a hard link), a missing
    folder. A failure after decoding leaves an existing output as it was."""
    recording = tmp_path / "talk.wav"
    shutil.copy(COURSE / "test_x_01.wav", recording)
    original = recording.read_bytes()
    (tmp_path / "link.wav").hardlink_to(recording)
    (tmp_path / "folder.wav").mkdir()

    def denoise(*args, run_id=quick_run["run_id"]):
        return cli(["denoise", "--run", run_id, "--tracking-uri", store, *map(str, args)],
                   env={"DLBENCH_LOAD_PLUGINS": "speech"})

    for output, message in ((recording, "is the input recording"),
                            (tmp_path / "link.wav", "is the input recording"),
                            (tmp_path / "folder.wav", "is a folder"),
                            (tmp_path / "no" / "out.wav", "folder " + str(tmp_path / "no"))):
        out = denoise(recording, output)
        assert out.exit_code == 2 and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert recording.read_bytes() == original and not (tmp_path / "no").exists()

    existing = tmp_path / "talk.denoised.wav"
    existing.write_bytes(b"an earlier result")
    experiment = client(store).create_experiment("not-a-denoiser")
    failed = denoise(recording, run_id=client(store).create_run(experiment).info.run_id)
    assert failed.exit_code == 2 and existing.read_bytes() == b"an earlier result"


def test_denoise_reads_mp3_bytes_named_wav_and_writes_pcm_wav(quick_run, store, tmp_path, cli):
    """MP3 bytes behind a .wav name are decoded by their content; the output is PCM WAV,
    written over an existing file of its name only once it is complete."""
    samples, rate = soundfile.read(COURSE / "test_x_01.wav", frames=3 * 16000)
    disguised = tmp_path / "talk.wav"
    soundfile.write(disguised, samples, rate, format="MP3", subtype="MPEG_LAYER_III")
    assert disguised.read_bytes()[:2] == b"\xff\xf3"  # an MPEG frame, not RIFF
    target = tmp_path / "talk.denoised.wav"
    target.write_bytes(b"an earlier result")
    mode = target.stat().st_mode & 0o777  # what this umask gives a new file
    out = cli(["denoise", "--run", quick_run["run_id"], "--tracking-uri", store, str(disguised)],
              env={"DLBENCH_LOAD_PLUGINS": "speech"})
    assert out.exit_code == 0, out.stderr
    assert target.stat().st_mode & 0o777 == mode  # not the temporary file's private 0600
    info = soundfile.info(target)
    assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", rate)
    assert info.frames == soundfile.info(disguised).frames
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_short_real_training_beats_the_noisy_input(store, tmp_path):
    out = run_cli(["run", "denoise_dense", "-p", "epochs=15", "--json", "--tracking-uri", store,
                   "--data", str(COURSE)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads(out.stdout)["metrics"]
    # Held-out 15 % of the course pair: the input scores 3.3 dB there.
    assert metrics["snr_in_db"] == pytest.approx(3.3, abs=0.1)
    assert metrics["snr_db"] > metrics["snr_in_db"] + 3
    assert metrics["si_sdr_db"] > metrics["si_sdr_in_db"]




@pytest.mark.slow  # ~35 s to start (TensorFlow, uvicorn) and ~10 s for the first request on 2 busy cores
def test_mlflow_models_serve_denoises_a_request(quick_run, store, tmp_path):
    """A real `mlflow models serve -m runs:/ID/model --env-manager local` on loopback answers
    /invocations with the denoised waveform, as the pyfunc in this process computes it."""
    import sys
    import urllib.request

    from support import MlflowServer, free_port

    # MLflow starts `uvicorn` by name: the one of this interpreter's environment.
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "uvicorn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m uvicorn "$@"\n')
    (shim / "uvicorn").chmod(0o755)
    port = free_port()
    uri = f"runs:/{quick_run['run_id']}/model"
    server = MlflowServer([sys.executable, "-m", "mlflow", "models", "serve", "-m", uri,
                           "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                          port=port, cwd=tmp_path, log=tmp_path / "serve.log",
                          env={"MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "3",
                               "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"})
    try:
        server.wait_healthy()
        noisy, _ = soundfile.read(COURSE / "test_x_01.wav", dtype="float32", frames=16000)
        request = urllib.request.Request(
            f"{server.url}/invocations", data=json.dumps({"inputs": noisy.tolist()}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as reply:
            served = np.asarray(json.loads(reply.read())["predictions"], dtype="float32")
    finally:
        server.stop()
    with using_store(store):
        expected = mlflow_pyfunc_predict(uri, noisy)
    assert served.shape == noisy.shape
    np.testing.assert_allclose(served, expected, atol=1e-6)
