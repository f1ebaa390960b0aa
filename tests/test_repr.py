"""Auxiliary auto-encoders (vcconv.repr): shapes, that a few optimiser steps lower each loss,
codes, save -> load identity, and one CLI train -> embed -> probe run on a tiny tone corpus (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import vcconv.repr
from vcconv.checkpoint import load_model_file, save_safetensors
from vcconv.config import RunConfig
from vcconv.data.manifest import Utterance, write_manifest
from vcconv.data.phones import PHONE_TO_ID, PHONES, write_alignment
from vcconv.errors import ConfigError
from vcconv.models import MODEL_FAMILIES, build_model
from vcconv.repr.binary import MAX_BITS

SR = 16000
TINY = {
    "repr-dim": {"channels": 16, "code_dim": 8, "score_dim": 16, "enc_blocks": 1},
    "repr-cpc": {"channels": 16, "code_dim": 8, "context_dim": 16, "enc_blocks": 1, "n_predict": 3, "n_negatives": 8},
    "repr-quick-thought": {"channels": 16, "code_dim": 8, "enc_blocks": 1, "chunk_frames": 8},
    "repr-binary": {"channels": 16, "bits": 6, "enc_blocks": 1, "dec_blocks": 1},
    "repr-seq": {"channels": 16, "enc_blocks": 1, "dec_blocks": 1, "speaker_dim": 8, "spk_blocks": 1, "disc_channels": 16},
}
# (family, what content() / embed() return: channels of the frame code, size of the embedding)
SIZES = {"repr-dim": (8, 8), "repr-cpc": (16, 16), "repr-quick-thought": (16, 16), "repr-binary": (6, 6),
         "repr-seq": (40, 40)}  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_batch(b: int = 4, t: int = 32, seed: int = 0) -> dict:
    """Made-up log-mels: 8-frame 'phones' (one of 5 spectral templates) + a static per-item 'voice' + noise."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn(5, 80, generator=g) * 2
    ids = torch.randint(0, 5, (b, -(-t // 8)), generator=g).repeat_interleave(8, dim=1)[:, :t]  # (B, T)
    voice = torch.randn(b, 80, 1, generator=g)
    mel = templates[ids].transpose(1, 2) + voice + 0.3 * torch.randn(b, 80, t, generator=g) - 5
    ref = mel.roll(5, dims=2)
    return {"mel": mel, "ref": ref, "speaker": torch.arange(b)}


def tiny(kind: str, **changes):
    torch.manual_seed(0)
    model = build_model(kind, {**TINY[kind], **changes})
    if kind == "repr-seq":  # unpaired 'real' phone sequences for the discriminator
        g = torch.Generator().manual_seed(1)
        model.set_phone_pool([torch.randint(0, 40, (20,), generator=g) for _ in range(6)])
    return model


def test_families_are_registered():
    assert set(vcconv.repr.FAMILIES) <= set(MODEL_FAMILIES)
    assert vcconv.repr.METHODS["quick-thought"] == "repr-quick-thought"


@pytest.mark.parametrize("kind", sorted(TINY))
def test_shapes_and_save_load(kind, tmp_path):
    model = tiny(kind).eval()
    batch = synthetic_batch(b=2, t=36)  # not a multiple of the down-sampling factors
    mel = batch["mel"]
    code_dim, emb_dim = SIZES[kind]
    with torch.no_grad():
        content, emb = model.content(mel), model.embed(mel)
    assert content.shape == (2, code_dim, 36)
    assert emb.shape == (2, emb_dim) and model.speaker(mel).shape[0] == 2
    losses = model.train().loss(batch, step=3)
    assert losses["total"].requires_grad and torch.isfinite(losses["total"])

    cfg = RunConfig(model_kind=kind, model=dict(TINY[kind]))
    loaded, _ = load_model_file(save_safetensors(model, cfg, tmp_path / "m.safetensors"), "cpu")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.content(mel), model.content(mel))
        torch.testing.assert_close(loaded.embed(mel), model.embed(mel))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_a_few_steps_lower_the_loss(kind):
    # seq's total also holds the discriminator's own loss, which sits near 2 ln 2 at equilibrium: watch its recon
    watch = "recon" if kind == "repr-seq" else "total"
    model = tiny(kind).train()
    batch = synthetic_batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for step in range(30):
        losses = model.loss(batch, step)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append(float(losses[watch].detach()))
    first, last = np.mean(history[:3]), np.mean(history[-3:])
    assert last < 0.9 * first, (kind, history)


@pytest.mark.parametrize("kind,extra", [
    ("repr-dim", {"mode": "global", "estimator": "infonce"}),
    ("repr-dim", {"mode": "local"}),
    ("repr-cpc", {"negatives": "sequence", "downsample": 1, "content_from": "encoder"}),
    ("repr-quick-thought", {"skip_thought": True}),
    ("repr-binary", {"binarizer": "sign"}),
    ("repr-seq", {"adv_weight": 0.0, "use_speaker": False}),
])  # fmt: skip
def test_variants_run(kind, extra):
    model = tiny(kind, **extra).train()
    losses = model.loss(synthetic_batch(b=3, t=32), step=1)
    losses["total"].backward()
    assert torch.isfinite(losses["total"])
    if kind == "repr-quick-thought":
        assert "recon" in losses and "accuracy" in losses
    if kind == "repr-dim":
        assert ("acc_global" in losses) == (extra["mode"] == "global")


def test_binary_codes_are_integers_below_two_to_the_bits():
    model = tiny("repr-binary").eval()
    mel = synthetic_batch(b=3, t=40)["mel"]
    with torch.no_grad():
        codes, content = model.codes(mel), model.content(mel)
    assert codes.dtype == torch.long and codes.shape == (3, 40)
    assert int(codes.min()) >= 0 and int(codes.max()) < 2**6
    bits = (content > 0).long()  # the integer packs the bits of the ±1 code
    assert torch.equal(codes, (bits * (2 ** torch.arange(6))[:, None]).sum(dim=1))
    with pytest.raises(ConfigError):
        build_model("repr-binary", {"bits": MAX_BITS + 1})


def test_seq_units_are_shorter_by_the_downsampling_factor():
    model = tiny("repr-seq").eval()
    mel = synthetic_batch(b=2, t=64)["mel"]
    with torch.no_grad():
        units, codes = model.units(mel), model.codes(mel)
        assert model.decode(units, 64, mel).shape == (2, 80, 64)
    assert units.shape == (2, 64 // 4) and codes.shape == (2, 64)
    assert torch.equal(codes[:, ::4], units)  # frame-rate codes repeat each unit
    assert model.unit_strings(mel)[0] == [f"u{u}" for u in units[0].tolist()]  # no map yet
    model.unit_phone.fill_(PHONE_TO_ID["aa"])
    assert set(model.unit_strings(mel, collapse=True)[1]) == {"aa"}
    with pytest.raises(ConfigError):
        build_model("repr-seq", {"vocab_size": 20})  # the discriminator needs the whole phone set


def test_config_errors():
    from vcconv.repr.api import repr_run_config

    with pytest.raises(ConfigError):
        build_model("repr-dim", {"mode": "sideways"})
    with pytest.raises(ConfigError):
        build_model("repr-cpc", {"downsample": 3})
    with pytest.raises(ConfigError):
        repr_run_config("dim", ["no_such_key=1"])
    with pytest.raises(ConfigError):
        repr_run_config("vae")
    cfg = repr_run_config("seq", ["batch_size=4", "vocab_size=48"], manifest="/x/manifest.tsv")
    assert cfg.model_kind == "repr-seq" and cfg.train.batch_size == 4
    assert cfg.model["phone_manifest"] == "/x/manifest.tsv" and cfg.model["frame_hop_s"] == pytest.approx(0.016)


# --------------------------------------------------------------------------- end to end on tones

SEGMENTS = [(0.0, 0.1, "sil"), (0.1, 0.35, "aa"), (0.35, 0.6, "iy"), (0.6, 0.85, "s")]
PHONE_HZ = {"aa": 300.0, "iy": 700.0, "s": 1500.0}


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory):
    """3 speakers x 4 utterances (one tone per phone, speaker = a frequency scale), aligned; a trains, b and c are held out."""
    root = tmp_path_factory.mktemp("repr_tones")
    rows = []
    for n, (spk, scale, split) in enumerate([("a", 1.0, "train"), ("b", 1.3, "test"), ("c", 1.6, "test")]):
        for k in range(4):
            rng = np.random.default_rng(10 * n + k)
            parts = [np.zeros(int(0.1 * SR), np.float32)]
            for start, end, ph in SEGMENTS[1:]:
                t = np.arange(int(round((end - start) * SR))) / SR
                parts.append((0.3 * np.sin(2 * np.pi * PHONE_HZ[ph] * scale * rng.uniform(0.97, 1.03) * t)).astype(np.float32))
            wav, phones = root / spk / f"{spk}{k}.wav", root / spk / f"{spk}{k}.phones"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), np.concatenate(parts), SR)
            write_alignment(phones, SEGMENTS)
            rows.append(Utterance(f"{spk}{k}", spk, str(wav), 0.85, "", str(phones), split))
    return write_manifest(rows, root / "manifest.tsv")


def test_cli_train_embed_probe_end_to_end(tone_corpus, tmp_path, capsys):
    from vcconv.cli import main
    from vcconv.eval.probe import run_probes

    run = tmp_path / "run"
    model_set = [f"model.{k}={v}" for k, v in TINY["repr-seq"].items()]
    train_set = ["batch_size=4", "segment_frames=32", "reference_frames=32", "log_every=2", "val_every=1000",
                 "ckpt_every=1000", "num_threads=1", "warp_prob=0.0"]  # fmt: skip
    main(["repr", "train", "--method", "seq", "--data", str(tone_corpus), "--out", str(run), "--max-steps", "4",
          "--device", "cpu", *[a for s in model_set + train_set for a in ("--set", s)]])
    assert (run / "model.safetensors").is_file() and (run / "last.pt").is_file()

    model, cfg = load_model_file(run / "model.safetensors", "cpu")
    assert cfg.model_kind == "repr-seq" and cfg.model["phone_manifest"] == str(tone_corpus.resolve())
    assert int(model.unit_phone.max()) >= 0  # the unit -> phone map was fitted after training
    assert model._phone_pool is None  # a loaded model reads no corpus until it trains

    out = tmp_path / "emb.npz"
    wavs = [str(tone_corpus.parent / "b" / "b0.wav"), str(tone_corpus.parent / "c" / "c1.wav")]
    capsys.readouterr()
    main(["repr", "embed", str(run), *wavs, "-o", str(out), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert printed.count("phones: sil aa iy s") == 2  # the alignment beside each file, under its units
    with np.load(out) as z:
        assert z["embeddings"].shape == (2, 40)
        assert list(z["files"]) == wavs
        n_frames = z["content_0"].shape[1]
        assert z["content_0"].shape[0] == 40 and z["codes_0"].shape == (n_frames,)
        assert z["units_1"].shape[0] == -(-z["content_1"].shape[1] // 4)
        assert all(s in PHONES or s.startswith("u") for s in z["unit_strings_0"])
    with pytest.raises(SystemExit):  # no overwrite without --force
        main(["repr", "embed", str(run), *wavs, "-o", str(out), "--device", "cpu"])

    res = run_probes(run / "model.safetensors", tone_corpus, max_utts=4, max_frames=2000)
    assert 0.0 <= res["speaker_from_speaker_vector"]["accuracy"] <= 1.0
    assert 0.0 <= res["code_phone"]["nmi"] <= 1.0
