"""Test-time speaker adaptation (vcconv.adaptation, Converter(adapt_steps=...))."""

from pathlib import Path

import pytest
import torch

from vcconv.adaptation import reconstruction_error, refine_speaker
from vcconv.models import build_model

ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET = ROOT / "examples" / "source_male.wav", ROOT / "examples" / "target_female.wav"
TINY = {"channels": 16, "content_dim": 4, "speaker_dim": 8, "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1}


def _tiny_model_and_clip(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("adain", TINY).eval()
    mel = torch.randn(1, 80, 60) - 5
    with torch.no_grad():
        content = model.content(mel)
    return model, content, mel


def test_refinement_recovers_the_vector_that_rendered_the_clip_and_leaves_the_model_alone():
    model, content, mel = _tiny_model_and_clip()
    with torch.no_grad():
        true = torch.randn(1, 8)
        clip = [(content, model.decode(content, true))]  # a clip this decoder renders exactly from `true`
    start = true + 0.7 * torch.randn(1, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    refined = refine_speaker(model, start, clip, steps=150, lr=0.05, reg=0.0)
    with torch.no_grad():
        err_start, err_refined = reconstruction_error(model, start, clip), reconstruction_error(model, refined, clip)
    assert err_refined < 0.3 * err_start
    assert (refined - true).norm() < 0.5 * (start - true).norm()
    assert not refined.requires_grad and refined.shape == (1, 8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert refine_speaker(model, start, clip, steps=0) is start


def test_the_penalty_keeps_the_vector_near_the_encoders():
    model, content, mel = _tiny_model_and_clip(1)
    with torch.no_grad():
        start = model.speaker(mel)
    free = refine_speaker(model, start, [(content, mel)], steps=40, lr=0.05, reg=0.0)
    held = refine_speaker(model, start, [(content, mel)], steps=40, lr=0.05, reg=5.0)
    assert (held - start).norm() < 0.5 * (free - start).norm()
    with torch.no_grad():
        assert reconstruction_error(model, free, [(content, mel)]) < reconstruction_error(model, start, [(content, mel)])


def test_the_error_leaves_out_bands_the_clip_does_not_carry():
    import math

    from vcconv.audio import LOG_FLOOR, band_statistics, carried_bands

    model, content, mel = _tiny_model_and_clip(2)
    phone = mel.clone()
    phone[:, 50:, :] = math.log(LOG_FLOOR)  # an empty upper band, as in a telephone copy
    bands = carried_bands(band_statistics(phone[0])[0][:, 0])
    assert bands[:50].all() and not bands[50:].any()
    with torch.no_grad():
        speaker = torch.randn(1, 8)
        err = (model.norm(model.decode(content, speaker)) - model.norm(phone)).abs()
        assert torch.allclose(reconstruction_error(model, speaker, [(content, phone, bands)]), err[:, :50].mean())
        assert torch.allclose(reconstruction_error(model, speaker, [(content, mel)]),
                              (model.norm(model.decode(content, speaker)) - model.norm(mel)).abs().mean())


@pytest.mark.skipif(not (ROOT / "pretrained" / "adain-base.safetensors").exists(), reason="no shipped model")
def test_converter_adapts_once_per_reference_and_the_setting_is_stored_and_checked(tmp_path):
    import inspect

    from vcconv.cli import main
    from vcconv.cli.batch import batch_cmd
    from vcconv.cli.convert import convert_cmd
    from vcconv.convert import Converter
    from vcconv.errors import ModelError

    plain = Converter(vocoder="griffinlim:2", device="cpu", threads=1)
    assert plain.adapt_steps == 0
    adapted = Converter(vocoder="griffinlim:2", device="cpu", threads=1, adapt_steps=8)
    s0, s8 = plain.speaker_vector([TARGET]), adapted.speaker_vector([TARGET])
    assert (s8 - s0).norm() > 1e-3
    assert adapted.speaker_vector([TARGET]) is s8  # cached: the steps run once per reference list
    clip = [adapted._reference_clip(TARGET)]
    with torch.no_grad():
        assert reconstruction_error(adapted.model, s8, clip) < reconstruction_error(adapted.model, s0, clip)
    assert bool(clip[0][2].all())  # a clean clip: every band is fitted
    import soundfile as sf

    from vcconv.audio import load_audio
    from vcconv.data.augment import telephone

    phone = tmp_path / "phone.wav"
    sf.write(phone, telephone(load_audio(TARGET, 16000), 16000), 16000)
    assert not bool(adapted._reference_clip(phone)[2].all())  # a telephone clip: only its voice bands
    from vcconv.checkpoint import export_model

    mine, tuned = tmp_path / "mine.safetensors", tmp_path / "tuned.safetensors"
    main(["export", str(ROOT / "pretrained" / "adain-base.safetensors"), "-o", str(mine), "--adapt-steps", "12"])
    export_model(mine, tuned, adapt_lr=0.02, adapt_reg=0.5)  # keeps the stored steps
    stored = Converter(tuned, vocoder="griffinlim:2", device="cpu")
    assert (stored.adapt_steps, stored.adapt_lr, stored.adapt_reg) == (12, 0.02, 0.5)
    assert Converter(mine, vocoder="griffinlim:2", device="cpu", adapt_steps=0).adapt_steps == 0
    with pytest.raises(ModelError, match="adapt-steps"):
        Converter(vocoder="griffinlim:2", device="cpu", adapt_steps=-1)
    with pytest.raises(ModelError, match="adapt-lr"):
        export_model(mine, tmp_path / "bad.safetensors", adapt_lr=0.0)
    assert not (tmp_path / "bad.safetensors").exists()
    for cmd in (batch_cmd, convert_cmd):
        assert inspect.signature(cmd).parameters["adapt_steps"].default.default is None
    pytest.importorskip("pyworld")
    from vcconv.convert import make_converter

    with pytest.raises(ModelError, match="adapt-steps"):
        make_converter("world", adapt_steps=5)
