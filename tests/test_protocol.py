"""Evaluation protocols: the real-speech pair list and the per-channel summary tables (no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from vcconv.data.manifest import Utterance
from vcconv.errors import DataError
from vcconv.eval.protocol import format_table, real_speech_pairs, summary_table


def _corpus(root, spec):
    """``spec``: ``{speaker: [durations]}`` -> manifest rows of tone files with those durations."""
    rows = []
    for spk, durations in spec.items():
        for k, d in enumerate(durations):
            path = root / spk / f"{spk}_{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(int(d * 16000)) / 16000
            sf.write(str(path), (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
            rows.append(Utterance(f"{spk}_{k}", spk, str(path), d))
    return rows


def test_real_speech_pairs_english_sources_every_other_target_and_telephone_copies(tmp_path):
    rows = _corpus(tmp_path / "c", {"en1": [3.0, 2.0, 1.8, 1.0, 2.5], "en2": [4.0, 2.0, 2.2], "cs1": [5.0, 2.0],
                                    "other": [3.0]})
    pairs, enrol = real_speech_pairs(rows, ["en1", "en2", "cs1"], {"en1", "en2"}, tmp_path / "out",
                                     sources_per_speaker=2)
    speakers = {"en1", "en2", "cs1"}
    assert {p["source_speaker"] for p in pairs} == {"en1", "en2"}  # Czech speech is never a source
    assert all(p["source_speaker"] != p["target_speaker"] for p in pairs)
    assert {p["target_speaker"] for p in pairs} == speakers  # "other" is not in the split
    # 2 English speakers x 2 sources x 2 channels x 2 other targets
    assert len(pairs) == 16 and {p["channel"] for p in pairs} == {"clean", "telephone"}
    refs = {p["target_speaker"]: p["target"] for p in pairs}
    assert refs["en1"].endswith("en1_0.wav") and refs["cs1"].endswith("cs1_0.wav")  # the longest clip
    clean_sources = {p["source"] for p in pairs if p["channel"] == "clean"}
    assert not clean_sources & set(refs.values())  # a reference clip is never also a source
    assert all(sf.info(p["source"]).samplerate == 8000 for p in pairs if p["channel"] == "telephone")
    for spk, paths in enrol.items():
        assert refs[spk] not in paths  # every speaker here has a clip besides its reference
    assert not set(enrol["en1"]) & clean_sources  # spare clips enrol en1
    assert set(enrol["en2"]) <= clean_sources  # en2 has none spare: its source clips enrol it
    assert enrol["cs1"] and set(enrol) == speakers
    with pytest.raises(DataError, match="not in the manifest"):
        real_speech_pairs(rows, ["en1", "nobody"], {"en1"}, tmp_path / "out")


def test_summary_table_splits_by_channel_and_formats():
    rows = [{"channel": "clean", "id_correct": True, "wer": 0.0}, {"channel": "clean", "id_correct": True, "wer": 0.2},
            {"channel": "telephone", "id_correct": False, "wer": 1.0}]
    from vcconv.eval.conversion import summarize

    results = {"model": (rows, summarize(rows))}
    every = summary_table(results)
    clean = summary_table(results, "clean")
    tel = summary_table(results, "telephone")
    assert every["pairs"]["model"] == 3 and clean["pairs"]["model"] == 2 and tel["pairs"]["model"] == 1
    assert every["target id (closed set)"]["model"] == pytest.approx(2 / 3)
    assert clean["WER vs source, median"]["model"] == pytest.approx(0.1)
    assert tel["target id (closed set)"]["model"] == 0.0
    assert math.isnan(clean["DNSMOS overall"]["model"])
    text = format_table(clean, "clean")
    assert text.splitlines()[0] == "clean" and "0.100" in text and "-" in text


def test_a_single_clip_is_cut_at_its_pause_into_source_and_reference(tmp_path):
    sr = 16000
    t = np.arange(int(1.6 * sr)) / sr
    word = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    gap = np.zeros(int(0.3 * sr), np.float32)
    wav = np.concatenate([word, gap, word, word[: int(0.4 * sr)]])  # the pause sits at 1.6-1.9 s of 4.3 s
    path = tmp_path / "one" / "clip.wav"
    path.parent.mkdir()
    sf.write(str(path), wav, sr)
    rows = [Utterance("one_clip", "one", str(path), wav.size / sr)] + _corpus(tmp_path / "c", {"two": [3.0, 2.0]})
    pairs, enrol = real_speech_pairs(rows, ["one", "two"], {"one"}, tmp_path / "out", telephone=False)
    assert [p["source_speaker"] for p in pairs] == ["one"]
    src = pairs[0]["source"]
    a = sf.read(src)[0]
    b = sf.read(str(tmp_path / "out" / "halves" / "one_clip_b.wav"))[0]
    assert 1.6 <= a.size / sr <= 1.9 and a.size + b.size == wav.size  # cut inside the pause, nothing lost
    assert enrol["one"] == [src]  # the source half enrols; the reference half is given to the converter
