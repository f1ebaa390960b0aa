"""Pair-by-pair comparison of two runs of one conversion check, and the rule for replacing a default.

Two runs of ``bench/realspeech_check.py`` (or ``bench/heldout_protocol.py``) over the same pairs
write one ``eval_NAME.csv`` row per conversion.  Medians of 40 per-utterance WERs jump with a word
or two (``docs/evaluation.md``), so settings are compared per pair: the mean of B − A with its 95 %
interval.  :func:`replaces_default` is the rule written down on 2026-12-08: B replaces A when the
per-pair mean of (target id − WER) rises beyond its interval and no figure falls beyond its own.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from vcconv.eval.conversion import mean_ci

COLUMNS = ("id_correct", "target_win", "margin", "wer", "dnsmos_ovrl", "f0_abs_diff_st")
HIGHER_IS_BETTER = {"id_correct": True, "target_win": True, "margin": True, "wer": False,
                    "dnsmos_ovrl": True, "f0_abs_diff_st": False, "id_minus_wer": True}
MUST_NOT_FALL = ("id_correct", "wer", "margin", "dnsmos_ovrl")


@dataclass
class Difference:
    """Per-pair B − A of one column: the two means, the mean difference, its 95 % half-width, n."""

    column: str
    mean_a: float
    mean_b: float
    diff: float
    half: float
    n: int

    def beyond(self) -> int:
        """+1 when B is better beyond the interval, -1 when worse beyond it, else 0."""
        if not self.half == self.half or abs(self.diff) <= self.half:  # NaN half: undecided
            return 0
        better = (self.diff > 0) == HIGHER_IS_BETTER[self.column]
        return 1 if better else -1


def pair_key(row: dict) -> tuple[str, str, str]:
    """A conversion's identity across runs: source file name, channel, target clip name (each run
    writes its own copies of the half clips, so folders differ)."""
    return Path(row["source"]).name, row.get("channel", ""), Path(row["target"]).name


def read_rows(path: str | Path) -> dict[tuple[str, str, str], dict]:
    """``eval_NAME.csv`` -> ``{pair_key: row}``."""
    with open(path, newline="") as f:
        return {pair_key(row): row for row in csv.DictReader(f)}


def _value(row: dict, column: str) -> float | None:
    if column == "id_minus_wer":
        a, b = _value(row, "id_correct"), _value(row, "wer")
        return None if a is None or b is None else a - b
    text = row.get(column, "")
    return float(text) if text not in ("", None) else None


def paired_differences(a: dict, b: dict, columns=COLUMNS + ("id_minus_wer",)) -> list[Difference]:
    """B − A per shared pair for each column (pairs where either value is missing are left out)."""
    shared = sorted(set(a) & set(b))
    out = []
    for column in columns:
        pairs = [(_value(a[k], column), _value(b[k], column)) for k in shared]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        diff, half, n = mean_ci([y - x for x, y in pairs])
        mean_a = mean_ci([x for x, _ in pairs])[0]
        mean_b = mean_ci([y for _, y in pairs])[0]
        out.append(Difference(column, mean_a, mean_b, diff, half, n))
    return out


def replaces_default(differences: list[Difference]) -> bool:
    """The rule: (target id − WER) better beyond its interval, and none of
    :data:`MUST_NOT_FALL` worse beyond its own."""
    by_column = {d.column: d for d in differences}
    if by_column["id_minus_wer"].beyond() != 1:
        return False
    return all(by_column[c].beyond() != -1 for c in MUST_NOT_FALL if c in by_column)
