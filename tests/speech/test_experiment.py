"""denoise_dense / denoise_conv1d end to end: the real CLI, a real SQLite store, the course data.

Metrics and artifacts are read back through MLflow, as a user of the UI would see them, and
`dlbench denoise` is applied to a real recording with the model the quick run logged.
"""

import json
import math
import shutil

import numpy as np
import pytest
import soundfile

from dlbench.testing import run_cli
from support import COURSE, client

SCORES = ("snr_db", "snr_in_db", "snr_gain_db", "si_sdr_db", "pesq", "stoi", "oracle_snr_db")



@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not COURSE.is_dir():
        pytest.skip(f"shared course speech data not found at {COURSE}; set DLBENCH_TEST_DATA")
    return f"sqlite:///{tmp_path_factory.mktemp('denoise-store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def quick_run(store, tmp_path_factory):
    """One `dlbench run denoise_dense --quick` shared by the tests below (it takes seconds)."""
    out = run_cli(["run", "denoise_dense", "--quick", "--json", "--tracking-uri", store,
                   "--data", str(COURSE)], cwd=tmp_path_factory.mktemp("cwd"))
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["status"] == "FINISHED"
    return summary


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

    assert {"spectrograms.png", "loss.png", "per_file.csv", "model"} <= files()
    assert files("model") == {"model/model.keras", "model/spectral_settings.json"}
    assert files("audio/train_male_heldout") == {
        f"audio/train_male_heldout/{k}.wav" for k in ("noisy", "denoised", "clean")}
    # test_x_NN have no clean reference: only noisy and denoised, for listening.
    for name in ("test_x_01", "test_x_02"):
        assert files(f"audio/{name}") == {f"audio/{name}/{k}.wav" for k in ("noisy", "denoised")}
    local = mlflow.download_artifacts(run_id, "model/spectral_settings.json", str(tmp_path))
    settings = json.loads(open(local).read())
    assert settings["n_fft"] == 1024 and settings["hop_length"] == 512 and settings["scale"] > 0
    table = open(mlflow.download_artifacts(run_id, "per_file.csv", str(tmp_path))).read()
    assert table.startswith("file,") and "train_male_heldout," in table


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


def test_conv1d_quick_run_and_its_capped_model_through_dlbench_denoise(store, tmp_path):
    """The conv1d defaults end to end: logged run, a .keras model whose gain stops at
    max_gain when loaded back, and `dlbench denoise` with it."""
    import keras

    out = run_cli(["run", "denoise_conv1d", "--quick", "--json", "--tracking-uri", store,
                   "--data", str(COURSE)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    run = client(store).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and set(SCORES) <= set(run.data.metrics)
    params = run.data.params
    assert params["target"] == "phase_sensitive"
    assert params["max_gain"] == "1.0" and params["pool_size"] == "4" and params["ema_momentum"] == "0.995"

    local = client(store).download_artifacts(summary["run_id"], "model/model.keras", str(tmp_path))
    network = keras.saving.load_model(local)
    assert network.layers[-1].name == "gain" and float(network.layers[-1].max_value) == 1.0
    loud = 5 * np.random.default_rng(0).random((8, 513, 1), dtype="float32")
    gains = network.predict(loud, verbose=0)
    assert gains.min() >= 0 and gains.max() <= 1.0

    noisy, _, denoised, _ = denoise_a_course_recording(summary["run_id"], store, tmp_path)
    assert denoised.shape == noisy.shape and np.all(np.isfinite(denoised))
    # A gain of at most 1 per bin cannot add energy beyond the overlap-add's rounding.
    assert np.sum(denoised**2) <= 1.01 * np.sum(noisy**2)


def test_denoise_command_resamples_and_keeps_channels_and_length(quick_run, store, tmp_path):
    import soxr

    noisy, rate = soundfile.read(COURSE / "test_x_01.wav", dtype="float32")
    fast = soxr.resample(noisy[: 2 * rate], rate, 22050)
    stereo = np.stack([fast, 0.5 * fast], axis=1)
    source, target = tmp_path / "in.wav", tmp_path / "out" / "cleaned.wav"
    target.parent.mkdir()
    soundfile.write(source, stereo, 22050, subtype="FLOAT")
    out = run_cli(["denoise", "--run", quick_run["run_id"], "--tracking-uri", store,
                   str(source), str(target)])
    assert out.returncode == 0, out.stderr[-3000:]
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


