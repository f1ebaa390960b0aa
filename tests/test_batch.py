"""Batch conversion (`vcconv.batch`, `vcconv batch`) on tiny tones with a tiny random model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_bad_file
from vcconv.batch import convert_dir, convert_pairs
from vcconv.checkpoint import save_safetensors
from vcconv.config import RunConfig
from vcconv.errors import AudioError, DataError, VcconvError
from vcconv.models import build_model

VOCODER = "griffinlim:4"  # few iterations: the tests check plumbing, not sound quality
FAST = {"vocoder": VOCODER, "threads": 1}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                               "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    return save_safetensors(build_model("adain", cfg.model), cfg, tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture
def tree(tmp_path, write_tone):
    """``in/a.wav``, ``in/sub/b.flac``, ``in/sub/deep/c.wav`` and a reference ``ref.wav`` (outside ``in``)."""
    src = tmp_path / "in"
    write_tone(src / "a.wav", freq=180)
    write_tone(src / "sub" / "b.flac", freq=240, duration=0.4)
    write_tone(src / "sub" / "deep" / "c.wav", freq=300, sr=22050)
    ref = write_tone(tmp_path / "ref.wav", freq=420, duration=0.5)
    return src, ref


def _outputs(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.wav"))


def test_tree_is_mirrored_with_wav_names(tmp_path, tree, tiny_model):
    src, ref = tree
    out = tmp_path / "out"
    s = convert_dir(src, [ref], out, model=tiny_model, **FAST)
    assert (s.total, s.converted, s.skipped, s.failed) == (3, 3, 0, 0)
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]
    info = sf.info(str(out / "sub" / "b.wav"))
    assert info.samplerate == 16000 and info.subtype == "PCM_16"
    assert abs(info.duration - 0.4) < 0.05
    assert s.audio_seconds > 0.9 and s.rtf > 0
    assert not (out / "failures.tsv").exists()


def test_speaker_vector_computed_once(tmp_path, tree, tiny_model, monkeypatch):
    from vcconv.convert import Converter

    calls = []
    original = Converter.speaker_vector
    monkeypatch.setattr(Converter, "speaker_vector", lambda self, refs: calls.append(refs) or original(self, refs))
    src, ref = tree
    convert_dir(src, ref, tmp_path / "out", model=tiny_model, **FAST)
    assert len(calls) == 1


def test_existing_outputs_are_skipped_unless_force(tmp_path, tree, tiny_model):
    src, ref = tree
    out = tmp_path / "out"
    convert_dir(src, ref, out, model=tiny_model, **FAST)
    (out / "a.wav").unlink()
    stamp = (out / "sub" / "b.wav").stat().st_mtime_ns
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.converted, s.skipped, s.failed) == (1, 2, 0)
    assert (out / "sub" / "b.wav").stat().st_mtime_ns == stamp
    s = convert_dir(src, ref, out, model=tiny_model, force=True, **FAST)
    assert (s.converted, s.skipped, s.failed) == (3, 0, 0)
    assert (out / "sub" / "b.wav").stat().st_mtime_ns != stamp


def test_corrupt_files_are_reported_and_skipped(tmp_path, tree, tiny_model):
    src, ref = tree
    write_bad_file(src / "sub" / "broken.wav", "truncated")
    write_bad_file(src / "notes.wav", "non_audio")
    out = tmp_path / "out"
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.converted, s.skipped, s.failed) == (3, 0, 2)
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]
    problems = dict(s.failures)
    assert "truncated" in problems[str(src / "sub" / "broken.wav")]
    assert "not an audio file" in problems[str(src / "notes.wav")]
    lines = (out / "failures.tsv").read_text().splitlines()
    assert lines[0] == "path\tproblem" and len(lines) == 3
    assert all(len(line.split("\t")) == 2 for line in lines)
    # fixed inputs: the next run converts them and drops the stale failures list
    (src / "sub" / "broken.wav").unlink()
    (src / "notes.wav").unlink()
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.converted, s.skipped, s.failed) == (0, 3, 0)
    assert not (out / "failures.tsv").exists()


def test_bad_reference_fails_before_converting(tmp_path, tree, tiny_model):
    src, _ = tree
    bad = write_bad_file(tmp_path / "silent.wav", "silent")
    with pytest.raises(AudioError, match="silent"):
        convert_dir(src, bad, tmp_path / "out", model=tiny_model, **FAST)
    assert not (tmp_path / "out").exists()


def test_refuses_to_write_over_inputs(tmp_path, tree, tiny_model, write_tone):
    src, ref = tree
    voice = write_tone(tmp_path / "out" / "a.wav", freq=600)  # a reference clip where an output would land
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(VcconvError, match="input folder"):
        convert_dir(src, ref, src, model=tiny_model, **FAST)
    with pytest.raises(VcconvError, match="refusing to write over an input"):
        convert_dir(src, voice, tmp_path / "out", model=tiny_model, **FAST)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_out_dir_nested_in_in_dir_is_not_scanned(tmp_path, tree, tiny_model):
    src, ref = tree
    out = src / "converted"
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.total, s.converted) == (3, 3)
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.total, s.converted, s.skipped) == (3, 0, 3)
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]


def test_stale_part_files_are_removed(tmp_path, tree, tiny_model, write_tone):
    src, ref = tree
    out = tmp_path / "out"
    write_tone(out / ".a.x1y2.part.wav")  # what a kill -9 during save_audio leaves behind
    (out / "sub").mkdir()
    (out / "sub" / ".b.zz.part.wav").write_bytes(b"RIFF")
    write_tone(src / ".hidden.part.wav")  # temp files in the input are not inputs
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert s.stale_parts_removed == 2 and s.total == 3
    assert not list(out.rglob("*.part.wav"))
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]


def test_pairs_csv(tmp_path, tree, tiny_model, write_tone):
    src, ref = tree
    write_tone(tmp_path / "refs" / "r2.wav", freq=500)  # second reference, averaged in the first row
    bad_ref = write_bad_file(tmp_path / "refs" / "empty.wav", "empty")
    out_abs = tmp_path / "abs_out" / "z.wav"
    (tmp_path / "pairs.csv").write_text(
        "source,target,output\n"
        "in/a.wav,ref.wav;refs/r2.wav,pairs_out/a_to_mix.wav\n"
        f"in/sub/b.flac,refs/r2.wav,{out_abs}\n"
        "in/sub/deep/c.wav,refs/empty.wav,pairs_out/c.wav\n"
    )
    s = convert_pairs(tmp_path / "pairs.csv", model=tiny_model, **FAST)
    assert (s.total, s.converted, s.skipped, s.failed) == (3, 2, 0, 1)
    assert (tmp_path / "pairs_out" / "a_to_mix.wav").is_file() and out_abs.is_file()
    assert not (tmp_path / "pairs_out" / "c.wav").exists()
    (path, problem), = s.failures
    assert path == str(tmp_path / "in" / "sub" / "deep" / "c.wav")
    assert str(bad_ref) in problem and "empty" in problem
    assert s.failures_file == tmp_path / "pairs.failures.tsv" and s.failures_file.is_file()
    s = convert_pairs(tmp_path / "pairs.csv", model=tiny_model, **FAST)
    assert (s.converted, s.skipped, s.failed) == (0, 2, 1)


@pytest.mark.parametrize("body, match", [
    ("source,output\nin/a.wav,o.wav\n", "missing: target"),
    ("source,target,output\nin/a.wav,ref.wav,o.flac\n", "must end in .wav"),
    ("source,target,output\nin/a.wav,ref.wav,o.wav\nin/sub/b.flac,ref.wav,o.wav\n", "same output"),
    ("source,target,output\nin/a.wav,ref.wav,ref.wav\n", "refusing to write over an input"),
    ("source,target,output\nin/a.wav,ref.wav,in/a.wav\n", "refusing to write over an input"),
])
def test_pairs_csv_problems_are_refused(tmp_path, tree, tiny_model, body, match):
    (tmp_path / "pairs.csv").write_text(body)
    before = (tmp_path / "ref.wav").read_bytes(), (tmp_path / "in" / "a.wav").read_bytes()
    with pytest.raises((DataError, VcconvError), match=match):
        convert_pairs(tmp_path / "pairs.csv", model=tiny_model, **FAST)
    assert ((tmp_path / "ref.wav").read_bytes(), (tmp_path / "in" / "a.wav").read_bytes()) == before


@pytest.mark.slow
def test_worker_processes_match_in_process(tmp_path, tree, tiny_model):
    src, ref = tree
    one = convert_dir(src, ref, tmp_path / "one", model=tiny_model, **FAST)
    two = convert_dir(src, ref, tmp_path / "two", model=tiny_model, vocoder=VOCODER, workers=2)
    assert (one.converted, two.converted, two.workers) == (3, 3, 2)
    assert two.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    for name in _outputs(tmp_path / "one"):
        a, _ = sf.read(str(tmp_path / "one" / name))
        b, _ = sf.read(str(tmp_path / "two" / name))
        assert np.allclose(a, b, atol=2e-3)


# ------------------------------------------------------------------ CLI


def _run_main(argv, capsys):
    from vcconv.cli import main

    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_batch_exit_0_and_summary(tmp_path, tree, tiny_model, capsys):
    src, ref = tree
    out = tmp_path / "out"
    code, stdout, err = _run_main(["batch", src, "--target", ref, "-o", out, "--model", tiny_model,
                                   "--vocoder", VOCODER, "--threads", "1"], capsys)
    assert code == 0, err
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]
    assert "converted" in stdout and "skipped" in stdout and "RTF" in stdout
    code, stdout, _ = _run_main(["batch", src, "-t", ref, "-o", out, "--model", tiny_model, "--vocoder", VOCODER, "-j", "1"], capsys)
    assert code == 0
    row = [line for line in stdout.splitlines() if "│" in line and "s" in line and any(c.isdigit() for c in line)]
    assert row and row[-1].split("│")[1].strip() == "0" and row[-1].split("│")[2].strip() == "3"


def test_cli_batch_pairs_and_failures_exit_1(tmp_path, tree, tiny_model, capsys):
    src, ref = tree
    write_bad_file(src / "bad.wav", "non_audio")
    (tmp_path / "pairs.csv").write_text("source,target,output\nin/a.wav,ref.wav,o/a.wav\nin/bad.wav,ref.wav,o/bad.wav\n")
    code, stdout, err = _run_main(["batch", "--pairs", tmp_path / "pairs.csv", "--model", tiny_model,
                                   "--vocoder", VOCODER, "--threads", "1"], capsys)
    assert code == 1, err
    assert (tmp_path / "o" / "a.wav").is_file() and "not an audio file" in stdout


@pytest.mark.parametrize("argv, match", [
    (["batch"], "IN_DIR"),
    (["batch", "{src}", "-o", "{out}"], "--target"),
    (["batch", "{src}", "-t", "{ref}", "-o", "{src}"], "input folder"),
    (["batch", "--pairs", "{src}/../pairs.csv", "-t", "{ref}"], "not both"),
])
def test_cli_batch_usage_errors_exit_2(tmp_path, tree, capsys, argv, match):
    src, ref = tree
    argv = [a.format(src=src, ref=ref, out=tmp_path / "out") for a in argv]
    code, _, err = _run_main(argv, capsys)
    assert code == 2 and match in err
