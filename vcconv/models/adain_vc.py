"""AdaIN-VC (Chou, Yeh & Lee 2019): one-shot voice conversion by instance normalisation.

A content encoder whose instance normalisation (no affine) strips speaker-level
statistics, a speaker encoder that pools a reference clip into one vector, and a
decoder whose AdaIN layers take scale and shift from that vector.  The same
class with ``use_in=False, conditioning="concat"`` is the plain auto-encoder
baseline; the adversarial and VQ variants compose these parts too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.errors import ModelError

from vcconv.models.frontends import check_frontend, feature_dim
from vcconv.models.layers import ContentEncoder, Decoder, SpeakerEncoder


@dataclass
class AdaINConfig:
    n_mels: int = 80
    channels: int = 128
    content_dim: int = 16
    speaker_dim: int = 128
    enc_blocks: int = 3
    dec_blocks: int = 4
    spk_blocks: int = 3
    kernel: int = 5
    use_in: bool = True
    conditioning: str = "adain"  # "adain" | "concat"
    kl_weight: float = 0.01
    kl_anneal_steps: int = 2000
    n_speakers: int = 0  # training speakers (used by adversarial variants; 0 = unknown)
    # what the content encoder reads: "mel" (its own log-mel) or a pretrained ASR encoder's
    # features ("whisper-tiny", vcconv.models.frontends); the speaker path always reads the mel
    content_input: str = "mel"

    def to_dict(self) -> dict:
        return asdict(self)


class MelNormalizer(nn.Module):
    """Per-bin standardisation of log-mels with statistics stored as buffers (saved in checkpoints)."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.full((n_mels,), -5.0))
        self.register_buffer("std", torch.full((n_mels,), 2.0))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.clamp(min=1e-3).to(self.std))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel -> standardised."""
        return (mel - self.mean[:, None]) / self.std[:, None]

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std[:, None] + self.mean[:, None]


class AdaINVC(nn.Module):
    """One-shot VC auto-encoder.  Public methods take and return raw log-mels ``(B, n_mels, T)``."""

    kind = "adain"
    config_class = AdaINConfig

    def __init__(self, cfg: AdaINConfig):
        super().__init__()
        self.cfg = cfg
        self.norm = MelNormalizer(cfg.n_mels)
        check_frontend(cfg.content_input)
        self.content_encoder = ContentEncoder(feature_dim(cfg.content_input, cfg.n_mels), cfg.channels, cfg.content_dim, cfg.enc_blocks, cfg.kernel, cfg.use_in)
        self.speaker_encoder = SpeakerEncoder(cfg.n_mels, cfg.channels, cfg.speaker_dim, cfg.spk_blocks, cfg.kernel)
        self.decoder = Decoder(cfg.content_dim, cfg.channels, cfg.speaker_dim, cfg.n_mels, cfg.dec_blocks, cfg.kernel, cfg.conditioning)

    # ---------------------------------------------------------------- inference
    def content(self, mel: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Content code (posterior mean). ``(B, n_mels, T)`` -> ``(B, content_dim, T)``.

        A model whose ``content_input`` is not ``"mel"`` reads ``features (B, dim, T)`` of its
        front end instead (computed from the waveform, see :mod:`vcconv.models.frontends`).
        """
        mu, _ = self.content_encoder(self.encoder_input(mel, features))
        return mu

    def encoder_input(self, mel: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """What the content encoder reads: the standardised mel, or the front end's features."""
        if self.cfg.content_input == "mel":
            return self.norm(mel)
        if features is None:
            raise ModelError(f"this model reads '{self.cfg.content_input}' features: pass features=(B, dim, T)")
        return features

    def speaker(self, mel: torch.Tensor) -> torch.Tensor:
        """Speaker vector of a reference clip. ``(B, n_mels, T)`` -> ``(B, speaker_dim)``."""
        return self.speaker_encoder(self.norm(mel))

    def decode(self, content: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """``(B, content_dim, T), (B, speaker_dim)`` -> log-mel ``(B, n_mels, T)``."""
        return self.norm.inverse(self.decoder(content, spk))

    def forward(self, source_mel: torch.Tensor, reference_mel: torch.Tensor,
                features: torch.Tensor | None = None) -> torch.Tensor:
        """Convert: words of ``source_mel (B, n_mels, T)`` in the voice of ``reference_mel (B, n_mels, T')``."""
        return self.decode(self.content(source_mel, features), self.speaker(reference_mel))

    # ----------------------------------------------------------------- training
    def kl_weight_at(self, step: int) -> float:
        if self.cfg.kl_anneal_steps <= 0:
            return self.cfg.kl_weight
        return self.cfg.kl_weight * min(1.0, step / self.cfg.kl_anneal_steps)

    def loss(self, batch: dict, step: int = 0) -> dict:
        """Reconstruction loss of ``batch["mel"] (B, n_mels, T)`` from its content and a speaker
        vector of ``batch["ref"] (B, n_mels, T')`` (another clip of the same speaker).

        A model with a feature front end reads ``batch["content_in"] (B, dim, T)``.
        If the batch holds ``"mel_in"`` (the same segment with its speaker cues perturbed, see
        ``train.content_warp_prob``), the content encoder reads that instead, so it must become
        invariant to the perturbation while the decoder still rebuilds the unperturbed ``mel``.

        Returns a dict of scalar tensors; ``"total"`` is what to minimise.
        """
        mu, rec, kl = self.reconstruction(batch)
        total = rec + self.kl_weight_at(step) * kl
        return {"total": total, "recon": rec.detach(), "kl": kl.detach()}

    def reconstruction(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The auto-encoder pass shared by every AdaIN-based family.

        Returns the content mean ``(B, content_dim, T)``, the L1 reconstruction loss of the
        standardised ``batch["mel"]`` and the KL term (zero when off or in eval mode).
        """
        mu, pred, x, kl = self.reconstruct(batch)
        return mu, F.l1_loss(pred, x), kl

    def reconstruct(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`reconstruction` before the loss: the content mean ``(B, content_dim, T)``, the
        decoder's standardised mel and the standardised ``batch["mel"]`` (both ``(B, n_mels, T)``),
        and the KL term."""
        x = self.norm(batch["mel"])
        if self.cfg.content_input != "mel":
            content_in = self.encoder_input(batch["mel"], batch.get("content_in"))
        else:
            content_in = self.norm(batch["mel_in"]) if "mel_in" in batch else x
        mu, logvar = self.content_encoder(content_in)
        if self.cfg.kl_weight > 0 and self.training:
            logvar = logvar.clamp(-10, 4)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kl = 0.5 * torch.mean(mu.pow(2) + logvar.exp() - logvar - 1)
        else:
            z, kl = mu, mu.new_zeros(())
        spk = self.speaker_encoder(self.norm(batch["ref"]))
        return mu, self.decoder(z, spk), x, kl
