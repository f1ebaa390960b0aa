"""Corpus generation with the offline TTS engines (skipped when an engine is not installed)."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from vcconv.data.phones import PHONES, read_alignment
from vcconv.data.synth import VoiceSpec, load_sentences, synthesize_corpus


def test_sentences_are_filtered_seeded_and_distinct():
    a = load_sentences(30, seed=1)
    assert a == load_sentences(30, seed=1)
    assert len(set(s.lower() for s in a)) == len(a)
    for s in a:
        assert 5 <= len(s.split()) <= 20 and s[0].isupper() and s[-1] in ".!?"


@pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None, reason="flite/espeak-ng missing")
def test_synth_corpus_with_alignments_and_resume(tmp_path):
    pytest.importorskip("pyworld")
    voices = [
        VoiceSpec("f_slt", "flite", "slt", "F"),
        VoiceSpec("e_m3", "espeak", "en-us+m3", "M"),
        VoiceSpec("slt_low", "flite", "slt", "M", f0_scale=0.7, formant_scale=0.9),
    ]
    summary = synthesize_corpus(tmp_path, voices, n_sentences=2, workers=1)
    assert summary == {"speakers": 3, "sentences": 2, "new": 6, "skipped": 0}
    meta = json.loads((tmp_path / "voices.json").read_text())
    assert [v["name"] for v in meta["voices"]] == ["f_slt", "e_m3", "slt_low"]
    for spk in ("f_slt", "e_m3", "slt_low"):
        wav, sr = sf.read(tmp_path / spk / f"{spk}_0001.wav")
        assert sr == 16000 and wav.ndim == 1 and len(wav) > 8000
        segs = read_alignment(tmp_path / spk / f"{spk}_0001.phones")
        assert len(segs) >= 5
        known = [p for _, _, p in segs if p in PHONES and p != "sil"]
        assert len(known) >= 0.8 * sum(p != "sil" for _, _, p in segs)
        assert segs[-1][1] <= len(wav) / sr + 0.2  # alignment stays inside the audio
    # the warped voice keeps the timing of its base voice but not its pitch
    base, _ = sf.read(tmp_path / "f_slt" / "f_slt_0001.wav")
    low, _ = sf.read(tmp_path / "slt_low" / "slt_low_0001.wav")
    assert abs(len(base) - len(low)) < 400
    assert not np.allclose(base[: len(low)], low[: len(base)], atol=1e-2)
    again = synthesize_corpus(tmp_path, voices, n_sentences=2, workers=1)
    assert again["new"] == 0 and again["skipped"] == 6
