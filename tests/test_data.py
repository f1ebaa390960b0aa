"""Corpus layouts, checks, splits, manifests and feature caches on tiny fake trees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BAD_CASES, write_bad_file

from vcconv.audio import AudioConfig
from vcconv.data.features import cache_path, default_cache_dir, load_cached
from vcconv.data.layouts import detect_layout, scan_corpus
from vcconv.data.manifest import read_manifest
from vcconv.data.prepare import prepare_corpus, read_report, report_path
from vcconv.errors import DataError

FREQS = [180.0, 230.0, 290.0, 360.0, 450.0, 560.0, 700.0, 870.0]


# ------------------------------------------------------------------ fake trees


def make_vctk092(root, write_tone, speakers=("p225", "p226", "p227"), n=3):
    for k, spk in enumerate(speakers):
        for i in range(1, n + 1):
            utt = f"{spk}_{i:03d}"
            write_tone(root / "wav48_silence_trimmed" / spk / f"{utt}_mic1.flac", freq=FREQS[k], sr=48000)
            write_tone(root / "wav48_silence_trimmed" / spk / f"{utt}_mic2.flac", freq=FREQS[k] * 1.01, sr=48000)
            if spk != speakers[-1] or i != n:  # like p315: some text is missing
                (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (root / "txt" / spk / f"{utt}.txt").write_text(f"Please call Stella {spk} {i}.\n")
    (root / "speaker-info.txt").write_text("ID AGE GENDER\n")
    return root


def make_vctk080(root, write_tone, speakers=("p225", "p226"), n=2):
    for k, spk in enumerate(speakers):
        (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            write_tone(root / "wav48" / spk / f"{spk}_{i:03d}.wav", freq=FREQS[k], sr=48000)
            (root / "txt" / spk / f"{spk}_{i:03d}.txt").write_text(f"Text {spk} {i}\n")
    return root


def make_libritts(root, write_tone):
    """LibriTTS/{train-clean-100,dev-clean}/SPEAKER/CHAPTER/..., 3 speakers, 5 utterances."""
    layout = {
        "train-clean-100": {"84": ["121123"], "103": ["1240", "1241"]},
        "dev-clean": {"1272": ["128104"]},
    }
    k = 0
    for subset, speakers in layout.items():
        for spk, chapters in speakers.items():
            for chap in chapters:
                for j in range(1, 2 if chap != "121123" else 3):
                    stem = f"{spk}_{chap}_{j:06d}_000000"
                    d = root / subset / spk / chap
                    write_tone(d / f"{stem}.wav", freq=FREQS[k], sr=24000)
                    if stem.startswith("1272"):  # only the original text: the fallback
                        (d / f"{stem}.original.txt").write_text("Mister QUILTER is the apostle.")
                    else:
                        (d / f"{stem}.normalized.txt").write_text(f"Normalized {stem}.")
                        (d / f"{stem}.original.txt").write_text(f"ORIGINAL {stem}")
                (root / subset / spk / chap / f"{spk}_{chap}.trans.tsv").write_text("x\ty\n")
            k += 1
    (root / "README_librispeech").write_text("readme")
    return root


def make_synth(root, write_tone, speakers=("flite_slt", "espeak_m1"), n=3):
    meta = {"sample_rate": 16000, "voices": [{"name": s} for s in speakers], "phone_set": "arpabet39+sil"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "voices.json").write_text(json.dumps(meta))
    (root / "sentences.txt").write_text("A.\nB.\nC.\n")
    for k, spk in enumerate(speakers):
        for i in range(1, n + 1):
            base = root / spk / f"{spk}_{i:04d}"
            write_tone(base.with_suffix(".wav"), freq=FREQS[k])
            base.with_suffix(".txt").write_text(f"Sentence {i}.\n")
            base.with_suffix(".phones").write_text("0.0000\t0.1000\tsil\n0.1000\t0.3000\tah\n")
    return root


def make_folders(root, write_tone, n_speakers=6, n=6):
    """``spkK/uttI.wav`` (ids collide across speakers), one nested ``.flac``, texts and an alignment."""
    for k in range(n_speakers):
        spk = f"spk{k}"
        for i in range(n):
            p = write_tone(root / spk / f"utt{i}.wav", freq=FREQS[k % len(FREQS)] + i)
            if i == 0:
                p.with_suffix(".txt").write_text("hello\nworld\n")
                p.with_suffix(".phones").write_text("0.0\t0.3\tah\n")
    write_tone(root / "spk0" / "session2" / "utt9.flac", freq=FREQS[0])
    (root / "spk0" / "notes.md").write_text("not audio, not scanned")
    (root / ".hidden").mkdir()
    write_tone(root / ".hidden" / "x.wav")
    return root


# ------------------------------------------------------------------ layouts


def test_vctk092(tmp_path, write_tone):
    root = make_vctk092(tmp_path / "VCTK-Corpus-0.92", write_tone)
    assert detect_layout(root) == "vctk092"
    rows = scan_corpus(root)
    assert len(rows) == 9 and sorted({r.speaker for r in rows}) == ["p225", "p226", "p227"]
    assert all(r.path.endswith("_mic1.flac") for r in rows)
    by_id = {r.utt_id: r for r in rows}
    assert by_id["p225_001"].text == "Please call Stella p225 1."
    assert by_id["p227_003"].text == ""  # missing transcript is not an error
    assert all(r.path.startswith("/") for r in rows)
    mic2 = scan_corpus(root, mic="mic2")
    assert all(r.path.endswith("_mic2.flac") for r in mic2) and len(mic2) == 9
    with pytest.raises(DataError, match="mic3"):
        scan_corpus(root, mic="mic3")


def test_vctk080(tmp_path, write_tone):
    root = make_vctk080(tmp_path / "VCTK-Corpus", write_tone)
    assert detect_layout(root) == "vctk080"
    rows = scan_corpus(root)
    assert [r.utt_id for r in rows] == ["p225_001", "p225_002", "p226_001", "p226_002"]
    assert rows[3].text == "Text p226 2" and rows[3].speaker == "p226"


def test_libritts_root_and_subset(tmp_path, write_tone):
    root = make_libritts(tmp_path / "LibriTTS", write_tone)
    assert detect_layout(root) == "libritts"
    rows = scan_corpus(root)
    assert len(rows) == 5
    assert sorted({r.speaker for r in rows}) == ["103", "1272", "84"]
    by_id = {r.utt_id: r for r in rows}
    assert by_id["84_121123_000001_000000"].text == "Normalized 84_121123_000001_000000."
    assert by_id["1272_128104_000001_000000"].text == "Mister QUILTER is the apostle."  # .original.txt fallback
    subset = root / "train-clean-100"
    assert detect_layout(subset) == "libritts"
    assert len(scan_corpus(subset)) == 4


def test_synth(tmp_path, write_tone):
    root = make_synth(tmp_path / "corpus", write_tone)
    assert detect_layout(root) == "synth"
    rows = scan_corpus(root)
    assert len(rows) == 6 and {r.speaker for r in rows} == {"flite_slt", "espeak_m1"}
    r = rows[0]
    assert r.utt_id == "espeak_m1_0001" and r.text == "Sentence 1."
    assert r.phones.endswith("espeak_m1_0001.phones")


def test_folders_unique_ids_text_phones(tmp_path, write_tone):
    root = make_folders(tmp_path / "mine", write_tone, n_speakers=2, n=2)
    assert detect_layout(root) == "folders"
    rows = scan_corpus(root)
    ids = [r.utt_id for r in rows]
    assert len(ids) == len(set(ids)) == 5  # 2 x 2 + the nested flac; .hidden is ignored
    assert {"spk0_utt0", "spk1_utt0", "utt9"} <= set(ids)  # colliding ids get the speaker prefix
    by_id = {r.utt_id: r for r in rows}
    assert by_id["spk0_utt0"].text == "hello world" and by_id["spk0_utt0"].phones.endswith("utt0.phones")
    assert by_id["spk0_utt1"].text == "" and by_id["spk0_utt1"].phones == ""
    assert by_id["utt9"].speaker == "spk0"  # nested folders belong to the top-level speaker


def test_detect_layout_errors(tmp_path, write_tone):
    with pytest.raises(DataError, match="not found"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable corpus"):
        detect_layout(tmp_path / "empty")
    write_tone(tmp_path / "loose" / "a.wav")
    with pytest.raises(DataError, match="directly in the folder"):
        detect_layout(tmp_path / "loose")
    make_vctk080(tmp_path / "parent" / "VCTK-Corpus", write_tone, speakers=("p225",), n=1)
    with pytest.raises(DataError, match="point at"):
        detect_layout(tmp_path / "parent")
    f = write_tone(tmp_path / "file.wav")
    with pytest.raises(DataError, match="is a file"):
        detect_layout(f)


# ------------------------------------------------------------------ prepare


def test_prepare_splits_seeded_and_disjoint(tmp_path, write_tone):
    root = make_folders(tmp_path / "c", write_tone)
    splits = {}
    for seed in range(6):
        m = tmp_path / f"m{seed}.tsv"
        s = prepare_corpus(root, m, n_test_speakers=2, valid_fraction=0.2, seed=seed, cache=False)
        rows = read_manifest(m)
        test = {r.speaker for r in rows if r.split == "test"}
        train = {r.speaker for r in rows if r.split in ("train", "valid")}
        assert len(test) == 2 and not test & train  # speaker-disjoint
        assert s["utterances"]["test"] == sum(r.split == "test" for r in rows)
        # every training speaker with >= 4 utterances lends some to valid
        for spk in train:
            assert any(r.split == "valid" and r.speaker == spk for r in rows)
        assert all(r.duration == pytest.approx(0.3) for r in rows)
        splits[seed] = [(r.utt_id, r.split) for r in rows]
    again = tmp_path / "again.tsv"
    prepare_corpus(root, again, n_test_speakers=2, valid_fraction=0.2, seed=0, cache=False)
    assert [(r.utt_id, r.split) for r in read_manifest(again)] == splits[0]  # same seed, same split
    assert any(splits[s] != splits[0] for s in range(1, 6))  # other seeds can differ


def test_prepare_named_test_speakers(tmp_path, write_tone):
    root = make_folders(tmp_path / "c", write_tone, n_speakers=3, n=2)
    s = prepare_corpus(root, tmp_path / "m.tsv", test_speakers=["spk2"], cache=False)
    assert s["test_speakers"] == ["spk2"] and s["speakers"] == 3
    with pytest.raises(DataError, match="bob"):
        prepare_corpus(root, tmp_path / "m2.tsv", test_speakers=["bob"], cache=False)
    with pytest.raises(DataError, match="at least one"):
        prepare_corpus(root, tmp_path / "m3.tsv", test_speakers=["spk0", "spk1", "spk2"], cache=False)


@pytest.mark.parametrize("cache", [False, True])
def test_prepare_skips_and_reports_bad_files(tmp_path, write_tone, cache):
    root = make_folders(tmp_path / "c", write_tone, n_speakers=2, n=2)
    bad = {case: write_bad_file(root / "spk1" / f"{case}.wav", case) for case in BAD_CASES}
    m = tmp_path / "out" / "train.tsv"
    s = prepare_corpus(root, m, n_test_speakers=1, cache=cache)
    assert s["skipped"] == len(BAD_CASES)
    assert s["report"] == str(tmp_path / "out" / "train_report.tsv") == str(report_path(m))
    report = {r["path"]: r for r in read_report(s["report"])}
    assert set(report) == {str(p) for p in bad.values()}
    for case, p in bad.items():
        assert BAD_CASES[case] in report[str(p)]["problem"]
    kept = {r.path for r in read_manifest(m)}
    assert not kept & set(report) and len(kept) == 5
    # NaN and silent files need their samples decoded: by the cache, or by the check itself
    assert report[str(bad["nan"])]["stage"] == "decode"


def test_prepare_refuses_to_overwrite(tmp_path, write_tone):
    root = make_synth(tmp_path / "c", write_tone)
    m = tmp_path / "m.tsv"
    prepare_corpus(root, m, cache=False)
    with pytest.raises(DataError, match="m.tsv.*--force"):
        prepare_corpus(root, m, cache=False)
    s = prepare_corpus(root, m, cache=False, force=True, seed=1)
    assert s["manifest"] == str(m)


def test_prepare_all_bad_is_an_error_naming_a_file(tmp_path):
    root = tmp_path / "c"
    write_bad_file(root / "a" / "x.wav", "silent")
    with pytest.raises(DataError, match=r"x\.wav: is silent"):
        prepare_corpus(root, tmp_path / "m.tsv")


def test_prepare_builds_feature_cache(tmp_path, write_tone):
    root = make_vctk092(tmp_path / "vctk", write_tone, n=2)
    m = tmp_path / "m.tsv"
    calls = []
    s = prepare_corpus(root, m, n_test_speakers=1, progress=lambda *a: calls.append(a))
    assert s["layout"] == "vctk092" and s["skipped"] == 0
    assert s["cache_dir"] == str(default_cache_dir(m))
    assert {c[0] for c in calls} == {"checking", "features"}
    cfg = AudioConfig()
    rows = read_manifest(m)
    for r in rows:
        assert cache_path(s["cache_dir"], cfg, r.utt_id, r.path).is_file()
    feats = load_cached(rows, cfg, s["cache_dir"])
    n = int(0.3 * cfg.sample_rate)  # 0.3 s at 48 kHz resampled to 16 kHz; a steady tone is not trimmed
    for mel, offset in feats.values():
        assert mel.shape == (cfg.n_mels, cfg.frames(n)) and mel.dtype == np.float16
        assert np.isfinite(mel).all() and offset == 0.0


def test_prepare_force_drops_stale_features(tmp_path, write_tone):
    """Re-preparing another corpus into the same folder must not reuse features of the old one."""
    cfg = AudioConfig()
    a = make_folders(tmp_path / "a", write_tone, n_speakers=2, n=1)
    m = tmp_path / "out" / "m.tsv"
    prepare_corpus(a, m, n_test_speakers=1)
    f = cache_path(default_cache_dir(m), cfg, "spk0_utt0", a / "spk0" / "utt0.wav")
    old = np.load(f)["mel"].copy()
    b = tmp_path / "b"
    for k in range(2):  # same ids, other sounds, longer
        write_tone(b / f"spk{k}" / "utt0.wav", freq=1500.0, duration=0.6)
    write_tone(b / "spk0" / "session2" / "utt9.flac", freq=1500.0, duration=0.6)
    prepare_corpus(b, m, n_test_speakers=1, force=True)
    new = np.load(cache_path(default_cache_dir(m), cfg, "spk0_utt0", b / "spk0" / "utt0.wav"))["mel"]
    assert new.shape != old.shape


def test_two_manifests_in_one_folder_do_not_share_features(tmp_path, write_tone):
    """VCTK 0.80 and 0.92 use the same utterance ids; their features must stay apart."""
    a, b = make_vctk080(tmp_path / "old", write_tone), make_vctk092(tmp_path / "new", write_tone)
    out = tmp_path / "manifests"
    prepare_corpus(a, out / "a.tsv", n_test_speakers=1)
    prepare_corpus(b, out / "b.tsv", n_test_speakers=1)
    cfg = AudioConfig()
    ra = {r.utt_id: r for r in read_manifest(out / "a.tsv")}
    rb = {r.utt_id: r for r in read_manifest(out / "b.tsv")}
    shared = sorted(set(ra) & set(rb))
    assert shared
    fa, fb = (load_cached([r[shared[0]]], cfg, default_cache_dir(out / "a.tsv")) for r in (ra, rb))
    assert not np.array_equal(fa[shared[0]][0], fb[shared[0]][0])
