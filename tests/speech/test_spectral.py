"""The STFT round trip, context stacking and compression the denoisers depend on."""

import numpy as np
import pytest

from dlbench_plugins.speech import spectral
from dlbench_plugins.speech.spectral import SpectralSettings


def test_stft_shape_is_frames_by_513_bins():
    signal = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    magnitude, phase = spectral.magnitude_phase(signal)
    assert magnitude.shape == phase.shape == (1 + 16000 // 512, 513)
    assert (magnitude >= 0).all()


@pytest.mark.parametrize("length", [16000, 16001, 12345, 1024 * 3])
def test_istft_of_own_magnitude_and_phase_restores_signal_and_length(length):
    signal = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    magnitude, phase = spectral.magnitude_phase(signal)
    restored = spectral.istft(magnitude, phase, length=length)
    assert restored.shape == (length,)
    np.testing.assert_allclose(restored, signal, atol=1e-4)


def test_stack_context_puts_neighbours_in_channels_and_repeats_edges():
    frames = np.arange(4 * 2, dtype=np.float32).reshape(4, 2)  # frame t holds [2t, 2t+1]
    stacked = spectral.stack_context(frames, 1)
    assert stacked.shape == (4, 2, 3)
    np.testing.assert_array_equal(stacked[1, :, 0], frames[0])  # previous
    np.testing.assert_array_equal(stacked[1, :, 1], frames[1])  # centre
    np.testing.assert_array_equal(stacked[1, :, 2], frames[2])  # next
    np.testing.assert_array_equal(stacked[0, :, 0], frames[0])  # edge repeats
    np.testing.assert_array_equal(stacked[3, :, 2], frames[3])


def test_stack_context_zero_adds_a_channel_axis():
    frames = np.ones((5, 3))
    assert spectral.stack_context(frames, 0).shape == (5, 3, 1)
    with pytest.raises(ValueError):
        spectral.stack_context(frames, -1)


@pytest.mark.parametrize("kind", spectral.COMPRESSIONS)
def test_compression_round_trips(kind):
    magnitude = np.array([0.0, 0.5, 3.0, 250.0])
    np.testing.assert_allclose(spectral.decompress(spectral.compress(magnitude, kind), kind), magnitude)


def test_unknown_compression_is_refused():
    with pytest.raises(ValueError, match="unknown compression"):
        spectral.compress(np.ones(2), "cuberoot")


def test_target_decodes_back_to_clean_magnitude():
    rng = np.random.default_rng(0)
    noisy, clean = rng.random((6, 513)) * 40, rng.random((6, 513)) * 30
    settings = SpectralSettings(compression="log1p", context=2, output="magnitude")
    settings = spectral.fit_scale(noisy, settings)
    assert settings.scale == pytest.approx(np.log1p(noisy).max())
    x = spectral.model_input(noisy, settings)
    assert x.shape == (6, 513, 5) and x.dtype == np.float32 and x.max() == pytest.approx(1.0)
    y = spectral.model_target(clean, settings)
    np.testing.assert_allclose(spectral.output_magnitude(y, settings, noisy), clean, rtol=1e-4)
    assert (spectral.output_magnitude(-y, settings, noisy) == 0).all()  # negative outputs: silence


def test_mask_output_is_the_gain_times_the_noisy_magnitude():
    noisy = np.array([[2.0, 4.0, 8.0]])
    gain = np.array([[0.5, -1.0, 1.5]])  # a negative gain clips to silence
    out = spectral.output_magnitude(gain, SpectralSettings(output="mask", scale=9.0), noisy)
    np.testing.assert_allclose(out, [[1.0, 0.0, 12.0]])


def test_settings_round_trip_through_json_dict():
    settings = SpectralSettings(compression="none", context=3, scale=7.5)
    assert SpectralSettings.from_dict({**settings.to_dict(), "added_later": 1}) == settings
    with pytest.raises(ValueError):
        SpectralSettings.from_dict({"compression": "cuberoot"})
    with pytest.raises(ValueError):
        SpectralSettings.from_dict({"output": "phase"})
    # Runs saved before `output` existed hold magnitude models.
    assert SpectralSettings.from_dict({"compression": "log1p"}).output == "magnitude"


@pytest.mark.parametrize("normalization", ["recording", "frame"])
def test_normalised_input_is_the_same_at_any_level(normalization):
    """Divided by its level, a recording 20 dB quieter or louder gives the network the same
    input, and a mask then gives back exactly the scaled estimate."""
    rng = np.random.default_rng(3)
    noisy = rng.random((8, 513)) * np.linspace(0.1, 2.0, 8)[:, None]
    noisy[2] = 0.0  # a silent frame stays silent, not a division by zero
    settings = spectral.fit_scale([noisy], SpectralSettings(normalization=normalization))
    x = spectral.model_input(noisy, settings)
    assert np.all(np.isfinite(x)) and x.max() == pytest.approx(1.0)
    for gain in (0.1, 10.0):
        np.testing.assert_allclose(spectral.model_input(gain * noisy, settings), x, rtol=1e-5, atol=1e-6)
    plain = spectral.fit_scale([noisy], SpectralSettings())
    assert not np.allclose(spectral.model_input(0.1 * noisy, plain), spectral.model_input(noisy, plain))


def test_normalised_magnitude_output_comes_back_at_the_recording_level():
    rng = np.random.default_rng(4)
    noisy, clean = rng.random((6, 513)) * 5, rng.random((6, 513)) * 3
    settings = spectral.fit_scale(noisy, SpectralSettings(output="magnitude", normalization="recording"))
    for gain in (1.0, 0.1):
        target = spectral.model_target(gain * clean, settings, gain * noisy)
        np.testing.assert_allclose(spectral.output_magnitude(target, settings, gain * noisy),
                                   gain * clean, rtol=1e-4)


def test_normalization_round_trips_and_old_settings_load_unnormalised():
    settings = SpectralSettings(normalization="recording", scale=3.0)
    assert SpectralSettings.from_dict(settings.to_dict()) == settings
    assert SpectralSettings.from_dict({"compression": "log1p", "output": "mask"}).normalization == "none"
    with pytest.raises(ValueError, match="unknown normalization"):
        SpectralSettings.from_dict({"normalization": "loudness"})
