"""Building blocks shared by every model family: 1-D conv blocks, encoders, AdaIN decoder.

All tensors are channel-first: ``(B, C, T)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance normalisation without affine parameters over time: ``(B, C, T)`` -> same.

    Each channel of each item gets zero mean and unit variance, which strips the
    global (speaker-level) statistics of the features.
    """
    mean = x.mean(dim=2, keepdim=True)
    std = (x.var(dim=2, keepdim=True, unbiased=False) + eps).sqrt()
    return (x - mean) / std


class ConvBlock(nn.Module):
    """Residual block: conv -> [IN] -> act -> conv -> [IN], plus skip.  ``(B, C, T)`` -> ``(B, C, T)``."""

    def __init__(self, channels: int, kernel: int = 5, use_in: bool = True, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.use_in = use_in
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        if self.use_in:
            h = instance_norm(h)
        h = self.dropout(F.leaky_relu(h, 0.2))
        h = self.conv2(h)
        if self.use_in:
            h = instance_norm(h)
        return F.leaky_relu(x + h, 0.2)


class ContentEncoder(nn.Module):
    """Log-mel -> frame-level content code.

    ``(B, n_mels, T)`` -> mean ``(B, content_dim, T)`` and log-variance (same
    shape, used only when the KL term is on).  With ``use_in`` every block and
    the output are instance-normalised (AdaIN-VC); without it this is a plain
    auto-encoder's encoder (the baseline).
    """

    def __init__(self, n_mels: int, channels: int, content_dim: int, n_blocks: int, kernel: int = 5, use_in: bool = True):
        super().__init__()
        self.inp = nn.Conv1d(n_mels, channels, 1)
        self.blocks = nn.ModuleList([ConvBlock(channels, kernel, use_in) for _ in range(n_blocks)])
        self.mean = nn.Conv1d(channels, content_dim, 1)
        self.logvar = nn.Conv1d(channels, content_dim, 1)
        self.use_in = use_in

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(mel)
        if self.use_in:
            # IN right after the 1x1 input projection: any static per-bin offset of the log-mel
            # (a fixed spectral envelope / channel EQ) is removed exactly.
            h = instance_norm(h)
        h = F.leaky_relu(h, 0.2)
        for block in self.blocks:
            h = block(h)
        mu = self.mean(h)
        if self.use_in:
            mu = instance_norm(mu)
        return mu, self.logvar(h)


class SpeakerEncoder(nn.Module):
    """Reference log-mel -> one speaker vector.

    ``(B, n_mels, T)`` -> ``(B, speaker_dim)``.  Strided convs then mean + std
    pooling over time, so any clip length works (at least ~8 frames).
    """

    def __init__(self, n_mels: int, channels: int, speaker_dim: int, n_blocks: int = 3, kernel: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(n_mels, channels, kernel, padding=kernel // 2), nn.LeakyReLU(0.2)]
        for i in range(n_blocks):
            stride = 2 if i < 2 else 1
            layers += [nn.Conv1d(channels, channels, kernel, stride=stride, padding=kernel // 2), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(2 * channels, channels), nn.LeakyReLU(0.2), nn.Linear(channels, speaker_dim))

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.convs(mel)
        stats = torch.cat([h.mean(dim=2), h.std(dim=2, unbiased=False)], dim=1)
        return self.proj(stats)


class AdaIN(nn.Module):
    """Adaptive instance norm: IN(x) * (1 + gamma(s)) + beta(s).  x ``(B, C, T)``, s ``(B, S)``."""

    def __init__(self, channels: int, speaker_dim: int):
        super().__init__()
        self.affine = nn.Linear(speaker_dim, 2 * channels)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(spk).unsqueeze(-1).chunk(2, dim=1)
        return instance_norm(x) * (1 + gamma) + beta


class AdaINBlock(nn.Module):
    """Decoder residual block conditioned on the speaker vector.  ``(B, C, T), (B, S)`` -> ``(B, C, T)``."""

    def __init__(self, channels: int, speaker_dim: int, kernel: int = 5):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.norm1 = AdaIN(channels, speaker_dim)
        self.norm2 = AdaIN(channels, speaker_dim)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.norm1(self.conv1(x), spk), 0.2)
        h = self.norm2(self.conv2(h), spk)
        return F.leaky_relu(x + h, 0.2)


class ConcatBlock(nn.Module):
    """Decoder block for the plain auto-encoder: the speaker vector is concatenated, no normalisation."""

    def __init__(self, channels: int, speaker_dim: int, kernel: int = 5):
        super().__init__()
        self.conv1 = nn.Conv1d(channels + speaker_dim, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        s = spk.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        h = F.leaky_relu(self.conv1(torch.cat([x, s], dim=1)), 0.2)
        return F.leaky_relu(x + self.conv2(h), 0.2)


class Decoder(nn.Module):
    """Content code + speaker vector -> log-mel.  ``(B, D, T), (B, S)`` -> ``(B, n_mels, T)``.

    ``conditioning="adain"`` uses AdaIN blocks (AdaIN-VC); ``"concat"`` the plain baseline.
    """

    def __init__(self, content_dim: int, channels: int, speaker_dim: int, n_mels: int, n_blocks: int,
                 kernel: int = 5, conditioning: str = "adain"):
        super().__init__()
        self.inp = nn.Conv1d(content_dim, channels, 1)
        block = AdaINBlock if conditioning == "adain" else ConcatBlock
        self.blocks = nn.ModuleList([block(channels, speaker_dim, kernel) for _ in range(n_blocks)])
        self.out = nn.Conv1d(channels, n_mels, 1)

    def forward(self, content: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.inp(content), 0.2)
        for block in self.blocks:
            h = block(h, spk)
        return self.out(h)
