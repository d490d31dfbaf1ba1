"""Scoring a denoiser on a dataset's evaluation clips, and keeping their audio for listening.

Each clip is denoised through :class:`dlbench_plugins.speech.inference.Denoiser`, the same
path ``dlbench denoise`` takes, and scored against its clean reference (SNR, SI-SDR, PESQ,
STOI) beside the noisy input and the oracle (clean magnitude on the noisy phase: the ceiling
of any magnitude-only model).
"""

from __future__ import annotations


def evaluate(ctx, denoiser, data, stfts):
    """Score every evaluation clip and log its audio (and the listening clips'); returns
    per-file rows and, per scored clip, its (name, noisy, clean) magnitudes to plot."""
    import numpy as np

    from dlbench_plugins.speech import metrics as am
    from dlbench_plugins.speech import spectral

    settings = denoiser.settings
    rows, examples = [], []
    rate = data.sample_rate
    for i, clip in enumerate(data.evaluation):
        noisy_spec = stfts[f"evaluation/{i}/noisy"]
        clean_spec = stfts[f"evaluation/{i}/clean"]
        denoised = denoiser.denoise(clip.noisy, noisy_spec)
        oracle = spectral.istft(np.abs(clean_spec), np.angle(noisy_spec), len(clip.noisy), settings)
        rows.append(
            {
                "file": clip.name,
                "seconds": round(len(clip.noisy) / rate, 3),
                "snr_in_db": am.snr_db(clip.clean, clip.noisy),
                "snr_db": am.snr_db(clip.clean, denoised),
                "si_sdr_in_db": am.si_sdr_db(clip.clean, clip.noisy),
                "si_sdr_db": am.si_sdr_db(clip.clean, denoised),
                "pesq_in": am.pesq_wb(clip.clean, clip.noisy, rate),
                "pesq": am.pesq_wb(clip.clean, denoised, rate),
                "stoi_in": am.stoi(clip.clean, clip.noisy, rate),
                "stoi": am.stoi(clip.clean, denoised, rate),
                "oracle_snr_db": am.snr_db(clip.clean, oracle),
                "output_all_zero": bool(not np.any(denoised)),
            }
        )
        save_audio(ctx, clip.name, rate, noisy=clip.noisy, denoised=denoised, clean=clip.clean)
        examples.append((clip.name, np.abs(noisy_spec), np.abs(clean_spec)))
    for i, clip in enumerate(data.listen):
        denoised = denoiser.denoise(clip.noisy, stfts[f"listen/{i}/noisy"])
        save_audio(ctx, clip.name, rate, noisy=clip.noisy, denoised=denoised, clean=clip.clean)
    return rows, examples


def save_audio(ctx, name, rate, **signals):
    for kind, signal in signals.items():
        if signal is not None:
            ctx.log_audio(signal, rate, f"audio/{name}/{kind}.wav")


def summarize(rows):
    """Means over evaluation files; PESQ ignores files where it found no speech."""
    import math

    import numpy as np

    keys = [k for k in rows[0] if k not in ("file", "seconds", "output_all_zero")]
    means = {}
    for key in keys:
        values = [r[key] for r in rows if not (isinstance(r[key], float) and math.isnan(r[key]))]
        means[key] = float(np.mean(values)) if values else math.nan
    means["snr_gain_db"] = means["snr_db"] - means["snr_in_db"]
    return {k: v for k, v in means.items() if math.isfinite(v)}
