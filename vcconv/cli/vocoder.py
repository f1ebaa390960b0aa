"""`vcconv vocoder train` and `vcconv vocode`: neural vocoder training and copy synthesis."""

from __future__ import annotations

from pathlib import Path

import typer

from vcconv.cli import app, console

vocoder_app = typer.Typer(help="Train and export neural vocoders (mel -> waveform).", no_args_is_help=True)
app.add_typer(vocoder_app, name="vocoder")


@vocoder_app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Manifest TSV (its train split is used; valid for validation)."),
    out: Path = typer.Option(..., "--out", help="Run directory (resumes when it holds last.pt)."),
    arch: str = typer.Option("hnf", "--arch", help="hnf (harmonic-plus-noise, F0-driven; the shipped one), istft (Vocos-style) or mag (learned magnitude + Griffin-Lim; also a post-filter prior, see export --magnitude-prior)."),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Minutes of training in total (resumes count)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many steps in total."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set dim=128 --set batch_size=8 --set num_threads=1."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: CUDA if present)."),
    init_from: Path | None = typer.Option(None, "--init-from", help="Fine-tune from this vocoder (.safetensors or run "
                                          "dir, same --arch); --set model keys change its config."),
) -> None:
    """Train a neural vocoder on random 0.5-1 s segments; checkpoints every 2 minutes and resumes from --out."""
    from vcconv.cli.progress import make_progress
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    cfg = vocoder_config(arch, set_, max_steps=max_steps, time_budget=time_budget)
    with make_progress() as bar:
        task = bar.add_task("training", total=cfg.train.max_steps)

        def on_progress(step: int, total: int, losses: dict) -> None:
            text = " ".join(f"{k}={v:.3f}" for k, v in losses.items() if k in ("total", "mel", "sc", "f0"))
            bar.update(task, completed=step, total=total, description=f"training {text}")

        summary = train_vocoder(out, data, cfg, device=device, progress=on_progress, init_from=init_from)
    console.print(f"stopped ({summary['stop']}) at step {summary['steps']} after {summary['train_s']:.0f} s of "
                  f"training; validation loss {summary['best_val']:.4f}; weights: {out / 'model.safetensors'}")


@vocoder_app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Vocoder run directory (or a vocoder .safetensors)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .safetensors (e.g. pretrained/vocoder-hnf.safetensors)."),
    fp16: bool = typer.Option(False, "--fp16", help="Store the weights as float16 (half the size)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    postfilter: float | None = typer.Option(None, "--postfilter", min=0.5, max=2.0,
                                            help="Spectral sharpening exponent stored in the file's config "
                                            "(1 = off; default: keep the run's)."),
    prior_blend: float | None = typer.Option(None, "--prior-blend", min=0.0, max=1.0,
                                             help="Post-filter: fraction by which the output's log-magnitude is "
                                             "pulled towards the mel's pseudo-inverse (0 = off; default: keep the run's)."),
    postfilter_iters: int | None = typer.Option(None, "--postfilter-iters", min=0, max=200,
                                                help="Post-filter: Griffin-Lim iterations that refine the vocoder's "
                                                "own phase (0 = off; default: keep the run's)."),
    postfilter_given_f0: float | None = typer.Option(None, "--postfilter-given-f0", min=0.0, max=2.0,
                                                     help="Sharpening where a given or shifted F0 drives the "
                                                     "vocoder (conversions); 0 = the same as --postfilter."),
    magnitude_prior: str | None = typer.Option(None, "--magnitude-prior", help="A 'mag' vocoder (run dir or "
                                               "file) whose learned magnitude the post-filter blends towards "
                                               "instead of the mel's pseudo-inverse; stored in the output. "
                                               "'pinv': drop a stored one (back to the pseudo-inverse)."),
) -> None:
    """Write a run's weights as a standalone vocoder file (config in the metadata)."""
    from vcconv.errors import VcconvError
    from vcconv.vocoder.neural import (
        attach_magnitude_prior,
        detach_magnitude_prior,
        load_neural_vocoder,
        save_vocoder,
    )

    if output.exists() and not force:
        raise VcconvError(f"{output}: exists already (use --force to overwrite)")
    model = load_neural_vocoder(run, "cpu")
    for key, value in (("postfilter", postfilter), ("prior_blend", prior_blend), ("postfilter_iters", postfilter_iters),
                       ("postfilter_given_f0", postfilter_given_f0)):
        if value is not None and not hasattr(model.cfg, key):
            raise VcconvError(f"{run}: a '{model.kind}' vocoder has no post-filter ({key})")
        if value is not None:
            value = int(value) if key == "postfilter_iters" else float(value)
            setattr(model.cfg, key, value)
            model.run_config.model[key] = value
    if magnitude_prior == "pinv":
        detach_magnitude_prior(model)
    elif magnitude_prior is not None:
        attach_magnitude_prior(model, load_neural_vocoder(magnitude_prior, "cpu"), magnitude_prior)
    save_vocoder(model, output, fp16=fp16, cfg=model.run_config)
    post = (f", postfilter {model.cfg.postfilter:g}, prior blend {model.cfg.prior_blend:g}, phase iterations "
            f"{model.cfg.postfilter_iters}{', learned prior' if model.cfg.prior_net else ''}"
            if hasattr(model.cfg, "postfilter") else "")
    console.print(f"wrote {output} ({model.kind}, {model.param_count() / 1e6:.2f} M parameters, "
                  f"{'fp16' if fp16 else 'fp32'}{post})")


@app.command("vocode")
def vocode_cmd(
    source: Path = typer.Argument(..., help="Audio file, or a log-mel .npy of shape (n_mels, T)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output WAV."),
    vocoder: str | None = typer.Option(None, "--vocoder", help="griffinlim, griffinlim:N, a vocoder name in pretrained/, or a path (default: the shipped neural vocoder)."),
    pitch_shift: float = typer.Option(0.0, "--pitch-shift", help="Semitones (hnf vocoder only)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda (default: CUDA if present)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: the cores other programs leave idle)."),
) -> None:
    """Copy synthesis: turn SOURCE into a mel and back into a waveform with a vocoder."""
    from vcconv.errors import VcconvError

    if output.exists() and not force:
        raise VcconvError(f"{output}: exists already (use --force to overwrite)")
    from vcconv.vocoder import vocode_file

    r = vocode_file(source, output, vocoder, device, pitch_shift, threads=threads)
    on = f", {r['threads']} thread(s)" if r["threads"] else ""
    console.print(f"wrote {output} ({r['seconds']:.2f} s) with {r['vocoder']} in {r['vocoder_s']:.2f} s "
                  f"(RTF {r['vocoder_s'] / max(r['seconds'], 1e-9):.3f}{on})")
