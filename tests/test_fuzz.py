"""Fuzzing the CLI with broken and hostile audio (seeded, in-process, fast).

Every case of :data:`CASES` is one file; it goes through ``convert`` (as the source and as the
target), ``vocode``, ``batch``, ``data prepare`` and ``eval``.  Each run must end in a
result (a converted file; a batch/prepare/eval report naming the file and its problem)
or in one ``error:`` line with exit code 2: never a traceback, never a partial file,
never an existing output overwritten.  ``bench/fuzz_table.py`` runs the same cases as
real subprocesses and prints what the user sees.

Each case says what must happen: ``None`` (it is usable audio, and converts) or words
the one-line problem must contain.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SEED = 16
SR = 16000
DURATION = 0.5
SENTINEL = b"an existing output that no failed run may touch"


# ------------------------------------------------------------------------ the cases


def _tone(duration: float = DURATION, sr: int = SR, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(duration * sr))) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def _wav(data: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytearray:
    buf = io.BytesIO()
    sf.write(buf, data, sr, subtype=subtype, format="WAV")
    blob = bytearray(buf.getvalue())
    peak = blob.find(b"PEAK")  # libsndfile stamps float files' PEAK chunk with the time: zero it (seeded bytes)
    if peak >= 0:
        blob[peak + 12 : peak + 16] = bytes(4)
    return blob


def _data_chunk(blob: bytes) -> int:
    """Offset of the ``data`` chunk header of a RIFF/WAVE file."""
    pos = 12
    while pos + 8 <= len(blob):
        size = struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        if blob[pos : pos + 4] == b"data":
            return pos
        pos += 8 + size + (size & 1)
    raise ValueError("no data chunk")


def _patched(blob: bytearray, offset: int, fmt: str, value) -> bytes:
    out = bytearray(blob)
    out[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(out)


def _flip_bits(blob: bytearray, lo: int, hi: int, n: int, rng) -> bytes:
    """Flip one random bit in each of ``n`` random bytes of ``blob[lo:hi]``."""
    out = bytearray(blob)
    for i in rng.integers(lo, hi, n):
        out[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _random(n: int, rng) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def _inf_tone() -> np.ndarray:
    x = _tone()
    x[1000:1100] = np.inf
    return x


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[np.random.Generator], bytes]  # the file's bytes (seeded)
    expect: str | None  # None: usable audio (converts); else words of the one-line problem ("a|b": either)
    note: str = ""

    def says(self, text: str) -> bool:
        """True when ``text`` holds (one of) the words this case's problem must contain."""
        return self.expect is not None and any(words in text for words in self.expect.split("|"))


def _good() -> bytearray:
    return _wav(_tone())


CASES = [
    Case("random_bytes", lambda r: _random(4096, r), "not an audio file"),
    Case("zero_length", lambda r: b"", "file is empty"),
    Case("header_only", lambda r: _patched(_good()[: _data_chunk(_good()) + 8], _data_chunk(_good()) + 4, "<I", 0),
         "no audio samples|too short: 0 samples"),
    Case("header_cut_at_20_bytes", lambda r: bytes(_good()[:20]), "corrupt or truncated"),
    Case("data_cut_short", lambda r: bytes(_good()[: _data_chunk(_good()) + 8 + 1000]), "truncated"),
    Case("declares_134217_s", lambda r: _patched(_good(), _data_chunk(_good()) + 4, "<I", 134217 * SR * 2),
         "134217.000 s its header declares"),
    Case("riff_size_4_GiB", lambda r: _patched(_good(), 4, "<I", 2**32 - 1), None, "libsndfile reads the chunks"),
    Case("fmt_size_2_GiB", lambda r: _patched(_good(), 16, "<I", 2**31), "corrupt or truncated"),
    Case("streaming_data_size", lambda r: _patched(_good(), _data_chunk(_good()) + 4, "<I", 2**32 - 1), None,
         "0xFFFFFFFF = size unknown (a stream)"),
    Case("rate_4_GHz_in_header", lambda r: _patched(_good(), 24, "<I", 4_000_000_000), "corrupt or truncated"),
    Case("rate_2_MHz_in_header", lambda r: _patched(_patched(_good(), 24, "<I", 2_000_000), 28, "<I", 4_000_000),
         "beyond any audio format"),
    Case("65535_channels_in_header", lambda r: _patched(_good(), 22, "<H", 65535), "corrupt or truncated"),
    *[Case(f"header_bitflips_{k}", (lambda k: lambda r: _flip_bits(_good(), 0, 44, 6, np.random.default_rng(
        [SEED, k])))(k), "not an audio file|corrupt or truncated") for k in range(3)],
    Case("sample_bitflips_200", lambda r: _flip_bits(_good(), 44, len(_good()), 200, r), None,
         "converts, with a warning: isolated spikes"),
    Case("fake_riff_magic", lambda r: b"RIFF" + struct.pack("<I", 4000) + b"WAVE" + _random(4000, r),
         "corrupt or truncated"),
    Case("fake_flac_magic", lambda r: b"fLaC" + _random(2000, r), "corrupt or truncated"),
    Case("fake_ogg_magic", lambda r: b"OggS" + _random(2000, r), "corrupt or truncated"),
    Case("text_named_wav", lambda r: b"this is a transcript, not a sound file\n" * 20, "it holds text"),
    Case("nan_floats", lambda r: bytes(_wav(np.full(8000, np.nan, np.float32), subtype="FLOAT")), "NaN or infinite"),
    Case("inf_floats", lambda r: bytes(_wav(_inf_tone(), subtype="FLOAT")), "NaN or infinite"),
    Case("float_1e30", lambda r: bytes(_wav(_tone() * 1e30, subtype="FLOAT")), "above full scale"),
    Case("silence_120_s", lambda r: bytes(_wav(np.zeros(120 * 8000, np.float32), sr=8000)), "is silent"),
    Case("rate_1_kHz", lambda r: bytes(_wav(_tone(sr=1000, freq=100), sr=1000)), "too low for speech"),
    Case("rate_384_kHz", lambda r: bytes(_wav(_tone(sr=384000), sr=384000, subtype="PCM_24")), None),
    Case("eight_channels", lambda r: bytes(_wav(_tone(channels=8))), None),
    Case("one_sample", lambda r: bytes(_wav(_tone()[:1])), "too short"),
]
DEV_NULL = Case("dev_null", lambda r: b"", "file is empty", "a symbolic link to /dev/null")
ALL_CASES = CASES + [DEV_NULL]


def write_case(case: Case, folder: Path, name: str | None = None) -> Path:
    """Write ``case`` as ``folder/<name or case.name>.wav`` (seeded by :data:`SEED` and the case name)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or case.name}.wav"
    if case is DEV_NULL:
        path.symlink_to(os.devnull)
        return path
    rng = np.random.default_rng([SEED, sum(map(ord, case.name))])
    path.write_bytes(case.build(rng))
    return path


NPY_CASES = [  # vocode also takes a log-mel .npy
    ("npy_random_bytes", lambda p: p.write_bytes(np.random.default_rng(SEED).bytes(600)), "not a .npy file"),
    ("npy_pickled_object", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "it holds Python objects, which are not loaded"),
    ("npy_truncated", lambda p: (np.save(p, np.zeros((80, 50), np.float32)), p.write_bytes(p.read_bytes()[:300])),
     "not a readable .npy array"),
    ("npy_wrong_shape", lambda p: np.save(p, np.zeros((3, 4, 5), np.float32)), "expected a log-mel array"),
    ("npy_nan", lambda p: np.save(p, np.full((80, 20), np.nan, np.float32)), "NaN/infinite"),
    ("npy_huge", lambda p: np.save(p, np.full((80, 20), 1e30, np.float32)), "not a log-mel"),
    ("npy_strings", lambda p: np.save(p, np.array([["a"] * 20] * 80)), "numeric"),
]


# ----------------------------------------------------------------------- harness


def run_cli(argv) -> tuple[int, str, str]:
    """``vcconv ARGV`` in this process: ``(exit code, stdout, stderr)``.  Any exception other
    than ``SystemExit`` propagates (a traceback is a failed test)."""
    import contextlib

    from vcconv.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING ", "INFO "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".part" in p.name or p.name.endswith(".claim")]
    assert not left, left


def _check_wav(path: Path, duration: float) -> None:
    info = sf.info(str(path))
    assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
    assert abs(info.duration - duration) < 0.05, info.duration
    assert np.isfinite(sf.read(str(path))[0]).all()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny random model, a good source and reference, and every case written to ``cases/``."""
    import torch

    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                               "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    model = save_safetensors(build_model("adain", cfg.model), cfg, root / "tiny.safetensors")
    good = root / "good.wav"
    sf.write(str(good), _tone(freq=180), SR)
    ref = root / "ref.wav"
    sf.write(str(ref), _tone(freq=400), SR)
    files = {c.name: write_case(c, root / "cases") for c in ALL_CASES}
    return {"root": root, "model": model, "good": good, "ref": ref, "files": files}


FAST = ["--vocoder", "griffinlim:2", "--threads", "1"]


def test_case_list_is_seeded_and_distinct(tmp_path):
    a = {c.name: write_case(c, tmp_path / "a").read_bytes() for c in CASES}
    b = {c.name: write_case(c, tmp_path / "b").read_bytes() for c in CASES}
    assert a == b  # the same bytes every run
    assert len(set(a.values())) == len(CASES)  # and no two cases alike
    assert len(ALL_CASES) == len({c.name for c in ALL_CASES})


# ------------------------------------------------------------------------ commands


@pytest.mark.parametrize("role", ["source", "target"])
def test_convert(world, role):
    """``convert`` with the case as source (or target), --force over an existing output:
    a failed run leaves that output as it was."""
    out_dir = world["root"] / f"convert_{role}"
    out_dir.mkdir()
    for case in ALL_CASES:
        path, out = world["files"][case.name], out_dir / f"{case.name}.wav"
        out.write_bytes(SENTINEL)
        src, ref = (path, world["ref"]) if role == "source" else (world["good"], path)
        code, stdout, err = run_cli(["convert", src, "-t", ref, "-o", out, "--model", world["model"], "--force", *FAST])
        if case.expect is None:
            assert code == 0, (case.name, err)
            _check_wav(out, DURATION)
        else:
            line = _one_error_line(err)
            assert code == 2 and case.says(line) and str(path) in line, (case.name, line)
            assert out.read_bytes() == SENTINEL, case.name
    _no_temp_files(out_dir)


def test_vocode(world):
    out_dir = world["root"] / "vocode"
    out_dir.mkdir()
    npys = []
    for name, make, expect in NPY_CASES:
        p = world["root"] / "npy" / f"{name}.npy"
        p.parent.mkdir(exist_ok=True)
        make(p)
        npys.append((name, p, expect))
    runs = [(c.name, world["files"][c.name], c) for c in ALL_CASES]
    runs += [(name, p, Case(name, lambda r: b"", expect)) for name, p, expect in npys]
    for name, path, case in runs:
        out = out_dir / f"{name}.wav"
        out.write_bytes(SENTINEL)
        code, _, err = run_cli(["vocode", path, "-o", out, "--force", *FAST])
        if case.expect is None:
            assert code == 0, (name, err)
            _check_wav(out, DURATION)
        else:
            line = _one_error_line(err)
            assert code == 2 and case.says(line) and str(path) in line, (name, line)
            assert "trust" not in line and "allow_pickle" not in line, line  # never advise unsafe loading
            assert out.read_bytes() == SENTINEL, name
    _no_temp_files(out_dir)


def test_batch(world):
    """One batch over every case + a good file: the good ones convert, each bad one is one row
    of failures.tsv naming its problem; exit 1.  A second run skips and re-reports; no output
    is written for a bad file, and a hostile reference stops the batch with one line."""
    src = world["root"] / "batch_in"
    for case in ALL_CASES:
        write_case(case, src)
    (src / "good.wav").write_bytes(world["good"].read_bytes())
    out = world["root"] / "batch_out"
    argv = ["batch", src, "-t", world["ref"], "-o", out, "--model", world["model"], *FAST]
    code, stdout, err = run_cli(argv)
    assert code == 1 and "Traceback" not in err, err
    rows = dict(line.split("\t") for line in (out / "failures.tsv").read_text().splitlines()[1:])
    usable = {c.name for c in ALL_CASES if c.expect is None} | {"good"}
    for case in ALL_CASES:
        path = str(src / f"{case.name}.wav")
        if case.expect is None:
            _check_wav(out / f"{case.name}.wav", DURATION)
        else:
            assert case.says(rows[path]), (case.name, rows[path])
            assert not (out / f"{case.name}.wav").exists()
    assert sorted(p.stem for p in out.glob("*.wav")) == sorted(usable)
    assert len(rows) == len(ALL_CASES) + 1 - len(usable)
    _no_temp_files(out)
    code, stdout, _ = run_cli(argv)  # resume: nothing converted again, the same failures
    assert code == 1 and f"{len(rows)} file(s) failed" in stdout
    for case in (c for c in ALL_CASES if c.expect is not None):
        code, _, err = run_cli(["batch", world["root"] / "batch_in", "-t", world["files"][case.name],
                                "-o", world["root"] / "batch_bad_ref", "--model", world["model"], *FAST])
        line = _one_error_line(err)
        assert code == 2 and case.says(line), (case.name, line)
    assert not (world["root"] / "batch_bad_ref").exists()


def test_data_prepare(world):
    """A folders corpus with every case in one speaker's folder: exit 0, each bad file skipped with
    its problem in the report, the usable ones in the manifest."""
    corpus = world["root"] / "corpus"
    for spk, freq in (("alice", 180), ("bob", 300), ("carol", 420)):
        for k in range(3):
            (corpus / spk).mkdir(parents=True, exist_ok=True)
            sf.write(str(corpus / spk / f"{spk}{k}.wav"), _tone(freq=freq + 10 * k), SR)
    for case in ALL_CASES:
        write_case(case, corpus / "alice")
    manifest = world["root"] / "prep" / "manifest.tsv"
    code, stdout, err = run_cli(["data", "prepare", corpus, "-o", manifest, "--test-speakers", "carol", "--no-cache"])
    assert code == 0 and "Traceback" not in err, err
    report = (manifest.with_name("manifest_report.tsv")).read_text()
    listed = manifest.read_text()
    for case in ALL_CASES:
        path = str(corpus / "alice" / f"{case.name}.wav")
        if case.expect is None:
            assert path in listed, case.name
        elif case is DEV_NULL:  # not a regular file: not taken for an utterance at all
            assert path not in listed and path not in report
        else:
            (line,) = [ln for ln in report.splitlines() if ln.startswith(path + "\t")]
            assert case.says(line) and path not in listed, (case.name, line)
    _no_temp_files(manifest.parent)


def test_eval(world):
    """Every case as the output of a pair: exit 0, per-pair CSV with the problem in ``error``."""
    import csv

    rows = "".join(f"{world['good']},{world['ref']},{world['files'][c.name]}\n" for c in ALL_CASES)
    pairs = world["root"] / "eval_pairs.csv"
    pairs.write_text("source,target,output\n" + rows)
    out = world["root"] / "eval_scores.csv"
    code, stdout, err = run_cli(["eval", pairs, "--no-asr", "--no-quality", "--out", out, "--device", "cpu"])
    assert code == 0 and "Traceback" not in err, err
    scored = {Path(r["output"]).stem: r for r in csv.DictReader(open(out))}
    for case in ALL_CASES:
        problem = scored[case.name].get("error", "")
        if case.expect is None:
            assert not problem, (case.name, problem)
        else:
            assert case.says(problem), (case.name, problem)
    n_bad = sum(c.expect is not None for c in ALL_CASES)
    assert f"{n_bad} output(s) could not be loaded" in stdout
