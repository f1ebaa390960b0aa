#!/usr/bin/env python
"""What limits a neural vocoder's PESQ? Oracle swaps and the post-filter grid: tables, not tests.

Every row is the mean wide-band PESQ (and STOI) over N utterances of one manifest split,
copy synthesis (trimmed, loudness-normalised original -> log-mel -> vocoder):

* ``oracle``: the vocoder's STFT magnitude with the *original* phase (all of it, or
  only below / above a frequency, or only in voiced / unvoiced frames), the original
  magnitude with the vocoder's phase, and Griffin-Lim 100 for scale.  Tells whether
  phase or magnitude holds the score down.
* ``f0``: the hnf vocoder driven by its own F0 head, by WORLD DIO or by Harvest F0 of
  the original (with the head's or the reference's voicing).
* ``phase``: the post-filter's phase iterations from other start phases: the original's (all of
  it, voiced / unvoiced frames, below / above 1.5 kHz, voiced below 1.5 kHz), plus the minimum phase
  of the target's cepstral envelope, and other Griffin-Lim momenta (``--iters`` iterations each).
* ``postfilter``: the inference post-filter (``postfilter`` = sharpening exponent p,
  ``prior_blend`` = w, see :class:`vcconv.vocoder.neural.HNFConfig`) over a grid.
  Choose it on the ``valid`` split (speakers seen in training, other utterances) and
  report on ``test`` with ``bench/vocoder_eval.py``.

Usage::

    .venv/bin/python bench/vocoder_diagnosis.py oracle --vocoder runs/vocoder-hnf/model.safetensors --split valid -n 16
    .venv/bin/python bench/vocoder_diagnosis.py postfilter --vocoder runs/vocoder-hnf-long/model.safetensors -n 40
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vcconv.audio import AudioConfig, load_audio, log_mel, preprocess  # noqa: E402
from vcconv.data.manifest import read_manifest  # noqa: E402
from vcconv.pitch import extract_f0  # noqa: E402
from vcconv.vocoder import load_vocoder  # noqa: E402

GRID = [(1.0, 0.0), (1.2, 0.0), (1.1, 0.5), (1.2, 0.5), (1.3, 0.5), (1.1, 0.75), (1.2, 0.75), (1.3, 0.75), (1.2, 0.9)]


def scores(ref: np.ndarray, out: np.ndarray, sr: int) -> tuple[float, float]:
    from pesq import pesq
    from pystoi import stoi

    n = min(ref.size, out.size)
    ref, out = ref[:n].astype(np.float64), out[:n].astype(np.float64)
    try:
        p = float(pesq(sr, ref, out, "wb"))
    except Exception:  # noqa: BLE001 - pesq refuses some utterances
        p = float("nan")
    return p, float(stoi(ref, out, sr, extended=False))


def oracle_rows(voc, wav: np.ndarray, mel: torch.Tensor, audio: AudioConfig) -> dict[str, torch.Tensor]:
    win = torch.hann_window(audio.win_length)
    stft = lambda x: torch.stft(x, audio.n_fft, audio.hop_length, audio.win_length, win, center=True,  # noqa: E731
                                pad_mode="reflect", return_complex=True)
    out = voc(mel[None])[0].float()
    n = out.numel()
    istft = lambda s: torch.istft(s, audio.n_fft, audio.hop_length, audio.win_length, win, center=True, length=n)  # noqa: E731
    spec, orig = stft(out), stft(torch.from_numpy(wav))
    frames = min(spec.shape[-1], orig.shape[-1])
    spec, orig = spec[:, :frames], orig[:, :frames]
    mag, ph_voc, ph_orig = spec.abs(), torch.angle(spec), torch.angle(orig)
    freqs = torch.linspace(0, audio.sample_rate / 2, spec.shape[0])[:, None]
    rows = {"vocoder": out, "vocoder magnitude + original phase": istft(mag * torch.exp(1j * ph_orig)),
            "original magnitude + vocoder phase": istft(orig.abs() * torch.exp(1j * ph_voc))}
    from vcconv.vocoder.griffin_lim import refine_phase

    for power in (1.0, 1.2):  # the headroom a better post-filter magnitude would have
        target = orig.abs() ** power
        spec_it = refine_phase(torch.polar(target, ph_voc), target, audio, 8, length=n)
        rows[f"original magnitude^{power:g} + vocoder phase + 8 GL it."] = istft(spec_it)
    for cut in (1000, 2000, 4000):
        rows[f"original phase below {cut} Hz"] = istft(mag * torch.exp(1j * torch.where(freqs < cut, ph_orig, ph_voc)))
        rows[f"original phase above {cut} Hz"] = istft(mag * torch.exp(1j * torch.where(freqs >= cut, ph_orig, ph_voc)))
    if hasattr(voc, "predict_f0"):
        voiced = (voc.predict_f0(mel[None])[0][:frames] > 0)[None]
        rows["original phase in voiced frames"] = istft(mag * torch.exp(1j * torch.where(voiced, ph_orig, ph_voc)))
        rows["original phase in unvoiced frames"] = istft(mag * torch.exp(1j * torch.where(~voiced, ph_orig, ph_voc)))
    return rows


def f0_rows(voc, wav: np.ndarray, mel: torch.Tensor, audio: AudioConfig) -> dict[str, torch.Tensor]:
    if not hasattr(voc, "predict_f0"):
        raise SystemExit("f0: needs an F0-driven vocoder (hnf)")
    frames = mel.shape[-1]
    rows = {"own F0 head": voc(mel[None])[0]}
    for method in ("dio", "harvest"):
        f0 = extract_f0(wav, audio.sample_rate, audio.hop_length, method=method)[:frames]
        f0 = torch.from_numpy(np.pad(f0, (0, frames - f0.size))).float()[None]
        rows[f"{method} F0 of the original"] = voc(mel[None], f0=f0)[0]
        rows[f"{method} F0, head's voicing"] = voc(mel[None], f0=f0, voicing_from_mel=True)[0]
    return rows


def phase_rows(voc, wav: np.ndarray, mel: torch.Tensor, audio: AudioConfig, iters: int = 8) -> dict[str, torch.Tensor]:
    """The post-filter (own F0, prior blend) rebuilt by hand so that its start phase can be swapped."""
    from vcconv.vocoder.griffin_lim import refine_phase
    from vcconv.vocoder.neural import cepstral_envelope, minimum_phase

    out, f0 = voc.synthesize(mel[None])
    n = out.shape[-1]
    spec = voc.stft(out)
    power = spec.real.square() + spec.imag.square()
    log_mag = torch.lerp(0.5 * torch.log(power.clamp(min=1e-14)),
                         voc.postfilter_prior(mel[None].float(), f0)[..., : spec.shape[-1]], voc.cfg.prior_blend)
    target = torch.exp(voc.cfg.postfilter * log_mag)
    unit = lambda s: s * torch.rsqrt((s.real.square() + s.imag.square()).clamp(min=1e-24))  # noqa: E731
    orig = unit(voc.stft(torch.from_numpy(wav).float()[None])[..., : spec.shape[-1]])
    voiced = (f0[:, None, : spec.shape[-1]] > 0).expand_as(target)
    low = (torch.linspace(0, audio.sample_rate / 2, spec.shape[1])[None, :, None] < 1500).expand_as(target)
    rms = out.pow(2).mean().sqrt()

    def render(start: torch.Tensor, momentum: float = 0.99) -> torch.Tensor:
        y = voc.istft(refine_phase(target * start, target, audio, iters, momentum, length=n), length=n)
        return y * (rms / y.pow(2).mean().sqrt().clamp(min=1e-9))

    own = unit(spec)
    rows = {"network's phase (shipped)": render(own)[0]}
    for label, where in (("everywhere", torch.ones_like(voiced)), ("voiced frames", voiced), ("unvoiced frames", ~voiced),
                         ("below 1.5 kHz", low), ("above 1.5 kHz", ~low), ("voiced, below 1.5 kHz", voiced & low)):
        rows[f"original phase, {label}"] = render(torch.where(where, orig, own))[0]
    for lifter in (20, 30):
        mp = unit(minimum_phase(cepstral_envelope(torch.log(target), lifter), audio.n_fft))
        rows[f"+ minimum phase, lifter {lifter}"] = render(own * mp)[0]
    for momentum in (0.4975, 0.8):
        rows[f"momentum {momentum:g}"] = render(own, momentum)[0]
    return rows


def postfilter_rows(voc, wav: np.ndarray, mel: torch.Tensor, audio: AudioConfig,
                    grid: list[tuple[float, float]] = GRID) -> dict[str, torch.Tensor]:
    rows = {}
    saved = voc.cfg.postfilter, voc.cfg.prior_blend
    try:
        for power, blend in grid:
            voc.cfg.postfilter, voc.cfg.prior_blend = power, blend
            rows[f"postfilter {power:g}, prior_blend {blend:g}"] = voc(mel[None])[0]
    finally:
        voc.cfg.postfilter, voc.cfg.prior_blend = saved
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["oracle", "f0", "phase", "postfilter"])
    ap.add_argument("--vocoder", default=None, help="vocoder file or run dir (default: the shipped one)")
    ap.add_argument("--manifest", type=Path, default=ROOT / "data" / "manifest.tsv")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--real", default=None, metavar="SPLIT",
                    help="the real held-out speakers of SPLIT in bench/realspeech_split.json instead of --manifest/--split")
    ap.add_argument("-n", type=int, default=16, help="utterances (seeded shuffle)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--grid", default=None, metavar="P,W;P,W",
                    help="postfilter: the (sharpening, prior blend) pairs to try (default: the built-in grid)")
    ap.add_argument("--iters", type=int, default=None,
                    help="postfilter / phase: phase iterations (default: the vocoder file's postfilter_iters / 8)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    audio = AudioConfig()
    voc = load_vocoder(args.vocoder, audio, "cpu")
    gl = load_vocoder("griffinlim:100", audio, "cpu")
    if args.real:
        from vocoder_eval import pick_utterances, real_split

        manifests, speakers = real_split(args.real)
        rows = pick_utterances(manifests, args.n, args.seed, speakers)
    else:
        rows = read_manifest(args.manifest, args.split)
        random.Random(args.seed).shuffle(rows)
        rows = rows[: args.n]
    if args.iters is not None:
        voc.cfg.postfilter_iters = args.iters
    grid = GRID if not args.grid else [tuple(float(x) for x in pair.split(",")) for pair in args.grid.split(";")]
    make = {"oracle": oracle_rows, "f0": f0_rows,
            "phase": lambda *a: phase_rows(*a, iters=args.iters if args.iters is not None else 8),
            "postfilter": lambda *a: postfilter_rows(*a, grid=grid)}[args.what]
    results: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        wav = preprocess(load_audio(row.path, audio.sample_rate), audio)
        mel = log_mel(torch.from_numpy(wav), audio)
        with torch.no_grad():
            outs = {"Griffin-Lim 100": gl(mel[None])[0], **make(voc, wav, mel, audio)}
        for label, out in outs.items():
            results.setdefault(label, []).append(scores(wav, out.float().numpy(), audio.sample_rate))
    print(f"{args.what}: {len(rows)} utterances of the '{args.real or args.split}' split, vocoder {args.vocoder or 'default'}")
    print(f"| {'system':40s} | PESQ-wb | STOI |\n|---|---|---|")
    summary = {}
    for label, vals in results.items():
        v = np.array(vals, dtype=np.float64)
        summary[label] = (float(np.nanmean(v[:, 0])), float(np.nanmean(v[:, 1])))
        print(f"| {label:40s} | {summary[label][0]:.3f} | {summary[label][1]:.4f} |")
    return summary


if __name__ == "__main__":
    main()
