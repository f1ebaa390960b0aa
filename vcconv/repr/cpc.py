"""Contrastive Predictive Coding (van den Oord, Li & Vinyals 2018) on log-mel frames.

A conv encoder maps the mel to codes ``z`` (optionally at half the frame rate or
less, ``downsample``); a GRU reads them into a context ``c_t`` that has seen
``z_1 .. z_t``.  For each horizon ``k = 1 .. n_predict`` a linear map ``W_k``
predicts ``z_{t+k}`` from ``c_t``; the prediction must score the true future code
above ``n_negatives`` codes drawn from the batch (``negatives="batch"``: any
utterance, any time) or from the same utterance (``"sequence"``: the speaker is
no help, so the code must carry what changes within an utterance).  The loss
is InfoNCE (cross-entropy of picking the true code, mean over horizons);
``accuracy`` is how often the true code wins (``acc_k<k>`` per horizon).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.models.adain_vc import MelNormalizer
from vcconv.repr.common import ConvEncoder, ReprModel, check_choice, check_power_of_two, upsample_time


@dataclass
class CPCConfig:
    n_mels: int = 80
    channels: int = 128
    code_dim: int = 64  # z
    context_dim: int = 128  # c (GRU state)
    enc_blocks: int = 2
    kernel: int = 5
    downsample: int = 2  # input frames per code step (1, 2, 4)
    n_predict: int = 4  # horizons k = 1 .. n_predict (code steps)
    n_negatives: int = 16
    negatives: str = "batch"  # "batch" | "sequence"
    content_from: str = "context"  # what content() returns: "context" (c) or "encoder" (z)
    n_speakers: int = 0  # set by the training loop (unused)

    def __post_init__(self) -> None:
        check_power_of_two("downsample", self.downsample, 4)
        check_choice("negatives", self.negatives, ("batch", "sequence"))
        check_choice("content_from", self.content_from, ("context", "encoder"))

    def to_dict(self) -> dict:
        return asdict(self)


class CPC(ReprModel):
    """CPC encoder + autoregressive context + per-horizon predictors.  Takes raw log-mels ``(B, n_mels, T)``."""

    kind = "repr-cpc"
    config_class = CPCConfig

    def __init__(self, cfg: CPCConfig):
        super().__init__()
        self.cfg = cfg
        self.downsample = cfg.downsample
        self.norm = MelNormalizer(cfg.n_mels)
        self.encoder = ConvEncoder(cfg.n_mels, cfg.channels, cfg.code_dim, cfg.enc_blocks, cfg.kernel, cfg.downsample)
        self.gru = nn.GRU(cfg.code_dim, cfg.context_dim, batch_first=True)
        self.predictors = nn.ModuleList([nn.Linear(cfg.context_dim, cfg.code_dim) for _ in range(cfg.n_predict)])

    def encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n_mels, T)`` -> codes ``z (B, code_dim, T')`` and context ``c (B, context_dim, T')``, ``T' = ceil(T / downsample)``."""
        z = self.encoder(self.norm(mel))
        c, _ = self.gru(z.transpose(1, 2))
        return z, c.transpose(1, 2)

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """Context (or encoder) codes at the input frame rate: ``(B, n_mels, T)`` -> ``(B, D, T)``."""
        z, c = self.encode(mel)
        return upsample_time(c if self.cfg.content_from == "context" else z, self.downsample, mel.shape[-1])

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Time-mean of the context: ``(B, n_mels, T)`` -> ``(B, context_dim)``."""
        return self.encode(mel)[1].mean(dim=2)

    def _negatives(self, n_rows: int, b: int, t: int, rows_b: torch.Tensor, device) -> torch.Tensor:
        """Flat indices ``(n_rows, n_negatives)`` into the ``B * T'`` codes."""
        k = self.cfg.n_negatives
        if self.cfg.negatives == "sequence":
            return rows_b[:, None] * t + torch.randint(0, t, (n_rows, k), device=device)
        return torch.randint(0, b * t, (n_rows, k), device=device)

    def loss(self, batch: dict, step: int = 0) -> dict:
        """InfoNCE over horizons on ``batch["mel"] (B, n_mels, T)``."""
        z, c = self.encode(batch["mel"])
        b, d, t = z.shape
        z_flat = z.transpose(1, 2).reshape(b * t, d)
        c_t = c.transpose(1, 2)  # (B, T', H)
        total, accs, out = z.new_zeros(()), [], {}
        used = 0
        for k, pred_k in enumerate(self.predictors, start=1):
            if t - k < 1:
                break
            pred = pred_k(c_t[:, : t - k]).reshape(-1, d)  # (N, D), rows (b, s) predict z[b, s + k]
            target = z[:, :, k:].transpose(1, 2).reshape(-1, d)
            rows_b = torch.arange(b, device=z.device).repeat_interleave(t - k)
            neg = z_flat[self._negatives(pred.shape[0], b, t, rows_b, z.device)]  # (N, K, D)
            logits = torch.cat([(pred * target).sum(-1, keepdim=True), torch.einsum("nd,nkd->nk", pred, neg)], dim=1)
            loss_k = F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=z.device))
            acc_k = (logits.argmax(dim=1) == 0).float().mean()
            total = total + loss_k
            accs.append(acc_k)
            out[f"acc_k{k}"] = acc_k
            used += 1
        if used == 0:
            raise ValueError(f"CPC needs more than 1 code step; got {t} (input of {batch['mel'].shape[-1]} frames)")
        return {"total": total / used, "accuracy": torch.stack(accs).mean(), **out}
