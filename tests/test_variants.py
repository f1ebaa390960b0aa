"""Model variants (adversarial, vq, plain): shapes, losses, their training mechanics, and
train -> save -> load / resume through the real training loop on a tiny tone corpus."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from vcconv.checkpoint import load_model_file
from vcconv.config import RunConfig, TrainConfig
from vcconv.data.manifest import Utterance, assign_splits, write_manifest
from vcconv.models import build_model
from vcconv.models.adain_vc import AdaINConfig, AdaINVC
from vcconv.models.vq import EMAQuantizer
from vcconv.train import train

TINY = {"channels": 16, "content_dim": 4, "speaker_dim": 8, "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1}
VARIANTS = {
    "adversarial": {**TINY, "n_speakers": 3, "clf_channels": 8, "clf_layers": 1,
                    "ae_warmup_steps": 2, "clf_warmup_steps": 1, "clf_steps": 1, "adv_anneal_steps": 2},
    "vq": {**TINY, "codebook_size": 8, "dead_code_steps": 3},
    "vq-encoder": {**TINY, "codebook_size": 8, "speaker_mode": "encoder"},
    "plain": dict(TINY),
}
EXTRA_KEYS = {"adversarial": {"clf_loss", "clf_acc", "adv", "adv_weight"}, "vq": {"commit", "usage", "perplexity"},
              "vq-encoder": {"commit", "usage", "perplexity"}, "plain": {"kl"}}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _kind(name: str) -> str:
    return name.split("-")[0]


def _batch(b: int = 4, t: int = 16) -> dict:
    return {"mel": torch.randn(b, 80, t) - 5, "ref": torch.randn(b, 80, t) - 5, "speaker": torch.arange(b) % 3}


# ------------------------------------------------------------------ shapes and losses


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shapes_and_loss_keys(name):
    torch.manual_seed(0)
    model = build_model(_kind(name), VARIANTS[name]).eval()
    src, ref = torch.randn(2, 80, 20) - 5, torch.randn(2, 80, 13) - 5
    with torch.no_grad():
        assert model.content(src).shape == (2, 4, 20)
        assert model.speaker(ref).shape == (2, 8)
        assert model(src, ref).shape == (2, 80, 20)
    losses = model.train().loss(_batch(), step=10)
    assert {"total", "recon"} | EXTRA_KEYS[name] <= set(losses)
    assert losses["total"].requires_grad and torch.isfinite(losses["total"])


def test_plain_defaults_are_the_baseline():
    model = build_model("plain", TINY)
    assert (model.cfg.use_in, model.cfg.conditioning, model.cfg.kl_weight) == (False, "concat", 0.0)
    assert not model.content_encoder.use_in


# ------------------------------------------------------------------ adain unchanged, adversary optional


def test_adain_without_adversary_is_exactly_adain_vc():
    torch.manual_seed(0)
    model = build_model("adain", TINY)
    torch.manual_seed(0)
    reference = AdaINVC(AdaINConfig(**TINY))
    assert model.classifier is None and model.train_step is None  # the loop's default step
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    batch = _batch()
    torch.manual_seed(1)
    a = model.loss(batch, 5)
    torch.manual_seed(1)
    b = reference.loss(batch, 5)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_adain_accepts_adversarial_weight_from_the_cli():
    from vcconv.cli.train import build_run_config

    cfg = build_run_config("adain", None, ["adversarial_weight=0.1"], None, None)
    model = build_model(cfg.model_kind, {**cfg.model, **TINY, "n_speakers": 3})
    assert model.classifier is not None and model.train_step is not None
    assert any(k.startswith("classifier.") for k in model.state_dict())


# ------------------------------------------------------------------ adversarial schedule


def _snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _changed(before, params) -> bool:
    return any(not torch.equal(a, p.detach()) for a, p in zip(before, params))


def test_adversarial_phases_update_only_their_player():
    from contextlib import nullcontext

    torch.manual_seed(0)
    model = build_model("adversarial", VARIANTS["adversarial"]).train()
    assert [model.phase_at(s) for s in range(7)] == ["ae", "ae", "clf", "clf", "enc", "clf", "enc"]
    assert model.adversarial_weight_at(2) == 0.0 and model.adversarial_weight_at(4) == pytest.approx(0.05)
    assert model.adversarial_weight_at(100) == pytest.approx(0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    clf = list(model.classifier.parameters())
    ids = {id(p) for p in clf}
    ae = [p for p in model.parameters() if id(p) not in ids]
    batch = _batch()
    for step in range(7):
        before_clf, before_ae = _snapshot(clf), _snapshot(ae)
        losses = model.train_step(model, opt, batch, step, nullcontext, 1.0)
        assert {"total", "recon", "kl", "clf_loss", "clf_acc", "adv", "adv_weight"} <= set(losses)
        assert 0.0 <= float(losses["clf_acc"]) <= 1.0 and float(losses["adv"]) >= -1e-6
        phase = model.phase_at(step)
        assert _changed(before_clf, clf) == (phase == "clf"), (step, phase)
        assert _changed(before_ae, ae) == (phase != "clf"), (step, phase)
    assert all(p.requires_grad for p in clf)  # unfrozen after the encoder steps


def test_mel_gan_trains_discriminator_and_decoder_in_turn():
    """With ``mel_gan_weight`` each auto-encoder step is followed by one discriminator step; the
    classifier phase leaves the discriminator alone; the adversarial term ramps in."""
    from contextlib import nullcontext

    torch.manual_seed(0)
    cfg = {**VARIANTS["adversarial"], "mel_gan_weight": 0.5, "mel_gan_anneal_steps": 4, "mel_disc_channels": 4}
    model = build_model("adversarial", cfg).train()
    assert model.mel_gan_weight_at(0) == 0.0 and model.mel_gan_weight_at(2) == pytest.approx(0.25)
    assert model.mel_gan_weight_at(40) == pytest.approx(0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    disc, clf = list(model.mel_disc.parameters()), list(model.classifier.parameters())
    ids = {id(p) for p in disc + clf}
    ae = [p for p in model.parameters() if id(p) not in ids]
    for step in range(5):
        before_d, before_ae = _snapshot(disc), _snapshot(ae)
        losses = model.train_step(model, opt, _batch(), step, nullcontext, 1.0)
        phase = model.phase_at(step)
        assert _changed(before_d, disc) == (phase != "clf") and _changed(before_ae, ae) == (phase != "clf")
        if phase != "clf":
            assert {"mel_adv", "mel_fm", "mel_disc"} <= set(losses) and float(losses["mel_disc"]) > 0
            assert not any(k.startswith("_") for k in losses)
    assert all(p.requires_grad for p in disc + clf)
    assert not any(k.startswith("_") for k in model.loss(_batch(), 3))


def test_mel_gan_without_classifier_and_export_drops_the_discriminator(tmp_path):
    from contextlib import nullcontext

    from vcconv.checkpoint import export_model, save_safetensors

    torch.manual_seed(0)
    model = build_model("adain", {**TINY, "mel_gan_weight": 0.1, "mel_disc_channels": 4}).train()
    assert model.classifier is None and model.train_step is not None
    before = _snapshot(list(model.mel_disc.parameters()))
    losses = model.train_step(model, torch.optim.AdamW(model.parameters(), lr=1e-2), _batch(), 0, nullcontext, 1.0)
    assert "mel_disc" in losses and _changed(before, list(model.mel_disc.parameters()))
    cfg = RunConfig(model_kind="adain", model=dict(model.cfg.to_dict()))
    path = save_safetensors(model.eval(), cfg, tmp_path / "run.safetensors")
    export_model(path, tmp_path / "out.safetensors")
    released, rcfg = load_model_file(tmp_path / "out.safetensors", "cpu")
    assert released.mel_disc is None and rcfg.model["mel_gan_weight"] == 0.0
    assert not any(k.startswith("mel_disc.") for k in released.state_dict())
    src, ref = torch.randn(1, 80, 20) - 5, torch.randn(1, 80, 13) - 5
    with torch.no_grad():
        assert torch.allclose(released(src, ref), model(src, ref), atol=0.05)  # fp16 weights


def test_confusion_loss_is_zero_at_uniform():
    from vcconv.models.adversarial import confusion_loss

    assert float(confusion_loss(torch.zeros(2, 5))) == pytest.approx(0.0, abs=1e-6)
    assert float(confusion_loss(torch.tensor([[5.0, 0.0, 0.0]]))) > 1.0


# ------------------------------------------------------------------ VQ mechanics


def test_vq_straight_through_reaches_the_encoder():
    torch.manual_seed(0)
    vq = EMAQuantizer(8, 4).eval()  # eval: no codebook update, so q can be checked against it
    z = torch.randn(2, 4, 6, requires_grad=True)
    q, codes, _ = vq(z)
    assert torch.allclose(q, vq.codebook[codes].permute(0, 2, 1))  # forward: the codewords
    (q * torch.arange(6.0)).sum().backward()
    assert torch.equal(z.grad, torch.arange(6.0).expand(2, 4, 6))  # identity gradient through the quantiser
    # in the model: reconstruction alone (no commitment, speaker from its own encoder) trains the content encoder
    model = build_model("vq", {**VARIANTS["vq-encoder"], "commitment_beta": 0.0}).train()
    model.loss(_batch(), 0)["total"].backward()
    grads = [p.grad for p in model.content_encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_ema_moves_codewords_towards_assigned_vectors():
    torch.manual_seed(0)
    vq = EMAQuantizer(4, 2, decay=0.9, dead_code_steps=1000).train()
    vq.initialized.fill_(True)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0], [10.0, -10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    z = (torch.tensor([1.0, 1.0]) + 0.01 * torch.randn(8, 2)).t()[None]  # (1, 2, 8) all near code 0
    start = vq.codebook.clone()
    _, codes, stats = vq(z)
    assert torch.all(codes == 0) and float(stats["usage"]) == 0.25 and float(stats["perplexity"]) == pytest.approx(1.0)
    target = z[0].t().mean(0)
    assert (vq.codebook[0] - target).norm() < (start[0] - target).norm()
    assert torch.allclose(vq.codebook[1:], start[1:], atol=1e-3)  # unused codes barely move (Laplace smoothing)


def test_dead_codes_are_restarted_from_encoder_outputs():
    torch.manual_seed(0)
    vq = EMAQuantizer(4, 2, decay=0.99, dead_code_steps=2).train()
    vq.initialized.fill_(True)
    far = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]])
    vq.codebook.copy_(far)
    vq.ema_sum.copy_(far)
    z = torch.randn(1, 2, 16)
    vq(z)
    assert torch.equal(vq.unused_steps, torch.tensor([0, 1, 1, 1]))
    vq(z)  # second step unused: codes 1-3 restarted at encoder outputs
    assert vq.codebook[1:].abs().max() < 10
    assert torch.equal(vq.unused_steps, torch.zeros(4, dtype=torch.long))
    _, _, stats = vq(z)
    assert float(stats["usage"]) > 0.25
    vq.eval()
    before = vq.codebook.clone()
    vq(z * 5)
    assert torch.equal(vq.codebook, before)  # no updates in eval mode


def test_vq_codes_and_content_agree():
    torch.manual_seed(0)
    model = build_model("vq", VARIANTS["vq"])
    model.train().loss(_batch(), 0)  # initialise the codebook from data
    model.eval()
    mel = torch.randn(2, 80, 10) - 5
    with torch.no_grad():
        codes, content = model.codes(mel), model.content(mel)
    assert codes.shape == (2, 10) and codes.dtype == torch.long
    assert torch.equal(content, model.quantizer.codebook[codes].permute(0, 2, 1))


# ------------------------------------------------------------------ through the training loop


@pytest.fixture(scope="module")
def tone_manifest(tmp_path_factory):
    """3 speakers x 4 utterances of 0.5 s harmonic tones, all in the train split."""
    root = tmp_path_factory.mktemp("variants")
    sr, rows = 16000, []
    t = np.arange(int(0.5 * sr)) / sr
    for s, f0 in enumerate((120.0, 180.0, 260.0)):
        for k in range(4):
            f = f0 * (1 + 0.05 * k)
            wav = 0.2 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 3 * f * t)
            path = root / f"s{s}" / f"s{s}_{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), wav.astype(np.float32), sr)
            rows.append(Utterance(f"s{s}_{k}", f"s{s}", str(path), 0.5))
    return write_manifest(assign_splits(rows, n_test_speakers=0, valid_fraction=0.0), root / "manifest.tsv")


def _run_config(name: str, max_steps: int) -> RunConfig:
    model = {k: v for k, v in VARIANTS[name].items() if k != "n_speakers"}  # the loop sets it
    return RunConfig(model_kind=_kind(name), model=model,
                     train=TrainConfig(batch_size=4, segment_frames=16, reference_frames=16, max_steps=max_steps,
                                       log_every=2, val_every=1000, ckpt_every=3, samples_every=6, num_threads=1,
                                       warp_prob=0.0))


@pytest.mark.parametrize("name", ["adversarial", "vq", "plain"])
def test_train_save_load_resume(name, tone_manifest, tmp_path):
    run = tmp_path / name
    captured = {}

    def keep_model(model, cfg, out, step):  # sample_fn: hands us the in-memory model at step 6
        captured["model"] = model

    summary = train(run, tone_manifest, _run_config(name, 6), device="cpu", sample_fn=keep_model)
    assert summary["steps"] == 6
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    extra = json.loads(rows[-1]["extra"])
    assert EXTRA_KEYS[name] - {"kl"} <= set(extra)

    model = captured["model"].eval()
    src, ref = torch.randn(1, 80, 24) - 5, torch.randn(1, 80, 18) - 5
    for path in (run, run / "model.safetensors"):
        loaded, cfg = load_model_file(path, device="cpu")
        assert cfg.model["n_speakers"] == 3
        with torch.no_grad():
            assert torch.equal(model(src, ref), loaded(src, ref)), path
    if name == "adversarial":
        assert any(k.startswith("classifier.") for k in loaded.state_dict())
    if name == "vq":
        assert bool(loaded.quantizer.initialized)
        with torch.no_grad():
            assert torch.equal(model.codes(src), loaded.codes(src))

    summary = train(run, tone_manifest, _run_config(name, 8), device="cpu")
    assert summary["steps"] == 8
    with open(run / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [2, 4, 6, 8]  # resumed at 6, not restarted
