"""The synthesized default speech set: espeak-ng voices mixed with six kinds of noise.

Why synthesized: the denoising experiments must run with no ``--data`` and no network, yet
on real speech structure (formants, pitch, pauses), not tones. The ``espeakng-loader`` wheel
ships ``libespeak-ng.so`` and its voice data; it is driven here through ctypes:
``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ...)`` plus a synth callback that collects the
int16 samples, 22,050 Hz, resampled to 16 kHz with soxr. No audio device, no espeak binary.

What it holds (generated in seconds the first time, read from the cache after):

- training: 48 clips (~290 s) spoken by 8 voices (English accents x espeak variants,
  random rate and pitch per clip), 2 sentences each from a pool of fixed sentences plus
  seeded template sentences;
- evaluation: 12 clips (~75 s) by 3 *other* voices, never heard in training, so the score
  measures denoising of unseen speakers; listening: 2 noisy-only clips by those voices;
- noises, cycled over clips: white, pink (1/f), brown (1/f^2), babble (3-4 overlapped
  sentences from a separate pool of voices), mains hum (50 or 60 Hz + harmonics) and
  impulsive clicks; SNRs drawn from -5, 0, 5, 10 dB (mixed at exactly that SNR), centred near
  the course recording's 3.3 dB so that the score measures denoising, not the passing through
  of clean clips (docs/RESULTS.md has what the earlier version measured);
- quick: 4 training clips, 2 scored, 1 listening clip (~17 s of audio in all, ~1 s to make).

Deterministic by ``seed``: sentence choice, voice parameters, noise and SNR all come from
``numpy.random.default_rng(seed)`` streams, and espeak's own noise generators are seeded per
utterance. libespeak-ng also carries state from one utterance to the next, so generation runs
in a fresh Python process (``python -m dlbench_plugins.speech.synth``), which replays the same call
sequence byte for byte. The result is cached under the data root keyed by seed, size, this
module's format version and the espeak-ng version (atomic writes), so the second run reads
~50 MB from disk instead of synthesizing.
``SpeechData.manifest`` lists the voice, rate, pitch, text, noise and SNR of every clip and
``notes`` says what the set is, for the run record.
"""

from __future__ import annotations

import ctypes
import json
import threading
from dataclasses import dataclass

import numpy as np

from dlbench.errors import DataError
from dlbench_plugins.speech.clips import SAMPLE_RATE, SpeechClip, SpeechData

SYNTH_VERSION = 2
ESPEAK_RATE = 22_050
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE_PARAM, ESPEAK_PITCH_PARAM = 1, 3

TRAIN_VOICES = (
    "en+m1", "en-us+f1", "en-gb-scotland+m3", "en+f3",
    "en-us+m4", "en-029+f2", "en+klatt2", "en-gb-x-rp+m7",
)
EVAL_VOICES = ("en-us-nyc+m2", "en+f4", "en-gb-x-rp+m5")
BABBLE_VOICES = ("en+m6", "en-us+f5", "en+m8", "en-gb-scotland+f2", "en-029+m2")
NOISES = ("white", "pink", "brown", "babble", "hum", "clicks")
SNRS_DB = (-5.0, 0.0, 5.0, 10.0)


@dataclass(frozen=True)
class Size:
    train: int
    evaluation: int
    listen: int
    sentences_per_clip: int


FULL = Size(train=48, evaluation=12, listen=2, sentences_per_clip=2)
QUICK = Size(train=4, evaluation=2, listen=1, sentences_per_clip=1)

SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
)
_SUBJECTS = ("My neighbour", "The old captain", "A tired student", "Our teacher", "The baker",
             "Every driver", "The quiet child", "A clever fox", "The night nurse", "His sister")
_VERBS = ("carried", "painted", "forgot", "repaired", "counted", "described", "found", "sold",
          "measured", "borrowed")
_OBJECTS = ("seven wooden chairs", "a bright yellow kite", "the broken window", "three silver coins",
            "a map of the harbour", "the heavy winter coat", "twelve fresh apples",
            "an empty glass jar", "the long letter", "a basket of green beans")
_PLACES = ("before dinner", "near the station", "on a rainy Tuesday", "in the garden",
           "after the storm", "at the market", "under the bridge", "by the old mill",
           "late last night", "during the concert")


def load_synth(*, quick: bool = False, seed: int = 0):
    """The synthesized default as ``SpeechData`` (layout "synth"), generated once and cached."""
    from dlbench.cache import array_digest, cached_arrays

    key = {"version": SYNTH_VERSION, "seed": int(seed), "quick": bool(quick),
           "espeak": espeak_version(), "rate": SAMPLE_RATE}
    arrays = cached_arrays("synth", key, lambda: generate_in_fresh_process(quick, seed))
    manifest = json.loads(str(arrays["manifest"]))
    parts: dict[str, list] = {"train": [], "evaluation": [], "listen": []}
    for part in parts:
        bounds = np.concatenate([[0], np.cumsum(arrays[f"{part}_lengths"])])
        entries = [m for m in manifest if m["part"] == part]
        for entry, start, stop in zip(entries, bounds[:-1], bounds[1:]):
            noisy = arrays[f"{part}_noisy"][start:stop]
            clean = arrays[f"{part}_clean"][start:stop] if part != "listen" else None
            parts[part].append(SpeechClip(entry["name"], noisy, clean))
    digest = array_digest(arrays[name] for name in sorted(arrays))
    source = (f"synthesized: espeak-ng {key['espeak']} via espeakng-loader, seed {seed}"
              f"{' (quick)' if quick else ''}")
    notes = [
        f"synthesized default (no --data): {len(parts['train'])} training clips by voices"
        f" {', '.join(TRAIN_VOICES if not quick else _voices_used(manifest, 'train'))};"
        f" scored on {len(parts['evaluation'])} clips by unseen voices"
        f" {', '.join(_voices_used(manifest, 'evaluation'))}",
        f"noises {', '.join(NOISES)} at SNRs {', '.join(f'{s:g}' for s in SNRS_DB)} dB;"
        f" espeak-ng {ESPEAK_RATE} Hz resampled to {SAMPLE_RATE} Hz with soxr",
    ]
    return SpeechData(train=parts["train"], evaluation=parts["evaluation"], listen=parts["listen"],
                      sample_rate=SAMPLE_RATE, layout="synth", source=source, digest=digest,
                      notes=notes, manifest=manifest)


def _voices_used(manifest: list[dict], part: str) -> list[str]:
    return sorted({m["voice"] for m in manifest if m["part"] == part})


# -- generation ----------------------------------------------------------------------------


def generate(size: Size, seed: int) -> dict[str, np.ndarray]:
    """Synthesize and mix every clip; returns flat arrays (the cache's storage format)."""
    streams = np.random.default_rng(seed).spawn(4)
    text_rng, voice_rng, noise_rng, babble_rng = streams
    sentences = _sentence_pool(text_rng, 8 * size.sentences_per_clip * (size.train + size.evaluation))
    babble_bank = [_speak(BABBLE_VOICES[i % len(BABBLE_VOICES)], sentences[-1 - i],
                          rate=170, pitch=50, seed=1 + i) for i in range(len(BABBLE_VOICES) * 2)]
    plan = (["train"] * size.train + ["evaluation"] * size.evaluation + ["listen"] * size.listen)
    out: dict[str, list] = {f"{p}_{k}": [] for p in ("train", "evaluation", "listen")
                            for k in ("noisy", "clean", "lengths")}
    manifest = []
    counters = {"train": 0, "evaluation": 0, "listen": 0}
    for index, part in enumerate(plan):
        n = counters[part]
        counters[part] += 1
        voices = TRAIN_VOICES if part == "train" else EVAL_VOICES
        voice = voices[n % len(voices)]
        rate = int(voice_rng.integers(140, 200))
        pitch = int(voice_rng.integers(25, 75))
        chosen = text_rng.choice(len(sentences), size.sentences_per_clip, replace=False)
        clean = np.concatenate([_speak(voice, sentences[i], rate=rate, pitch=pitch,
                                       seed=int(voice_rng.integers(1, 2**31)))
                                for i in chosen])
        clean = _normalise(clean, noise_rng)
        noise_kind = NOISES[(n + (part != "train") * 3) % len(NOISES)]
        snr = float(noise_rng.choice(SNRS_DB))
        noise = make_noise(noise_kind, len(clean), noise_rng, babble_bank, babble_rng)
        noisy, clean = mix_at_snr(clean, noise, snr)
        name = f"{part}_{n:03d}"
        out[f"{part}_noisy"].append(noisy)
        out[f"{part}_clean"].append(clean)
        out[f"{part}_lengths"].append(len(noisy))
        manifest.append({"part": part, "name": name, "voice": voice, "rate_wpm": rate,
                         "pitch": pitch, "noise": noise_kind, "snr_db": snr,
                         "text": " ".join(sentences[i] for i in chosen)})
    arrays = {}
    for name, values in out.items():
        if name.endswith("lengths"):
            arrays[name] = np.asarray(values, dtype=np.int64)
        else:
            arrays[name] = np.concatenate(values or [np.zeros(0)]).astype(np.float32)
    arrays["manifest"] = np.array(json.dumps(manifest))
    return arrays


def generate_in_fresh_process(quick: bool, seed: int) -> dict[str, np.ndarray]:
    """``generate`` in a new Python process: the only way to make espeak-ng reproducible.

    libespeak-ng keeps synthesis state between utterances (in the same process the same call
    sequence gives different sample counts on a repeat, and ``espeak_Terminate`` does not reset
    it). A fresh process replaying the same sequence with the same seeds is byte-identical.
    It also keeps the C library out of the process that trains the model.
    """
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dlbench-synth-") as tmp:
        out = os.path.join(tmp, "synth.npz")
        command = [sys.executable, "-m", "dlbench_plugins.speech.synth", "--seed", str(int(seed)),
                   "--out", out] + (["--quick"] if quick else [])
        # The same interpreter, so the same installed dlbench and plugins.
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"synthesizing the default speech set failed: {tail}")
        with np.load(out, allow_pickle=False) as entry:
            return {name: entry[name] for name in entry.files}


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="synthesize the default speech set into OUT (.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    arrays = generate(QUICK if args.quick else FULL, args.seed)
    np.savez(args.out, **arrays)
    return 0


def _sentence_pool(rng: np.random.Generator, count: int) -> list[str]:
    made = [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}."
        for _ in range(max(0, count - len(SENTENCES)))
    ]
    return list(SENTENCES) + made


def _normalise(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim leading/trailing digital silence and set a level between -30 and -20 dBFS RMS."""
    active = np.flatnonzero(np.abs(speech) > 1e-4)
    if active.size:
        speech = speech[max(0, active[0] - 800): active[-1] + 800]
    rms = np.sqrt(np.mean(speech.astype(np.float64) ** 2)) or 1.0
    target = 10 ** (rng.uniform(-30, -20) / 20)
    return (speech * (target / rms)).astype(np.float32)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)`` with ``10 log10(|clean|^2/|noise|^2) == snr_db``; rescaled if it clips."""
    p_clean = float(np.mean(clean.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) or 1e-12
    noise = noise * np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    noisy = clean + noise
    peak = float(np.max(np.abs(noisy)))
    if peak > 0.99:  # same gain on both keeps the SNR exact
        noisy, clean = noisy * (0.99 / peak), clean * (0.99 / peak)
    return noisy.astype(np.float32), clean.astype(np.float32)


def make_noise(kind: str, length: int, rng: np.random.Generator,
               babble_bank: list[np.ndarray] | None = None,
               babble_rng: np.random.Generator | None = None) -> np.ndarray:
    """One of ``NOISES`` as float32 of ``length`` samples at unit-ish level (SNR sets the gain)."""
    if kind == "white":
        return rng.standard_normal(length).astype(np.float32)
    if kind in ("pink", "brown"):
        return _coloured(length, 1.0 if kind == "pink" else 2.0, rng)
    if kind == "hum":
        t = np.arange(length) / SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        hum = sum((0.6 ** k) * np.sin(2 * np.pi * mains * (k + 1) * t + rng.uniform(0, 2 * np.pi))
                  for k in range(12))
        return (hum + 0.02 * rng.standard_normal(length)).astype(np.float32)
    if kind == "clicks":
        noise = 0.01 * rng.standard_normal(length)
        count = max(1, int(rng.uniform(3, 10) * length / SAMPLE_RATE))
        decay = np.exp(-np.arange(80) / 12.0)  # ~5 ms bursts
        for start in rng.integers(0, max(1, length - 80), count):
            burst = rng.uniform(0.3, 1.0) * rng.standard_normal(80) * decay
            noise[start:start + 80] += burst[: length - start]
        return noise.astype(np.float32)
    if kind == "babble":
        if not babble_bank:
            raise ValueError("babble needs a bank of other voices")
        rng_b = babble_rng if babble_rng is not None else rng
        total = np.zeros(length, np.float64)
        for _ in range(int(rng_b.integers(3, 5))):
            voice = babble_bank[int(rng_b.integers(len(babble_bank)))]
            reps = int(np.ceil((length + len(voice)) / len(voice)))
            tiled = np.tile(voice, reps)
            offset = int(rng_b.integers(len(voice)))
            total += tiled[offset: offset + length] / (np.sqrt(np.mean(voice ** 2)) or 1.0)
        return total.astype(np.float32)
    raise ValueError(f"unknown noise {kind!r}; known: {', '.join(NOISES)}")


def _coloured(length: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectral density ~ 1/f^exponent (shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    shape = np.zeros_like(freqs)
    shape[1:] = 1.0 / np.maximum(freqs[1:], 20.0) ** (exponent / 2)  # no DC, flat below 20 Hz
    noise = np.fft.irfft(spectrum * shape, n=length)
    return (noise / (np.std(noise) or 1.0)).astype(np.float32)


# -- espeak-ng through ctypes --------------------------------------------------------------

_lock = threading.Lock()
_engine: dict = {}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


def _library():
    """Load and initialise libespeak-ng once per process (synchronous output, our callback)."""
    if "lib" in _engine:
        return _engine["lib"]
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError) as exc:
        raise DataError(
            f"cannot load espeak-ng for the synthesized default ({exc}); fix: pip install"
            " espeakng-loader, or pass --data with recorded speech"
        ) from None
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
    if rate != ESPEAK_RATE:
        raise DataError(f"espeak-ng initialisation failed (returned {rate}, expected {ESPEAK_RATE} Hz)")

    def collect(samples, count, _events):
        if count > 0 and samples:
            _engine["chunks"].append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0: continue synthesis

    _engine["callback"] = _CALLBACK(collect)  # keep a reference: C holds only a pointer
    _engine["chunks"] = []
    _engine["libc"] = ctypes.CDLL(None)  # the process' C library: srand() for espeak's rand()
    lib.espeak_SetSynthCallback(_engine["callback"])
    _engine["lib"] = lib
    return lib


def espeak_version() -> str:
    with _lock:
        return _library().espeak_Info(None).decode()


def _speak(voice: str, text: str, *, rate: int, pitch: int, seed: int) -> np.ndarray:
    """``text`` spoken by ``voice`` as float32 at 16 kHz; ``seed`` fixes the breath noise."""
    import soxr

    with _lock:
        lib = _library()
        # Breathy variants draw noise from espeak's generator and libc rand(): seed both.
        lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        _engine["libc"].srand(ctypes.c_uint(seed))
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"espeak-ng has no voice {voice!r} (espeakng-loader data incomplete?)")
        lib.espeak_SetParameter(ESPEAK_RATE_PARAM, rate, 0)
        lib.espeak_SetParameter(ESPEAK_PITCH_PARAM, pitch, 0)
        _engine["chunks"] = []
        encoded = text.encode()
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, ESPEAK_CHARS_UTF8, None, None)
        chunks = _engine["chunks"]
    if status != 0 or not chunks:
        raise DataError(f"espeak-ng failed to speak with voice {voice!r} (status {status})")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return soxr.resample(samples, ESPEAK_RATE, SAMPLE_RATE, quality="HQ").astype(np.float32)


if __name__ == "__main__":
    raise SystemExit(_main())
