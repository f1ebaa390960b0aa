#!/usr/bin/env python
"""Acceptance demo of ``vcconv batch``: kill -9 mid-run, then resume.

1. Makes 200 short source files (0.6 s cut from ``data/corpus/*/`` utterances when
   present, else synthetic tones) in 4 speaker folders of a temp input folder, one
   of them corrupt (a WAV cut short, its header declaring more than it holds).
2. Starts ``vcconv batch`` in the background and ``kill -9``s it once ~40 % of the
   outputs exist.
3. Checks that every output there is a complete WAV (no partial file under an
   output name) and that nothing keeps writing after the kill; lists temp files.
4. Re-runs the same command: it removes stale temp files, skips what exists,
   converts the rest and reports the corrupt file.
5. Checks: 199 outputs, no ``.part`` files, ``failures.tsv`` names the corrupt file.

Usage::

    nice -n 15 .venv/bin/python bench/batch_resume_demo.py [--model M] [--workers 1] [--n 200]

Default model: a tiny random AdaIN-VC saved to a temp file (fast; the demo checks
the batch machinery, not the voice).  Exit code 0 when every check passes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SR = 16000
CLIP_S = 0.6
SPEAKERS = 4
console = Console()


def tiny_model(path: Path) -> Path:
    import torch

    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                               "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    return save_safetensors(build_model("adain", cfg.model), cfg, path)


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 6))).astype(np.float32)


def make_sources(in_dir: Path, n: int, corrupt_index: int) -> tuple[list[Path], Path, Path, str]:
    """``n`` clips in ``in_dir/spk*/``; returns (sources, corrupt file, reference clip, description)."""
    from vcconv.audio import load_audio

    corpus = sorted(d for d in (ROOT / "data" / "corpus").glob("*/") if any(d.glob("*.wav")))
    per = int(np.ceil(n / SPEAKERS))
    files: list[Path] = []
    if len(corpus) > SPEAKERS:
        what = f"0.6 s cut from the middle of data/corpus utterances ({', '.join(d.name for d in corpus[:SPEAKERS])})"
        for s, spk in enumerate(corpus[:SPEAKERS]):
            for f in sorted(spk.glob("*.wav"))[:per]:
                if len(files) == n:
                    break
                wav = load_audio(f, SR)
                mid, half = wav.size // 2, int(CLIP_S * SR) // 2
                out = in_dir / spk.name / f.name
                out.parent.mkdir(parents=True, exist_ok=True)
                sf.write(out, wav[max(0, mid - half): mid + half], SR, subtype="PCM_16")
                files.append(out)
        ref = corpus[SPEAKERS]
        ref_wav = load_audio(sorted(ref.glob("*.wav"))[0], SR)
    else:
        what = "synthetic harmonic tones (no data/corpus)"
        for i in range(n):
            out = in_dir / f"spk{i % SPEAKERS}" / f"utt_{i:04d}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, tone(110 + 3 * i, CLIP_S), SR, subtype="PCM_16")
            files.append(out)
        ref_wav = tone(230, 2.0)
    ref_path = in_dir.parent / "reference.wav"
    sf.write(ref_path, ref_wav, SR, subtype="PCM_16")
    files.sort()
    bad = files[corrupt_index]
    blob = bad.read_bytes()
    bad.write_bytes(blob[: len(blob) // 3])  # an interrupted copy: the header declares 3x the data
    return files, bad, ref_path, what


def outputs(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*.wav") if not p.name.startswith("."))


def parts(out_dir: Path) -> list[Path]:
    return sorted(out_dir.rglob("*.part*"))


def incomplete(out_dir: Path, in_dir: Path) -> list[str]:
    """Outputs that are not complete WAVs of the expected length ((N // hop) * hop samples)."""
    from vcconv.audio import load_audio
    from vcconv.errors import AudioError

    bad = []
    for p in outputs(out_dir):
        src = in_dir / p.relative_to(out_dir)
        try:
            n = load_audio(p, None).size
        except AudioError as err:
            bad.append(str(err))
            continue
        want = (sf.info(str(src)).frames // 256) * 256
        if n != want:
            bad.append(f"{p}: {n} samples, expected {want}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description="kill -9 and resume demo of vcconv batch")
    ap.add_argument("--model", help="model for vcconv batch (default: tiny random model in a temp file)")
    ap.add_argument("--vocoder", default="griffinlim")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="--threads of vcconv batch (0: its default)")
    ap.add_argument("--n", type=int, default=200, help="source files (one of them corrupt)")
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction of outputs after which to kill -9")
    args = ap.parse_args()

    exe = Path(sys.executable).parent / "vcconv"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcconv"]
    checks: list[tuple[str, bool]] = []

    with tempfile.TemporaryDirectory(prefix="vcconv-resume-") as tmp_name:
        tmp = Path(tmp_name)
        in_dir, out_dir = tmp / "in", tmp / "out"
        model = args.model or str(tiny_model(tmp / "tiny.safetensors"))
        files, corrupt, ref, what = make_sources(in_dir, args.n, corrupt_index=args.n // 2)
        good = len(files) - 1
        console.print(f"[bold]inputs[/] {len(files)} files in {SPEAKERS} folders: {what}; corrupt: "
                      f"{corrupt.relative_to(in_dir)}\n[bold]model[/] {args.model or 'tiny random adain (temp file)'}, "
                      f"vocoder {args.vocoder}, workers {args.workers}, threads {args.threads or 'auto'}")
        cmd = [*cli, "batch", str(in_dir), "--target", str(ref), "-o", str(out_dir), "--model", model,
               "--vocoder", args.vocoder, "--workers", str(args.workers), "--threads", str(args.threads)]
        env = {**os.environ, "COLUMNS": "100"}

        # ---- run 1: killed with SIGKILL at ~40 %
        kill_at = int(args.kill_at * good)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        while p.poll() is None and len(outputs(out_dir)) < kill_at:
            time.sleep(0.02)
        killed = p.poll() is None
        if killed:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        run1_wall = time.perf_counter() - t0
        n_kill = len(outputs(out_dir))
        temps_at_kill = [str(x.relative_to(out_dir)) for x in parts(out_dir)]
        time.sleep(2.0)  # would an orphaned worker keep writing?
        n_later = len(outputs(out_dir))
        console.print(f"\n[bold]run 1[/] killed with SIGKILL after {run1_wall:.1f} s: {n_kill} outputs "
                      f"({n_kill / good:.0%}); temp files left by the kill: {len(temps_at_kill)} {temps_at_kill}")
        checks.append((f"run 1 was still running at {kill_at} outputs and got kill -9", killed))
        checks.append(("no output appears after the kill (no orphaned worker writing)", n_later == n_kill))
        broken = incomplete(out_dir, in_dir)
        checks.append((f"every output left by the kill is a complete WAV ({n_kill} checked)", not broken))
        for b in broken[:5]:
            console.print(f"  [red]incomplete[/] {b}")

        # ---- run 2: resume
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        run2_wall = time.perf_counter() - t0
        console.print(f"\n[bold]run 2[/] (resume, {run2_wall:.1f} s, exit code {r.returncode}); its output:")
        sys.stdout.write(r.stdout.split("\r")[-1] if "\r" in r.stdout else r.stdout)
        if r.stderr.strip():
            sys.stdout.write(r.stderr)
        final = outputs(out_dir)
        failures = (out_dir / "failures.tsv").read_text().splitlines()[1:] if (out_dir / "failures.tsv").exists() else []

        table = Table(title="counts")
        for col in ("run", "converted", "skipped (existing)", "failed", "outputs after"):
            table.add_column(col, justify="right" if col != "run" else "left")
        table.add_row("1 (kill -9 at ~40 %)", str(n_kill), "0", "n/a (killed before its summary)", str(n_kill))
        table.add_row("2 (resume)", str(len(final) - n_kill), str(n_kill), str(len(failures)), str(len(final)))
        console.print(table)

        checks.append((f"run 2 exit code 1 (some file failed), got {r.returncode}", r.returncode == 1))
        checks.append((f"output count == {good} (got {len(final)})", len(final) == good))
        checks.append((f"no .part files remain (found {len(parts(out_dir))})", not parts(out_dir)))
        checks.append(("failures.tsv lists exactly the corrupt file",
                       len(failures) == 1 and failures[0].split("\t")[0] == str(corrupt)))
        broken = incomplete(out_dir, in_dir)
        checks.append((f"every output is a complete WAV of the expected length ({len(final)} checked)", not broken))
        if failures:
            console.print(f"failures.tsv: {failures[0]}", highlight=False, soft_wrap=True)

    for text, ok in checks:
        console.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {text}", highlight=False)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
