"""Quick-Thought vectors (Logeswaran & Lee 2018) on speech segments, with an optional
Skip-Thought style decoder (Kiros et al. 2015).

Each training mel is cut into consecutive chunks of ``chunk_frames`` frames.  Two
segment encoders (conv trunk, mean over time, MLP head) ``f`` and ``g`` code every
chunk on its own; the code ``f(s_k)`` must pick ``g(s_{k+1})``, the true next chunk,
among the next chunks of every position and utterance of the batch (softmax
over dot products; no decoder).  ``accuracy`` is how often it does.

With ``skip_thought=True`` a decoder also rebuilds the previous and the next
chunk (standardised mel, L1) from ``f(s_k)`` and a learned direction vector,
weighted by ``recon_weight``.

The representation is the concatenation ``[f; g]`` (as in the paper):
``embed`` codes the whole utterance as one segment; ``content`` gives at each
frame the code of the ``chunk_frames`` window centred on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.models.adain_vc import MelNormalizer
from vcconv.models.layers import ConvBlock
from vcconv.repr.common import ConvEncoder, ReprModel


@dataclass
class QuickThoughtConfig:
    n_mels: int = 80
    channels: int = 128
    code_dim: int = 64  # per encoder (the representation is 2 * code_dim)
    enc_blocks: int = 3
    kernel: int = 5
    chunk_frames: int = 32  # segment length (~0.5 s at hop 16 ms); at most half the training segment is used
    skip_thought: bool = False  # add the decoder of the neighbouring segments
    dec_blocks: int = 2
    recon_weight: float = 1.0
    n_speakers: int = 0  # set by the training loop (unused)

    def to_dict(self) -> dict:
        return asdict(self)


class SegmentEncoder(nn.Module):
    """Conv trunk + head.  ``pooled(x (B, n_mels, T)) -> (B, D)``; ``sliding(x, L) -> (B, D, T)``
    (the code of the ``L``-frame window centred on each frame)."""

    def __init__(self, n_mels: int, channels: int, code_dim: int, n_blocks: int, kernel: int):
        super().__init__()
        self.trunk = ConvEncoder(n_mels, channels, channels, n_blocks, kernel)
        self.head = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.LeakyReLU(0.2), nn.Conv1d(channels, code_dim, 1))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).mean(dim=2, keepdim=True))[:, :, 0]

    def sliding(self, x: torch.Tensor, window: int) -> torch.Tensor:
        h = self.trunk(x)
        t = h.shape[-1]
        window = max(1, min(window, t))
        h = F.avg_pool1d(h, window, stride=1, padding=window // 2, count_include_pad=False)[..., :t]
        return self.head(h)


class NeighbourDecoder(nn.Module):
    """Segment code + direction (0 = previous, 1 = next) -> standardised mel of that segment.

    ``(N, D), (N,) long, length`` -> ``(N, n_mels, length)`` (``length <= max_len``).
    """

    def __init__(self, code_dim: int, channels: int, n_mels: int, n_blocks: int, kernel: int, max_len: int):
        super().__init__()
        self.direction = nn.Embedding(2, code_dim)
        self.inp = nn.Linear(code_dim, channels)
        self.position = nn.Parameter(torch.randn(channels, max_len) * 0.1)
        self.blocks = nn.ModuleList([ConvBlock(channels, kernel, use_in=False) for _ in range(n_blocks)])
        self.out = nn.Conv1d(channels, n_mels, 1)

    def forward(self, code: torch.Tensor, direction: torch.Tensor, length: int) -> torch.Tensor:
        h = self.inp(code + self.direction(direction))[:, :, None] + self.position[None, :, :length]
        h = F.leaky_relu(h, 0.2)
        for block in self.blocks:
            h = block(h)
        return self.out(h)


class QuickThought(ReprModel):
    """Quick-Thought segment encoders (+ optional skip-thought decoder).  Takes raw log-mels ``(B, n_mels, T)``."""

    kind = "repr-quick-thought"
    config_class = QuickThoughtConfig

    def __init__(self, cfg: QuickThoughtConfig):
        super().__init__()
        self.cfg = cfg
        self.norm = MelNormalizer(cfg.n_mels)
        self.f = SegmentEncoder(cfg.n_mels, cfg.channels, cfg.code_dim, cfg.enc_blocks, cfg.kernel)
        self.g = SegmentEncoder(cfg.n_mels, cfg.channels, cfg.code_dim, cfg.enc_blocks, cfg.kernel)
        self.decoder = (
            NeighbourDecoder(cfg.code_dim, cfg.channels, cfg.n_mels, cfg.dec_blocks, cfg.kernel, cfg.chunk_frames)
            if cfg.skip_thought else None
        )  # fmt: skip

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """Code of the window centred on each frame: ``(B, n_mels, T)`` -> ``(B, 2 * code_dim, T)``."""
        x = self.norm(mel)
        w = self.cfg.chunk_frames
        return torch.cat([self.f.sliding(x, w), self.g.sliding(x, w)], dim=1)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The whole utterance coded as one segment: ``(B, n_mels, T)`` -> ``(B, 2 * code_dim)``."""
        x = self.norm(mel)
        return torch.cat([self.f.pooled(x), self.g.pooled(x)], dim=1)

    def chunks(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, n, C, L)`` consecutive chunks, ``L = min(chunk_frames, T // 2)``, ``n = T // L``."""
        b, c, t = x.shape
        length = min(self.cfg.chunk_frames, t // 2)
        if length < 1:
            raise ValueError(f"quick-thought needs at least 2 frames per item, got {t}")
        n = t // length
        return x[:, :, : n * length].reshape(b, c, n, length).permute(0, 2, 1, 3)

    def loss(self, batch: dict, step: int = 0) -> dict:
        """Next-segment classification (+ neighbour reconstruction) on ``batch["mel"] (B, n_mels, T)``."""
        segs = self.chunks(self.norm(batch["mel"]))  # (B, n, C, L)
        b, n, c, length = segs.shape
        flat = segs.reshape(b * n, c, length)
        fc = self.f.pooled(flat).reshape(b, n, -1)
        gc = self.g.pooled(flat).reshape(b, n, -1)
        anchors = fc[:, :-1].reshape(b * (n - 1), -1)
        candidates = gc[:, 1:].reshape(b * (n - 1), -1)
        logits = anchors @ candidates.T  # (N, N): anchor (b, k) vs next-chunk (b', k'+1)
        target = torch.arange(len(logits), device=logits.device)
        cls = F.cross_entropy(logits, target)
        out = {"classify": cls.detach(), "accuracy": (logits.argmax(dim=1) == target).float().mean()}
        total = cls
        if self.decoder is not None:
            nxt = self.decoder(anchors, torch.ones(len(anchors), dtype=torch.long, device=anchors.device), length)
            prev_codes = fc[:, 1:].reshape(b * (n - 1), -1)
            prv = self.decoder(prev_codes, torch.zeros(len(prev_codes), dtype=torch.long, device=anchors.device), length)
            recon = 0.5 * (F.l1_loss(nxt, segs[:, 1:].reshape(-1, c, length))
                           + F.l1_loss(prv, segs[:, :-1].reshape(-1, c, length)))
            total = total + self.cfg.recon_weight * recon
            out["recon"] = recon.detach()
        return {"total": total, **out}
