"""Pair-by-pair comparison of two check runs and the rule for replacing a default (vcconv.eval.paired)."""

import csv

import numpy as np

from vcconv.eval.paired import paired_differences, read_rows, replaces_default

FIELDS = ["source", "target", "channel", "id_correct", "wer", "margin", "dnsmos_ovrl", "target_win", "f0_abs_diff_st"]


def _write(path, folder, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for i, (id_ok, wer, margin, dns) in enumerate(rows):
            w.writerow({"source": f"/{folder}/halves/s{i % 7}.wav", "target": f"/data/t{i // 7}.wav", "channel": "clean",
                        "id_correct": id_ok, "wer": wer, "margin": margin, "dnsmos_ovrl": dns, "target_win": 1,
                        "f0_abs_diff_st": ""})


def test_pairs_match_across_run_folders_and_the_rule_needs_a_resolved_gain_without_a_resolved_loss(tmp_path):
    rng = np.random.default_rng(0)
    n = 49
    base = [(int(rng.random() < 0.5), float(rng.choice([0, 0.25, 0.5, 1.0])), float(rng.normal(0.1, 0.05)),
             float(rng.normal(2.5, 0.2))) for _ in range(n)]
    a = tmp_path / "a.csv"
    _write(a, "runA", base)
    better = [(1, max(0.0, w - 0.25), m, d) for _, w, m, d in base]  # every pair identified, fewer errors
    b = tmp_path / "b.csv"
    _write(b, "runB", better)  # another run folder, the same pairs
    rows_a, rows_b = read_rows(a), read_rows(b)
    assert set(rows_a) == set(rows_b) and len(rows_a) == n
    diffs = {d.column: d for d in paired_differences(rows_a, rows_b)}
    assert diffs["id_minus_wer"].beyond() == 1 and diffs["id_minus_wer"].n == n
    assert diffs["f0_abs_diff_st"].n == 0  # empty column: left out, not a crash
    assert replaces_default(list(diffs.values()))
    # the same gain, but DNSMOS falls by 0.3 on every pair: refused
    worse_quality = [(i, w, m, d - 0.3 + 0.01 * k) for k, (i, w, m, d) in enumerate(better)]
    _write(b, "runB", worse_quality)
    diffs = paired_differences(rows_a, read_rows(b))
    assert {d.column: d for d in diffs}["dnsmos_ovrl"].beyond() == -1
    assert not replaces_default(diffs)
    # noise alone (the same figures, a few pairs shuffled between A and B) decides nothing
    _write(b, "runB", base[1:] + base[:1])
    assert not replaces_default(paired_differences(rows_a, read_rows(b)))
