"""Speech-quality scores of a denoised signal against its clean reference.

``snr_db`` is the course seed's SNR, kept exactly so figures compare with the reference
table; ``si_sdr_db`` ignores a global gain (a model that is right but too quiet is not
punished); ``pesq_wb`` and ``stoi`` are the perceptual scores speech papers report.
All take 1-D arrays of equal length; a length mismatch is a bug upstream, so it raises.
"""

from __future__ import annotations

import math


def _pair(reference, estimate):
    import numpy as np

    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    estimate = np.asarray(estimate, dtype=np.float64).reshape(-1)
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference has {reference.size} samples, estimate {estimate.size}; they must be equal"
        )
    return reference, estimate


def snr_db(clean, estimate) -> float:
    """10·log10(Σs² / Σ(s−ŝ)²); +inf for a perfect estimate, -inf for a silent reference."""
    import numpy as np

    clean, estimate = _pair(clean, estimate)
    signal = float(np.sum(clean**2))
    error = float(np.sum((clean - estimate) ** 2))
    if error == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / error)


def si_sdr_db(reference, estimate) -> float:
    """Scale-invariant SDR (Le Roux et al. 2019), both signals made zero-mean first.

    The reference is scaled by α = <ŝ, s>/<s, s> before the error is measured, so any
    global gain of the estimate leaves the score unchanged.
    """
    import numpy as np

    reference, estimate = _pair(reference, estimate)
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    energy = float(np.dot(reference, reference))
    if energy == 0.0:
        return -math.inf
    target = (float(np.dot(estimate, reference)) / energy) * reference
    noise = estimate - target
    target_energy = float(np.dot(target, target))
    noise_energy = float(np.dot(noise, noise))
    if noise_energy == 0.0:
        return math.inf
    if target_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(target_energy / noise_energy)


def pesq_wb(reference, estimate, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.0-4.6); NaN when PESQ finds no speech to score."""
    from pesq import NoUtterancesError, pesq

    reference, estimate = _pair(reference, estimate)
    if sample_rate != 16000:
        raise ValueError(f"wide-band PESQ needs 16 kHz audio, got {sample_rate} Hz")
    try:
        return float(pesq(sample_rate, reference, estimate, "wb"))
    except NoUtterancesError:
        return math.nan


def stoi(reference, estimate, sample_rate: int = 16000) -> float:
    """Short-time objective intelligibility (0-1), via ``pystoi``."""
    from pystoi import stoi as _stoi

    reference, estimate = _pair(reference, estimate)
    return float(_stoi(reference, estimate, sample_rate, extended=False))
