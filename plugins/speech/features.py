"""Training examples for the denoisers: one per STFT frame, from a speech dataset's clips.

The network's input is the noisy magnitude, compressed and scaled (``spectral.model_input``),
each frame stacked with ``context`` neighbours; the target is the clean magnitude (or its
part in phase with the noisy STFT). Validation frames are split off *before* any
augmentation, so early stopping only ever scores real recordings.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

TARGETS = ("magnitude", "phase_sensitive")
"""What the network's output is fitted to (see :func:`clean_target`)."""
LOSS_WEIGHTINGS = ("energy", "clip")
"""How a mask's loss weighs the training clips against each other (see :func:`clip_levels`)."""


@dataclass
class Frames:
    """Training examples, one per STFT frame: the network's input ``features`` (compressed,
    scaled, with context), the ``noisy`` magnitude a mask multiplies, and the ``target`` the
    loss compares against (for a mask, linear magnitudes divided by a level: :func:`clip_levels`;
    for a magnitude network, the compressed clean magnitude)."""

    features: Any
    noisy: Any
    target: Any

    def inputs(self, output: str):
        return (self.features, self.noisy) if output == "mask" else self.features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        return Frames(self.features[index], self.noisy[index], self.target[index])

    @staticmethod
    def concat(parts):
        import numpy as np

        return Frames(*(np.concatenate(column) for column in zip(*(astuple(f) for f in parts))))


def clip_frames(noisy, clean, settings, level: float) -> Frames:
    """The examples of one clip from its noisy and clean magnitudes ``(T, bins)``."""
    import numpy as np

    from dlbench_plugins.speech import spectral

    if settings.output == "mask":
        target = clean / level
    else:
        target = spectral.model_target(clean, settings, noisy)
    return Frames(
        spectral.model_input(noisy, settings),
        (noisy / level).astype(np.float32),
        np.asarray(target, dtype=np.float32),
    )


def load_features(ctx):
    """Speech clips, their cached STFTs, the spectral settings, and the fit and validation frames.

    Validation is the last ``validation_split`` of the training frames, as Keras would take
    it, but split off here *before* augmentation so that early stopping only ever sees real
    recordings; the ``remix`` copies are made of the remaining frames' audio only.
    """
    import numpy as np

    from dlbench_plugins.speech import spectral

    p = ctx.params
    data = ctx.data("speech")
    stfts = spectrograms(data)
    noisy_specs = [stfts[f"train/{i}/noisy"] for i in range(len(data.train))]
    clean_specs = [stfts[f"train/{i}/clean"] for i in range(len(data.train))]
    noisy = [np.abs(spec) for spec in noisy_specs]
    clean = [clean_target(c, n, p["target"]) for c, n in zip(clean_specs, noisy_specs)]
    settings = spectral.SpectralSettings(
        sample_rate=data.sample_rate,
        compression=p["compression"],
        context=p["context"],
        output=p["output"],
        normalization=p["normalization"],
    )
    if p["scaling"] == "peak":
        settings = spectral.fit_scale(noisy, settings)
    levels = clip_levels(clean_specs, p["loss_weighting"])
    # Context is stacked clip by clip, so no example mixes the end of one clip with the
    # start of the next.
    frames = Frames.concat([clip_frames(n, c, settings, level)
                            for n, c, level in zip(noisy, clean, levels)])
    split = int(len(frames) * (1 - p["validation_split"]))

    counts = [len(m) for m in noisy]
    shifts = p["frame_shifts"]
    # At the declared hop the training frames are the cached ones; finer hops need new STFTs.
    if shifts == 1:
        fit = [frames[:split]]
    else:
        fit = [training_frames(data.train, counts, split, settings, levels, p["target"], shifts)]
    rng = np.random.default_rng(ctx.seed)
    remix = (rng, p["remix_gain"])
    # Each remix is another noisy copy of the same audio, cut into frames the same way.
    fit += [training_frames(data.train, counts, split, settings, levels, p["target"], shifts, remix)
            for _ in range(p["remix"])]
    return data, stfts, settings, Frames.concat(fit), frames[split:]


def clip_levels(clean_specs, weighting: str) -> list[float]:
    """The level each clip's linear magnitudes are divided by in a mask's loss (O(1) either way).

    ``energy``: one level for all, so each bin weighs by its energy and a loud clip outweighs a
    quiet one. ``clip``: each clip's own, so every clip weighs alike, as the evaluation's mean
    of per-clip SNRs does; on a set whose clips differ in level (the synthesized one spans
    10 dB of speech level and 15 dB of SNR) the quiet ones otherwise barely count.
    """
    import numpy as np

    def level(specs) -> float:
        return float(np.std(np.abs(np.concatenate(specs)))) or 1.0

    if weighting == "clip":
        return [level([spec]) for spec in clean_specs]
    return [level(clean_specs)] * len(clean_specs)


def training_frames(clips, frame_counts, split, settings, levels, target, shifts=1, remix=None):
    """Examples from the training audio that lies before the validation frames.

    ``shifts`` > 1 takes the STFT at ``hop / shifts``: every extra frame is a real window of
    the same recordings, shifted in time, so the network sees ``shifts`` times as many
    (correlated) examples. Inference still uses the declared hop. ``remix`` is
    ``(rng, gain_jitter)`` to put each clip's speech under its own noise moved in time.
    """
    import dataclasses

    import numpy as np

    from dlbench_plugins.speech import spectral

    shifted = dataclasses.replace(settings, hop_length=max(settings.hop_length // shifts, 1))
    parts, start = [], 0
    for clip, frames, level in zip(clips, frame_counts, levels):
        count = min(frames, max(split - start, 0))  # this clip's frames before the split
        start += frames
        if not count:
            continue
        length = count * settings.hop_length
        clean = clip.clean[:length]
        noisy = clip.noisy[:length] if remix is None else remix_noise(clip, length, *remix)
        kept = count * settings.hop_length // shifted.hop_length  # frames centred before the cut
        noisy_spec = spectral.stft(noisy, shifted)[:kept]
        clean_spec = spectral.stft(clean, shifted)[:kept]
        parts.append(clip_frames(np.abs(noisy_spec), clean_target(clean_spec, noisy_spec, target),
                                 settings, level))
    return Frames.concat(parts)


def clean_target(clean_spec, noisy_spec, target: str):
    """What the network learns to output (times the mask), from the clean and noisy STFTs.

    ``magnitude``: the clean magnitude. ``phase_sensitive``: the clean magnitude times the
    cosine of its phase's difference from the noisy phase, floored at 0. The denoiser puts its
    estimate on the noisy phase, so the error it makes in a bin is
    ``|clean - estimate * e^(i noisy phase)|^2 = (|clean| cos d - estimate)^2 + |clean|^2 sin^2 d``:
    the phase-sensitive target is the estimate that minimises it, and an MSE against it is
    the squared error SNR counts, less a part no magnitude can change (Erdogan et al., 2015).
    """
    import numpy as np

    magnitude = np.abs(clean_spec)
    if target == "magnitude":
        return magnitude.astype(np.float32)
    cosine = np.cos(np.angle(clean_spec) - np.angle(noisy_spec))
    return np.maximum(magnitude * cosine, 0.0).astype(np.float32)


def remix_noise(clip, length, rng, gain_jitter):
    """The clip's first ``length`` samples of clean speech plus its own noise there, circularly
    shifted and rescaled.

    The training pairs are sample-aligned with additive noise, so ``noisy - clean`` is the
    noise itself. Sliding it to a random offset (and a gain within 1 +/- ``gain_jitter``)
    gives the same speech under new noise. Only audio before the validation frames is used,
    so early stopping never scores noise the model was trained on.
    """
    import numpy as np

    clean = clip.clean[:length]
    noise = clip.noisy[:length] - clean
    shift = int(rng.integers(1, len(noise))) if len(noise) > 1 else 0
    gain = rng.uniform(1 - gain_jitter, 1 + gain_jitter)
    return (clean + gain * np.roll(noise, shift)).astype(np.float32)


def spectrograms(data, settings=None) -> dict:
    """Complex64 STFTs ``(frames, bins)`` of every clip (:func:`spectral.stft`), cached.

    Keys: ``train/<i>/noisy``, ``train/<i>/clean``, ``evaluation/<i>/...``, ``listen/<i>/noisy``
    (and ``/clean`` where set). Keyed by the data's digest and the STFT settings, so the
    second run of the same data reads them from disk.
    """
    import numpy as np

    from dlbench.cache import cached_arrays
    from dlbench_plugins.speech import spectral

    settings = settings or spectral.SpectralSettings()

    def compute() -> dict:
        out = {}
        for part in ("train", "evaluation", "listen"):
            for i, clip in enumerate(getattr(data, part)):
                for side in ("noisy", "clean"):
                    signal = getattr(clip, side)
                    if signal is not None:
                        spec = spectral.stft(signal, settings).astype(np.complex64)
                        out[f"{part}/{i}/{side}"] = np.ascontiguousarray(spec)
        return out

    key = {"digest": data.digest, "n_fft": settings.n_fft, "hop": settings.hop_length,
           "window": settings.window, "center": True, "librosa_pad": "constant"}
    return cached_arrays("stft", key, compute)
