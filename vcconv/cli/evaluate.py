"""`vcconv eval`: score converted utterances (speaker similarity, identification, WER, MCD, F0)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console
from vcconv.cli.progress import progress_callback
from vcconv.eval.conversion import METRIC_LABELS

REFS_PER_SPEAKER = 5

_CORPUS = (
    ("wer_corpus", "WER (corpus)"),
    ("cer_corpus", "CER (corpus)"),
    ("wer_source_corpus", "WER of the source (corpus)"),
)


def _refs_from_manifest(manifest: Path, pairs: list[dict]) -> dict[str, list[str]]:
    """Up to 5 utterances per speaker named in the pairs, preferring files the pairs do not use."""
    from vcconv.data.manifest import read_manifest

    speakers = {p.get(k, "") for p in pairs for k in ("source_speaker", "target_speaker")} - {""}
    if not speakers:
        from vcconv.errors import DataError

        raise DataError("--refs needs source_speaker / target_speaker columns in the pairs CSV")
    roles = ("source", "target", "output", "parallel_target")
    used = {str(Path(p[k]).resolve()) for p in pairs for k in roles if p.get(k)}
    by_speaker: dict[str, list] = {}
    for utt in sorted(read_manifest(manifest), key=lambda u: u.utt_id):
        if utt.speaker in speakers:
            by_speaker.setdefault(utt.speaker, []).append(utt)
    refs = {}
    for spk, utts in by_speaker.items():
        fresh = [u.path for u in utts if str(Path(u.path).resolve()) not in used]
        refs[spk] = (fresh or [u.path for u in utts])[:REFS_PER_SPEAKER]
    missing = sorted(speakers - set(refs))
    if missing:
        console.print(f"[yellow]not in {manifest}: {', '.join(missing)} (their pair files stand in as references)")
    return refs


def _fmt(metric: dict | None, digits: int) -> str:
    if not metric or metric["n"] == 0:
        return "-"
    mean, half = metric["mean"], metric["ci95"]
    return f"{mean:.{digits}f}" + (f" ± {half:.{digits}f}" if math.isfinite(half) else "")


@app.command("eval")
def evaluate(
    pairs_csv: Path = typer.Argument(
        ..., help="CSV with columns source,target,output (+ source_speaker, target_speaker, text, parallel_target)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Per-pair CSV (default: PAIRS_CSV stem + '_eval.csv')."),
    refs: Optional[Path] = typer.Option(
        None, "--refs", help="Manifest TSV: up to 5 utterances per pair speaker become the closed-set candidates."
    ),
    baselines: bool = typer.Option(
        False, "--baselines", help="Also score white noise and a copy of the source on the same pairs."
    ),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Transcribe outputs with pocketsphinx (WER/CER)."),
    device: Optional[str] = typer.Option(None, help="Speaker-encoder device (default: cuda if available)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Score converted speech against its source and target: means ± 95 % CI per metric."""
    import tempfile

    from rich.table import Table

    from vcconv.errors import DataError
    from vcconv.eval.baselines import copy_source_pairs, make_noise_pairs
    from vcconv.eval.conversion import evaluate_pairs, read_pairs_csv, write_csv

    out = out or pairs_csv.with_name(f"{pairs_csv.stem}_eval.csv")
    if out.exists() and not force:
        raise DataError(f"{out}: exists already (use --force to overwrite)")
    pairs = read_pairs_csv(pairs_csv)
    speaker_refs = _refs_from_manifest(refs, pairs) if refs else None

    def run(label: str, which: list[dict]) -> tuple[list[dict], dict]:
        with progress_callback(label) as cb:
            return evaluate_pairs(which, speaker_refs=speaker_refs, progress=cb, device=device, asr=asr)

    rows, summary = run("evaluating", pairs)
    write_csv(rows, out)
    columns = {"model": summary}
    if baselines:
        with tempfile.TemporaryDirectory(prefix="vcconv_noise_") as tmp:
            columns["noise"] = run("noise baseline", make_noise_pairs(pairs, tmp))[1]
        columns["copy of source"] = run("copy baseline", copy_source_pairs(pairs))[1]

    table = Table("metric", *columns, title=f"{summary['n']} pairs (mean ± 95 % CI)")
    for col, label, digits in METRIC_LABELS:
        if col in summary["metrics"]:
            table.add_row(label, *(_fmt(s["metrics"].get(col), digits) for s in columns.values()))
    for key, label in _CORPUS:
        if key in summary:
            table.add_row(label, *(f"{s.get(key, math.nan):.3f}" for s in columns.values()))
    console.print(table)
    if summary["n_failed"]:
        n_failed = summary["n_failed"]
        console.print(f"[yellow]{n_failed} output(s) could not be loaded (see the 'error' column); counted as failures")
    if not baselines:
        console.print("[dim]compare with --baselines: noise wins 'utt vs utt' surprisingly often[/]")
    console.print(f"per-pair scores: {out}")
