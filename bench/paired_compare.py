#!/usr/bin/env python
"""Compare two runs of a conversion check pair by pair: B − A with 95 % intervals, and the verdict
of the rule for replacing a default (``vcconv.eval.paired``, ``docs/evaluation.md``).

    python bench/paired_compare.py runs/valid/eval_shipped.csv runs/valid/eval_candidate.csv
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vcconv.eval.paired import paired_differences, read_rows, replaces_default  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="eval_NAME.csv of the default (A)")
    ap.add_argument("b", type=Path, help="eval_NAME.csv of the candidate (B), same pairs")
    args = ap.parse_args()
    a, b = read_rows(args.a), read_rows(args.b)
    diffs = paired_differences(a, b)
    print(f"{len(set(a) & set(b))} shared pairs ({len(a)} in A, {len(b)} in B)")
    print(f"| figure | A | B | B − A (95 %) | n |\n|---|---|---|---|---|")
    for d in diffs:
        mark = {1: " ✓", -1: " ✗", 0: ""}[d.beyond()]
        print(f"| {d.column} | {d.mean_a:.3f} | {d.mean_b:.3f} | {d.diff:+.3f} ± {d.half:.3f}{mark} | {d.n} |")
    print("B replaces A by the rule" if replaces_default(diffs) else "B does not replace A by the rule")


if __name__ == "__main__":
    main()
