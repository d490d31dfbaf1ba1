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

from conftest import DATA
from dlbench.testing import run_cli

COURSE = DATA / "course"
SCORES = ("snr_db", "snr_in_db", "snr_gain_db", "si_sdr_db", "pesq", "stoi", "oracle_snr_db")


def client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


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
    assert 1.0 <= metrics["pesq"] <= 4.7 and 0.0 <= metrics["stoi"] <= 1.0
    assert [m.step for m in client(store).get_metric_history(quick_run["run_id"], "loss")] == [1]


def test_quick_run_input_snr_matches_the_held_out_audio(quick_run, store, tmp_path):
    """snr_in_db is the seed's SNR of the logged noisy clip against the logged clean one."""
    mlflow = client(store)
    folder = mlflow.download_artifacts(quick_run["run_id"], "audio/train_male_heldout", str(tmp_path))
    noisy, rate = soundfile.read(f"{folder}/noisy.wav", dtype="float64")
    clean, _ = soundfile.read(f"{folder}/clean.wav", dtype="float64")
    denoised, _ = soundfile.read(f"{folder}/denoised.wav", dtype="float64")
    assert rate == 16000 and len(noisy) == len(clean) == len(denoised)
    by_hand = 10 * math.log10(np.sum(clean**2) / np.sum((clean - noisy) ** 2))
    # 16-bit wav quantization moves it by far less than 0.01 dB.
    assert quick_run["metrics"]["snr_in_db"] == pytest.approx(by_hand, abs=0.01)


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


def test_denoise_command_errors_are_one_clear_line(quick_run, store, tmp_path):
    recording = tmp_path / "a.wav"
    shutil.copy(COURSE / "test_x_01.wav", recording)

    unknown = run_cli(["denoise", "--run", "0" * 32, "--tracking-uri", store, str(recording)])
    assert unknown.returncode == 1 and "not found" in unknown.stderr.strip().splitlines()[-1]

    experiment = client(store).create_experiment("other")
    other = client(store).create_run(experiment).info.run_id
    not_denoiser = run_cli(["denoise", "--run", other, "--tracking-uri", store, str(recording)])
    assert not_denoiser.returncode == 2
    assert "is not a denoiser" in not_denoiser.stderr.strip().splitlines()[-1]

    bad = tmp_path / "bad.wav"
    bad.write_text("not audio at all")
    for path, message in ((bad, "cannot be read as audio"), (tmp_path / "missing.wav", "file is missing")):
        out = run_cli(["denoise", "--run", quick_run["run_id"], "--tracking-uri", store, str(path)])
        assert out.returncode == 1 and message in out.stderr.strip().splitlines()[-1]
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "bad.denoised.wav").exists()


def test_dead_output_check_stops_training_on_all_zero_output():
    """The guard against the known failure: a ReLU output that is zero everywhere."""
    import keras

    from dlbench_plugins.speech.models import build_dense
    from dlbench_plugins.speech.training import dead_output_check

    x = np.random.default_rng(0).random((64, 513, 1)).astype("float32")
    model = build_dense(x.shape[1:], {})
    last = model.layers[-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()[:1]]
                     + [np.full_like(last.get_weights()[1], -1.0)])  # output = relu(-1) = 0
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    check = dead_output_check(x[:16])
    history = model.fit(x, x[:, :, 0], epochs=5, verbose=0, callbacks=[check])
    assert check.dead_at_epoch == 1 and len(history.history["loss"]) == 1

    alive = build_dense(x.shape[1:], {})
    alive.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    check = dead_output_check(x[:16])
    alive.fit(x, x[:, :, 0], epochs=2, verbose=0, callbacks=[check])
    assert check.dead_at_epoch is None


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


class FakeContext:
    """The few ctx members ``train`` uses, recording what it logs."""

    def __init__(self, **params):
        self.params = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 16, "validation_split": 0.25,
                       "output": "mask", "patience": 5, "dead_output_retries": 1, "checkpoint_every": 0,
                       "ema_momentum": 0.0, **params}
        self.seed, self.tags, self.lines = 0, {}, []
        self.initial_epoch = 0

    def strategy_scope(self):
        import contextlib

        return contextlib.nullcontext()

    def restore_model(self):
        return None

    def keras_callback(self):
        import keras

        return keras.callbacks.Callback()

    def log_metrics(self, metrics):
        pass

    def set_tags(self, tags):
        self.tags.update(tags)

    def log(self, line):
        self.lines.append(line)


def output_dense(network):
    """The Dense(513) that makes a denoiser's output (a capped ReLU layer may follow it)."""
    return next(layer for layer in reversed(network.layers) if layer.weights)


def dead_first(dead_attempts):
    """A dense builder whose first ``dead_attempts`` models have an all-zero ReLU output."""
    from dlbench_plugins.speech.models import build_dense

    built = []

    def build(shape, params):
        model = build_dense(shape, params)
        if len(built) < dead_attempts:
            last = output_dense(model)
            kernel, bias = last.get_weights()
            last.set_weights([np.zeros_like(kernel), np.full_like(bias, -1.0)])
        built.append(model)
        return model

    return build


@pytest.mark.parametrize("output", ["mask", "magnitude"])
def test_dead_output_is_retried_then_fails_loudly(output):
    from dlbench_plugins.speech.features import Frames
    from dlbench_plugins.speech.training import train

    rng = np.random.default_rng(0)
    x = rng.random((64, 513, 1)).astype("float32")
    frames = Frames(x, x[:, :, 0], x[:, :, 0] * 0.5)
    ctx = FakeContext(output=output)
    network, _ = train(ctx, dead_first(1), frames[:48], frames[48:])
    assert network.name == "denoise_dense"  # the features -> output network, not its training view
    assert np.any(network.predict(x[:8], verbose=0) > 0)
    assert "collapsed to all zeros at epoch 1" in ctx.tags["dlbench.dead_output"]
    assert ctx.tags["dlbench.train_attempts"] == 2 and "learning_rate=0.001" in ctx.lines[0]

    with pytest.raises(RuntimeError, match="all zeros"):
        retry_once = FakeContext(dead_output_retries=1, output=output)
        train(retry_once, dead_first(2), frames[:48], frames[48:])


@pytest.mark.parametrize("ema_momentum", [0.0, 0.9])
def test_the_network_kept_is_the_one_validation_scored_best(ema_momentum):
    """With weight averaging on, validation scores the averaged weights, so the network kept
    must be those weights at the best epoch; its loss on the validation frames is then the
    lowest ``val_loss`` in the history. Raw weights kept instead would score differently."""
    from dlbench_plugins.speech.features import Frames
    from dlbench_plugins.speech.models import build_dense
    from dlbench_plugins.speech.training import train

    rng = np.random.default_rng(0)
    x = rng.random((96, 513, 1)).astype("float32")
    frames = Frames(x, x[:, :, 0], x[:, :, 0] * 0.5)
    ctx = FakeContext(epochs=4, patience=10, learning_rate=1e-2, ema_momentum=ema_momentum)
    fit, validation = frames[:64], frames[64:]
    network, history = train(ctx, build_dense, fit, validation)
    gain = network.predict(validation.features, verbose=0)
    loss = np.mean((gain * validation.noisy - validation.target) ** 2)
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-4)


def test_mask_training_fits_the_gain_times_the_noisy_magnitude():
    """In mask mode the loss sees gain x noisy: a network that learns gain 0.5 reaches zero loss."""
    import keras

    from dlbench_plugins.speech.training import mask_training_model

    network = keras.Sequential([keras.Input((4, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(4, activation="relu")], name="net")
    network.layers[-1].set_weights([np.zeros((4, 4)), np.full(4, 0.5)])
    model = mask_training_model(network)
    noisy = np.array([[1.0, 2.0, 0.0, 4.0]], dtype="float32")
    estimate = model.predict((noisy[:, :, None], noisy), verbose=0)
    np.testing.assert_allclose(estimate, noisy * 0.5)


def test_frame_shifts_add_real_windows_before_the_validation_frames():
    """shifts=4: four times the frames, every fourth one the hop-512 frame itself, and none
    from the audio the validation frames come from."""
    from dlbench_plugins.speech import spectral
    from dlbench_plugins.speech.clips import SpeechClip
    from dlbench_plugins.speech.features import clip_frames, training_frames

    rng = np.random.default_rng(0)
    clean = rng.standard_normal(40 * 512).astype("float32")
    clip = SpeechClip("a", clean + 0.1 * rng.standard_normal(len(clean)).astype("float32"), clean)
    settings = spectral.SpectralSettings(output="mask")
    noisy = spectral.magnitude_phase(clip.noisy, settings)[0]
    whole = clip_frames(noisy, spectral.magnitude_phase(clip.clean, settings)[0], settings, 2.0)
    split = 30

    plain = training_frames([clip], [len(noisy)], split, settings, 2.0, "magnitude")
    np.testing.assert_allclose(plain.features, whole.features[:split], atol=1e-6)
    np.testing.assert_allclose(plain.target, whole.target[:split], atol=1e-6)

    shifted = training_frames([clip], [len(noisy)], split, settings, 2.0, "magnitude", shifts=4)
    assert len(shifted) == 4 * split
    np.testing.assert_allclose(shifted.noisy[::4], whole.noisy[:split], atol=1e-6)
    np.testing.assert_allclose(shifted.target[::4], whole.target[:split], atol=1e-6)
    after = SpeechClip("a", clip.noisy.copy(), clip.clean.copy())
    after.noisy[split * 512:] = 0.5  # change only the validation frames' audio
    again = training_frames([after], [len(noisy)], split, settings, 2.0, "magnitude", shifts=4)
    np.testing.assert_array_equal(again.features, shifted.features)


def test_remix_copies_take_their_frames_at_the_training_hop():
    """With frame_shifts=2 and remix=1 every copy brings as many frames as the original audio,
    the remix's clean target is the original's, and validation keeps the hop-512 frames."""
    from types import SimpleNamespace

    from dlbench_plugins.speech.clips import SpeechClip, SpeechData
    from dlbench_plugins.speech.features import load_features

    rng = np.random.default_rng(1)
    clean = rng.standard_normal(40 * 512).astype("float32")
    clip = SpeechClip("a", clean + 0.1 * rng.standard_normal(len(clean)).astype("float32"), clean)
    data = SpeechData(train=[clip], evaluation=[], listen=[], sample_rate=16000, layout="synth",
                      source="test", digest="remix-hop-test")
    params = {"compression": "log1p", "context": 0, "output": "mask", "scaling": "peak",
              "validation_split": 0.25, "frame_shifts": 2, "remix": 1, "remix_gain": 0.3,
              "target": "magnitude"}
    ctx = SimpleNamespace(params=params, seed=0, data=lambda name: data)

    _, _, _, fit, validation = load_features(ctx)
    kept = int(41 * 0.75)  # 40 * 512 samples make 41 centred frames at hop 512
    assert len(validation) == 41 - kept
    assert len(fit) == 2 * (2 * kept)  # the original and one remix, each at hop 256
    half = len(fit) // 2
    np.testing.assert_allclose(fit.target[:half], fit.target[half:], atol=1e-6)
    assert not np.allclose(fit.noisy[:half], fit.noisy[half:])


def test_phase_sensitive_target_is_the_best_magnitude_on_the_noisy_phase():
    """For each bin, |clean - a * e^(i noisy phase)|^2 over a >= 0 is least at the target."""
    from dlbench_plugins.speech.features import clean_target

    rng = np.random.default_rng(2)
    clean = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    noisy = clean + rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    np.testing.assert_allclose(clean_target(clean, noisy, "magnitude"), np.abs(clean), rtol=1e-6)

    target = clean_target(clean, noisy, "phase_sensitive")
    gains = np.linspace(0, 4, 4001)[:, None, None]
    error = np.abs(clean - gains * np.exp(1j * np.angle(noisy))) ** 2
    np.testing.assert_allclose(target, gains[np.argmin(error, axis=0), 0, 0], atol=1e-3)
    assert np.any(target == 0) and np.all(target <= np.abs(clean) + 1e-6)


@pytest.mark.parametrize("output, ceiling", [("mask", 1.0), ("mask", 0.0), ("magnitude", 1.0)])
def test_max_gain_caps_only_a_mask(output, ceiling):
    from dlbench_plugins.speech.models import build_conv1d

    network = build_conv1d((513, 1), {"kernel_size": 3, "pool_size": 4, "output": output,
                                          "max_gain": ceiling})
    dense = output_dense(network)
    kernel, bias = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.full_like(bias, 3.0)])  # gain 3 before the ReLU
    gains = network.predict(np.ones((2, 513, 1), dtype="float32"), verbose=0)
    expected = 1.0 if (output == "mask" and ceiling) else 3.0
    np.testing.assert_allclose(gains, expected)


@pytest.mark.parametrize("pool", [2, 4])
def test_pool_size_sets_the_width_of_the_last_dense(pool):
    from dlbench_plugins.speech.models import build_conv1d

    params = {"kernel_size": 3, "pool_size": pool, "output": "mask", "max_gain": 0}
    network = build_conv1d((513, 1), params)
    assert output_dense(network).get_weights()[0].shape == (513 // pool // pool * 256, 513)
