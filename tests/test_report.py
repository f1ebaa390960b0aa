"""The HTML report from a tiny made-up run (tone wavs, fake scores): self-contained, no URL (CPU, seconds)."""

from __future__ import annotations

import csv
import importlib.util
import re

import numpy as np
import pytest

from vcconv.eval.report import build_report, find_run_files, load_run, pca_2d

HAVE_RESEMBLYZER = importlib.util.find_spec("resemblyzer") is not None


class ToneEmbedder:
    """Stands in for resemblyzer: a normalised coarse spectrum (tones of one pitch land together)."""

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        spec = np.abs(np.fft.rfft(wav[:4096], n=4096))[:512].reshape(64, 8).sum(axis=1)
        return (spec / max(float(np.linalg.norm(spec)), 1e-12)).astype(np.float32)


@pytest.fixture
def run_dir(tmp_path, write_tone):
    """pairs.csv + pairs_eval.csv with relative paths, two voices (tones), one output missing."""
    run = tmp_path / "run"
    voices = {"low": 180.0, "high": 320.0}
    for spk, f in voices.items():
        for k in range(2):
            write_tone(run / "wav" / f"{spk}_{k}.wav", freq=f * (1 + 0.02 * k), duration=0.5)
    write_tone(run / "out" / "low_to_high.wav", freq=315.0, duration=0.5)
    write_tone(run / "out" / "high_to_low.wav", freq=185.0, duration=0.5)
    pairs = [
        ("wav/low_0.wav", "wav/high_1.wav", "out/low_to_high.wav", "low", "high", "a tone"),
        ("wav/high_0.wav", "wav/low_1.wav", "out/high_to_low.wav", "high", "low", "another tone"),
        ("wav/high_1.wav", "wav/low_0.wav", "out/missing.wav", "high", "low", ""),
    ]
    with open(run / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target", "output", "source_speaker", "target_speaker", "text"])
        w.writerows(pairs)
    with open(run / "pairs_eval.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target", "output", "source_speaker", "target_speaker", "cos_to_target",
                    "cos_to_source", "margin", "target_win", "id_pred", "id_correct", "word_errors", "ref_words",
                    "wer", "error"])  # fmt: skip
        w.writerow([*pairs[0][:5], 0.8, 0.5, 0.3, 1, "high", 1, 1, 2, 0.5, ""])
        w.writerow([*pairs[1][:5], 0.7, 0.6, 0.1, 1, "low", 1, 0, 2, 0.0, ""])
        w.writerow([*pairs[2][:5], "", "", "", 0, "", 0, 2, 2, 1.0, "out/missing.wav: file not found"])
    return run


def _check_self_contained(page: str) -> None:
    assert "<audio" in page
    assert "data:audio/wav;base64," in page
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'src="(?!data:)', page)  # every source is inline


def test_find_run_files_and_load_run(run_dir):
    pairs, ev = find_run_files(run_dir)
    assert (pairs.name, ev.name) == ("pairs.csv", "pairs_eval.csv")
    rows = load_run(pairs, ev)
    assert len(rows) == 3
    assert rows[0]["text"] == "a tone" and rows[0]["cos_to_target"] == pytest.approx(0.8)
    assert rows[0]["source"] == str(run_dir / "wav" / "low_0.wav")  # relative paths found beside the CSV
    assert "cos_to_target" not in rows[2]  # empty cells dropped, as summarize expects


def test_report_is_self_contained(run_dir, tmp_path):
    out = build_report(*find_run_files(run_dir), tmp_path / "r" / "report.html", embedder=ToneEmbedder())
    page = out.read_text()
    _check_self_contained(page)
    assert page.count("<audio") == 9 - 1  # 3 pairs x 3 clips, the missing output has a message instead
    assert "file not found" in page
    assert "PCA of speaker embeddings" in page
    assert "0.750 ± " in page  # cos_to_target: mean of 0.8 and 0.7 with its CI
    assert "a tone" in page and "low → high" in page


def test_report_max_pairs_and_no_embeddings(run_dir, tmp_path):
    out = build_report(run_dir / "pairs_eval.csv", run_dir / "pairs_eval.csv", tmp_path / "one.html",
                       max_pairs=1, embeddings=False)  # fmt: skip
    page = out.read_text()
    _check_self_contained(page)
    assert page.count("<audio") == 3
    assert "PCA of speaker embeddings" not in page


@pytest.mark.skipif(not HAVE_RESEMBLYZER, reason="resemblyzer (eval extra) not installed")
def test_report_with_resemblyzer(run_dir, tmp_path):
    out = build_report(*find_run_files(run_dir), tmp_path / "report.html", max_pairs=1, device="cpu")
    page = out.read_text()
    _check_self_contained(page)
    assert "PCA of speaker embeddings" in page


def test_report_cli_refuses_to_overwrite(run_dir):
    from vcconv.cli import main

    main(["report", str(run_dir), "--no-embeddings", "--max-pairs", "1"])
    out = run_dir / "report.html"
    _check_self_contained(out.read_text())
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run_dir), "--no-embeddings"])
    assert exc.value.code == 2
    main(["report", "--eval", str(run_dir / "pairs_eval.csv"), "-o", str(out), "--force", "--no-embeddings",
          "--max-pairs", "0"])  # fmt: skip
    assert "<audio" not in out.read_text()


def test_pca_2d():
    rng = np.random.default_rng(0)
    x = np.outer(rng.normal(size=50), [3.0, 0.0, 0.0]) + 0.01 * rng.normal(size=(50, 3))
    xy, ratio = pca_2d(x)
    assert xy.shape == (50, 2) and ratio[0] > 0.99
    assert pca_2d(np.ones((1, 4)))[0].shape == (1, 2)
