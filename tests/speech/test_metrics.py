"""SNR and SI-SDR against values worked out by hand; PESQ/STOI against their known extremes."""

import math

import numpy as np
import pytest

from dlbench_plugins.speech.metrics import pesq_wb, si_sdr_db, snr_db, stoi


def test_snr_matches_hand_computed_value():
    clean = np.array([1.0, -2.0, 2.0])  # Σs² = 9
    estimate = np.array([1.0, -2.0, 1.0])  # Σ(s-ŝ)² = 1
    assert snr_db(clean, estimate) == pytest.approx(10 * math.log10(9.0))


def test_snr_of_half_amplitude_estimate_is_6_dB():
    clean = np.array([0.5, -0.25, 1.0, 0.0])
    # error = s/2, so Σs²/Σ(s/2)² = 4 -> 10·log10(4) = 6.0206 dB
    assert snr_db(clean, clean / 2) == pytest.approx(6.020599913, abs=1e-9)


def test_snr_of_silent_estimate_is_0_dB():
    clean = np.array([0.3, -0.7, 0.1])
    assert snr_db(clean, np.zeros(3)) == pytest.approx(0.0)


def test_snr_perfect_estimate_is_infinite():
    clean = np.array([0.3, -0.7])
    assert snr_db(clean, clean.copy()) == math.inf


def test_snr_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="3 samples, estimate 2"):
        snr_db(np.ones(3), np.ones(2))


def test_si_sdr_matches_hand_computed_value():
    reference = np.array([1.0, -1.0, 1.0, -1.0])  # zero-mean already
    estimate = np.array([2.0, -2.0, 2.0, 0.0])  # mean 0.5 -> [1.5, -2.5, 1.5, -0.5]
    # α = <ŝ,s>/<s,s> = (1.5+2.5+1.5+0.5)/4 = 1.5; target = 1.5·s, ||target||² = 9
    # noise = ŝ - target = [0, -1, 0, 1], ||noise||² = 2 -> 10·log10(4.5)
    assert si_sdr_db(reference, estimate) == pytest.approx(10 * math.log10(4.5))


def test_si_sdr_ignores_gain_but_snr_does_not():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal(1000)
    estimate = reference + 0.1 * rng.standard_normal(1000)
    assert si_sdr_db(reference, 0.25 * estimate) == pytest.approx(si_sdr_db(reference, estimate))
    assert snr_db(reference, 0.25 * estimate) < snr_db(reference, estimate) - 5


def _speechlike(seconds=3.0, sr=16000):
    """A voiced-like signal: harmonics of a gliding pitch, amplitude-modulated into syllables."""
    t = np.arange(int(seconds * sr)) / sr
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    return (0.3 * voice * envelope).astype(np.float32)


def test_pesq_and_stoi_rank_clean_above_noisy():
    clean = _speechlike()
    noisy = clean + 0.3 * np.random.default_rng(1).standard_normal(clean.size).astype(np.float32)
    assert pesq_wb(clean, clean) > 4.0
    assert pesq_wb(clean, noisy) < pesq_wb(clean, clean) - 1.0
    assert stoi(clean, clean) == pytest.approx(1.0, abs=1e-3)
    assert stoi(clean, noisy) < 0.95


def test_pesq_needs_16_khz():
    with pytest.raises(ValueError, match="16 kHz"):
        pesq_wb(np.ones(8000), np.ones(8000), sample_rate=8000)
