#!/usr/bin/env python
"""Speed of the training-free WORLD converter (``--model world``): a table, not a test.

RTF (seconds of compute per second of audio) of :class:`vcconv.dsp.world_vc.WorldConverter`,
one thread (WORLD is single-threaded; BLAS is pinned to 1 thread here), split into
features (WORLD analysis), model (statistics, warp, EQ) and vocoder (WORLD synthesis),
median of ``--runs`` runs after a warm-up, on

* the README example: ``examples/source_male.wav`` -> ``examples/target_female.wav``;
* a 60-s input: the example clips joined end to end (processed in 30-s chunks).

The reference profile is computed once (cached) and excluded, as in ``bench_convert.py``.
The machine's load average is printed: other work on the machine makes the wall-clock
figures slower; the CPU-seconds column (this process's CPU time) is less sensitive to it.

Usage::

    .venv/bin/python bench/bench_world.py [--runs 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vcconv.audio import load_audio  # noqa: E402
from vcconv.dsp.world_vc import WorldConverter  # noqa: E402

SR = 16000
EXAMPLES = ROOT / "examples"
console = Console()


def long_input(seconds: float, folder: Path) -> Path:
    """The example clips joined (with 0.3 s gaps) to ``seconds``; written into ``folder``."""
    clips = [load_audio(EXAMPLES / n, SR) for n in ("source_male.wav", "target_male2.wav", "target_female.wav")]
    gap = np.zeros(int(0.3 * SR), np.float32)
    parts, n, k = [], 0, 0
    while n < seconds * SR:
        parts += [clips[k % len(clips)], gap]
        n += len(clips[k % len(clips)]) + len(gap)
        k += 1
    path = folder / f"long_{int(seconds)}s.wav"
    sf.write(path, np.concatenate(parts)[: int(seconds * SR)], SR)
    return path


def measure(conv: WorldConverter, source: Path, reference: Path, runs: int) -> dict:
    conv.convert(source, [reference])  # warm-up: imports, reference profile (cached)
    rows = []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        r = conv.convert(source, [reference])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({**{k: v for k, v in r.timings.items() if k != "reference"}, "wall": wall, "cpu": cpu,
                     "seconds": len(r.wav) / r.sample_rate})
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    return {k: v / med["seconds"] for k, v in med.items() if k != "seconds"} | {"seconds": med["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    console.print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; 1 thread; "
                  f"median of {args.runs} runs", highlight=False)
    conv = WorldConverter(threads=1)
    reference = EXAMPLES / "target_female.wav"
    table = Table("input", "audio s", "features", "model", "vocoder", "RTF (wall)", "CPU s / audio s")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("README example", EXAMPLES / "source_male.wav"),
                 ("60-s input", long_input(60.0, Path(tmp)))]
        for name, source in cases:
            m = measure(conv, source, reference, args.runs)
            table.add_row(name, f"{m['seconds']:.1f}", f"{m['features']:.3f}", f"{m['model']:.3f}",
                          f"{m['vocoder']:.3f}", f"{m['wall']:.3f}", f"{m['cpu']:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()
