"""Deep InfoMax (Hjelm et al. 2019) on log-mel frames.

An encoder maps the mel to low-level frame features ``f`` (its first layer,
receptive field ``kernel`` frames) and, through more conv blocks, to frame codes
``z``; the utterance code ``u`` is an MLP of the time-mean of ``z``.  A
discriminator (separable: two projections and a dot product) scores pairs:

* ``global``: ``(u_i, f_j,t)`` for every frame ``t``: matching when ``i == j``;
* ``local``: ``(z_i,t, f_j,t)``: matching when ``i == j``.

Mismatched pairs take the codes of the other items of the batch (codes shuffled
across the batch), so a batch needs at least two items.  The estimator of the
mutual information is the Jensen-Shannon one (``jsd``: softplus losses on
matching / mismatched scores, as in the paper) or ``infonce`` (each code must pick
its own features among the batch's).  ``acc_*`` is the fraction of frames whose
matching pair outscores every mismatched one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.models.adain_vc import MelNormalizer
from vcconv.models.layers import ConvBlock
from vcconv.repr.common import ReprModel, check_choice


@dataclass
class DIMConfig:
    n_mels: int = 80
    channels: int = 128
    code_dim: int = 64  # frame code and utterance code size
    enc_blocks: int = 3
    kernel: int = 5
    mode: str = "both"  # "global" | "local" | "both"
    estimator: str = "jsd"  # "jsd" | "infonce"
    score_dim: int = 128  # discriminator projection size
    global_weight: float = 1.0
    local_weight: float = 1.0
    n_speakers: int = 0  # set by the training loop (unused)

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ("global", "local", "both"))
        check_choice("estimator", self.estimator, ("jsd", "infonce"))

    def to_dict(self) -> dict:
        return asdict(self)


class _Projection(nn.Module):
    """Two-layer 1x1 MLP with a linear shortcut (DIM's encode-and-dot-product critic).  ``(B, C, T)`` -> ``(B, E, T)``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv1d(in_dim, out_dim, 1), nn.ReLU(), nn.Conv1d(out_dim, out_dim, 1))
        self.shortcut = nn.Conv1d(in_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x) + self.shortcut(x)


def mi_loss(scores: torch.Tensor, estimator: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy of pair scores ``(B, B, T)``: ``scores[i, j, t]`` rates code ``i`` with features ``j`` at ``t``.

    Matching pairs lie on the diagonal ``i == j``.  ``jsd``: ``softplus(-pos) + softplus(neg)``
    (minus the JSD lower bound of the MI); ``infonce``: cross-entropy of picking ``j == i``.
    """
    b, _, t = scores.shape
    eye = torch.eye(b, dtype=torch.bool, device=scores.device)[:, :, None].expand(b, b, t)
    target = torch.arange(b, device=scores.device)
    acc = (scores.argmax(dim=1) == target[:, None]).float().mean()  # (B, T): best features for code i
    if b < 2:
        return scores.new_zeros(()), acc
    if estimator == "jsd":
        pos, neg = scores[eye], scores[~eye]
        loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
    else:
        logits = scores.permute(0, 2, 1).reshape(b * t, b)  # row (i, t): features j
        loss = F.cross_entropy(logits, target.repeat_interleave(t))
    return loss, acc


class DeepInfoMax(ReprModel):
    """Deep InfoMax encoder + critic.  Public methods take raw log-mels ``(B, n_mels, T)``."""

    kind = "repr-dim"
    config_class = DIMConfig

    def __init__(self, cfg: DIMConfig):
        super().__init__()
        self.cfg = cfg
        c, d, e = cfg.channels, cfg.code_dim, cfg.score_dim
        self.norm = MelNormalizer(cfg.n_mels)
        self.low = nn.Conv1d(cfg.n_mels, c, cfg.kernel, padding=cfg.kernel // 2)
        self.blocks = nn.ModuleList([ConvBlock(c, cfg.kernel, use_in=False) for _ in range(cfg.enc_blocks)])
        self.to_code = nn.Conv1d(c, d, 1)
        self.to_global = nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(0.2), nn.Linear(d, d))
        # critic: features / codes projected to a shared space, score = dot product / sqrt(E)
        self.feat_proj = _Projection(c, e)
        self.local_proj = _Projection(d, e)
        self.global_proj = _Projection(d, e)

    # ---------------------------------------------------------------- encoder
    def _encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, n_mels, T)`` -> features ``f (B, C, T)``, frame codes ``z (B, D, T)``, utterance code ``u (B, D)``."""
        f = F.leaky_relu(self.low(self.norm(mel)), 0.2)
        h = f
        for block in self.blocks:
            h = block(h)
        z = self.to_code(h)
        u = self.to_global(z.mean(dim=2))
        return f, z, u

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """Frame codes: ``(B, n_mels, T)`` -> ``(B, code_dim, T)``."""
        return self._encode(mel)[1]

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Utterance code: ``(B, n_mels, T)`` -> ``(B, code_dim)``."""
        return self._encode(mel)[2]

    # ---------------------------------------------------------------- training
    def loss(self, batch: dict, step: int = 0) -> dict:
        """MI objective(s) on ``batch["mel"] (B, n_mels, T)``; ``"total"`` is minimised."""
        f, z, u = self._encode(batch["mel"])
        feats = self.feat_proj(f)  # (B, E, T)
        scale = 1.0 / math.sqrt(feats.shape[1])
        total = feats.new_zeros(())
        out = {}
        if self.cfg.mode in ("global", "both"):
            g = self.global_proj(u[:, :, None])[:, :, 0]  # (B, E)
            loss, acc = mi_loss(torch.einsum("ie,jet->ijt", g, feats) * scale, self.cfg.estimator)
            total = total + self.cfg.global_weight * loss
            out.update({"global": loss.detach(), "acc_global": acc})
        if self.cfg.mode in ("local", "both"):
            loc = self.local_proj(z)  # (B, E, T)
            loss, acc = mi_loss(torch.einsum("iet,jet->ijt", loc, feats) * scale, self.cfg.estimator)
            total = total + self.cfg.local_weight * loss
            out.update({"local": loss.detach(), "acc_local": acc})
        return {"total": total, **out}
