"""One table over several trained models: probes, held-out conversion figures, training cost.

Each ``NAME=RUN`` is a training run folder (or a ``.safetensors`` file).  For every
entry the script runs ``vcconv probe`` (cached as ``<out>/<NAME>.probe.json``), reads
the training log (steps, wall time) and, when ``--heldout-root`` holds
``<NAME>/summary.json`` from ``bench/heldout_protocol.py``, the conversion figures.
It prints a Markdown table (paste it into docs) and writes ``<out>/table.json``.

    python bench/compare_models.py plain=runs/cmp/plain adain=runs/cmp/adain \\
        --data data/manifest.tsv --heldout-root runs/cmp-heldout --out runs/cmp-table
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import torch


def training_cost(run: Path) -> dict:
    """``{"steps", "minutes"}`` from a run folder's ``log.csv`` (empty for a bare weights file)."""
    log = run / "log.csv"
    if not log.is_file():
        return {}
    rows = [r for r in csv.DictReader(log.open()) if r.get("split") == "train"]
    if not rows:
        return {}
    # time_s restarts at 0 when a run resumes: add up the segments
    total, last = 0.0, 0.0
    for r in rows:
        t = float(r["time_s"])
        if t < last:
            total += last
        last = t
    return {"steps": int(rows[-1]["step"]), "minutes": (total + last) / 60}


def probe(name: str, run: Path, data: Path, out: Path, max_utts: int) -> dict:
    cache = out / f"{name}.probe.json"
    if cache.is_file():
        res = json.loads(cache.read_text())
        if "speaker_from_content_frames_mlp" in res:
            return res
    from vcconv.convert import resolve_model_path
    from vcconv.eval.probe import run_probes

    res = run_probes(resolve_model_path(str(run)), data, max_utts=max_utts, device="cpu")
    res.pop("info", None)
    cache.write_text(json.dumps(res, indent=1))
    return res


def _get(d: dict, *keys, default=math.nan):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("entries", nargs="+", help="NAME=RUN_DIR_OR_SAFETENSORS")
    ap.add_argument("--data", type=Path, default=Path("data/manifest.tsv"))
    ap.add_argument("--heldout-root", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
    ap.add_argument("--max-utts", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    table = {}
    for entry in args.entries:
        name, _, run = entry.partition("=")
        if not run:
            sys.exit(f"error: '{entry}': expected NAME=RUN")
        run_p = Path(run)
        res = probe(name, run_p, args.data, args.out, args.max_utts)
        row = {
            **training_cost(run_p),
            "speaker<-content frame": _get(res, "speaker_from_content_frames", "accuracy"),
            "speaker<-content (utt vote)": _get(res, "speaker_from_content_frames", "utterance_vote_accuracy"),
            "speaker<-content frame MLP": _get(res, "speaker_from_content_frames_mlp", "accuracy"),
            "speaker<-content MLP (utt vote)": _get(res, "speaker_from_content_frames_mlp", "utterance_vote_accuracy"),
            "speaker chance": _get(res, "speaker_from_content_frames", "chance"),
            "speaker<-speaker vector": _get(res, "speaker_from_speaker_vector", "accuracy"),
            "phone<-content frame": _get(res, "phone_from_content", "accuracy"),
            "phone majority": _get(res, "phone_from_content", "chance"),
            "code-phone NMI": _get(res, "code_phone", "nmi"),
        }
        summary = args.heldout_root / name / "summary.json" if args.heldout_root else None
        if summary is not None and summary.is_file():
            m = json.loads(summary.read_text())["model"]
            row.update({"target win (utt)": m.get("target_win_utt", math.nan),
                        "closed-set id (6)": m.get("id_acc_6_unseen", math.nan),
                        "WER ratio": m.get("wer_ratio_vs_resynth", math.nan),
                        "pairs": m.get("pairs", math.nan)})
        table[name] = row
    (args.out / "table.json").write_text(json.dumps(table, indent=1))

    keys = list(dict.fromkeys(k for r in table.values() for k in r))

    def fmt(k, v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if k == "steps" or k == "pairs":
            return str(int(v))
        if k == "minutes" or k == "WER ratio":
            return f"{v:.2f}"
        return f"{100 * v:.1f} %" if k not in ("target win (utt)", "closed-set id (6)", "code-phone NMI") else f"{v:.3f}"

    print("| model | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, r in table.items():
        print(f"| {name} | " + " | ".join(fmt(k, r.get(k)) for k in keys) + " |")


if __name__ == "__main__":
    main()
