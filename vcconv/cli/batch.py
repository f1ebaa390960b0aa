"""`vcconv batch`: convert a folder tree, or the rows of a pairs CSV, resumably."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console
from vcconv.cli.progress import progress_callback

MAX_FAILURES_SHOWN = 10


@app.command("batch")
def batch_cmd(
    in_dir: Optional[Path] = typer.Argument(None, help="Folder of source audio (searched recursively)."),
    target: Optional[list[Path]] = typer.Option(None, "--target", "-t", help="Reference clip of the target voice (repeat to average)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder; mirrors the input tree, .wav names. "
                                          "With --pairs: the folder every output must stay in (default: the CSV's "
                                          "folder; relative outputs are taken from it)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="CSV with columns source,target,output (instead of IN_DIR)."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="With --pairs: also write outputs that resolve "
                                       "outside the output folder (absolute paths elsewhere, '..', symbolic links)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name in pretrained/ or a .safetensors / run dir; "
                                        "'world' = the training-free WORLD DSP converter."),
    vocoder: Optional[str] = typer.Option(None, "--vocoder", help="griffinlim, griffinlim:N, or a vocoder name."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda (default: CUDA if present)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Processes, each with its own model and cores/N threads."),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch threads per worker (0: the cores other "
                                "programs leave idle, divided among the workers)."),
    force: bool = typer.Option(False, "--force", help="Redo outputs that exist already (default: skip them, i.e. resume)."),
    strength: Optional[float] = typer.Option(None, "--strength", help="Conversion strength (default: the model's "
                                             "own; see 'vcconv convert --help')."),
    pitch_shift: float = typer.Option(0.0, "--pitch-shift", help="Semitones (F0-driven vocoder only)."),
    f0: str = typer.Option("auto", "--f0", help="auto | transfer | predict (see 'vcconv convert --help')."),
    spectrum_match: Optional[float] = typer.Option(None, "--spectrum-match", help="0-1 (default: the model's own; "
                                                   "see 'vcconv convert --help')."),
    source_mix: Optional[float] = typer.Option(None, "--source-mix", help="0-1 (default: the model's own; "
                                               "see 'vcconv convert --help')."),
    source_mix_high: Optional[float] = typer.Option(None, "--source-mix-high", help="0-1 (default: the model's own; "
                                                    "see 'vcconv convert --help')."),
    spectrum_spread: Optional[float] = typer.Option(None, "--spectrum-spread", help="0-1 (default: the model's own; "
                                                    "see 'vcconv convert --help')."),
    adapt_steps: Optional[int] = typer.Option(None, "--adapt-steps", help="Test-time speaker adaptation steps, once "
                                              "per target voice and worker (default: the model's own; see 'vcconv convert --help')."),
) -> None:
    """Convert many files: IN_DIR --target REF -o OUT_DIR, or --pairs pairs.csv.

    Existing outputs are skipped, so re-running after an interruption resumes;
    several batches may share an output folder (each output is claimed first).
    Unusable inputs are reported, listed in failures.tsv and skipped.  A pairs
    row whose output would land outside the output folder is refused (listed
    in failures.tsv) unless --allow-outside is given.
    Exit code: 0 when every file was converted or skipped, 1 when some failed,
    2 for a usage error (nothing converted).
    """
    from vcconv.batch import convert_dir, convert_pairs
    from vcconv.errors import VcconvError

    if pairs is not None:
        if in_dir is not None or target:
            raise VcconvError("use either --pairs CSV or IN_DIR --target REF -o OUT_DIR, not both")
        run = lambda cb: convert_pairs(pairs, output_root=output, allow_outside=allow_outside,  # noqa: E731
                                       model=model, vocoder=vocoder, device=device,
                                       force=force, workers=workers, threads=threads, progress=cb,
                                       strength=strength, pitch_shift=pitch_shift, f0=f0,
                                       spectrum_match=spectrum_match, source_mix=source_mix,
                                       spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                                       adapt_steps=adapt_steps)
        what = str(pairs)
    else:
        if in_dir is None:
            raise VcconvError("give IN_DIR --target REF -o OUT_DIR, or --pairs CSV (see 'vcconv batch --help')")
        if not target:
            raise VcconvError("--target REF is required with IN_DIR (the voice to convert to)")
        if output is None:
            raise VcconvError("-o OUT_DIR is required with IN_DIR")
        if allow_outside:
            raise VcconvError("--allow-outside only applies to --pairs (IN_DIR outputs always stay in -o OUT_DIR)")
        run = lambda cb: convert_dir(in_dir, target, output, model=model, vocoder=vocoder, device=device,  # noqa: E731
                                     force=force, workers=workers, threads=threads, progress=cb,
                                     strength=strength, pitch_shift=pitch_shift, f0=f0,
                                       spectrum_match=spectrum_match, source_mix=source_mix,
                                       spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                                       adapt_steps=adapt_steps)
        what = f"{in_dir} -> {output}"
    with progress_callback("converting") as cb:
        summary = run(cb)
    _print_summary(summary, what)
    if summary.failed:
        sys.exit(1)


def _print_summary(s, what: str) -> None:
    from rich.table import Table

    table = Table(title=f"vcconv batch: {what}", show_header=True, title_justify="left")
    table.add_column("converted", justify="right")
    table.add_column("skipped (existing)", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("audio out", justify="right")
    table.add_column("wall time", justify="right")
    table.add_column("RTF", justify="right")
    rtf = "-" if math.isnan(s.rtf) else f"{s.rtf:.3f}"
    table.add_row(str(s.converted), str(s.skipped), f"[red]{s.failed}[/]" if s.failed else "0",
                  f"{s.audio_seconds:.1f} s", f"{s.wall_seconds:.1f} s", rtf)
    console.print(table)
    if s.converted:
        per = ", ".join(f"{k} {v / s.audio_seconds:.3f}" for k, v in s.stage_seconds.items())
        console.print(f"RTF by stage (s per audio s, summed over {s.workers} worker(s) x {s.threads} thread(s)): {per}",
                      highlight=False)
    if s.claimed_elsewhere:
        console.print(f"{s.claimed_elsewhere} file(s) were being converted by another batch sharing this output "
                      "folder; left to it (run again later to check)", highlight=False)
    if s.stale_parts_removed:
        console.print(f"removed {s.stale_parts_removed} temp file(s) left by an interrupted run", highlight=False)
    if s.failures:
        for path, problem in s.failures[:MAX_FAILURES_SHOWN]:
            console.print(f"[red]failed[/] {path}: {problem}", highlight=False, soft_wrap=True)
        more = len(s.failures) - MAX_FAILURES_SHOWN
        tail = f" ({more} more)" if more > 0 else ""
        console.print(f"{s.failed} file(s) failed{tail}; list in {s.failures_file}", highlight=False, soft_wrap=True)
