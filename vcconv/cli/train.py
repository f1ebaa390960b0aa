"""`vcconv train`: train a voice-conversion model (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console


def build_run_config(model: str, config: Optional[Path], overrides: list[str], max_steps: Optional[int],
                     time_budget: Optional[float]):
    from vcconv.config import RunConfig, apply_overrides, load_config_file
    from vcconv.models import model_config, model_fields

    base = load_config_file(config) if config else {}
    base.setdefault("model_kind", model)
    cfg = RunConfig.from_dict(base)
    cfg = apply_overrides(cfg, overrides, model_fields(cfg.model_kind))
    model_config(cfg.model_kind, cfg.model)  # validate keys now: one clear error before any work
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    if time_budget is not None:
        cfg.train.time_budget_min = time_budget
    return cfg


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Manifest TSV from 'vcconv data prepare'."),
    out: Path = typer.Option(..., "--out", help="Run directory (resumes when it holds last.pt)."),
    model: str = typer.Option("adain", "--model", help="Model family: adain (more in 'vcconv info')."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON or TOML config file."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set model.content_dim=16 --set batch_size=16."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many steps in total."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop after this many minutes (checkpointed)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: CUDA if present)."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Fine-tune: start from this model's weights "
                                             "(.safetensors or run dir; same architecture)."),
) -> None:
    """Train a model on a manifest's train split; checkpoints often and resumes from --out."""
    from vcconv.cli.progress import make_progress
    from vcconv.train import train

    cfg = build_run_config(model, config, set_, max_steps, time_budget)
    with make_progress() as bar:
        task = bar.add_task("training", total=cfg.train.max_steps)

        def on_progress(step: int, total: int, losses: dict) -> None:
            text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
            bar.update(task, completed=step, total=total, description=f"training {text}")

        summary = train(out, data, cfg, device=device, progress=on_progress, sample_fn=None, init_from=init_from)
    console.print(f"stopped ({summary['stop']}) at step {summary['steps']} after {summary['wall_s']:.0f} s; "
                  f"best validation loss {summary['best_val']:.4f}; weights: {out / 'model.safetensors'}")


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run directory (or .safetensors) to export."),
    output: Path = typer.Option(..., "-o", "--output", help="Released weights, e.g. pretrained/adain-base.safetensors."),
    fp16: bool = typer.Option(True, "--fp16/--fp32", help="Store weights as float16 (half the size)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    strength: Optional[float] = typer.Option(None, "--strength", help="Conversion strength stored as this model's "
                                             "default for convert/batch (default: keep the source's, else 1.5)."),
    spectrum_match: Optional[float] = typer.Option(None, "--spectrum-match", help="Spectrum matching (0-1) stored as "
                                                   "this model's default (default: keep the source's, else 0)."),
    source_mix: Optional[float] = typer.Option(None, "--source-mix", help="Source mix (0-1) stored as this model's "
                                               "default (default: keep the source's, else 0)."),
    spectrum_spread: Optional[float] = typer.Option(None, "--spectrum-spread", help="Spectrum-match spread (0-1) "
                                                    "stored as this model's default (default: keep the source's, else 1)."),
    source_mix_high: Optional[float] = typer.Option(None, "--source-mix-high", help="Source mix above the split "
                                                    "frequency (0-1), --source-mix then being the share below it "
                                                    "(default: keep the source's; none = one share for all bands)."),
    source_mix_split_hz: Optional[float] = typer.Option(None, "--source-mix-split-hz", help="Split frequency of a "
                                                        "two-band source mix in Hz (default: keep the source's, else 1500)."),
    adapt_steps: Optional[int] = typer.Option(None, "--adapt-steps", help="Test-time speaker adaptation steps stored "
                                              "as this model's default (default: keep the source's, else 0 = off; "
                                              "learning rate and penalty: vcconv.checkpoint.export_model)."),
) -> None:
    """Export a trained model as safetensors with its config in the metadata (what convert loads)."""
    from vcconv.checkpoint import export_model
    from vcconv.errors import ModelError

    if output.exists() and not force:
        raise ModelError(f"{output}: exists already (use --force to overwrite)")
    info = export_model(run, output, fp16=fp16, strength=strength, spectrum_match=spectrum_match,
                        source_mix=source_mix, spectrum_spread=spectrum_spread,
                        source_mix_high=source_mix_high, source_mix_split_hz=source_mix_split_hz,
                        adapt_steps=adapt_steps)
    console.print(f"wrote {output} ({info['bytes'] / 1e6:.2f} MB, {info['params'] / 1e6:.2f} M parameters); "
                  f"max |log-mel difference| fp16 vs fp32 on a test input: {info['max_diff']:.2e}")
