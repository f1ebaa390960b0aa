"""Adversarial stage of vocoder training: multi-period (HiFi-GAN) and multi-resolution
(UnivNet) discriminators, least-squares GAN losses and feature matching.

The generator keeps its regression losses (multi-resolution STFT + mel); after
``train.gan_after_steps`` the trainer adds ``gan_weight * adversarial + fm_weight * feature
matching``.  Discriminators are training-only: they live in the run's ``last.pt``, never in the
released weights.  Waveforms are ``(B, N)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

PERIODS = (2, 3, 5, 7, 11)
RESOLUTIONS = ((512, 128), (1024, 256), (256, 64))  # (n_fft, hop)


def _conv_stack(convs: nn.ModuleList, out: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv layers then the output conv: ``(B, 1, H, W)`` -> flat logits ``(B, L)`` and every layer's output."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = out(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """Samples folded into ``period`` columns, 2-D convs over (time / period, period)."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for c in channels:
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), (3, 1), padding=(2, 0))))
            c_in = c
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, N)`` -> logits ``(B, L)`` and the feature maps."""
        b, n = wav.shape
        pad = (-n) % self.period
        x = F.pad(wav, (0, pad), mode="reflect" if pad < n else "constant")
        return _conv_stack(self.convs, self.out, x.view(b, 1, -1, self.period))


class ResolutionDiscriminator(nn.Module):
    """2-D convs over one STFT magnitude ``(freq, time)``."""

    def __init__(self, n_fft: int, hop: int, channels: int = 32):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, channels, (7, 5), padding=(3, 2))),
            weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
        ])
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wav.float(), self.n_fft, self.hop, window=self.window, return_complex=True)
        return _conv_stack(self.convs, self.out, torch.log1p(spec.abs())[:, None])  # (B, 1, F, T)


class Discriminators(nn.Module):
    """All period and resolution discriminators.  ``(B, N)`` -> list of (logits, feature maps).

    ``input_gain`` multiplies the waveform first.  Our audio sits at the corpus loudness (-23
    dBFS, RMS ~0.07), where the first layers' default-initialised biases dwarf the signal, every
    leaky ReLU keeps one side and the stack is nearly linear: trained alone on 40 fixed real and
    vocoded segments, the loss stayed at chance (4.0 for 8 parts) after 60 steps even at lr 3e-3.
    Scaled to unit RMS it fell to 3.1 in 60 steps at lr 1e-3 (docs/vocoder.md, GAN stage).
    """

    def __init__(self, periods: tuple[int, ...] = PERIODS, resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS,
                 input_gain: float = 1.0):
        super().__init__()
        self.input_gain = float(input_gain)
        self.parts = nn.ModuleList([PeriodDiscriminator(p) for p in periods]
                                   + [ResolutionDiscriminator(n, h) for n, h in resolutions])

    def forward(self, wav: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        wav = wav * self.input_gain
        return [d(wav) for d in self.parts]


def unit_rms_gain(target_dbfs: float) -> float:
    """Gain that brings audio normalised to ``target_dbfs`` (RMS) to unit RMS."""
    return 10.0 ** (-target_dbfs / 20.0)


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real towards 1, generated towards 0 (``fake`` from a detached waveform)."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for (r, _), (f, _) in zip(real, fake))


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """``(adversarial, feature matching)``: generated towards 1; L1 between the discriminators'
    feature maps of real (no gradient) and generated audio, averaged over layers."""
    adv = sum(torch.mean((1 - f) ** 2) for f, _ in fake)
    fm, n = 0.0, 0
    for (_, feats_r), (_, feats_f) in zip(real, fake):
        for a, b in zip(feats_r, feats_f):
            fm = fm + F.l1_loss(b, a.detach())
            n += 1
    return adv, fm / max(1, n)
