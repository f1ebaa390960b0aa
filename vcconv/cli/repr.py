"""`vcconv repr train|embed`: auxiliary auto-encoders (DIM, CPC, Quick-Thought, binary codes, unit sequences)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console

repr_app = typer.Typer(help="Self-supervised speech representations: train them, embed audio with them.",
                       no_args_is_help=True)
app.add_typer(repr_app, name="repr")


@repr_app.command("train")
def train_cmd(
    method: str = typer.Option(..., "--method", help="dim, cpc, quick-thought, binary or seq."),
    data: Path = typer.Option(..., "--data", help="Manifest TSV from 'vcconv data prepare' (seq also reads its .phones)."),
    out: Path = typer.Option(..., "--out", help="Run directory (resumes when it holds last.pt)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON or TOML config file."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set mode=local --set batch_size=16."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many steps in total."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop after this many minutes (checkpointed)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: CUDA if present)."),
) -> None:
    """Train a representation model (kind repr-<method>) on a manifest's train split; resumes from --out."""
    from vcconv.cli.progress import make_progress
    from vcconv.repr.api import repr_run_config, train_repr

    cfg = repr_run_config(method, set_, manifest=data, config=config, max_steps=max_steps, time_budget=time_budget)
    with make_progress() as bar:
        task = bar.add_task("training", total=cfg.train.max_steps)

        def on_progress(step: int, total: int, losses: dict) -> None:
            text = " ".join(f"{k}={v:.3f}" for k, v in losses.items() if not k.startswith("acc_k"))
            bar.update(task, completed=step, total=total, description=f"training {text}")

        summary = train_repr(out, data, cfg, device=device, progress=on_progress)
    console.print(f"stopped ({summary['stop']}) at step {summary['steps']} after {summary['wall_s']:.0f} s; "
                  f"best validation loss {summary['best_val']:.4f}; weights: {out / 'model.safetensors'}")
    unit_map = summary.get("unit_map")
    if unit_map and unit_map["n_utts"]:
        console.print(f"unit -> phone map: {unit_map['units_mapped']} units mapped, purity {unit_map['purity']:.3f} "
                      f"on {unit_map['n_frames']} unit steps of {unit_map['n_utts']} utterances")


@repr_app.command("embed")
def embed_cmd(
    model: Path = typer.Argument(..., help="Run directory or .safetensors of a repr model."),
    audio: list[Path] = typer.Argument(..., help="Audio files."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .npz: embeddings (N, E) + frame codes per file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: CUDA if present)."),
) -> None:
    """Utterance embeddings and frame codes of audio files, written as one .npz."""
    from vcconv.repr.api import embed_files, load_repr_model, save_embeddings

    net, cfg = load_repr_model(model, device)
    result = embed_files(net, audio, cfg.audio)
    path = save_embeddings(result, output, force=force)
    emb = result["embeddings"]
    console.print(f"wrote {path}: {emb.shape[0]} embeddings of size {emb.shape[1]} ({cfg.model_kind}), "
                  f"frame codes of size {result['content'][0].shape[0]}")
    for f, units in zip(result["files"], result["unit_strings"] or []):
        console.print(f"[dim]{Path(f).name}:[/] {' '.join(units)}", highlight=False)
        alignment = Path(f).with_suffix(".phones")
        if alignment.is_file():  # the corpus alignment beside the audio: print the true phones under the units
            from vcconv.data.phones import read_alignment

            phones = [p for _, _, p in read_alignment(alignment)]
            console.print(f"[dim]{'phones:'.rjust(len(Path(f).name) + 1)}[/] {' '.join(phones)}", highlight=False)
