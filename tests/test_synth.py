"""Corpus generation with the offline TTS engines (each engine's test is skipped when it is not installed)."""

import json
from pathlib import Path
import math
import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from vcconv.data.phones import PHONES, ipa_phones, map_mrpa, mbrola_phone_map, read_alignment
from vcconv.data.synth import (
    TEST_SPEAKERS_V2,
    VoiceSpec,
    _merge_meta,
    check_voice,
    load_sentences,
    roster_v1,
    roster_v2,
    synthesize_corpus,
    utterance_prosody,
)
from vcconv.data.tts import edit_pho, engine_available, espeak_data_dir
from vcconv.errors import DataError


def test_sentences_are_filtered_seeded_and_distinct():
    a = load_sentences(30, seed=1)
    assert a == load_sentences(30, seed=1)
    assert len(set(s.lower() for s in a)) == len(a)
    for s in a:
        assert 5 <= len(s.split()) <= 20 and s[0].isupper() and s[-1] in ".!?"
    assert load_sentences(10, seed=1) == a[:10]  # a longer run extends, never reorders


# ----------------------------------------------------------------- rosters


def test_roster_v1_is_the_shipped_one():
    v1 = roster_v1()
    assert len(v1) == 30 and len({v.name for v in v1}) == 30
    # the shipped model's card holds these out as its test speakers
    assert {"flite_rms", "slt_high", "kal_fem", "ked_low", "espeak_f2", "espeak_m5"} <= {v.name for v in v1}
    assert all(v.jitter == 0 and v.pitch == 1 and v.pitch_range == 1 for v in v1)


def test_roster_v2_every_natural_voice_once_warps_a_minority_balanced():
    v2 = roster_v2()
    for v in v2:
        check_voice(v)
    names = [v.name for v in v2]
    assert len(v2) >= 60 and len(set(names)) == len(names)
    kinds = Counter(v.kind for v in v2)
    assert kinds["warp"] < len(v2) / 2 and kinds["formant"] < len(v2) / 2
    natural = [v for v in v2 if v.kind == "natural"]
    assert len({(v.engine, v.voice) for v in natural}) == len(natural)  # each base voice once
    assert Counter(v.engine for v in natural) == {"mbrola": 20, "rhvoice": 4, "festival": 3, "flite": 4, "pico": 2, "piper": 1}
    assert not {"evgeniy-eng", "lyubov"} & {v.voice for v in v2}  # CC-BY-NC-ND RHVoice voices stay out
    sexes = Counter(v.gender for v in v2)
    assert abs(sexes["F"] - sexes["M"]) <= 4
    # prosody differs between natural voices: no two share (rate, pitch, range)
    settings = [(v.rate, v.pitch, v.pitch_range) for v in natural if v.engine == "mbrola"]
    assert len(set(settings)) == len(settings)
    # both renderings of CMU ARCTIC slt are marked as one person
    assert {v.name for v in natural if v.person.startswith("CMU ARCTIC slt")} == {"flite_slt", "rh_slt"}


def test_roster_v2_licences_and_alignment_sources():
    for v in roster_v2():
        assert v.licence and v.licence != "unknown" and "/" in v.licence_detail or v.engine == "piper"
        assert (v.alignments == "none") == (v.engine in ("rhvoice", "pico"))
    by = {v.name: v for v in roster_v2()}
    assert by["mb_de4"].licence == "MBROLA non-commercial, no military"
    assert by["rh_bdl"].licence == "LGPL-2.1+" and by["pico_gb"].licence == "Apache-2.0"
    assert by["piper_joe"].licence.startswith("CC0")
    assert by["mb_us2_warp_f"].warp_method.startswith("mbrola") and by["rh_bdl_warp_f"].warp_method.startswith("WORLD")


def test_test_speakers_have_no_relatives_in_training():
    v2 = {v.name: v for v in roster_v2()}
    assert len(TEST_SPEAKERS_V2) == 6 and Counter(v2[n].gender for n in TEST_SPEAKERS_V2) == {"F": 3, "M": 3}
    for name in TEST_SPEAKERS_V2:
        t = v2[name]
        assert t.kind in ("natural", "formant")
        others = [v for v in v2.values() if v.name != name]
        assert not [v for v in others if (v.engine, v.voice) == (t.engine, t.voice)]  # no warp of it
        assert not t.person or not [v for v in others if v.person.split(" (")[0] == t.person.split(" (")[0]]


def test_check_voice_refuses_what_an_engine_cannot_do():
    with pytest.raises(DataError, match="piper: cannot vary pitch"):
        check_voice(VoiceSpec("p", "piper", "joe", "M", pitch=1.1))
    with pytest.raises(DataError, match="rhvoice: cannot vary pitch_range"):
        check_voice(VoiceSpec("r", "rhvoice", "bdl", "M", pitch_range=1.2))
    with pytest.raises(DataError, match="flite rms has no F0 setting"):
        check_voice(VoiceSpec("f", "flite", "rms", "M", pitch=1.1))
    with pytest.raises(DataError, match="unknown TTS engine"):
        check_voice(VoiceSpec("x", "sam", "x", "M"))
    with pytest.raises(DataError, match="gender"):
        check_voice(VoiceSpec("x", "flite", "slt", "female"))


def test_utterance_prosody_is_seeded_bounded_and_shared_by_warps():
    base = VoiceSpec("b", "mbrola", "mb-us2", "M", rate=0.9, pitch=1.1, jitter=0.05)
    warp = replace(base, name="w", f0_scale=1.7, formant_scale=1.15)
    draws = [utterance_prosody(base, i) for i in range(200)]
    assert draws == [utterance_prosody(warp, i) for i in range(200)]
    rates = np.array([r for r, _ in draws])
    pitches = np.array([p for _, p in draws])
    assert np.all(np.abs(np.log(rates / 0.9)) <= 0.05 + 1e-3) and np.all(np.abs(np.log(pitches / 1.1)) <= 0.05 + 1e-3)
    assert rates.std() > 0.01 and pitches.std() > 0.01
    assert utterance_prosody(replace(base, jitter=0.0), 7) == (0.9, 1.1)
    piper = VoiceSpec("p", "piper", "joe", "M", jitter=0.05)
    assert {p for _, p in (utterance_prosody(piper, i) for i in range(20))} == {1.0}  # piper has no pitch control


# ------------------------------------------------------------- phone maps


def test_ipa_phones_group_piper_symbols():
    chars = "^ðə kwˈɪk bɹˈaʊn fˈɑːks.$"
    phones = ipa_phones([(c, 0.01) for c in chars])
    assert [p for p, _ in phones] == "sil dh ah k w ih k b r aw n f aa k s sil".split()
    assert math.isclose(sum(d for _, d in phones), 0.01 * len(chars))  # no time lost or invented
    # across a word boundary t + ʃ stay two phones
    assert [p for p, _ in ipa_phones([(c, 0.01) for c in "ət ʃi"])] == ["ah", "t", "sh", "iy"]


def test_mrpa_map():
    assert [map_mrpa(p) for p in "uh o i ii @@ ou # zz".split()] == ["ah", "aa", "ih", "iy", "er", "ow", "sil", "spn"]


def test_mbrola_maps_from_espeak_tables():
    try:
        tables = espeak_data_dir() / "mbrola_ph"
    except DataError:
        pytest.skip("espeak-ng missing")
    if not (tables / "us_phtrans").is_file():
        pytest.skip("espeak-ng MBROLA tables missing")
    us = mbrola_phone_map(tables / "us_phtrans")
    assert [us[s] for s in ("r=", "{", "@U", "AI", "k_h", "4", "_")] == ["er", "ae", "ow", "ay", "k", "d", "sil"]
    de = mbrola_phone_map(tables / "de2_phtrans")
    assert de["a:"] == "aa" and de["R"] == "r" and de["6"] == "er"
    assert set(us.values()) | set(de.values()) <= set(PHONES)


def test_edit_pho_scales_pitch_and_range():
    pho = "_ 50\na 100 0 100 50 200\nt 60\n"
    phones, out = edit_pho(pho, pitch=1.5, pitch_range=0.5)
    assert phones == [("_", 0.05), ("a", 0.1), ("t", 0.06)]
    f = [float(v) for v in out.splitlines()[1].split()[3::2]]
    m = math.sqrt(100 * 200)
    assert np.allclose(f, [m * 1.5 * (100 / m) ** 0.5, m * 1.5 * (200 / m) ** 0.5], atol=0.1)


# ------------------------------------------------------------ voices.json


def test_voices_json_keeps_old_voices_and_refuses_conflicts(tmp_path):
    a = VoiceSpec("a", "flite", "slt", "F")
    b = VoiceSpec("b", "espeak", "en-us+m3", "M")
    meta, sents = _merge_meta(tmp_path, [a], ["One.", "Two."], 16000, 0, "v2")
    (tmp_path / "voices.json").write_text(json.dumps(meta))
    (tmp_path / "sentences.txt").write_text("One.\nTwo.\n")
    meta, sents = _merge_meta(tmp_path, [b], ["One."], 16000, 0, "v2")
    assert [v["name"] for v in meta["voices"]] == ["a", "b"] and sents == ["One.", "Two."]
    assert meta["voices"][0]["licence"] == "CMU (BSD-like)" and meta["voices"][1]["alignments"].startswith("libespeak")
    with pytest.raises(DataError, match="voice 'a' exists with other settings"):
        _merge_meta(tmp_path, [replace(a, rate=1.1)], ["One."], 16000, 0, "v2")
    with pytest.raises(DataError, match="seed 0, not 3"):
        _merge_meta(tmp_path, [a], ["One."], 16000, 3, "v2")
    with pytest.raises(DataError, match="other sentences"):
        _merge_meta(tmp_path, [a], ["Three."], 16000, 0, "v2")


# ------------------------------------------------------------ the engines


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


def _v2(name):
    return next(v for v in roster_v2() if v.name == name)


def _skip_without_mbrola_voice(voice: str) -> None:
    """The mbrola program can be installed without this voice's database (one package per voice)."""
    from vcconv.data.tts import mbrola_voice
    from vcconv.errors import DataError

    try:
        mbrola_voice(voice)
    except DataError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("name", ["mb_us2", "rh_bdl", "fest_don", "pico_gb", "piper_joe"])
def test_each_v2_engine_writes_audio_and_honest_alignments(tmp_path, name):
    spec = _v2(name)
    if not engine_available(spec.engine):
        pytest.skip(f"{spec.engine} not installed")
    if spec.engine == "festival" and not list(Path("/usr/share/festival/voices").glob(f"*/{spec.voice}")):
        pytest.skip(f"festival voice {spec.voice} not installed (Debian contrib: festvox-don)")
    if spec.engine == "mbrola":
        _skip_without_mbrola_voice(spec.voice)
    synthesize_corpus(tmp_path, [spec], n_sentences=1, workers=1)
    wav, sr = sf.read(tmp_path / name / f"{name}_0001.wav")
    text = (tmp_path / name / f"{name}_0001.txt").read_text().strip()
    assert sr == 16000 and len(wav) / sr > 0.1 * len(text.split()) and np.abs(wav).max() > 0.05
    phones = tmp_path / name / f"{name}_0001.phones"
    meta = json.loads((tmp_path / "voices.json").read_text())["voices"][0]
    assert meta["licence"] == spec.licence and meta["licence_detail"]
    if spec.engine in ("rhvoice", "pico"):
        assert meta["alignments"] == "none" and not phones.exists()  # no timings: no made-up alignment
        return
    segs = read_alignment(phones)
    assert sum(p not in ("sil", "spn") for _, _, p in segs) >= len(text.split())
    assert sum(p == "spn" for _, _, p in segs) <= 0.1 * len(segs)
    assert abs(segs[-1][1] - len(wav) / sr) < 0.25 and all(s < e for s, e, _ in segs)


def test_mbrola_warp_keeps_timing_and_moves_pitch_and_spectrum(tmp_path):
    if not engine_available("mbrola"):
        pytest.skip("mbrola not installed")
    pw = pytest.importorskip("pyworld")
    base, warp = _v2("mb_us2"), _v2("mb_us2_warp_f")
    _skip_without_mbrola_voice(base.voice)
    synthesize_corpus(tmp_path, [base, warp], n_sentences=1, workers=1)
    a, sr = sf.read(tmp_path / base.name / f"{base.name}_0001.wav")
    b, _ = sf.read(tmp_path / warp.name / f"{warp.name}_0001.wav")
    assert abs(len(a) - len(b)) / sr < 0.02
    segs_a = read_alignment(tmp_path / base.name / f"{base.name}_0001.phones")
    segs_b = read_alignment(tmp_path / warp.name / f"{warp.name}_0001.phones")
    assert segs_a[:-1] == segs_b[:-1]  # same phones and times (the last one ends with the audio)

    def analyse(x):
        x = x.astype(np.float64)
        f0, t = pw.dio(x, sr)
        f0 = pw.stonemask(x, f0, t, sr)
        env = pw.cheaptrick(x, f0, t, sr)[f0 > 0].mean(axis=0)  # mean envelope of voiced frames
        freqs = np.linspace(0, sr / 2, len(env))
        below = freqs < 7000
        return np.median(f0[f0 > 0]), (env[below] * freqs[below]).sum() / env[below].sum()

    (f0_a, cent_a), (f0_b, cent_b) = analyse(a), analyse(b)
    assert 1.5 < f0_b / f0_a < 2.0  # F0 x1.75
    assert 1.08 < cent_b / cent_a < 1.25  # envelope x1.15


# --------------------------------------------------------------------- CLI


def test_cli_list_shows_engine_licence_and_alignments(capsys, monkeypatch):
    from vcconv.cli import console, main

    monkeypatch.setattr(console, "width", 200)
    main(["data", "synth", "--list"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " rh_bdl " in line)
    assert "rhvoice" in row and "LGPL-2.1+" in row and row.rstrip(" │").endswith("no")
    row = next(line for line in out.splitlines() if " mb_de4 " in line)
    assert "MBROLA non-commercial, no military" in row and row.rstrip(" │").endswith("yes")
    assert "34 natural, 12 formant (espeak), 31 warps; 38 female, 39 male" in out
    main(["data", "synth", "--list", "--roster", "v1"])
    out = capsys.readouterr().out
    assert "roster v1: 30 voices" in out and " slt_high " in out
    with pytest.raises(SystemExit) as exc:
        main(["data", "synth", "--list", "--roster", "v9"])
    assert exc.value.code == 2 and "unknown roster 'v9'" in capsys.readouterr().err


# ------------------------------------------------------------ data speakers


class _ToneEmbedder:
    """Stands in for resemblyzer: a tone at f Hz embeds as the unit vector at angle f / 100."""

    def embed(self, wav, sr):
        f = np.argmax(np.abs(np.fft.rfft(wav))) * sr / len(wav)
        return np.array([np.cos(f / 100), np.sin(f / 100)], dtype=np.float32)


def test_speakers_summary_counts_distinct_at_both_thresholds_with_metadata(tmp_path, write_tone, monkeypatch):
    from vcconv.data.manifest import Utterance, write_manifest
    from vcconv.eval import speaker
    from vcconv.eval.corpus import speaker_separability

    voices = [VoiceSpec("a", "flite", "slt", "F", person="CMU ARCTIC slt (as b)"),
              VoiceSpec("b", "rhvoice", "slt", "F", person="CMU ARCTIC slt (as a)"),
              VoiceSpec("c", "mbrola", "mb-us2", "M"), VoiceSpec("d", "mbrola", "mb-us2", "F", f0_scale=1.7)]  # fmt: skip
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "voices.json").write_text(json.dumps({"voices": [v.describe() for v in voices]}))
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "sources.json").write_text(json.dumps({"speakers": {"e": {"gender": "male", "licence": "GPL-2"}}}))
    # pairwise angles: a-b 0.1 rad (cos 0.995), d-b 0.5 (0.878), c and e far from everyone
    freqs = {"a": 200, "b": 210, "c": 600, "d": 260, "e": 420}
    rows = []
    for spk, f in freqs.items():
        folder = tmp_path / ("real" if spk == "e" else "synth") / spk
        for i in range(4):
            path = write_tone(folder / f"{spk}_{i}.wav", freq=f, duration=0.5)
            rows.append(Utterance(f"{spk}_{i}", spk, str(path), 900.0, "", "", "train"))
    write_manifest(rows, tmp_path / "m.tsv")
    monkeypatch.setattr(speaker.SpeakerEmbedder, "get", classmethod(lambda cls, device=None: _ToneEmbedder()))
    res = speaker_separability(tmp_path / "m.tsv", n_utts=4)
    per = {p["speaker"]: p for p in res["speakers"]}
    assert per["a"]["nearest"] == "b" and per["d"]["nearest"] == "b"
    assert res["n_below"] == {0.85: 2, 0.90: 3}  # c, e; and d (cos 0.878)
    assert res["n_below_by_kind"][0.90] == {"natural": 1, "warp": 1, "real": 1}
    assert res["genders"] == {"F": 3, "M": 2} and res["kinds"] == {"natural": 3, "warp": 1, "real": 1}
    assert res["people"] == 3  # slt counted once, plus c and e
    assert math.isclose(res["hours"], 5 * 4 * 900 / 3600)
    lic = {row["licence"]: row for row in res["licences"]}
    assert lic["MBROLA non-commercial"]["speakers"] == 2 and lic["MBROLA non-commercial"]["kinds"] == {"natural": 1, "warp": 1}
    assert lic["GPL-2"]["speakers"] == 1 and per["e"]["kind"] == "real" and per["e"]["gender"] == "M"
    assert per["b"]["licence"] == "LGPL-2.1+" and per["b"]["source"] == "rhvoice"
