"""Evaluation metrics on made-up signals (CPU, a few seconds; model-backed tests skip without the eval extra)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from vcconv.errors import VcconvError
from vcconv.eval import require
from vcconv.eval.asr import cer, edit_distance, normalize_text, rate, wer
from vcconv.eval.baselines import copy_source_pairs, noise_like
from vcconv.eval.conversion import mean_ci, read_pairs_csv, summarize, write_csv
from vcconv.eval.signal import (
    dtw,
    log_f0_stats,
    mel_cepstral_distortion,
    semitones,
    semitones_from_log,
    vuv_error,
)
from vcconv.eval.speaker import centroids, closed_set_identify, cosine, rank_speakers

SR = 16000


def harmonic(f0: float, seconds: float = 1.0, sr: int = SR, n_harm: int = 12, seed: int = 0) -> np.ndarray:
    """A voiced-like tone: harmonics of ``f0`` with 1/k amplitudes and a slow amplitude wobble."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    harmonics = [k for k in range(1, n_harm + 1) if k * f0 < sr / 2]
    wav = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in harmonics)
    wav *= 1.0 + 0.3 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * wav / np.max(np.abs(wav))).astype(np.float32)


# --------------------------------------------------------------------------- text


def test_wer_cer_known_strings():
    assert wer("a b c", "a x c") == (1, 3)
    assert rate(*wer("a b c", "a x c")) == pytest.approx(1 / 3)
    assert wer("a b", "a b c") == (1, 2)  # insertion
    assert wer("a b c", "") == (3, 3)  # deletions
    assert wer("Hello, World!", "hello world") == (0, 2)  # case and punctuation ignored
    assert cer("abc", "abd") == (1, 3)
    assert cer("a b", "ab") == (1, 3)  # the space counts
    assert math.isnan(rate(*wer("", "x")))


def test_normalize_text_and_edit_distance():
    assert normalize_text("  It\u2019s a well-known 'fact'. ") == "it's a well known fact"
    assert edit_distance("kitten", "sitting") == 3 == edit_distance("sitting", "kitten")


# --------------------------------------------------------------------------- signal


def test_mcd_zero_with_itself_positive_with_another():
    a, b = harmonic(150), harmonic(260, seed=1)
    assert mel_cepstral_distortion(a, a, SR) == pytest.approx(0.0, abs=1e-9)
    assert mel_cepstral_distortion(a, b, SR) > 0.5
    # a copy with a stretch repeated is aligned by DTW: far smaller than the other voice
    stretched = np.concatenate([a[:8192], a[4096:8192], a[8192:]])
    assert mel_cepstral_distortion(a, stretched, SR) < 0.2 * mel_cepstral_distortion(a, b, SR)


def test_dtw_aligns_repeated_frames():
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0, 2.0, 2.0])
    total, path = dtw(np.abs(x[:, None] - y[None, :]))
    assert total == 0.0
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (2, 4)
    assert np.all(np.diff(path, axis=0) >= 0)


def test_log_f0_of_200_hz_harmonic():
    mean, std = log_f0_stats(harmonic(200.0), SR)
    assert mean == pytest.approx(math.log(200.0), abs=0.02)
    assert std < 0.02
    # sample rate is handled: same tone at 22.05 kHz
    assert log_f0_stats(harmonic(200.0, sr=22050), 22050)[0] == pytest.approx(math.log(200.0), abs=0.02)


def test_semitones():
    assert semitones(200.0, 100.0) == pytest.approx(12.0)
    assert semitones_from_log(math.log(100.0), math.log(200.0)) == pytest.approx(-12.0)


def test_vuv_error():
    a = np.array([1, 1, 0, 0], dtype=bool)
    assert vuv_error(a, a) == 0.0
    assert vuv_error(a, ~a) == 1.0
    assert vuv_error(a, np.array([1, 0, 0], dtype=bool)) == pytest.approx(1 / 3)  # shorter length
    path = np.array([[0, 0], [1, 0], [2, 1], [3, 1]])
    assert vuv_error(a, np.array([1, 0], dtype=bool), path) == 0.0


# --------------------------------------------------------------------------- speaker


def test_closed_set_identify_on_synthetic_vectors():
    rng = np.random.default_rng(0)
    bases = {s: rng.standard_normal(256) for s in ("p1", "p2", "p3")}
    embs = {s: [b + 0.3 * rng.standard_normal(256) for _ in range(4)] for s, b in bases.items()}
    cents = centroids(embs)
    assert set(cents) == {"p1", "p2", "p3"}
    assert all(np.linalg.norm(c) == pytest.approx(1.0, abs=1e-5) for c in cents.values())
    for spk, base in bases.items():
        probe = base + 0.3 * rng.standard_normal(256)
        assert closed_set_identify(probe, cents) == spk
        assert rank_speakers(probe, cents)[0][0] == spk
    assert cosine(np.ones(3), 2 * np.ones(3)) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        closed_set_identify(np.ones(3), {})


# --------------------------------------------------------------------------- summary, files


def test_mean_ci():
    mean, half, n = mean_ci([1, 2, 3, 4, 5])
    assert (mean, n) == (3.0, 5)
    assert half == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)  # t(0.975, 4)
    mean, half, n = mean_ci([2.0, float("nan"), None])
    assert (mean, n) == (2.0, 1) and math.isnan(half)
    assert mean_ci([])[2] == 0
    big = np.random.default_rng(0).standard_normal(10000)
    assert mean_ci(big)[1] == pytest.approx(1.96 * big.std(ddof=1) / 100, rel=1e-3)


def test_summarize_fractions_and_corpus_wer():
    rows = [
        {"output": "a", "cos_to_target": 0.8, "target_win": True, "word_errors": 1, "ref_words": 10, "wer": 0.1},
        {"output": "b", "cos_to_target": 0.6, "target_win": False, "word_errors": 2, "ref_words": 2, "wer": 1.0},
    ]
    s = summarize(rows)
    assert s["n"] == 2 and s["n_failed"] == 0
    assert s["target_win"] == 0.5
    assert s["metrics"]["cos_to_target"]["mean"] == pytest.approx(0.7)
    assert s["wer_corpus"] == pytest.approx(3 / 12)  # summed, not the mean of 0.1 and 1.0
    assert s["metrics"]["wer"]["mean"] == pytest.approx(0.55)
    assert "word_errors" not in s["metrics"] and "output" not in s["metrics"]


def test_write_csv_and_read_pairs(tmp_path):
    out = write_csv([{"a": 1.5, "b": True, "c": float("nan")}, {"a": 2, "d": "x"}], tmp_path / "r.csv")
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    assert got[0] == {"a": "1.5", "b": "1", "c": "", "d": ""}
    assert got[1]["d"] == "x"

    (tmp_path / "pairs.csv").write_text("source,target,output,text\ns.wav,/abs/t.wav,o.wav,hi there\n")
    pairs = read_pairs_csv(tmp_path / "pairs.csv")
    assert pairs[0]["source"] == str(tmp_path / "s.wav") and pairs[0]["target"] == "/abs/t.wav"
    assert copy_source_pairs(pairs)[0]["output"] == pairs[0]["source"]
    (tmp_path / "bad.csv").write_text("source,output\na,b\n")
    with pytest.raises(VcconvError, match="target"):
        read_pairs_csv(tmp_path / "bad.csv")


def test_noise_like():
    wav = harmonic(120.0, 0.5)
    noise = noise_like(wav, seed=3)
    assert noise.shape == wav.shape and noise.dtype == np.float32
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(np.sqrt(np.mean(wav**2)), rel=0.02)
    assert np.array_equal(noise, noise_like(wav, seed=3))
    assert abs(np.corrcoef(noise, wav)[0, 1]) < 0.1


def test_missing_package_message():
    with pytest.raises(VcconvError, match=r"pip install 'vcconv\[eval\]'"):
        require("vcconv_surely_not_a_package")


# --------------------------------------------------------------------------- model-backed


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    from vcconv.audio import save_audio

    root = tmp_path_factory.mktemp("eval_wavs")
    paths = {}
    for name, f0 in (("a1", 110.0), ("a2", 115.0), ("b1", 240.0), ("b2", 250.0)):
        paths[name] = str(save_audio(root / f"{name}.wav", harmonic(f0, 1.0, seed=int(f0)), SR))
    paths["silent"] = str(save_audio(root / "silent.wav", np.zeros(SR, dtype=np.float32), SR))
    return paths


def test_evaluate_pairs_smoke(wavs):
    pytest.importorskip("resemblyzer")
    from vcconv.eval.conversion import evaluate_pairs

    pairs = [
        # output = copy of the source: no conversion at all
        {"source": wavs["a1"], "target": wavs["b1"], "output": wavs["a1"],
         "source_speaker": "A", "target_speaker": "B", "parallel_target": wavs["b2"]},
        {"source": wavs["b1"], "target": wavs["a1"], "output": wavs["silent"],
         "source_speaker": "B", "target_speaker": "A"},
    ]  # fmt: skip
    calls = []
    rows, summary = evaluate_pairs(
        pairs,
        speaker_refs={"A": [wavs["a1"], wavs["a2"]], "B": [wavs["b1"], wavs["b2"]]},
        progress=lambda done, total: calls.append((done, total)),
        device="cpu",
        asr=False,
    )
    assert calls[-1] == (2, 2) and len(rows) == 2
    copy, failed = rows
    for key in ("cos_to_target", "cos_to_source", "margin", "target_win", "id_pred", "id_correct",
                "cos_to_target_centroid", "cos_to_source_centroid", "mcd", "vuv_error",
                "logf0_output", "logf0_target", "f0_diff_st", "error"):  # fmt: skip
        assert key in copy
    assert copy["cos_to_source"] == pytest.approx(1.0, abs=1e-4)
    assert copy["target_win"] is False and copy["id_pred"] == "A" and copy["id_correct"] is False
    assert copy["mcd"] > 0 and copy["error"] == ""
    assert copy["f0_diff_st"] == pytest.approx(semitones(110.0, 240.0), abs=0.3)
    assert "silent" in failed["error"] and failed["target_win"] is False and math.isnan(failed["cos_to_target"])
    assert summary["n"] == 2 and summary["n_failed"] == 1
    assert summary["target_win"] == 0.0 and summary["id_accuracy"] == 0.0


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    from vcconv.cli import main

    (tmp_path / "pairs.csv").write_text("source,target,output\na.wav,b.wav,c.wav\n")
    (tmp_path / "pairs_eval.csv").write_text("old\n")
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path / "pairs.csv")])
    assert exc.value.code == 2
    assert "exists already" in capsys.readouterr().err
    assert (tmp_path / "pairs_eval.csv").read_text() == "old\n"
