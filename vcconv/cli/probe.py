"""`vcconv probe`: linear probes of speaker and phone information in a model's frozen codes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console
from vcconv.cli.progress import progress_callback

# (key, label, what a well-disentangled model shows)
_ROWS = (
    ("speaker_from_content", "speaker <- utterance-mean content", "low"),
    ("speaker_from_content_frames", "speaker <- content frame (linear)", "low"),
    ("speaker_from_content_frames_mlp", "speaker <- content frame (MLP)", "low"),
    ("speaker_from_speaker_vector", "speaker <- speaker vector", "high"),
    ("phone_from_content", "phone <- content frame", "high"),
)


def _pct(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


@app.command("probe")
def probe(
    model: str = typer.Argument(..., help="Model name, .safetensors file or training run folder."),
    data: Path = typer.Option(..., "--data", help="Manifest TSV (its feature cache is used; missing features are computed)."),
    split: str = typer.Option("test", "--split", help="Speakers of the speaker probes (default: the held-out ones)."),
    max_utts: int = typer.Option(40, "--max-utts", min=2, help="Utterances per speaker."),
    context: int = typer.Option(0, "--context", min=0, help="Phone probe on frames t-k..t+k concatenated."),
    keep_sil: bool = typer.Option(False, "--keep-sil", help="Keep silence frames in the phone probe."),
    seed: int = typer.Option(0, help="Seed of the utterance split and frame subsampling."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every figure as JSON."),
    device: Optional[str] = typer.Option(None, help="Device (default: cuda if available)."),
) -> None:
    """Linear probes on frozen codes: speaker identity (closed set, unseen speakers) and phone identity."""
    from rich.table import Table

    from vcconv.convert import resolve_model_path
    from vcconv.eval.probe import run_probes

    path = resolve_model_path(model)
    with progress_callback("encoding") as cb:
        res = run_probes(path, data, split=split, max_utts=max_utts, seed=seed, device=device,
                         context=context, keep_sil=keep_sil, progress=cb)
    info = res["info"]
    n = info["n_utts"]
    table = Table("probe", "accuracy", "chance", "train acc.", "n test", "want",
                  title=f"{path} on {len(info['speakers'])} '{split}' speakers "
                        f"({n['probe_train']} + {n['probe_test']} utts; phone probe trained on "
                        f"{len(info['phone_train_speakers'])} training speakers)")
    for key, label, want in _ROWS:
        if key in res:
            r = res[key]
            table.add_row(label, _pct(r["accuracy"]), _pct(r["chance"]), _pct(r["train_accuracy"]), str(r["n_test"]), want)
            if "utterance_vote_accuracy" in r:
                table.add_row("  ... frames summed per utterance", _pct(r["utterance_vote_accuracy"]), _pct(r["chance"]),
                              "", str(n["probe_test"]), want)
    console.print(table)
    if "code_phone" in res:
        c = res["code_phone"]
        console.print(f"codes vs phones: purity {c['purity']:.3f}, phone purity {c['phone_purity']:.3f}, "
                      f"NMI {c['nmi']:.3f} ({c['n_codes']} codes used, {c['n_frames']} frames)")
    for key, why in info["skipped"].items():
        console.print(f"[yellow]{key} skipped: {why}")
    console.print(f"[dim]{info['seconds']:.1f} s (encoding {info['encode_s']:.1f} s)[/]")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": str(path), "manifest": str(data), **res}, indent=2) + "\n")
        console.print(f"figures: {json_out}")
