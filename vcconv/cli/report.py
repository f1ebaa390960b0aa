"""`vcconv report`: one self-contained HTML page (players, spectrograms, metrics, embedding map) of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console


@app.command("report")
def report(
    run: Optional[Path] = typer.Argument(
        None, help="Folder holding a pairs CSV and its per-pair eval CSV (*_eval.csv from 'vcconv eval')."
    ),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="HTML file to write (default: RUN/report.html)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Pairs CSV (source,target,output,...)."),
    eval_csv: Optional[Path] = typer.Option(None, "--eval", help="Per-pair CSV written by 'vcconv eval'."),
    max_pairs: int = typer.Option(12, "--max-pairs", min=0, help="Pairs shown with players and spectrograms."),
    embeddings: bool = typer.Option(True, "--embeddings/--no-embeddings", help="Speaker-embedding PCA plot (resemblyzer)."),
    device: Optional[str] = typer.Option(None, help="Speaker-encoder device (default: cuda if available)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the HTML file if it exists."),
) -> None:
    """Write a static HTML report: embedded audio, log-mel spectrograms, metric table, embedding PCA."""
    from vcconv.errors import DataError
    from vcconv.eval.report import build_report, find_run_files

    if eval_csv is None:
        if run is None:
            raise DataError("give a RUN folder, or --eval (and --pairs)")
        found_pairs, eval_csv = find_run_files(run)
        pairs = pairs or found_pairs
    pairs = pairs or eval_csv
    out = out or ((run if run is not None and run.is_dir() else eval_csv.parent) / "report.html")
    if out.exists() and not force:
        raise DataError(f"{out}: exists already (use --force to overwrite)")
    with console.status("writing the report"):
        path = build_report(pairs, eval_csv, out, max_pairs=max_pairs, embeddings=embeddings, device=device)
    size = path.stat().st_size / 1e6
    console.print(f"report: {path} ({size:.1f} MB, from {eval_csv})")
