#!/usr/bin/env python
"""Conversion speed and memory on the CPU: a table, not a test.

* RTF (seconds of compute per second of audio) of one conversion, split into
  features (log-mel), model (content + decoder) and vocoder, at torch threads 1
  and 2, median of N runs after a warm-up, on a ~10 s input;
* the same with the threads the converter chooses itself (``threads=0``: the cores
  other processes leave idle, measured from /proc/stat at each call);
* threads 2 and automatic while a busy-loop process competes for the cores
  ("under load": does thread oversubscription hurt, and does the automatic choice avoid it?);
* peak RSS and wall time of converting a 10-minute input in a fresh process.

Goals (issues): model-part RTF <= 0.01; peak RSS of a 10-minute conversion < 2 GiB;
whole convert() RTF <= 0.03 on 2 cores.

Usage::

    .venv/bin/python bench/bench_convert.py [--model PATH] [--vocoder griffinlim] [--quick]

Default model: the newest ``pretrained/adain*.safetensors``, else the ``runs/adain``
run, else a random default-size AdaIN-VC.  Input: corpus utterances from
``--speech DIR`` (speaker folders; default ``data/corpus``, ``data/corpus-v2``) joined to the wanted length when present, else a synthetic
harmonic signal.  The machine's load average is printed: other work on the
machine (a training run) makes every number slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vcconv.audio import load_audio  # noqa: E402
from vcconv.convert import Converter  # noqa: E402

SR = 16000
GOAL_MODEL_RTF = 0.01
GOAL_RSS_GIB = 2.0
GOAL_CONVERT_RTF = 0.03
console = Console()


# ------------------------------------------------------------------ inputs


def pick_model(arg: str | None, tmp: Path) -> tuple[str, str]:
    """(path, description) of the model to benchmark."""
    if arg:
        return arg, arg
    shipped = sorted((ROOT / "pretrained").glob("adain*.safetensors"), key=lambda p: p.stat().st_mtime)
    if shipped:
        return str(shipped[-1]), f"{shipped[-1].relative_to(ROOT)} (newest shipped)"
    run = ROOT / "runs" / "adain"
    if (run / "model.safetensors").exists():
        return str(run / "model.safetensors"), "runs/adain/model.safetensors"
    if (run / "last.pt").exists():
        return str(run), "runs/adain (last.pt of the training run)"
    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain")
    path = save_safetensors(build_model("adain", cfg.model), cfg, tmp / "random_adain.safetensors")
    return str(path), "random default-size adain (no trained model found)"


def harmonic(seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: harmonics of a wobbling f0, syllable-rate amplitude envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 20))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * x * env / np.max(np.abs(x)) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def find_speech(speech: Path | None) -> list[Path]:
    """Speaker folders holding wav files: ``speech`` if given, else the first of
    ``data/corpus``, ``data/corpus-v2`` that has two speakers."""
    roots = [speech] if speech else [ROOT / "data" / "corpus", ROOT / "data" / "corpus-v2"]
    for root in roots:
        speakers = sorted(d for d in root.glob("*/") if any(d.glob("*.wav")))
        if len(speakers) >= 2:
            return speakers
    if speech:
        raise SystemExit(f"{speech}: needs two speaker folders with .wav files")
    return []


def make_inputs(seconds: float, tmp: Path, speech: Path | None = None) -> tuple[Path, Path, str]:
    """(source of ``seconds``, reference, description)."""
    speakers = find_speech(speech)
    if len(speakers) >= 2:
        pieces, total = [], 0
        for f in sorted(speakers[0].glob("*.wav")):
            wav = load_audio(f, SR)
            pieces.append(wav)
            total += wav.size
            if total >= seconds * SR:
                break
        src = np.concatenate(pieces)
        src = np.tile(src, int(np.ceil(seconds * SR / src.size)))[: int(seconds * SR)]
        ref = load_audio(sorted(speakers[1].glob("*.wav"))[0], SR)
        what = f"{len(pieces)} utterances of {speakers[0]}, reference from {speakers[1].name}"
    else:
        src, ref = harmonic(seconds, 120.0), harmonic(3.0, 220.0, seed=1)
        what = "synthetic harmonic signal (no data/corpus or data/corpus-v2)"
    sf.write(tmp / "source.wav", src, SR, subtype="PCM_16")
    sf.write(tmp / "reference.wav", ref, SR, subtype="PCM_16")
    return tmp / "source.wav", tmp / "reference.wav", what


# ------------------------------------------------------------------ measuring


def measure(conv: Converter, src: Path, ref: Path, threads: int, runs: int, fresh_reference: bool = False) -> dict:
    """Median seconds per audio second of each stage (and of the whole call, wall and CPU).
    ``threads=0``: the converter's own choice (idle cores), re-made at every call.
    ``fresh_reference``: every call gets a new copy of the reference, so nothing the converter
    caches per reference (speaker vector adaptation, F0, spectrum) is reused: a one-shot conversion."""
    import shutil

    conv.threads = threads
    conv._auto_threads = None  # a fresh load measurement for this row (it is then reused for 5 s)
    seconds = sf.info(str(src)).duration
    copies = iter(range(10**6))

    def reference() -> Path:
        if not fresh_reference:
            return ref
        copy = ref.with_name(f"{ref.stem}_{next(copies)}{ref.suffix}")
        shutil.copy(ref, copy)
        return copy

    conv.convert(src, [reference()])  # warm-up
    rows, used = [], set()
    for _ in range(runs):
        this_ref = reference()
        c0, w0 = time.process_time(), time.perf_counter()
        res = conv.convert(src, [this_ref])
        rows.append({**res.timings, "total": time.perf_counter() - w0, "cpu": time.process_time() - c0})
        used.add(res.threads)
    out = {k: statistics.median(r[k] for r in rows) / seconds for k in rows[0]}
    out["threads"] = "/".join(str(t) for t in sorted(used))
    return out


def busy_process() -> subprocess.Popen:
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


LONG_RUN = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[5]))
from vcconv.convert import convert
t0 = time.perf_counter()
r = convert(sys.argv[1], sys.argv[2], sys.argv[3], model=sys.argv[4], vocoder=sys.argv[6] or None, device="cpu",
            threads=int(sys.argv[5]))
print(json.dumps({"wall": time.perf_counter() - t0, "out_s": len(r.wav) / r.sample_rate, **r.timings}))
"""


def long_run(src: Path, ref: Path, out: Path, model: str, vocoder: str, threads: int) -> dict:
    """Convert in a fresh process and read its peak RSS from ``RUSAGE_CHILDREN``.

    Call it before starting any other child: the counter is the largest of all reaped children.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(src), str(ref), str(out), model, str(threads), vocoder],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"long conversion failed:\n{stderr}")
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {**json.loads(stdout.strip().splitlines()[-1]), "process_wall": wall, "peak_rss_gib": peak_kib / 2**20}


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a .safetensors file or run dir (default: see above)")
    ap.add_argument("--vocoder", default="griffinlim", help="vocoder name (default griffinlim)")
    ap.add_argument("--seconds", type=float, default=None, help="input length of the RTF rows (default 10, quick 5)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per row, median reported (default 3, quick 1)")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="length of the peak-RSS input (default 10)")
    ap.add_argument("--long-threads", type=int, default=1, help="torch threads of the peak-RSS run (default 1)")
    ap.add_argument("--speech", type=Path, help="folder of speaker folders of .wav to convert (default data/corpus, data/corpus-v2)")
    ap.add_argument("--quick", action="store_true", help="shorter: 5 s input, 1 timed run")
    args = ap.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    runs = args.runs or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="vcconv-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # the fresh-process run comes first, while this process has no other child (RUSAGE_CHILDREN)
        model, model_desc = pick_model(args.model, tmp)
        src, ref, src_desc = make_inputs(seconds, tmp, args.speech)
        load0 = os.getloadavg()
        console.print(f"[bold]model[/] {model_desc}\n[bold]vocoder[/] {args.vocoder}\n[bold]input[/] {seconds:g} s: {src_desc}")
        console.print(f"[bold]machine[/] {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, "
                      f"load average {load0[0]:.2f} (1 min) at start")
        wav = sf.read(str(src), dtype="float32")[0]
        n = int(args.long_minutes * 60 * SR)
        long_src = tmp / "long.wav"
        sf.write(long_src, np.tile(wav, int(np.ceil(n / wav.size)))[:n], SR, subtype="PCM_16")
        with console.status(f"converting a {args.long_minutes:g}-minute input in a fresh process..."):
            big = long_run(long_src, ref, tmp / "long_out.wav", model, args.vocoder, args.long_threads)

        conv = Converter(model, args.vocoder, "cpu")
        results = {}
        settings = (("threads 1", 1, False), ("threads 2", 2, False), ("automatic", 0, False),
                    ("threads 2, under load", 2, True), ("automatic, under load", 0, True),
                    ("automatic, one-shot (new reference)", 0, False))
        for label, threads, load in settings:
            with console.status(f"{label}: warm-up + {runs} run(s)..."):
                hog = busy_process() if load else None
                if hog:
                    time.sleep(0.5)  # let it start spinning before the converter looks at the load
                try:
                    results[label] = measure(conv, src, ref, threads, runs, fresh_reference="one-shot" in label)
                finally:
                    if hog:
                        hog.kill()
                        hog.wait()
        load1 = os.getloadavg()

    table = Table(title=f"RTF = compute seconds / audio seconds (median of {runs} after a warm-up, {seconds:g} s input)")
    for col in ("setting", "threads used", "reference", "features", "model", "vocoder", "whole convert()", "CPU s / audio s"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for label, r in results.items():
        table.add_row(label, r["threads"], f"{r['reference']:.4f}", f"{r['features']:.4f}", f"{r['model']:.4f}",
                      f"{r['vocoder']:.4f}", f"{r['total']:.4f}", f"{r['cpu']:.4f}")
    console.print(table)

    t2 = Table(title=f"{args.long_minutes:g}-minute input, fresh process, {args.long_threads} thread(s)")
    for col in ("peak RSS", "process wall", "convert() wall", "RTF", "features", "model", "vocoder"):
        t2.add_column(col, justify="right")
    audio = args.long_minutes * 60
    t2.add_row(f"{big['peak_rss_gib']:.2f} GiB", f"{big['process_wall']:.1f} s", f"{big['wall']:.1f} s",
               f"{big['wall'] / audio:.4f}", f"{big['features'] / audio:.4f}", f"{big['model'] / audio:.4f}",
               f"{big['vocoder'] / audio:.4f}")
    console.print(t2)

    best_model = min(r["model"] for r in results.values())
    auto_idle, auto_load = results["automatic"]["total"], results["automatic, under load"]["total"]
    ok = lambda good: "[green]met[/]" if good else "[red]not met[/]"  # noqa: E731
    console.print(f"goal model RTF <= {GOAL_MODEL_RTF}: best {best_model:.4f} -> {ok(best_model <= GOAL_MODEL_RTF)}")
    rss_note = "" if args.long_minutes >= 10 else f" (measured on {args.long_minutes:g} min, not 10)"
    console.print(f"goal peak RSS < {GOAL_RSS_GIB} GiB for 10 min: {big['peak_rss_gib']:.2f} GiB{rss_note} -> "
                  f"{ok(big['peak_rss_gib'] < GOAL_RSS_GIB)}")
    under, plain = results["threads 2, under load"]["total"], results["threads 2"]["total"]
    console.print(f"oversubscription: threads 2 under load is {under / plain:.1f}x the unloaded threads-2 time; "
                  f"automatic under load is {auto_load / auto_idle:.1f}x the unloaded automatic time; "
                  f"load average {load1[0]:.2f} at the end")
    one_shot = results["automatic, one-shot (new reference)"]["total"]
    console.print(f"goal whole convert() RTF <= {GOAL_CONVERT_RTF} (automatic threads): idle {auto_idle:.4f} -> "
                  f"{ok(auto_idle <= GOAL_CONVERT_RTF)}, under load {auto_load:.4f} -> {ok(auto_load <= GOAL_CONVERT_RTF)}, "
                  f"one-shot with a new reference {one_shot:.4f} -> {ok(one_shot <= GOAL_CONVERT_RTF)}")


if __name__ == "__main__":
    main()
