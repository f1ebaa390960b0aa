"""One utterance clean and through each channel augmentation, as log-mel spectrograms.

One row a transform, labelled with its setting, all on one colour scale (so gain and noise
show as level changes), plus three chains drawn by the default ``AugmentConfig`` the way
training draws them.  Prints each row's measured check (SNR, RT60 of the RIR, energy above
the cut-off).  Writes ``docs/figures/augmentation.png`` by default.

    python bench/augment_figure.py [--audio examples/source_male.wav] [--out docs/figures/augmentation.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def rows(wav: np.ndarray, sr: int) -> list[tuple[str, np.ndarray, str]]:
    """``[(label, augmented (N,) float32, measured check)]``, clean first."""
    from vcconv.config import AugmentConfig
    from vcconv.data import augment as A

    def above(y: np.ndarray, hz: float) -> str:
        spec = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        f = np.fft.rfftfreq(y.shape[0], 1 / sr)
        return f"energy above {hz:g} Hz: {10 * np.log10(spec[f >= hz].sum() / spec.sum() + 1e-30):.0f} dB"

    rng = np.random.default_rng(0)
    rir = A.synthetic_rir(sr, 0.6, rng, drr_db=3.0)
    out = [("clean", wav, "")]
    out.append(("telephone: 300-3400 Hz, 8 kHz, 8-bit mu-law", A.telephone(wav, sr), ""))
    out[-1] = (*out[-1][:2], above(out[-1][1], 3400))
    for cut in (4000.0, 5500.0):
        y = A.lowpass(wav, sr, cut)
        out.append((f"low-pass {cut / 1000:g} kHz", y, above(y, cut)))
    y = A.mu_law(wav, 8)
    out.append(("mu-law 8 bit", y, f"{len(np.unique(y))} levels"))
    y = A.mu_law(wav, 4)
    out.append(("mu-law 4 bit", y, f"{len(np.unique(y))} levels"))
    out.append(("spectral quantisation (low-bitrate-like): 5 dB steps, bins 35 dB under the frame peak dropped",
                A.spectral_quantise(wav, sr, 5.0, 35.0), ""))
    for kind in A.NOISE_KINDS:
        y = A.add_noise(wav, sr, 10.0, np.random.default_rng(1), kind)
        name = "babble-like" if kind == "babble" else kind
        out.append((f"{name} noise, 10 dB SNR on the active speech", y, f"SNR {A.snr_db(wav, y, sr):.2f} dB"))
    out.append(("reverb: RT60 0.6 s, DRR 3 dB (generated room)", A.reverb(wav, rir, sr),
                f"RIR RT60 by Schroeder: {A.schroeder_rt60(rir, sr):.2f} s"))
    for tilt in (3.0, -3.0):
        out.append((f"EQ tilt {tilt:+g} dB/octave", A.eq_tilt(wav, sr, tilt), ""))
    out.append(("gain -10 dB", A.gain(wav, -10.0), ""))
    aug = A.ChannelAugment(AugmentConfig(), sr)
    for seed in (3, 5, 7):
        y, done = aug(wav, np.random.default_rng(seed))
        out.append((f"default chain, seed {seed}: " + (", ".join(done) or "nothing"), y, ""))
    return out


def render(audio: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vcconv.audio import LOG_FLOOR, AudioConfig, log_mel
    from vcconv.data.features import prepared_waveform

    cfg = AudioConfig()
    wav, _ = prepared_waveform(audio, cfg)  # as training sees it: trimmed, loudness-normalised
    items = rows(wav, cfg.sample_rate)
    mels = [log_mel(y, cfg).numpy() for _, y, _ in items]
    vmax = max(float(m.max()) for m in mels)
    fig, axes = plt.subplots(len(items), 1, figsize=(9, 1.25 * len(items)), sharex=True)
    seconds = mels[0].shape[1] * cfg.hop_length / cfg.sample_rate
    for ax, (label, _, check), mel in zip(axes, items, mels):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=np.log(LOG_FLOOR), vmax=vmax,
                  extent=(0, seconds, 0, cfg.n_mels))
        ax.set_title(label + (f"   [{check}]" if check else ""), fontsize=8, loc="left")
        ax.set_yticks([0, cfg.n_mels])
        ax.set_ylabel("mel", fontsize=7)
        ax.tick_params(labelsize=7)
        print(f"{label:70s} {check}")
    axes[-1].set_xlabel(f"seconds ({audio.name}, {cfg.n_mels} mels to {cfg.f_max / 1000:g} kHz, one colour scale)",
                        fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.part.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    with Image.open(tmp) as im:  # a 128-colour palette: a third of the size, no visible change
        im.convert("RGB").quantize(colors=128).save(tmp, optimize=True)
    os.replace(tmp, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path, default=Path("examples/source_male.wav"))
    ap.add_argument("--out", type=Path, default=Path("docs/figures/augmentation.png"))
    args = ap.parse_args()
    print(render(args.audio, args.out))


if __name__ == "__main__":
    main()
