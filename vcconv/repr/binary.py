"""Binary auto-encoder: every frame coded as ``bits`` binary units, then decoded back to the mel.

The encoder gives one logit per bit and frame; in training the bits are drawn
with a Gumbel-sigmoid (binary concrete) whose temperature is annealed from
``tau_start`` to ``tau_end`` over ``tau_anneal_steps`` (``hard``: exact 0/1
forward, relaxed gradient backward), or taken as the straight-through sign of
``tanh(logit)`` (``binarizer="sign"``).  At inference a bit is ``logit >= 0``.  The
decoder sees only the ±1 code (no speaker vector), so the code must carry
everything it rebuilds.  Loss: L1 on the standardised mel plus ``balance_weight``
times how far each bit's firing rate is from 1/2 (``log 2 - H(p)``, which keeps
bits in use).  ``codes()`` packs the bits of a frame into one integer
(bit ``k`` has value ``2**k``), for code-phone purity and NMI.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from vcconv.errors import ConfigError
from vcconv.models.adain_vc import MelNormalizer
from vcconv.repr.common import ConvDecoder, ConvEncoder, ReprModel, anneal, check_choice, gumbel_sigmoid

MAX_BITS = 30  # codes() must fit an int64 comfortably and stay usable as table indices


@dataclass
class BinaryConfig:
    n_mels: int = 80
    channels: int = 128
    bits: int = 16
    enc_blocks: int = 3
    dec_blocks: int = 3
    kernel: int = 5
    binarizer: str = "gumbel"  # "gumbel" (annealed Gumbel-sigmoid) | "sign" (straight-through sign)
    hard: bool = True  # gumbel: straight-through 0/1 samples (False: relaxed values in training)
    tau_start: float = 2.0
    tau_end: float = 0.3
    tau_anneal_steps: int = 5000
    balance_weight: float = 0.01
    n_speakers: int = 0  # set by the training loop (unused)

    def __post_init__(self) -> None:
        check_choice("binarizer", self.binarizer, ("gumbel", "sign"))
        if not 1 <= self.bits <= MAX_BITS:
            raise ConfigError(f"bits must be between 1 and {MAX_BITS}, not {self.bits}")

    def to_dict(self) -> dict:
        return asdict(self)


class BinaryAE(ReprModel):
    """Frame-wise binary-code auto-encoder.  Takes raw log-mels ``(B, n_mels, T)``."""

    kind = "repr-binary"
    config_class = BinaryConfig

    def __init__(self, cfg: BinaryConfig):
        super().__init__()
        self.cfg = cfg
        self.norm = MelNormalizer(cfg.n_mels)
        self.encoder = ConvEncoder(cfg.n_mels, cfg.channels, cfg.bits, cfg.enc_blocks, cfg.kernel)
        self.decoder = ConvDecoder(cfg.bits, cfg.channels, cfg.n_mels, cfg.dec_blocks, cfg.kernel)
        self.register_buffer("bit_values", 2 ** torch.arange(cfg.bits, dtype=torch.long), persistent=False)

    def logits(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` -> bit logits ``(B, bits, T)``."""
        return self.encoder(self.norm(mel))

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """The ±1 code: ``(B, n_mels, T)`` -> ``(B, bits, T)`` float."""
        return torch.where(self.logits(mel) >= 0, 1.0, -1.0)

    def codes(self, mel: torch.Tensor) -> torch.Tensor:
        """One integer per frame, ``sum_k bit_k * 2**k < 2**bits``: ``(B, n_mels, T)`` -> ``(B, T)`` long."""
        return ((self.logits(mel) >= 0).long() * self.bit_values[:, None]).sum(dim=1)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Mean firing probability of each bit, as ±: ``(B, n_mels, T)`` -> ``(B, bits)``."""
        return 2 * torch.sigmoid(self.logits(mel)).mean(dim=2) - 1

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """±1 code ``(B, bits, T)`` -> log-mel ``(B, n_mels, T)``."""
        return self.norm.inverse(self.decoder(code, code.shape[-1]))

    def tau_at(self, step: int) -> float:
        return anneal(step, self.cfg.tau_start, self.cfg.tau_end, self.cfg.tau_anneal_steps)

    def binarize(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """Logits -> ±1 code (relaxed or straight-through in training, exact at inference)."""
        if not self.training:
            return torch.where(logits >= 0, 1.0, -1.0)
        if self.cfg.binarizer == "sign":
            s = torch.tanh(logits)
            return s + (torch.where(s >= 0, 1.0, -1.0) - s).detach()
        return 2 * gumbel_sigmoid(logits, self.tau_at(step), self.cfg.hard) - 1

    def loss(self, batch: dict, step: int = 0) -> dict:
        """Reconstruction of ``batch["mel"] (B, n_mels, T)`` from its binary code (+ bit balance)."""
        x = self.norm(batch["mel"])
        logits = self.encoder(x)
        recon = F.l1_loss(self.decoder(self.binarize(logits, step), x.shape[-1]), x)
        p = torch.sigmoid(logits).mean(dim=(0, 2)).clamp(1e-6, 1 - 1e-6)  # (bits,) firing rates
        entropy = -(p * p.log() + (1 - p) * (1 - p).log())
        balance = (math.log(2) - entropy).mean()
        total = recon + self.cfg.balance_weight * balance
        return {"total": total, "recon": recon.detach(), "balance": balance.detach(),
                "bit_entropy": (entropy.mean() / math.log(2)).detach(), "tau": torch.tensor(self.tau_at(step))}
