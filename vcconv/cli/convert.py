"""`vcconv convert`: one source utterance to a target voice."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console


@app.command("convert")
def convert_cmd(
    source: Path = typer.Argument(..., help="Audio whose words to keep."),
    target: list[Path] = typer.Option(..., "--target", "-t", help="Reference clip of the target voice (repeat to average)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output WAV."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name in pretrained/ or a .safetensors / run dir; "
                                        "'world' = the training-free WORLD DSP converter (no model file)."),
    vocoder: Optional[str] = typer.Option(None, "--vocoder", help="griffinlim, griffinlim:N, or a vocoder name."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda (default: CUDA if present)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    pitch_shift: float = typer.Option(0.0, "--pitch-shift", help="Move the output pitch by this many semitones "
                                      "(F0-driven vocoder only)."),
    strength: Optional[float] = typer.Option(None, "--strength", help="Conversion strength: 1 = the target's speaker "
                                             "vector; >1 pushes it further from the source's (more target-like, less "
                                             "clear). Default: the model's own (the shipped one's: see its card), else 1.5."),
    f0: str = typer.Option("auto", "--f0", help="F0 of the output: 'transfer' = the source's intonation moved "
                           "to the target's pitch range, 'predict' = read from the converted mel (F0-driven vocoder "
                           "only); 'auto' = transfer when the vocoder takes F0."),
    spectrum_match: Optional[float] = typer.Option(None, "--spectrum-match", help="0-1: move each mel band's mean "
                                                   "and spread toward the reference's after the model (1 = fully). "
                                                   "Default: the model's own (the shipped one's: see its card), else 0."),
    source_mix: Optional[float] = typer.Option(None, "--source-mix", help="0-1: share of the source's own mel mixed "
                                               "back into the model's output (more keeps more words, less of the "
                                               "target voice). Default: the model's own, else 0."),
    source_mix_high: Optional[float] = typer.Option(None, "--source-mix-high", help="0-1: with it, --source-mix is "
                                                    "the share below the model's split frequency (1500 Hz unless "
                                                    "exported otherwise) and this the share above. Default: the "
                                                    "model's own unless --source-mix is given alone."),
    spectrum_spread: Optional[float] = typer.Option(None, "--spectrum-spread", help="0-1: how much of each band's "
                                                    "spread spectrum matching moves (0 = the means only, which keeps "
                                                    "more words). Default: the model's own, else 1."),
    adapt_steps: Optional[int] = typer.Option(None, "--adapt-steps", help="Test-time speaker adaptation: this many "
                                              "steps refine the speaker vector on the reference clips themselves "
                                              "(0 = off; about 15 ms each per second of reference on one thread). "
                                              "Default: the model's own, else 0."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: the cores other programs leave idle)."),
) -> None:
    """Convert SOURCE to the voice of --target and write -o OUTPUT."""
    from vcconv.convert import convert
    from vcconv.errors import VcconvError

    if output.exists() and not force:
        raise VcconvError(f"{output}: exists already (use --force to overwrite)")
    result = convert(source, target, output, model=model, vocoder=vocoder, device=device, pitch_shift=pitch_shift,
                     strength=strength, f0=f0, threads=threads, spectrum_match=spectrum_match,
                     source_mix=source_mix, spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                     adapt_steps=adapt_steps)
    dur = len(result.wav) / result.sample_rate
    t = result.timings
    on = f" on {result.threads} thread(s)" if result.threads else ""
    per_file = sum(v for k, v in t.items() if k != "reference")  # the reference is read once per target voice
    rtf = per_file / dur if dur > 0 else float("nan")
    console.print(f"wrote {output} ({dur:.2f} s, {result.sample_rate} Hz); reference {t.get('reference', 0.0):.2f} s, "
                  f"features {t['features']:.2f} s, model {t['model']:.2f} s, vocoder {t['vocoder']:.2f} s{on}; "
                  f"RTF {rtf:.3f} (reference excluded)", highlight=False, soft_wrap=True)
