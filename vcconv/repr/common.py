"""Parts shared by the auxiliary auto-encoders: conv encoders/decoders, resampling in time,
Gumbel relaxations, temperature schedules and the base class with the common interface.

All tensors are channel-first, ``(B, C, T)``; mels are raw log-mels ``(B, n_mels, T)``
(every model standardises them with its own :class:`MelNormalizer`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.errors import ConfigError
from vcconv.models.layers import ConcatBlock, ConvBlock


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def check_power_of_two(name: str, value: int, largest: int = 16) -> int:
    """``log2(value)``; a :class:`ConfigError` unless ``value`` is 1, 2, 4, ... ``largest``."""
    if not isinstance(value, int) or value < 1 or value > largest or value & (value - 1):
        raise ConfigError(f"{name} must be a power of two between 1 and {largest}, not {value!r}")
    return int(math.log2(value))


def upsample_time(x: torch.Tensor, factor: int, length: int) -> torch.Tensor:
    """Repeat every step ``factor`` times and crop (or edge-pad) to ``length``.  ``(B, C, T')`` -> ``(B, C, length)``."""
    if factor > 1:
        x = x.repeat_interleave(factor, dim=-1)
    if x.shape[-1] >= length:
        return x[..., :length]
    return F.pad(x, (0, length - x.shape[-1]), mode="replicate")


def anneal(step: int, start: float, end: float, steps: int) -> float:
    """Exponential schedule from ``start`` (step 0) to ``end`` (step ``steps`` and after)."""
    if steps <= 0 or start <= 0 or end <= 0:
        return end
    return float(start * (end / start) ** min(1.0, step / steps))


def gumbel_sigmoid(logits: torch.Tensor, tau: float, hard: bool = True) -> torch.Tensor:
    """Binary-concrete relaxation of independent bits: values in (0, 1), exactly 0/1 with ``hard``
    (straight-through: forward the rounded value, backward the relaxed gradient).  Shape kept."""
    u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
    y = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    if hard:
        y = (y > 0.5).to(y) - y.detach() + y
    return y


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool = True, dim: int = 1) -> torch.Tensor:
    """Gumbel-softmax over ``dim`` (one-hot forward, relaxed backward when ``hard``).  Shape kept."""
    return F.gumbel_softmax(logits, tau=tau, hard=hard, dim=dim)


class ConvEncoder(nn.Module):
    """Log-mel (or any features) -> frame code, optionally down-sampled in time.

    ``(B, in_dim, T)`` -> ``(B, out_dim, ceil(T / downsample))``: 1x1 input
    projection, one stride-2 conv (kernel 3) per factor of two, residual conv
    blocks (no instance norm: these codes may keep speaker information), 1x1 output.
    """

    def __init__(self, in_dim: int, channels: int, out_dim: int, n_blocks: int, kernel: int = 5, downsample: int = 1):
        super().__init__()
        n_down = check_power_of_two("downsample", downsample)
        self.downsample = downsample
        self.inp = nn.Conv1d(in_dim, channels, 1)
        self.down = nn.ModuleList([nn.Conv1d(channels, channels, 3, stride=2, padding=1) for _ in range(n_down)])
        self.blocks = nn.ModuleList([ConvBlock(channels, kernel, use_in=False) for _ in range(n_blocks)])
        self.out = nn.Conv1d(channels, out_dim, 1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden features before the output projection: ``(B, channels, T')``."""
        h = F.leaky_relu(self.inp(x), 0.2)
        for conv in self.down:
            h = F.leaky_relu(conv(h), 0.2)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(x))


class ConvDecoder(nn.Module):
    """Code -> standardised log-mel, optionally up-sampled and conditioned on a vector.

    ``(B, in_dim, T'), length, cond (B, cond_dim) | None`` -> ``(B, n_mels, length)``.
    Up-sampling repeats each step ``upsample`` times and smooths with a conv;
    with ``cond_dim > 0`` the blocks concatenate the vector (e.g. a speaker vector).
    """

    def __init__(self, in_dim: int, channels: int, n_mels: int, n_blocks: int, kernel: int = 5,
                 upsample: int = 1, cond_dim: int = 0):
        super().__init__()
        check_power_of_two("upsample", upsample)
        self.upsample = upsample
        self.cond_dim = cond_dim
        self.inp = nn.Conv1d(in_dim, channels, 1)
        self.smooth = nn.Conv1d(channels, channels, kernel, padding=kernel // 2) if upsample > 1 else None
        if cond_dim > 0:
            self.blocks = nn.ModuleList([ConcatBlock(channels, cond_dim, kernel) for _ in range(n_blocks)])
        else:
            self.blocks = nn.ModuleList([ConvBlock(channels, kernel, use_in=False) for _ in range(n_blocks)])
        self.out = nn.Conv1d(channels, n_mels, 1)

    def forward(self, code: torch.Tensor, length: int, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = F.leaky_relu(self.inp(code), 0.2)
        h = upsample_time(h, self.upsample, length)
        if self.smooth is not None:
            h = F.leaky_relu(self.smooth(h), 0.2)
        for block in self.blocks:
            h = block(h, cond) if self.cond_dim > 0 else block(h)
        return self.out(h)


class ReprModel(nn.Module):
    """Interface of every auxiliary auto-encoder (subclasses set ``kind``, ``config_class``, ``norm``).

    * ``loss(batch, step) -> dict`` with ``"total"`` (for :func:`vcconv.train.train`);
    * ``content(mel (B, n_mels, T)) -> (B, D, T)`` frame code at the input frame rate;
    * ``embed(mel) -> (B, E)`` utterance embedding;
    * ``speaker(mel) -> (B, E)``: the utterance embedding unless the family has a
      speaker encoder, so ``vcconv probe`` reports how much speaker identity it holds.
    """

    kind = "repr"
    downsample = 1  # input frames per code step

    def content(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def speaker(self, mel: torch.Tensor) -> torch.Tensor:
        """Utterance-level vector for the speaker probe: ``(B, n_mels, T)`` -> ``(B, E)``."""
        return self.embed(mel)
