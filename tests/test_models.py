"""Model families: shapes, what instance normalisation removes, save -> load identity."""

import torch

from vcconv.config import RunConfig
from vcconv.models import build_model
from vcconv.models.layers import instance_norm

TINY = {"channels": 16, "content_dim": 4, "speaker_dim": 8, "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1}


def test_adain_shapes():
    torch.manual_seed(0)
    model = build_model("adain", TINY).eval()
    src, ref = torch.randn(2, 80, 40) - 5, torch.randn(2, 80, 23) - 5
    assert model.content(src).shape == (2, 4, 40)
    assert model.speaker(ref).shape == (2, 8)
    assert model(src, ref).shape == (2, 80, 40)
    losses = model.train().loss({"mel": src, "ref": ref, "speaker": torch.tensor([0, 1])}, step=10)
    assert {"total", "recon", "kl"} <= set(losses)
    assert losses["total"].requires_grad and torch.isfinite(losses["total"])


def test_instance_norm_strips_channel_statistics():
    x = torch.randn(3, 5, 50)
    scaled = x * torch.rand(3, 5, 1) * 4 + torch.randn(3, 5, 1) * 10  # per-item "speaker" gain/offset
    assert torch.allclose(instance_norm(x), instance_norm(scaled), atol=1e-4)
    y = instance_norm(scaled)
    assert torch.allclose(y.mean(-1), torch.zeros(3, 5), atol=1e-5)


def test_content_code_ignores_static_spectral_envelope():
    """IN in the content encoder: a fixed per-bin offset of the log-mel (a static spectral
    envelope, the crudest 'speaker' cue) does not move the content code; without IN it does."""
    torch.manual_seed(0)
    model = build_model("adain", TINY).eval()
    mel = torch.randn(1, 80, 60) - 5
    envelope = torch.randn(1, 80, 1)
    with torch.no_grad():
        a, b = model.content(mel), model.content(mel + envelope)
    plain = build_model("adain", {**TINY, "use_in": False, "conditioning": "concat"}).eval()
    with torch.no_grad():
        pa, pb = plain.content(mel), plain.content(mel + envelope)
    assert (a - b).abs().max() < 1e-3
    assert (pa - pb).abs().mean() > 0.05


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = build_model("adain", TINY)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    batch = {"mel": torch.randn(4, 80, 32) - 5, "ref": torch.randn(4, 80, 32) - 5, "speaker": torch.zeros(4, dtype=torch.long)}
    first = model.loss(batch, 0)["recon"].item()
    for step in range(40):
        loss = model.loss(batch, step)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(batch, 40)["recon"].item() < 0.7 * first


def test_safetensors_round_trip_rebuilds_identical_model(tmp_path):
    from vcconv.checkpoint import load_model_file, save_safetensors

    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model=dict(TINY))
    model = build_model("adain", cfg.model).eval()
    model.norm.set_stats(torch.randn(80), torch.rand(80) + 0.5)
    path = save_safetensors(model, cfg, tmp_path / "m.safetensors")
    loaded, cfg2 = load_model_file(path, device="cpu")
    src, ref = torch.randn(1, 80, 30) - 5, torch.randn(1, 80, 30) - 5
    with torch.no_grad():
        assert torch.equal(model(src, ref), loaded(src, ref))
    assert cfg2.model == cfg.model and cfg2.audio == cfg.audio


def test_export_fp16_is_half_size_and_close(tmp_path):
    from vcconv.checkpoint import export_model, load_model_file, save_safetensors

    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model=dict(TINY))
    full = save_safetensors(build_model("adain", cfg.model), cfg, tmp_path / "full.safetensors")
    info = export_model(full, tmp_path / "half.safetensors", fp16=True)
    assert info["bytes"] < 0.6 * full.stat().st_size
    assert info["max_diff"] < 0.05
    model, cfg2 = load_model_file(tmp_path / "half.safetensors", "cpu")
    assert next(model.parameters()).dtype == torch.float32 and cfg2.model_kind == "adain"
