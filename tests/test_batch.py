"""Batch conversion (`vcconv.batch`, `vcconv batch`) on tiny tones with a tiny random model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_bad_file, run_main
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




def test_cli_batch_exit_0_and_summary(tmp_path, tree, tiny_model, capsys):
    src, ref = tree
    out = tmp_path / "out"
    code, stdout, err = run_main(["batch", src, "--target", ref, "-o", out, "--model", tiny_model,
                                   "--vocoder", VOCODER, "--threads", "1"], capsys)
    assert code == 0, err
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]
    assert "converted" in stdout and "skipped" in stdout and "RTF" in stdout
    code, stdout, _ = run_main(["batch", src, "-t", ref, "-o", out, "--model", tiny_model, "--vocoder", VOCODER, "-j", "1"], capsys)
    assert code == 0
    row = [line for line in stdout.splitlines() if "│" in line and "s" in line and any(c.isdigit() for c in line)]
    assert row and row[-1].split("│")[1].strip() == "0" and row[-1].split("│")[2].strip() == "3"


def test_cli_batch_pairs_and_failures_exit_1(tmp_path, tree, tiny_model, capsys):
    src, ref = tree
    write_bad_file(src / "bad.wav", "non_audio")
    (tmp_path / "pairs.csv").write_text("source,target,output\nin/a.wav,ref.wav,o/a.wav\nin/bad.wav,ref.wav,o/bad.wav\n")
    code, stdout, err = run_main(["batch", "--pairs", tmp_path / "pairs.csv", "--model", tiny_model,
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
    code, _, err = run_main(argv, capsys)
    assert code == 2 and match in err


# ---------------------------------------------------------- concurrent batches

_DRIVER = r"""
import json, os, sys, time
from pathlib import Path
from vcconv.batch import convert_pairs

pairs, model, me, other = sys.argv[1:5]
Path(me).touch()
deadline = time.time() + 60
while not Path(other).exists() and time.time() < deadline:  # start converting together
    time.sleep(0.01)
s = convert_pairs(pairs, model=model, vocoder="griffinlim:4", threads=1)
print(json.dumps({"converted": s.converted, "skipped": s.skipped, "claimed": s.claimed_elsewhere,
                  "failed": s.failed, "failures": s.failures}))
"""


def test_two_processes_share_an_output_folder(tmp_path, tiny_model, write_tone):
    """Two real batch processes on the same 20 jobs: every output complete, each converted exactly once."""
    import json
    import subprocess
    import sys

    n = 20
    for i in range(n):
        write_tone(tmp_path / "src" / f"s{i:02d}.wav", freq=150 + 20 * i, duration=0.5)
    write_tone(tmp_path / "ref.wav", freq=420, duration=0.5)
    (tmp_path / "pairs.csv").write_text("source,target,output\n"
                                        + "".join(f"src/s{i:02d}.wav,ref.wav,out/o{i:02d}.wav\n" for i in range(n)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path / "pairs.csv"), str(tiny_model),
                               str(tmp_path / f"ready{k}"), str(tmp_path / f"ready{1 - k}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for k in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    print("two processes:", json.dumps(results))
    assert a["failed"] == b["failed"] == 0, (a["failures"], b["failures"])
    assert a["converted"] + b["converted"] == n, results  # none converted twice, none left out
    for r in results:
        assert r["converted"] + r["skipped"] + r["claimed"] == n
    assert a["converted"] > 0 and b["converted"] > 0, results  # they really ran side by side
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == [f"o{i:02d}.wav" for i in range(n)]  # no .claim / .part left behind
    for p in outs:
        info = sf.info(str(p))
        assert info.samplerate == 16000 and abs(info.duration - 0.5) < 0.05
        assert np.abs(sf.read(str(p))[0]).max() > 0


def test_claimed_output_is_left_to_its_holder(tmp_path, tree, tiny_model, write_tone):
    from vcconv.batch import claim_output, release_claim

    src, ref = tree
    out = tmp_path / "out"
    fd = claim_output(out / "a.wav")  # "another process" converting a.wav right now ...
    write_tone(out / ".a.k3j4h5g6.part.wav")  # ... with its temp file in place
    try:
        s = convert_dir(src, ref, out, model=tiny_model, **FAST)
        assert (s.converted, s.claimed_elsewhere, s.failed, s.stale_parts_removed) == (2, 1, 0, 0)
        assert not (out / "a.wav").exists() and (out / ".a.k3j4h5g6.part.wav").exists()
    finally:
        release_claim(out / "a.wav", fd)
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)  # the holder died: its leftovers go
    assert (s.converted, s.skipped, s.stale_parts_removed) == (1, 2, 1)
    assert _outputs(out) == ["a.wav", "sub/b.wav", "sub/deep/c.wav"]


def test_claim_of_a_killed_process_is_taken_over(tmp_path, tree, tiny_model):
    src, ref = tree
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a.wav.claim").write_text("999999999\n")  # left by kill -9: a file, but nobody holds its lock
    s = convert_dir(src, ref, out, model=tiny_model, **FAST)
    assert (s.converted, s.claimed_elsewhere) == (3, 0)
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "sub"]
