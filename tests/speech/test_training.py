"""Training a denoiser: the dead-output guard and its retry, the network kept, mask mode,
the training frames, the targets, the model shapes. Small synthetic frames, a real ctx."""

import numpy as np
import pytest

from support import client


def train_params(**overrides):
    """The params ``train`` reads, small enough for a unit test."""
    return {"learning_rate": 1e-3, "epochs": 2, "batch_size": 16, "validation_split": 0.25,
            "output": "mask", "patience": 5, "dead_output_retries": 1, "checkpoint_every": 0,
            "ema_momentum": 0.0, "compression": "log1p", **overrides}


def logged(ctx):
    """The run ``ctx`` logged into, read back from the store."""
    return client(ctx.client.tracking_uri).get_run(ctx.run_id)


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
def test_dead_output_is_retried_then_fails_loudly(output, run_ctx, capsys):
    from dlbench_plugins.speech.features import Frames
    from dlbench_plugins.speech.training import train

    rng = np.random.default_rng(0)
    x = rng.random((64, 513, 1)).astype("float32")
    frames = Frames(x, x[:, :, 0], x[:, :, 0] * 0.5)
    ctx = run_ctx(train_params(output=output))
    network, history = train(ctx, dead_first(1), frames[:48], frames[48:])
    assert network.name == "denoise_dense"  # the features -> output network, not its training view
    assert np.any(network.predict(x[:8], verbose=0) > 0)
    run = logged(ctx)
    assert "collapsed to all zeros at epoch 1" in run.data.tags["dlbench.dead_output"]
    assert run.data.tags["dlbench.train_attempts"] == "2"
    assert "attempt 1: output collapsed" in capsys.readouterr().err
    assert "learning_rate=0.001" in run.data.tags["dlbench.dead_output"]
    # What train logs is the retry's: its epochs, its time, its per-epoch curve.
    assert run.data.metrics["epochs_trained"] == len(history["loss"]) == 2
    assert run.data.metrics["train_seconds"] > 0
    curve = client(ctx.client.tracking_uri).get_metric_history(ctx.run_id, "val_loss")
    assert sorted(m.step for m in curve)[-2:] == [1, 2]
    assert curve[-1].value == pytest.approx(history["val_loss"][-1])

    with pytest.raises(RuntimeError, match="all zeros") as failed:
        train(run_ctx(train_params(dead_output_retries=1, output=output)), dead_first(2),
              frames[:48], frames[48:])
    assert "compression=log1p" not in str(failed.value)  # already so: no advice to set it


@pytest.mark.parametrize("ema_momentum", [0.0, 0.9])
def test_the_network_kept_is_the_one_validation_scored_best(ema_momentum, run_ctx):
    """With weight averaging on, validation scores the averaged weights, so the network kept
    must be those weights at the best epoch; its loss on the validation frames is then the
    lowest ``val_loss`` in the history. Raw weights kept instead would score differently."""
    from dlbench_plugins.speech.features import Frames
    from dlbench_plugins.speech.models import build_dense
    from dlbench_plugins.speech.training import train

    rng = np.random.default_rng(0)
    x = rng.random((96, 513, 1)).astype("float32")
    frames = Frames(x, x[:, :, 0], x[:, :, 0] * 0.5)
    ctx = run_ctx(train_params(epochs=4, patience=10, learning_rate=1e-2,
                               ema_momentum=ema_momentum))
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

    plain = training_frames([clip], [len(noisy)], split, settings, [2.0], "magnitude")
    np.testing.assert_allclose(plain.features, whole.features[:split], atol=1e-6)
    np.testing.assert_allclose(plain.target, whole.target[:split], atol=1e-6)

    shifted = training_frames([clip], [len(noisy)], split, settings, [2.0], "magnitude", shifts=4)
    assert len(shifted) == 4 * split
    np.testing.assert_allclose(shifted.noisy[::4], whole.noisy[:split], atol=1e-6)
    np.testing.assert_allclose(shifted.target[::4], whole.target[:split], atol=1e-6)
    after = SpeechClip("a", clip.noisy.copy(), clip.clean.copy())
    after.noisy[split * 512:] = 0.5  # change only the validation frames' audio
    again = training_frames([after], [len(noisy)], split, settings, [2.0], "magnitude", shifts=4)
    np.testing.assert_array_equal(again.features, shifted.features)


def features_of(clips, **params):
    """``load_features``' (fit, validation) frames for training ``clips``: the mask defaults
    below, with ``params`` on top."""
    from types import SimpleNamespace

    from dlbench.cache import array_digest
    from dlbench_plugins.speech.clips import SpeechData
    from dlbench_plugins.speech.features import load_features

    # The STFT cache is keyed by the data's digest: one per audio.
    digest = array_digest(a for clip in clips for a in (clip.noisy, clip.clean))
    data = SpeechData(train=list(clips), evaluation=[], listen=[], sample_rate=16000,
                      layout="synth", source="test", digest=digest)
    params = {"compression": "log1p", "context": 0, "output": "mask", "scaling": "peak",
              "validation_split": 0.1, "frame_shifts": 1, "remix": 0, "remix_gain": 0.3,
              "normalization": "none", "loss_weighting": "energy", "target": "magnitude",
              **params}
    _, _, _, fit, validation = load_features(SimpleNamespace(params=params, seed=0,
                                                             data=lambda _: data))
    return fit, validation


def test_remix_copies_take_their_frames_at_the_training_hop():
    """With frame_shifts=2 and remix=1 every copy brings as many frames as the original audio,
    the remix's clean target is the original's, and validation keeps the hop-512 frames."""
    from dlbench_plugins.speech.clips import SpeechClip

    rng = np.random.default_rng(1)
    clean = rng.standard_normal(40 * 512).astype("float32")
    clip = SpeechClip("a", clean + 0.1 * rng.standard_normal(len(clean)).astype("float32"), clean)

    fit, validation = features_of([clip], validation_split=0.25, frame_shifts=2, remix=1)
    kept = int(41 * 0.75)  # 40 * 512 samples make 41 centred frames at hop 512
    assert len(validation) == 41 - kept
    assert len(fit) == 2 * (2 * kept)  # the original and one remix, each at hop 256
    half = len(fit) // 2
    np.testing.assert_allclose(fit.target[:half], fit.target[half:], atol=1e-6)
    assert not np.allclose(fit.noisy[:half], fit.noisy[half:])


def test_clip_weighting_gives_a_quiet_clip_the_loss_weight_of_a_loud_one():
    """loss_weighting=clip divides each clip's magnitudes by its own level, so a copy 20 dB
    quieter brings the same targets; energy (one level for all) leaves it 10x smaller."""
    from dlbench_plugins.speech.clips import SpeechClip

    rng = np.random.default_rng(3)
    clean = rng.standard_normal(40 * 512).astype("float32")
    noisy = clean + 0.3 * rng.standard_normal(len(clean)).astype("float32")
    clips = [SpeechClip("loud", noisy, clean), SpeechClip("quiet", noisy / 10, clean / 10)]
    per_clip = 41  # 40 * 512 samples make 41 centred frames at hop 512
    compared = 30  # of the quiet clip's frames, all before the 10 % validation split
    targets = {}
    for weighting in ("energy", "clip"):
        fit, _ = features_of(clips, normalization="recording", loss_weighting=weighting)
        targets[weighting] = fit.target[:per_clip], fit.target[per_clip:per_clip + compared]
    loud_energy, quiet_energy = targets["energy"]
    np.testing.assert_allclose(quiet_energy, loud_energy[:compared] / 10, rtol=1e-4, atol=1e-6)
    loud_clip, quiet_clip = targets["clip"]
    np.testing.assert_allclose(quiet_clip, loud_clip[:compared], rtol=1e-4, atol=1e-5)


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


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_epoch():
    from dlbench_plugins.speech.training import learning_rate_schedule

    params = {"schedule": "cosine", "epochs": 10, "warmup_epochs": 2, "batch_size": 10}
    schedule = learning_rate_schedule(params, 1e-3, frames=50)  # 5 steps per epoch, 50 in all
    rates = np.array([float(schedule(step)) for step in range(51)])
    assert rates[0] == 0 and rates[10] == pytest.approx(1e-3) and rates.max() == pytest.approx(1e-3)
    assert np.all(np.diff(rates[:11]) > 0) and np.all(np.diff(rates[10:]) < 0)
    assert rates[50] == pytest.approx(0, abs=1e-12)
    assert learning_rate_schedule({**params, "schedule": "constant"}, 1e-3, frames=50) == 1e-3


def test_a_frame_budget_sets_the_epochs_whatever_the_dataset_size():
    from dlbench_plugins.speech.training import learning_rate_schedule, training_epochs

    params = {"epochs": 200, "train_frames": 8000, "batch_size": 100, "schedule": "cosine",
              "warmup_epochs": 0}
    assert training_epochs(2000, params) == 4 and training_epochs(8000, params) == 1
    assert training_epochs(3000, params) == 3  # whole epochs that reach the budget
    assert training_epochs(2000, {**params, "epochs": 2}) == 2  # epochs still caps it
    assert training_epochs(2000, {**params, "train_frames": 0}) == 200
    schedule = learning_rate_schedule(params, 1e-3, frames=2000)  # decays over 4 x 20 steps
    assert float(schedule(79)) > 0 and float(schedule(80)) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("output_init, spread", [("half_gain", 0.0), ("he_normal", 0.05)])
def test_half_gain_starts_every_bin_at_half_the_ceiling(output_init, spread):
    from dlbench_plugins.speech.models import build_conv1d

    params = {"kernel_size": 3, "pool_size": 4, "output": "mask", "max_gain": 1.0,
              "output_init": output_init}
    x = np.random.default_rng(0).random((16, 513, 1), dtype="float32")
    gains = build_conv1d((513, 1), params).predict(x, verbose=0)
    if spread:
        assert gains.std() > spread and np.mean(gains == 0) > 0.2  # many bins start dead
    else:
        np.testing.assert_allclose(gains, 0.5)
