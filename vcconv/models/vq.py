"""VQ content codes: the content path goes through a learned codebook (VQVC, Wu & Lee 2020).

A discrete bottleneck keeps what many speakers share (phone-like units) and
drops the rest.  The encoder output ``z`` is replaced by its nearest codeword
``q`` (straight-through gradient to the encoder, commitment loss
``beta * ||z - sg(q)||^2``); the codebook is not trained by gradient but by
exponential moving averages of the encoder outputs assigned to each code
(decay 0.99, Laplace-smoothed counts, van den Oord et al. 2017 appendix), and
a code unused for ``dead_code_steps`` training steps is restarted at a random
current encoder output.  The codebook is initialised from the first training
batch's encoder outputs.

The speaker vector comes either from the quantisation residual (VQVC,
``speaker_mode="residual"``): the time mean of ``z - q`` of the reference clip
through a linear layer, so whatever the codes cannot express ends up there; or
from the usual speaker encoder (``speaker_mode="encoder"``).  The decoder is
AdaIN-VC's.  The content encoder has no instance norm by default
(``use_in=False``): with it, ``z`` has zero time mean per channel and the
residual's mean would be a function of the codes alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.errors import ConfigError
from vcconv.models.adain_vc import MelNormalizer
from vcconv.models.layers import ConvBlock, Decoder, SpeakerEncoder, instance_norm


@dataclass
class VQConfig:
    n_mels: int = 80
    channels: int = 128
    content_dim: int = 64  # code dimension
    speaker_dim: int = 128
    enc_blocks: int = 3
    dec_blocks: int = 4
    spk_blocks: int = 3  # speaker_mode="encoder" only
    kernel: int = 5
    use_in: bool = False  # instance norm in the content encoder (see module docstring)
    conditioning: str = "adain"  # "adain" | "concat"
    codebook_size: int = 64
    commitment_beta: float = 0.25
    ema_decay: float = 0.99
    dead_code_steps: int = 200  # restart a code unused for this many training steps
    speaker_mode: str = "residual"  # "residual" (VQVC) | "encoder"
    n_speakers: int = 0  # set by the training loop (unused here)

    def to_dict(self) -> dict:
        return asdict(self)


class VQEncoder(nn.Module):
    """Log-mel -> continuous pre-quantisation code.  ``(B, n_mels, T)`` -> ``(B, content_dim, T)``."""

    def __init__(self, n_mels: int, channels: int, content_dim: int, n_blocks: int, kernel: int = 5, use_in: bool = False):
        super().__init__()
        self.inp = nn.Conv1d(n_mels, channels, 1)
        self.blocks = nn.ModuleList([ConvBlock(channels, kernel, use_in) for _ in range(n_blocks)])
        self.out = nn.Conv1d(channels, content_dim, 1)
        self.use_in = use_in

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.inp(mel)
        if self.use_in:
            h = instance_norm(h)
        h = F.leaky_relu(h, 0.2)
        for block in self.blocks:
            h = block(h)
        return self.out(h)


class EMAQuantizer(nn.Module):
    """Nearest-codeword quantiser with an EMA-updated codebook and dead-code restarts.

    All state is in buffers (saved and resumed with the model): ``codebook (K, D)``,
    ``ema_count (K,)``, ``ema_sum (K, D)``, ``unused_steps (K,)``, ``initialized ()``.
    Updates happen only in training mode.  Under DDP each rank updates its own
    copy and DDP's buffer broadcast makes rank 0's the shared one.
    """

    def __init__(self, n_codes: int, dim: int, decay: float = 0.99, dead_code_steps: int = 200, eps: float = 1e-5):
        super().__init__()
        self.n_codes, self.dim, self.decay, self.dead_code_steps, self.eps = n_codes, dim, decay, dead_code_steps, eps
        codebook = torch.randn(n_codes, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.ones(n_codes))
        self.register_buffer("ema_sum", codebook.clone())
        self.register_buffer("unused_steps", torch.zeros(n_codes, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword (squared Euclidean).  ``(N, D)`` -> ``(N,)`` long."""
        flat = flat.float()
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        return d.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """``z (B, D, T)`` -> straight-through quantised ``(B, D, T)``, codes ``(B, T)`` long and
        ``{"commit", "usage", "perplexity"}`` (commitment MSE before ``beta``; fraction of codes
        used in this batch; ``exp`` of the code entropy in this batch)."""
        b, d, t = z.shape
        flat = z.permute(0, 2, 1).reshape(-1, d)
        if self.training:
            with torch.no_grad():
                self._maybe_init(flat)
        with torch.no_grad():
            codes = self.nearest(flat)
            counts = torch.bincount(codes, minlength=self.n_codes).float()
        q = self.codebook[codes].to(z.dtype)  # (N, D), no gradient: the codebook is a buffer
        commit = F.mse_loss(flat.float(), q.float())
        q_st = flat + (q - flat).detach()  # straight-through: forward q, backward identity to z
        if self.training:
            with torch.no_grad():
                self._ema_update(flat.float(), codes, counts)
        p = counts / counts.sum()
        stats = {
            "commit": commit,
            "usage": (counts > 0).float().mean(),
            "perplexity": torch.exp(-(p * torch.log(p + 1e-10)).sum()),
        }
        return q_st.reshape(b, t, d).permute(0, 2, 1), codes.reshape(b, t), stats

    def _maybe_init(self, flat: torch.Tensor) -> None:
        if bool(self.initialized):
            return
        new = flat[torch.randint(0, flat.shape[0], (self.n_codes,), device=flat.device)].float()
        self.codebook.copy_(new)
        self.ema_sum.copy_(new)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.n_codes * self.eps) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        # dead codes: unused for dead_code_steps training steps -> a random current encoder output
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = (self.unused_steps >= self.dead_code_steps).nonzero().squeeze(1)
        if dead.numel():
            new = flat[torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)]
            self.codebook[dead] = new
            self.ema_sum[dead] = new
            self.ema_count[dead] = 1.0
            self.unused_steps[dead] = 0


class VQVC(nn.Module):
    """Auto-encoder with a vector-quantised content path.  Public methods take raw log-mels ``(B, n_mels, T)``."""

    kind = "vq"
    config_class = VQConfig

    def __init__(self, cfg: VQConfig):
        super().__init__()
        if cfg.speaker_mode not in ("residual", "encoder"):
            raise ConfigError(f"speaker_mode must be 'residual' or 'encoder' (got '{cfg.speaker_mode}')")
        if cfg.codebook_size < 2:
            raise ConfigError(f"codebook_size must be >= 2 (got {cfg.codebook_size})")
        self.cfg = cfg
        self.norm = MelNormalizer(cfg.n_mels)
        self.content_encoder = VQEncoder(cfg.n_mels, cfg.channels, cfg.content_dim, cfg.enc_blocks, cfg.kernel, cfg.use_in)
        self.quantizer = EMAQuantizer(cfg.codebook_size, cfg.content_dim, cfg.ema_decay, cfg.dead_code_steps)
        if cfg.speaker_mode == "residual":
            self.speaker_proj = nn.Linear(cfg.content_dim, cfg.speaker_dim)
        else:
            self.speaker_encoder = SpeakerEncoder(cfg.n_mels, cfg.channels, cfg.speaker_dim, cfg.spk_blocks, cfg.kernel)
        self.decoder = Decoder(cfg.content_dim, cfg.channels, cfg.speaker_dim, cfg.n_mels, cfg.dec_blocks, cfg.kernel, cfg.conditioning)

    # ---------------------------------------------------------------- inference
    def codes(self, mel: torch.Tensor) -> torch.Tensor:
        """Code indices. ``(B, n_mels, T)`` -> ``(B, T)`` long."""
        z = self.content_encoder(self.norm(mel))
        b, d, t = z.shape
        return self.quantizer.nearest(z.permute(0, 2, 1).reshape(-1, d)).reshape(b, t)

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """Quantised content vectors (codewords). ``(B, n_mels, T)`` -> ``(B, content_dim, T)``."""
        return self.quantizer.codebook[self.codes(mel)].permute(0, 2, 1)

    def _speaker_from_normed(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.speaker_mode == "encoder":
            return self.speaker_encoder(x)
        z = self.content_encoder(x)
        b, d, t = z.shape
        flat = z.permute(0, 2, 1).reshape(-1, d)
        with torch.no_grad():
            q = self.quantizer.codebook[self.quantizer.nearest(flat)]
        residual = (flat - q.to(flat.dtype)).reshape(b, t, d).mean(dim=1)  # gradient reaches the encoder
        return self.speaker_proj(residual)

    def speaker(self, mel: torch.Tensor) -> torch.Tensor:
        """Speaker vector of a reference clip. ``(B, n_mels, T)`` -> ``(B, speaker_dim)``."""
        return self._speaker_from_normed(self.norm(mel))

    def decode(self, content: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """``(B, content_dim, T), (B, speaker_dim)`` -> log-mel ``(B, n_mels, T)``."""
        return self.norm.inverse(self.decoder(content, spk))

    def forward(self, source_mel: torch.Tensor, reference_mel: torch.Tensor) -> torch.Tensor:
        """Convert: codes of ``source_mel (B, n_mels, T)`` in the voice of ``reference_mel (B, n_mels, T')``."""
        return self.decode(self.content(source_mel), self.speaker(reference_mel))

    # ----------------------------------------------------------------- training
    def loss(self, batch: dict, step: int = 0) -> dict:
        """L1 reconstruction of ``batch["mel"]`` from its quantised code and the speaker vector of
        ``batch["ref"]``, plus ``beta *`` commitment.  Updates the codebook (EMA, restarts) in
        training mode.  The content encoder reads ``batch["mel_in"]`` (a perturbed copy of the
        segment, e.g. channel-augmented) when present.  Returns ``total, recon, commit, usage, perplexity``."""
        x = self.norm(batch["mel"])
        z = self.content_encoder(self.norm(batch["mel_in"]) if "mel_in" in batch else x)
        q, _, stats = self.quantizer(z)
        spk = self._speaker_from_normed(self.norm(batch["ref"]))
        rec = F.l1_loss(self.decoder(q, spk), x)
        total = rec + self.cfg.commitment_beta * stats["commit"]
        return {"total": total, "recon": rec.detach(), **{k: v.detach() for k, v in stats.items()}}

