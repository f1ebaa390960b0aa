"""End-to-end conversion with the shipped weights (they are committed under pretrained/)."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET = ROOT / "examples" / "source_male.wav", ROOT / "examples" / "target_female.wav"
pytestmark = pytest.mark.skipif(not (ROOT / "pretrained" / "adain-base.safetensors").exists(), reason="no shipped model")


def _median_f0(path):
    from vcconv.audio import load_audio
    from vcconv.eval.signal import f0_track

    f0, voiced = f0_track(load_audio(path, 16000), 16000)
    return float(np.nanmedian(f0[voiced]))


def test_convert_moves_pitch_towards_target_and_pitch_shift_doubles_it(tmp_path):
    pytest.importorskip("pyworld")
    from vcconv.convert import convert

    out0, out12 = tmp_path / "a.wav", tmp_path / "b.wav"
    # F0 read from the converted mel (DIO tracks the flatter, transferred contour poorly at +12 st)
    convert(SOURCE, TARGET, out0, f0="predict")
    convert(SOURCE, TARGET, out12, pitch_shift=12.0, f0="predict")
    src, tgt, f0, f12 = _median_f0(SOURCE), _median_f0(TARGET), _median_f0(out0), _median_f0(out12)
    assert abs(np.log(f0 / tgt)) < abs(np.log(src / tgt)) / 2  # male source -> female target range
    assert 1.8 < f12 / f0 < 2.2


def test_pitch_shift_with_griffin_lim_is_a_clear_error(tmp_path):
    from vcconv.convert import convert
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="pitch-shift"):
        convert(SOURCE, TARGET, tmp_path / "x.wav", vocoder="griffinlim", pitch_shift=3.0)


def test_refuses_to_write_over_an_input(tmp_path):
    import shutil

    from vcconv.convert import convert
    from vcconv.errors import ModelError

    src = tmp_path / "s.wav"
    shutil.copy(SOURCE, src)
    before = src.read_bytes()
    with pytest.raises(ModelError, match="over an input"):
        convert(src, TARGET, src)
    assert src.read_bytes() == before


def test_strength_interpolates_and_extrapolates_the_speaker_vector():
    import torch

    from vcconv.audio import load_audio
    from vcconv.convert import Converter

    conv = Converter(vocoder="griffinlim:2", device="cpu", strength=1.0)
    src_wav = load_audio(SOURCE, conv.audio.sample_rate)
    s_tgt = conv.speaker_vector([TARGET])
    s_src = conv.speaker_vector([SOURCE])
    assert torch.allclose(conv.apply_strength(s_tgt, src_wav), s_tgt)  # strength 1: the target's own vector
    conv.strength = 0.0
    assert torch.allclose(conv.apply_strength(s_tgt, src_wav), s_src, atol=1e-5)  # 0: the source's voice
    conv.strength = 2.0
    assert torch.allclose(conv.apply_strength(s_tgt, src_wav), 2 * s_tgt - s_src, atol=1e-5)


def test_strength_out_of_range_is_a_clear_error():
    from vcconv.convert import Converter
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="strength"):
        Converter(vocoder="griffinlim:2", device="cpu", strength=-1.0)


def test_f0_transfer_matches_the_target_range_and_spread(tmp_path):
    pytest.importorskip("pyworld")
    from vcconv.audio import load_audio
    from vcconv.convert import convert
    from vcconv.pitch import extract_f0, log_f0_stats

    def stats(p):
        return log_f0_stats(extract_f0(load_audio(p, 16000), 16000))

    out = tmp_path / "t.wav"
    convert(SOURCE, TARGET, out, f0="transfer")
    (mu_s, sd_s), (mu_t, sd_t), (mu_o, sd_o) = stats(SOURCE), stats(TARGET), stats(out)
    assert abs(mu_o - mu_t) * 12 / np.log(2) < 2.0  # within 2 semitones of the target's mean (source is ~12 away)
    assert abs(np.log(sd_o / sd_t)) < abs(np.log(sd_s / sd_t))  # spread moved towards the target's


def test_f0_transfer_needs_an_f0_driven_vocoder_and_a_known_mode(tmp_path):
    from vcconv.convert import Converter
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="F0-driven"):
        Converter(vocoder="griffinlim:2", device="cpu", f0="transfer")
    with pytest.raises(ModelError, match="--f0 mode"):
        Converter(device="cpu", f0="sing")


def test_cli_defaults_match_the_library_defaults():
    import inspect

    from vcconv.cli.batch import batch_cmd
    from vcconv.cli.convert import convert_cmd
    from vcconv.convert import DEFAULT_F0, Converter

    for cmd in (convert_cmd, batch_cmd):
        params = inspect.signature(cmd).parameters
        assert params["strength"].default.default is None  # the model's own, as in the library
        assert params["f0"].default.default == DEFAULT_F0
    assert inspect.signature(Converter).parameters["strength"].default is None


def test_the_model_file_carries_its_conversion_strength(tmp_path):
    from vcconv.checkpoint import export_model, load_model_file
    from vcconv.cli import main
    from vcconv.config import RunConfig
    from vcconv.convert import DEFAULT_STRENGTH, Converter
    from vcconv.errors import ConfigError, ModelError

    from vcconv.convert import resolve_model_path

    default = resolve_model_path(None)
    assert Converter(device="cpu").strength == load_model_file(default, "cpu")[1].convert["strength"]
    shipped = ROOT / "pretrained" / "adain-base.safetensors"  # the previous default stays loadable
    mine = tmp_path / "mine.safetensors"
    main(["export", str(shipped), "-o", str(mine), "--strength", "0.5"])
    assert Converter(mine, vocoder="griffinlim:2", device="cpu").strength == 0.5
    assert Converter(mine, vocoder="griffinlim:2", device="cpu", strength=2.0).strength == 2.0  # explicit wins
    cfg = load_model_file(mine, "cpu")[1]
    cfg.convert.clear()
    bare = tmp_path / "bare.safetensors"
    from vcconv.checkpoint import save_safetensors

    save_safetensors(load_model_file(mine, "cpu")[0], cfg, bare)
    assert Converter(bare, vocoder="griffinlim:2", device="cpu").strength == DEFAULT_STRENGTH  # none stored
    with pytest.raises(ModelError, match="strength"):
        export_model(shipped, tmp_path / "bad.safetensors", strength=9.0)
    with pytest.raises(ConfigError, match="conversion default"):
        RunConfig.from_dict({"convert": {"loudness": 3}})


def test_f0_auto_is_transfer_with_hnf_and_predict_with_griffin_lim():
    from vcconv.convert import Converter

    assert Converter(device="cpu").f0_mode == "transfer"
    assert Converter(vocoder="griffinlim:2", device="cpu").f0_mode == "predict"


def test_spectrum_match_moves_band_statistics_to_the_reference():
    import torch

    from vcconv.convert import Converter, band_statistics

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=1.0, spectrum_spread=1.0)
    gen = torch.Generator().manual_seed(0)
    mel = torch.randn(80, 120, generator=gen) - 6.0
    ref = (torch.randn(80, 1, generator=gen) - 4.0, torch.rand(80, 1, generator=gen) + 0.5)
    mean, std = band_statistics(conv.match_spectrum(mel, ref))
    assert torch.allclose(mean, ref[0], atol=1e-4) and torch.allclose(std, ref[1], atol=1e-4)
    conv.spectrum_match = 0.5
    half_mean, _ = band_statistics(conv.match_spectrum(mel, ref))
    assert torch.allclose(half_mean, (band_statistics(mel)[0] + ref[0]) / 2, atol=1e-4)
    conv.spectrum_match = 0.0
    assert torch.equal(conv.match_spectrum(mel, ref), mel)


def test_spectrum_match_leaves_the_bands_a_telephone_reference_does_not_carry():
    import math

    import torch

    from vcconv.audio import (LOG_FLOOR, band_statistics, carried_bands, load_audio, log_mel, matchable_bands,
                              mel_band_centres, preprocess)
    from vcconv.convert import Converter
    from vcconv.data.augment import telephone

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=1.0, spectrum_spread=1.0)
    wav = preprocess(load_audio(TARGET, 16000), conv.audio, trim=True)
    clean = band_statistics(log_mel(torch.from_numpy(wav), conv.audio))
    phone = band_statistics(log_mel(torch.from_numpy(telephone(wav, 16000)), conv.audio))
    centres = torch.as_tensor(mel_band_centres(conv.audio))
    assert bool(carried_bands(clean[0][:, 0]).all()) and bool(matchable_bands(clean[0][:, 0], conv.audio).all())
    from vcconv.data.augment import lowpass

    low_rate = band_statistics(log_mel(torch.from_numpy(lowpass(wav, 16000, 5000.0)), conv.audio))
    assert not bool(carried_bands(low_rate[0][:, 0]).all())  # empty above 5 kHz ...
    assert bool(matchable_bands(low_rate[0][:, 0], conv.audio).all())  # ... but clean: every band is matched
    carried = carried_bands(phone[0][:, 0])
    assert bool(carried[(centres > 500) & (centres < 3000)].all()) and not bool(carried[centres > 3700].any())
    voice = matchable_bands(phone[0][:, 0], conv.audio)
    assert torch.equal(voice, carried & (centres >= 300))  # the high-passed low band is the channel's too
    mel = log_mel(torch.from_numpy(load_audio(SOURCE, 16000)), conv.audio)
    matched = conv.match_spectrum(mel, phone)
    assert torch.equal(matched[~voice], mel[~voice])  # those bands keep the model's rendering
    assert torch.allclose(band_statistics(matched)[0][voice], phone[0][voice], atol=0.1)  # speech frames shift a little
    assert float(band_statistics(matched)[0][~carried].mean()) > float(phone[0][~carried].mean()) + 1  # not emptied
    assert float(phone[0][~carried].max()) < math.log(LOG_FLOOR) + 1


def test_reference_f0_of_a_telephone_clip_is_read_from_its_harmonics(tmp_path):
    import numpy as np
    import soundfile as sf
    import torch

    from vcconv.audio import band_statistics, lacks_low_band, load_audio, log_mel, preprocess
    from vcconv.convert import Converter
    from vcconv.data.augment import telephone

    conv = Converter(device="cpu", threads=1)  # the F0-driven default vocoder
    wav = load_audio(TARGET, 16000)
    phone = tmp_path / "phone.wav"
    sf.write(phone, telephone(wav, 16000), 16000)
    clean_mel = log_mel(torch.from_numpy(preprocess(wav, conv.audio, trim=True)), conv.audio)
    assert not lacks_low_band(band_statistics(clean_mel)[0][:, 0], conv.audio)
    assert lacks_low_band(band_statistics(conv.reference_mel(phone))[0][:, 0], conv.audio)
    clean_f0, phone_f0 = np.median(conv.reference_f0([TARGET])), np.median(conv.reference_f0([phone]))
    with torch.no_grad():
        head_f0 = conv.vocoder.predict_f0(conv.reference_mel(phone)[None])[0].numpy()
    head_f0 = np.median(head_f0[head_f0 > 0])
    assert abs(np.log2(phone_f0 / clean_f0)) < 0.15  # within ~2 semitones of the clean clip's
    assert abs(np.log2(head_f0 / clean_f0)) > abs(np.log2(phone_f0 / clean_f0))  # what the F0 head alone reads


def test_octave_jumps_are_dropped_from_a_reference_f0_track():
    import numpy as np

    from vcconv.convert import without_octave_jumps

    f0 = np.array([0.0, 100.0, 104.0, 98.0, 205.0, 101.0, 0.0, 49.0, 130.0])
    kept = without_octave_jumps(f0)
    assert kept.tolist() == [0.0, 100.0, 104.0, 98.0, 0.0, 101.0, 0.0, 0.0, 130.0]  # 130 Hz is 0.38 octave up: kept
    assert without_octave_jumps(np.zeros(4)).tolist() == [0.0] * 4


def test_spectrum_spread_scales_how_far_the_band_spread_moves():
    import torch

    from vcconv.convert import Converter, band_statistics
    from vcconv.errors import ModelError

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=1.0, spectrum_spread=0.0)
    gen = torch.Generator().manual_seed(1)
    mel = torch.randn(80, 120, generator=gen) * 1.5 - 6.0
    ref = (torch.randn(80, 1, generator=gen) - 4.0, torch.rand(80, 1, generator=gen) + 0.3)
    src_mean, src_std = band_statistics(mel)
    mean, std = band_statistics(conv.match_spectrum(mel, ref))
    assert torch.allclose(mean, ref[0], atol=1e-4)  # the means move fully
    assert torch.allclose(std, src_std, atol=1e-4)  # the spread stays the source's
    conv.spectrum_spread = 0.5
    _, half_std = band_statistics(conv.match_spectrum(mel, ref))
    assert torch.allclose(half_std, (src_std * ref[1]).sqrt(), atol=1e-4)  # geometric midpoint
    with pytest.raises(ModelError, match="--spectrum-spread"):
        Converter(vocoder="griffinlim:2", device="cpu", spectrum_spread=1.5)


def test_band_statistics_ignore_silent_frames():
    import torch

    from vcconv.convert import band_statistics

    speech = torch.full((80, 50), -3.0) + torch.linspace(-1, 1, 50)
    with_silence = torch.cat([torch.full((80, 200), -11.5), speech], dim=1)  # the log-mel floor
    for a, b in zip(band_statistics(speech), band_statistics(with_silence)):
        assert torch.allclose(a, b)


def test_convert_hands_the_vocoder_a_mel_with_the_reference_spectrum():
    import torch

    from vcconv.convert import Converter, speech_frames

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=1.0, threads=1)
    before, after, seen = [], [], []
    match, vocode = conv.match_spectrum, conv.vocode
    conv.match_spectrum = lambda mel, ref: before.append(mel) or after.append(match(mel, ref)) or after[-1]
    conv.vocode = lambda mel, f0=None: seen.append(mel) or vocode(mel, f0)
    conv.convert(SOURCE, [TARGET])
    assert len(seen) == 1 and torch.equal(seen[0], after[0])  # the vocoder renders the matched mel
    # on the speech frames the matching measured, every band now has the reference's mean and std
    speech = speech_frames(before[0])
    ref_mean, ref_std = conv.reference_spectrum([TARGET])
    frames = seen[0][:, speech]
    assert torch.allclose(frames.mean(dim=1, keepdim=True), ref_mean, atol=1e-3)
    assert torch.allclose(frames.std(dim=1, keepdim=True), ref_std, atol=1e-3)
    plain = before[0][:, speech]
    assert (plain.mean(dim=1, keepdim=True) - ref_mean).abs().mean() > 0.1  # there was something to move


def test_spectrum_match_is_validated_stored_and_refused_by_world(tmp_path):
    import inspect

    from vcconv.cli.batch import batch_cmd
    from vcconv.cli import main
    from vcconv.convert import Converter, make_converter
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="spectrum-match"):
        Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=1.5)
    shipped = ROOT / "pretrained" / "adain-base.safetensors"
    mine = tmp_path / "mine.safetensors"
    main(["export", str(shipped), "-o", str(mine), "--spectrum-match", "0.7", "--source-mix", "0.2"])
    assert Converter(mine, vocoder="griffinlim:2", device="cpu").spectrum_match == 0.7
    assert Converter(mine, vocoder="griffinlim:2", device="cpu").source_mix == 0.2
    assert Converter(mine, vocoder="griffinlim:2", device="cpu", spectrum_match=0.0).spectrum_match == 0.0
    for option in ("spectrum_match", "source_mix"):
        assert inspect.signature(batch_cmd).parameters[option].default.default is None
    pytest.importorskip("pyworld")
    with pytest.raises(ModelError, match="spectrum-match"):
        make_converter("world", spectrum_match=1.0)
    with pytest.raises(ModelError, match="source-mix"):
        make_converter("world", source_mix=0.5)


def test_source_mix_blends_the_source_mel_back_before_matching():
    import torch

    from vcconv.convert import Converter

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=0.0, source_mix=0.0, threads=1)
    seen = []
    vocode = conv.vocode
    conv.vocode = lambda mel, f0=None: seen.append(mel) or vocode(mel, f0)
    for mix in (0.0, 1.0, 0.25):
        conv.source_mix = mix
        conv.convert(SOURCE, [TARGET])
    model_only, source_only, quarter = seen
    assert torch.allclose(quarter, 0.75 * model_only + 0.25 * source_only, atol=1e-4)
    assert (model_only - source_only).abs().mean() > 0.1
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="source-mix"):
        Converter(vocoder="griffinlim:2", device="cpu", source_mix=-0.1)


def test_two_band_source_mix_is_stored_resolved_and_applied_per_band(tmp_path):
    import inspect

    import torch

    from vcconv.audio import mel_band_centres
    from vcconv.cli import main
    from vcconv.cli.batch import batch_cmd
    from vcconv.cli.convert import convert_cmd
    from vcconv.convert import Converter
    from vcconv.errors import ModelError

    conv = Converter(vocoder="griffinlim:2", device="cpu", source_mix=0.8, source_mix_high=0.2, threads=1)
    share = conv.source_shares()
    centres = mel_band_centres(conv.audio)
    assert share.shape == (conv.audio.n_mels,) and torch.all(share[1:] <= share[:-1] + 1e-7)  # falls with frequency
    assert torch.allclose(share[centres < 1000], torch.tensor(0.8), atol=1e-3)
    assert torch.allclose(share[centres > 2200], torch.tensor(0.2), atol=1e-3)
    model_mel, source_mel = torch.zeros(conv.audio.n_mels, 7), torch.ones(conv.audio.n_mels, 7)
    mixed = conv.mix_source(model_mel, source_mel)
    assert torch.allclose(mixed, share[:, None].expand(-1, 7))
    # a --source-mix given alone is one share for every band, even over a stored two-band mix
    mine = tmp_path / "mine.safetensors"
    main(["export", str(ROOT / "pretrained" / "adain-base.safetensors"), "-o", str(mine),
          "--source-mix", "0.7", "--source-mix-high", "0.3", "--source-mix-split-hz", "2000"])
    stored = Converter(mine, vocoder="griffinlim:2", device="cpu")
    assert (stored.source_mix, stored.source_mix_high, stored.source_mix_split_hz) == (0.7, 0.3, 2000.0)
    uniform = Converter(mine, vocoder="griffinlim:2", device="cpu", source_mix=0.5)
    assert uniform.source_mix_high is None
    assert torch.allclose(uniform.mix_source(model_mel, source_mel), torch.full_like(model_mel, 0.5))
    with pytest.raises(ModelError, match="source-mix-high"):
        Converter(vocoder="griffinlim:2", device="cpu", source_mix_high=1.5)
    from vcconv.checkpoint import export_model

    with pytest.raises(ModelError, match="source-mix-split-hz"):
        export_model(mine, tmp_path / "bad.safetensors", source_mix_split_hz=9000)
    assert not (tmp_path / "bad.safetensors").exists()
    for cmd in (batch_cmd, convert_cmd):
        assert inspect.signature(cmd).parameters["source_mix_high"].default.default is None
    pytest.importorskip("pyworld")
    from vcconv.convert import make_converter

    with pytest.raises(ModelError, match="source-mix-high"):
        make_converter("world", source_mix_high=0.5)


def test_self_conversion_mel_is_the_models_own_voice_render_frame_aligned():
    import torch

    from vcconv.audio import load_audio, log_mel, preprocess
    from vcconv.convert import Converter

    conv = Converter(vocoder="griffinlim:2", device="cpu", spectrum_match=0.0, source_mix=0.0, threads=1)
    wav = preprocess(load_audio(SOURCE, conv.audio.sample_rate), conv.audio)
    mel = log_mel(torch.from_numpy(wav), conv.audio)
    rendered = conv.self_conversion_mel(wav)
    assert rendered.shape == mel.shape
    assert (rendered - mel).abs().mean() > 0.05  # the decoder's render, not the analysed mel
    # frame-aligned: the render follows the source's loudness contour frame by frame
    corr = np.corrcoef(rendered.mean(0).numpy(), mel.mean(0).numpy())[0, 1]
    assert corr > 0.8
    conv.source_mix = 1.0
    assert torch.allclose(conv.self_conversion_mel(wav), mel)


def test_a_family_name_means_the_default_model_and_an_ambiguous_one_is_refused(tmp_path, monkeypatch):
    """``--model adain`` once resolved to adain-base (first alphabetically), not the default
    adain-whisper, and a benchmark reported the old model under the new one's name."""
    import vcconv.convert as convert
    import vcconv.system as system
    from vcconv.errors import ModelError

    for stem in ("adain-base", "adain-whisper", "vq-a", "vq-b", "plain-x", "vocoder-hnf"):
        (tmp_path / f"{stem}.safetensors").write_bytes(b"x")
    monkeypatch.setattr(system, "pretrained_dir", lambda: tmp_path)
    monkeypatch.setattr(convert, "DEFAULT_MODEL", "adain-whisper")
    assert convert.resolve_model_path("adain") == tmp_path / "adain-whisper.safetensors"
    assert convert.resolve_model_path(None) == tmp_path / "adain-whisper.safetensors"
    assert convert.resolve_model_path("adain-base") == tmp_path / "adain-base.safetensors"
    assert convert.resolve_model_path("plain") == tmp_path / "plain-x.safetensors"
    with pytest.raises(ModelError, match="ambiguous: vq-a, vq-b"):
        convert.resolve_model_path("vq")
    with pytest.raises(ModelError, match="not found"):
        convert.resolve_model_path("vocoder")
