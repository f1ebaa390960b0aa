"""`vcconv eval`: score converted utterances (speaker similarity, identification, WER, DNSMOS, MCD, F0)."""

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
        False, "--baselines",
        help="Also score, on the same pairs: the WORLD voice changer (the DSP peer), white noise, "
             "a copy of the source and a copy of the reference.",
    ),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Transcribe outputs (WER/CER)."),
    asr_engine: Optional[str] = typer.Option(
        None, "--asr-engine", help="whisper (default when installed) or pocketsphinx."),
    text: str = typer.Option(
        "known", "--text",
        help="WER reference: 'known' (the pairs' text column when present, else the source's own "
             "transcript) or 'source' (always the source's own transcript)."),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="DNSMOS of every output and source."),
    device: Optional[str] = typer.Option(None, help="Speaker-encoder device (default: cuda if available)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Score converted speech against its source and target: means ± 95 % CI per metric."""
    import tempfile

    from rich.table import Table

    from vcconv.errors import DataError
    from vcconv.eval.asr import asr_name
    from vcconv.eval.baselines import copy_reference_pairs, copy_source_pairs, make_noise_pairs, world_peer_pairs
    from vcconv.eval.conversion import TEXT_MODES, evaluate_pairs, headline, read_pairs_csv, write_csv

    out = out or pairs_csv.with_name(f"{pairs_csv.stem}_eval.csv")
    if out.exists() and not force:
        raise DataError(f"{out}: exists already (use --force to overwrite)")
    if text not in TEXT_MODES:
        raise DataError(f"--text must be one of {', '.join(TEXT_MODES)} (got '{text}')")
    pairs = read_pairs_csv(pairs_csv)
    if asr:
        asr_engine = asr_name(asr_engine)
        console.print(f"ASR: {'whisper tiny.en (faster-whisper)' if asr_engine == 'whisper' else 'pocketsphinx'}"
                      + ("" if asr_engine == "whisper" else " (whisper not installed: pip install 'vcconv[eval]')"))
    speaker_refs = _refs_from_manifest(refs, pairs) if refs else None

    def run(label: str, which: list[dict]) -> tuple[list[dict], dict]:
        with progress_callback(label) as cb:
            return evaluate_pairs(which, speaker_refs=speaker_refs, progress=cb, device=device, asr=asr,
                                  quality=quality, text_mode=text, asr_engine=asr_engine)

    rows, summary = run("evaluating", pairs)
    write_csv(rows, out)
    columns = {"model": summary}
    if baselines:
        with tempfile.TemporaryDirectory(prefix="vcconv_baselines_") as tmp:
            with progress_callback("WORLD peer: converting") as cb:
                peer = world_peer_pairs(pairs, Path(tmp) / "world", progress=cb)
            columns["WORLD peer"] = run("WORLD peer", peer)[1]
            columns["noise"] = run("noise baseline", make_noise_pairs(pairs, Path(tmp) / "noise"))[1]
        columns["copy-source"] = run("copy-source baseline", copy_source_pairs(pairs))[1]
        columns["copy-reference"] = run("copy-reference baseline", copy_reference_pairs(pairs))[1]

    table = Table("metric", *columns, title=f"{summary['n']} pairs (mean ± 95 % CI)")
    for col, label, digits in METRIC_LABELS:
        if col in summary["metrics"]:
            table.add_row(label, *(_fmt(s["metrics"].get(col), digits) for s in columns.values()))
    if "wer_median" in summary:
        table.add_row("WER (median of utterances)", *(f"{s.get('wer_median', math.nan):.3f}" for s in columns.values()))
    for key, label in _CORPUS:
        if key in summary:
            table.add_row(label, *(f"{s.get(key, math.nan):.3f}" for s in columns.values()))
    console.print(table)
    console.print(headline(columns))
    if summary["n_failed"]:
        n_failed = summary["n_failed"]
        console.print(f"[yellow]{n_failed} output(s) could not be loaded (see the 'error' column); counted as failures")
    if not baselines:
        console.print("[dim]compare with --baselines (the WORLD peer, noise, copy-source, copy-reference): "
                      "noise wins 'utt vs utt' surprisingly often[/]")
    console.print(f"per-pair scores: {out}")
