"""Rescore the words of an earlier evaluation where greedy whisper looped.

Evaluations before the ASR's loop guard (``vcconv.eval.asr.is_looping``: a text as
repetitive as a decoding loop is decoded again with a 5-wide beam) hold a few
hypotheses of hundreds of made-up words. This re-transcribes the output of exactly
those rows, recomputes their word / character errors, writes ``NAME.asr2.csv`` beside
each CSV (the original is kept) and prints the median and corpus WER before and after.

Usage::

    .venv/bin/python bench/rescore_asr.py runs/test-band/eval_shipped.csv [...]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vcconv.eval.asr import is_looping, transcribe  # noqa: E402
from vcconv.eval.conversion import EVAL_SR, EvalCache, summarize, text_scores, write_csv  # noqa: E402


def rescore_rows(rows: list[dict], hear=None) -> int:
    """Re-transcribe the ``output`` of every row whose ``hyp_text`` loops (``hear(path) -> text``;
    default: the package ASR on the trimmed file) and refresh its error columns in place.
    Returns the number of rows changed."""
    hear = hear or (lambda path: transcribe(EvalCache.load(path), EVAL_SR))
    changed = 0
    for row in rows:
        if not is_looping(row.get("hyp_text") or ""):
            continue
        row.update(text_scores(row["ref_text"], hear(row["output"])))
        changed += 1
    return changed


def _typed(rows: list[dict]) -> list[dict]:
    """CSV strings -> floats where they parse (what :func:`summarize` counts)."""
    out = []
    for row in rows:
        typed = {}
        for k, v in row.items():
            try:
                typed[k] = float(v) if k not in ("ref_text", "hyp_text") else v
            except (TypeError, ValueError):
                typed[k] = v
        out.append(typed)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", type=Path, nargs="+")
    args = ap.parse_args(argv)
    print("| file | rows rescored | median WER before -> after | corpus WER before -> after |")
    print("|---|---|---|---|")
    for path in args.csv:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        before = summarize(_typed(rows))
        changed = rescore_rows(rows)
        after = summarize(_typed(rows))
        if changed:
            write_csv(rows, path.with_suffix(".asr2.csv"))
        print(f"| {path} | {changed} | {before.get('wer_median', float('nan')):.3f} -> "
              f"{after.get('wer_median', float('nan')):.3f} | {before.get('wer_corpus', float('nan')):.3f} -> "
              f"{after.get('wer_corpus', float('nan')):.3f} |")


if __name__ == "__main__":
    main()
