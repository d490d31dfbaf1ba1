"""Speech loading: layouts, the held-out protocol, every validation case, the synthesized default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from dlbench_plugins.speech import features, recorded, synth
from dlbench_plugins.speech.dataset import load as load_speech
from dlbench.errors import DataError
from dlbench_plugins.speech.spectral import SpectralSettings

RATE = 16_000


# Each test gets a data root (and Keras cache) of its own: no entry leaks between tests.
pytestmark = pytest.mark.usefixtures("data_root")


def tone(seconds=1.0, rate=RATE, freq=220.0, level=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noisy_of(clean, seed=0):
    return (clean + 0.05 * np.random.default_rng(seed).standard_normal(clean.shape)).astype(np.float32)


def write(path: Path, samples, rate=RATE, subtype=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, rate, subtype=subtype)
    return path


def course(folder: Path, clean=None, noisy=None, tests=()) -> Path:
    """A course folder; its held-out tail (15 % of 4 s) is long enough to be scored."""
    clean = tone(4.0) if clean is None else clean
    write(folder / "train_clean_male.wav", clean)
    write(folder / "train_dirty_male.wav", noisy_of(clean) if noisy is None else noisy)
    for ident, with_reference in tests:
        reference = tone(0.5, freq=330.0)
        write(folder / f"test_x_{ident}.wav", noisy_of(reference, 1))
        if with_reference:
            write(folder / f"test_s_{ident}.wav", reference)
    return folder


# -- the real course recordings ------------------------------------------------------------


def test_course_data_uses_the_held_out_protocol(course_dir):
    data = load_speech(course_dir)
    assert data.layout == "course" and data.sample_rate == RATE
    (train,), (held_out,) = data.train, data.evaluation
    total = 1_258_899
    cut = int(total * 0.85) // 512 * 512
    assert cut == 1_069_568
    assert len(train.noisy) == len(train.clean) == cut
    assert len(held_out.noisy) == len(held_out.clean) == total - cut
    assert abs(len(held_out.noisy) / RATE - 11.8) < 0.05
    whole = soundfile.read(str(course_dir / "train_dirty_male.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(held_out.noisy, whole[cut:])  # the tail, excluded from training
    assert [c.name for c in data.listen] == ["test_x_01", "test_x_02"]
    assert all(c.clean is None for c in data.listen)
    assert all(c.noisy.dtype == np.float32 for c in data.train + data.evaluation + data.listen)
    noisy_snr = 10 * np.log10(np.sum(held_out.clean**2) / np.sum((held_out.noisy - held_out.clean) ** 2))
    assert abs(noisy_snr - 3.3) < 0.1  # the reference figure of shared/data/README.md
    assert any("excluded from training" in n for n in data.notes)
    assert load_speech(course_dir).digest == data.digest


def test_course_quick_is_small_and_parent_folder_is_accepted(shared_data):
    data = load_speech(shared_data, quick=True)
    assert data.layout == "course"
    assert data.seconds("train") <= 8.0 and data.seconds("evaluation") <= 3.0
    assert data.digest != load_speech(shared_data).digest


# -- course layout on generated files -------------------------------------------------------


def test_references_are_scored_and_the_whole_pair_trains(tmp_path):
    data = load_speech(course(tmp_path, tests=[("01", True), ("02", False)]))
    assert len(data.train[0].noisy) == 4 * RATE  # nothing held out
    assert [c.name for c in data.evaluation] == ["test_x_01"]
    assert data.evaluation[0].clean is not None
    assert [c.name for c in data.listen] == ["test_x_01", "test_x_02"]  # every test_x is listened to
    assert data.listen[1].clean is None


def test_missing_partner_file_is_named(tmp_path):
    write(tmp_path / "train_clean_male.wav", tone())
    with pytest.raises(DataError, match="train_dirty_male.wav is missing"):
        load_speech(tmp_path)


def test_reference_without_noisy_test_is_an_error(tmp_path):
    course(tmp_path)
    write(tmp_path / "test_s_07.wav", tone(0.5))
    with pytest.raises(DataError, match="test_s_07.wav.*test_x_07"):
        load_speech(tmp_path)


def test_not_audio_is_named(tmp_path):
    course(tmp_path)
    (tmp_path / "train_dirty_male.wav").write_text("these are not the samples you are looking for")
    with pytest.raises(DataError, match=r"train_dirty_male\.wav: cannot be read as audio"):
        load_speech(tmp_path)


def test_unreadable_file_is_named(tmp_path):
    course(tmp_path)
    (tmp_path / "test_x_01.wav").mkdir()  # a name that is not a file
    with pytest.raises(DataError, match=r"test_x_01\.wav: is not a file"):
        load_speech(tmp_path)


def test_missing_file_is_named(tmp_path):
    course(tmp_path)
    (tmp_path / "test_x_02.wav").symlink_to(tmp_path / "deleted.wav")  # dangling link
    with pytest.raises(DataError, match=r"test_x_02\.wav: file is missing"):
        load_speech(tmp_path)


def test_empty_recording_is_rejected(tmp_path):
    course(tmp_path, noisy=np.zeros(0, np.float32))
    with pytest.raises(DataError, match=r"train_dirty_male\.wav: holds no samples"):
        load_speech(tmp_path)


def test_silent_clean_reference_is_rejected(tmp_path):
    course(tmp_path, clean=np.zeros(RATE, np.float32), noisy=tone(1.0))
    with pytest.raises(DataError, match=r"train_clean_male\.wav: clean reference is silent"):
        load_speech(tmp_path)


def test_nan_and_inf_samples_are_rejected(tmp_path):
    bad = tone(1.0)
    bad[100] = np.nan
    bad[200] = np.inf
    course(tmp_path, clean=tone(1.0))
    write(tmp_path / "train_dirty_male.wav", bad, subtype="FLOAT")
    with pytest.raises(DataError, match=r"train_dirty_male\.wav: 2 samples are NaN or infinite"):
        load_speech(tmp_path)


def test_length_mismatch_beyond_one_hop_is_rejected(tmp_path):
    clean = tone(1.0)
    course(tmp_path, clean=clean, noisy=noisy_of(clean)[: len(clean) - 513])
    with pytest.raises(DataError, match="differ by 513 > one hop of 512"):
        load_speech(tmp_path)


def test_length_mismatch_within_one_hop_is_trimmed_with_a_note(tmp_path):
    clean = tone(4.0)
    course(tmp_path, clean=clean, noisy=noisy_of(clean)[: len(clean) - 512])
    data = load_speech(tmp_path)
    whole = len(data.train[0].noisy) + len(data.evaluation[0].noisy)
    assert whole == len(clean) - 512
    assert any("differ by 512 samples; trimmed" in n for n in data.notes)


def test_stereo_is_downmixed_with_a_note(tmp_path):
    left, right = tone(4.0, freq=200.0), tone(4.0, freq=300.0)
    clean = np.stack([left, right], axis=1)
    course(tmp_path, clean=clean, noisy=clean + 0.01)
    data = load_speech(tmp_path)
    expected = (left + right) / 2
    np.testing.assert_allclose(data.train[0].clean, expected[: len(data.train[0].clean)], atol=1e-4)
    assert any("2 channels downmixed to mono" in n for n in data.notes)


def test_other_rates_are_resampled_with_a_note(tmp_path):
    clean = tone(4.0, rate=22_050)
    course(tmp_path)
    write(tmp_path / "train_clean_male.wav", clean, rate=22_050)
    write(tmp_path / "train_dirty_male.wav", noisy_of(clean), rate=22_050)
    data = load_speech(tmp_path)
    assert len(data.train[0].noisy) + len(data.evaluation[0].noisy) == 4 * RATE
    assert any("resampled 22050 Hz -> 16000 Hz with soxr" in n for n in data.notes)


def test_rates_below_8_khz_are_rejected(tmp_path):
    course(tmp_path)
    write(tmp_path / "train_dirty_male.wav", tone(2.0, rate=4_000), rate=4_000)
    with pytest.raises(DataError, match=r"train_dirty_male\.wav: sample rate 4000 Hz"):
        load_speech(tmp_path)


def test_unrecognised_folder_lists_the_layouts(tmp_path):
    write(tmp_path / "speech.wav", tone())
    with pytest.raises(DataError) as error:
        load_speech(tmp_path)
    assert "train_clean_male.wav" in str(error.value) and "clean_trainset" in str(error.value)


def test_missing_data_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_speech(tmp_path / "nowhere")


def test_held_out_cut_is_a_multiple_of_the_hop():
    for length in (10_000, 1_258_899, 513 * 7):
        cut = recorded.held_out_cut(length)
        assert cut % 512 == 0 and cut <= 0.85 * length < cut + 512


# -- VoiceBank-DEMAND ------------------------------------------------------------------------


def voicebank(folder: Path, names=("p226_001", "p226_002"), tests=("p232_001",)) -> Path:
    for i, name in enumerate(names):
        clean = tone(0.5, freq=200.0 + 10 * i)
        write(folder / "clean_trainset_28spk_wav" / f"{name}.wav", clean)
        write(folder / "noisy_trainset_28spk_wav" / f"{name}.wav", noisy_of(clean, i))
    for i, name in enumerate(tests):
        clean = tone(0.5, freq=400.0 + 10 * i)
        write(folder / "clean_testset_wav" / f"{name}.wav", clean)
        write(folder / "noisy_testset_wav" / f"{name}.wav", noisy_of(clean, 10 + i))
    return folder


def test_voicebank_files_are_matched_by_name(tmp_path):
    data = load_speech(voicebank(tmp_path / "vb"))
    assert data.layout == "voicebank"
    assert [c.name for c in data.train] == ["p226_001", "p226_002"]
    assert [c.name for c in data.evaluation] == ["p232_001"]
    clean = soundfile.read(str(tmp_path / "vb" / "clean_testset_wav" / "p232_001.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(data.evaluation[0].clean, clean)
    assert load_speech(tmp_path).layout == "voicebank"  # the parent folder works too


def test_voicebank_noisy_file_without_clean_twin_is_named(tmp_path):
    voicebank(tmp_path)
    write(tmp_path / "noisy_trainset_28spk_wav" / "p226_003.wav", tone(0.5))
    with pytest.raises(DataError, match=r"p226_003\.wav: no clean file of the same name"):
        load_speech(tmp_path)


# -- synthesized default ---------------------------------------------------------------------


def test_synth_quick_is_deterministic_small_and_speaks_unseen_voices(data_root, monkeypatch):
    data = load_speech(None, quick=True, seed=3)
    assert data.layout == "synth" and "espeak-ng" in data.source
    assert 5 < data.seconds("train") < 20
    train_voices = {m["voice"] for m in data.manifest if m["part"] == "train"}
    eval_voices = {m["voice"] for m in data.manifest if m["part"] == "evaluation"}
    assert train_voices and eval_voices and not train_voices & eval_voices
    for clip, entry in zip(data.evaluation, [m for m in data.manifest if m["part"] == "evaluation"]):
        snr = 10 * np.log10(np.sum(clip.clean.astype(np.float64) ** 2)
                            / np.sum((clip.noisy - clip.clean).astype(np.float64) ** 2))
        assert abs(snr - entry["snr_db"]) < 0.05
        assert np.isfinite(clip.noisy).all() and np.abs(clip.noisy).max() <= 1.0
    assert data.listen and all(c.clean is None for c in data.listen)

    # the second load is a cache hit: generating again would fail
    monkeypatch.setattr(synth, "generate_in_fresh_process",
                        lambda *a: pytest.fail("regenerated despite the cache"))
    again = load_speech(None, quick=True, seed=3)
    assert again.digest == data.digest
    np.testing.assert_array_equal(again.train[0].noisy, data.train[0].noisy)


def test_synth_depends_on_the_seed():
    assert load_speech(None, quick=True, seed=0).digest != load_speech(None, quick=True, seed=1).digest


def test_synth_generation_is_reproducible_without_the_cache():
    first = synth.generate_in_fresh_process(True, 5)
    second = synth.generate_in_fresh_process(True, 5)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_synth_full_size_holds_minutes_of_speech_with_every_noise():
    data = load_speech(None, seed=0)
    assert data.seconds("train") > 180 and data.seconds("evaluation") > 45
    assert {m["noise"] for m in data.manifest if m["part"] == "train"} == set(synth.NOISES)
    assert {m["noise"] for m in data.manifest if m["part"] == "evaluation"} == set(synth.NOISES)
    assert len({m["voice"] for m in data.manifest if m["part"] == "train"}) == len(synth.TRAIN_VOICES)
    # speech is really there: the clean track is loud in places and near silent in pauses
    clean = data.train[0].clean
    frames = clean[: len(clean) // 320 * 320].reshape(-1, 320)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert energy.max() - np.percentile(energy, 10) > 20


def spectral_slope(noise, rate=RATE):
    """The slope of log power against log frequency over 100 Hz - 4 kHz (1/f^a noise: -a)."""
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / rate)
    edges = np.geomspace(100, 4000, 11)
    bands = [power[(freqs >= lo) & (freqs < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    centres = np.sqrt(edges[:-1] * edges[1:])
    return np.polyfit(np.log10(centres), np.log10(bands), 1)[0]


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_coloured_noises_tilt_as_their_names_say(kind, slope):
    noise = synth.make_noise(kind, 4 * RATE, np.random.default_rng(0))
    assert noise.dtype == np.float32 and np.isfinite(noise).all()
    assert spectral_slope(noise) == pytest.approx(slope, abs=0.25)


def test_hum_is_mains_harmonics_and_clicks_are_impulses():
    rng = np.random.default_rng(0)
    hum = synth.make_noise("hum", 4 * RATE, rng)
    power = np.abs(np.fft.rfft(hum)) ** 2
    freqs = np.fft.rfftfreq(len(hum), 1 / RATE)
    mains = 50.0 if power[freqs == 50.0].sum() > power[freqs == 60.0].sum() else 60.0
    on_harmonics = np.isclose(freqs % mains, 0) | np.isclose(freqs % mains, mains)
    assert power[on_harmonics & (freqs > 0)].sum() > 0.95 * power[freqs > 0].sum()

    clicks = synth.make_noise("clicks", 4 * RATE, rng)
    kurtosis = np.mean((clicks - clicks.mean()) ** 4) / np.var(clicks) ** 2
    assert kurtosis > 20  # Gaussian noise: 3; short loud bursts in a quiet floor: far more


def test_babble_is_made_of_the_other_voices():
    bank = [tone(0.7, freq=f) for f in (150.0, 230.0, 310.0)]
    babble = synth.make_noise("babble", RATE, np.random.default_rng(0), bank, np.random.default_rng(1))
    assert babble.dtype == np.float32 and np.isfinite(babble).all()
    power = np.abs(np.fft.rfft(babble)) ** 2
    freqs = np.fft.rfftfreq(len(babble), 1 / RATE)
    # Here the bank's "voices" are three tones: the babble's power is theirs.
    near = np.zeros_like(freqs, dtype=bool)
    for freq in (150.0, 230.0, 310.0):
        near |= np.abs(freqs - freq) <= 3
    assert power[near].sum() > 0.9 * power.sum()
    with pytest.raises(ValueError, match="bank"):
        synth.make_noise("babble", RATE, np.random.default_rng(0))


def test_mix_at_snr_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    clean = tone(1.0)
    for snr in synth.SNRS_DB:
        noisy, scaled = synth.mix_at_snr(clean, rng.standard_normal(RATE).astype(np.float32), snr)
        measured = 10 * np.log10(np.sum(scaled.astype(np.float64) ** 2)
                                 / np.sum((noisy - scaled).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.01


# -- cached spectrograms ---------------------------------------------------------------------


def test_spectrograms_are_cached_by_digest_and_settings(tmp_path, data_root):
    data = load_speech(course(tmp_path / "c"))
    first = features.spectrograms(data, SpectralSettings(n_fft=512, hop_length=256))
    frames = 1 + len(data.train[0].noisy) // 256
    assert first["train/0/noisy"].shape == (frames, 257)
    assert first["train/0/noisy"].dtype == np.complex64
    entries = set((data_root / "cache" / "stft").glob("*.npz"))
    again = features.spectrograms(data, SpectralSettings(n_fft=512, hop_length=256))
    assert set((data_root / "cache" / "stft").glob("*.npz")) == entries  # hit: nothing new
    np.testing.assert_array_equal(again["evaluation/0/clean"], first["evaluation/0/clean"])
    other = features.spectrograms(data, SpectralSettings())
    assert other["train/0/noisy"].shape[1] == 513
    assert len(set((data_root / "cache" / "stft").glob("*.npz"))) == len(entries) + 1
