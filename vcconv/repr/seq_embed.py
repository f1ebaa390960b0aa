"""Sequence as embedding: speech -> a short sequence of discrete units -> speech, with the unit
sequence pushed to look like a phone sequence (after Liu et al. 2018/2019, "sequence-to-sequence
auto-encoder with a discrete middle layer" and SeqRQ-AE).

* Encoder: conv stack down-sampling time by ``downsample`` (4: one unit per 64 ms at
  hop 16 ms, about the rate of phones), logits over ``vocab_size`` units.
* Units: Gumbel-softmax, temperature annealed ``tau_start -> tau_end`` over
  ``tau_anneal_steps``; ``hard``: one-hot forward, relaxed gradient backward.
* Decoder: unit one-hots -> mel at the input rate (L1 on the standardised mel),
  conditioned on a speaker vector of ``batch["ref"]`` (another clip of the same
  speaker) when ``use_speaker``, so the units need not carry the voice.
* Discriminator (unpaired, ``adv_weight > 0``): a small conv net over one-hot
  sequences tells real phone sequences -- read from the ``.phones`` alignments of
  the training split of ``phone_manifest``, at the unit rate -- from generated unit
  sequences.  It learns on ``BCE(real, 1) + BCE(fake.detach(), 0)``; the encoder
  gets the non-saturating ``adv_weight * BCE(D(fake), 1)`` through a frozen copy
  of the discriminator's weights, so one loss and one optimiser serve both
  players.  Unit ``i`` faces phone ``PHONES[i]``, so ``vocab_size`` must be at
  least ``len(PHONES)`` (extra units never appear in real sequences).

The phone pool is loaded lazily on the first training ``loss`` call (or given
with :meth:`SeqEmbed.set_phone_pool`); without alignments the adversarial term is
skipped with a warning.  :func:`fit_unit_map` learns a majority unit -> phone
map on aligned data, stored in the weights for :meth:`SeqEmbed.unit_strings`.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vcconv.data.phones import PHONES, frame_labels, read_alignment
from vcconv.errors import ConfigError
from vcconv.models.adain_vc import MelNormalizer
from vcconv.models.layers import SpeakerEncoder
from vcconv.repr.common import ConvDecoder, ConvEncoder, ReprModel, anneal, check_power_of_two, gumbel_softmax, upsample_time

log = logging.getLogger(__name__)


@dataclass
class SeqConfig:
    n_mels: int = 80
    channels: int = 128
    vocab_size: int = len(PHONES)  # units V (>= len(PHONES) when adv_weight > 0)
    downsample: int = 4  # input frames per unit
    enc_blocks: int = 2
    dec_blocks: int = 3
    kernel: int = 5
    use_speaker: bool = True  # condition the decoder on a speaker vector of batch["ref"]
    speaker_dim: int = 64
    spk_blocks: int = 2
    tau_start: float = 2.0
    tau_end: float = 0.5
    tau_anneal_steps: int = 5000
    hard: bool = True
    adv_weight: float = 0.05  # 0 = plain discrete auto-encoder
    disc_channels: int = 64
    phone_manifest: str = ""  # manifest whose training split's .phones files feed the discriminator
    frame_hop_s: float = 0.016  # hop of the input frames (AudioConfig.hop_length / sample_rate)
    max_phone_seqs: int = 5000
    n_speakers: int = 0  # set by the training loop (unused)

    def __post_init__(self) -> None:
        check_power_of_two("downsample", self.downsample)
        if self.vocab_size < 2:
            raise ConfigError(f"vocab_size must be at least 2, not {self.vocab_size}")
        if self.adv_weight > 0 and self.vocab_size < len(PHONES):
            raise ConfigError(f"vocab_size must be at least {len(PHONES)} (the phone set) when adv_weight > 0")

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceDiscriminator(nn.Module):
    """One-hot(-ish) sequences ``(B, V, T')`` -> realness logits ``(B, T')`` (a patch discriminator, ~9 steps wide)."""

    def __init__(self, vocab: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(vocab, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(channels, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def phone_sequences(manifest: str | Path, hop_s: float, split: str = "train", max_seqs: int = 5000,
                    seed: int = 0) -> list[torch.Tensor]:
    """Phone-id sequences ``[(L,) long, ...]`` of ``manifest``'s aligned ``split`` rows, one id per ``hop_s``.

    Steps no known phone covers are dropped; at most ``max_seqs`` rows (seeded choice).
    """
    from vcconv.data.manifest import read_manifest

    rows = [r for r in read_manifest(manifest, split) if r.phones and Path(r.phones).is_file()]
    if len(rows) > max_seqs:
        rows = random.Random(seed).sample(rows, max_seqs)
    out = []
    for r in rows:
        segments = read_alignment(r.phones)
        if not segments:
            continue
        n = int(math.ceil(segments[-1][1] / hop_s))
        ids = [i for i in frame_labels(segments, n, hop_s, offset_s=hop_s / 2) if i >= 0]
        if ids:
            out.append(torch.tensor(ids, dtype=torch.long))
    return out


class SeqEmbed(ReprModel):
    """Discrete-unit sequence auto-encoder with a phone-sequence discriminator.  Takes raw log-mels ``(B, n_mels, T)``."""

    kind = "repr-seq"
    config_class = SeqConfig

    def __init__(self, cfg: SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.downsample = cfg.downsample
        v = cfg.vocab_size
        self.norm = MelNormalizer(cfg.n_mels)
        self.encoder = ConvEncoder(cfg.n_mels, cfg.channels, v, cfg.enc_blocks, cfg.kernel, cfg.downsample)
        spk_dim = cfg.speaker_dim if cfg.use_speaker else 0
        self.speaker_encoder = (
            SpeakerEncoder(cfg.n_mels, cfg.channels, cfg.speaker_dim, cfg.spk_blocks, cfg.kernel) if cfg.use_speaker else None
        )
        self.decoder = ConvDecoder(v, cfg.channels, cfg.n_mels, cfg.dec_blocks, cfg.kernel, cfg.downsample, spk_dim)
        self.discriminator = SequenceDiscriminator(v, cfg.disc_channels) if cfg.adv_weight > 0 else None
        # unit -> phone id (-1: not mapped); filled by fit_unit_map, saved with the weights
        self.register_buffer("unit_phone", torch.full((v,), -1, dtype=torch.long))
        self._phone_pool: list[torch.Tensor] | None = None

    # ---------------------------------------------------------------- inference
    def logits(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` -> unit logits ``(B, V, ceil(T / downsample))``."""
        return self.encoder(self.norm(mel))

    def units(self, mel: torch.Tensor) -> torch.Tensor:
        """The unit sequence: ``(B, n_mels, T)`` -> ``(B, ceil(T / downsample))`` long."""
        return self.logits(mel).argmax(dim=1)

    def codes(self, mel: torch.Tensor) -> torch.Tensor:
        """Unit ids at the input frame rate (each unit repeated ``downsample`` times), so they line up
        with :meth:`content` and the probe's frame labels: ``(B, n_mels, T)`` -> ``(B, T)`` long."""
        return upsample_time(self.units(mel)[:, None], self.downsample, mel.shape[-1])[:, 0]

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        """Unit posteriors at the input frame rate: ``(B, n_mels, T)`` -> ``(B, V, T)``."""
        return upsample_time(self.logits(mel).softmax(dim=1), self.downsample, mel.shape[-1])

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Bag of units (mean posterior): ``(B, n_mels, T)`` -> ``(B, V)``."""
        return self.logits(mel).softmax(dim=1).mean(dim=2)

    def speaker(self, mel: torch.Tensor) -> torch.Tensor:
        """Speaker vector ``(B, speaker_dim)`` (the bag of units without a speaker encoder)."""
        if self.speaker_encoder is None:
            return self.embed(mel)
        return self.speaker_encoder(self.norm(mel))

    def decode(self, units: torch.Tensor, length: int, ref_mel: torch.Tensor | None = None) -> torch.Tensor:
        """Unit ids ``(B, T')`` (+ a reference clip ``(B, n_mels, T_ref)``) -> log-mel ``(B, n_mels, length)``."""
        onehot = F.one_hot(units, self.cfg.vocab_size).transpose(1, 2).float()
        spk = self.speaker(ref_mel) if self.speaker_encoder is not None else None
        return self.norm.inverse(self.decoder(onehot, length, spk))

    def unit_strings(self, mel: torch.Tensor, collapse: bool = False) -> list[list[str]]:
        """Each item's unit sequence as phone names where :func:`fit_unit_map` mapped the unit,
        else ``"u<id>"``; ``collapse`` merges repeats.  ``(B, n_mels, T)`` -> ``B`` lists."""
        mapped = self.unit_phone.tolist()
        out = []
        for seq in self.units(mel).tolist():
            names = [PHONES[mapped[u]] if mapped[u] >= 0 else f"u{u}" for u in seq]
            if collapse:
                names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
            out.append(names)
        return out

    # ---------------------------------------------------------------- training
    def set_phone_pool(self, sequences: list[torch.Tensor]) -> None:
        """Real phone-id sequences ``[(L,) long, ...]`` at the unit rate for the discriminator."""
        self._phone_pool = [s.long().cpu() for s in sequences if len(s) > 0]

    def _ensure_phone_pool(self) -> list[torch.Tensor]:
        if self._phone_pool is None:
            pool: list[torch.Tensor] = []
            if self.cfg.phone_manifest:
                pool = phone_sequences(self.cfg.phone_manifest, self.cfg.frame_hop_s * self.downsample,
                                       max_seqs=self.cfg.max_phone_seqs)
            if not pool:
                log.warning("repr-seq: no phone alignments (phone_manifest=%r): adversarial term off",
                            self.cfg.phone_manifest)
            self.set_phone_pool(pool)
        return self._phone_pool

    def _real_batch(self, b: int, t: int, device) -> torch.Tensor:
        """``b`` random crops of ``t`` steps from the phone pool, one-hot ``(b, V, t)`` (short ones tiled)."""
        pool = self._phone_pool
        crops = []
        for i in torch.randint(0, len(pool), (b,)).tolist():
            seq = pool[i]
            if len(seq) < t:
                seq = seq.repeat(math.ceil(t / len(seq)))
            s = int(torch.randint(0, len(seq) - t + 1, ()).item())
            crops.append(seq[s : s + t])
        ids = torch.stack(crops).to(device)
        return F.one_hot(ids, self.cfg.vocab_size).transpose(1, 2).float()

    def tau_at(self, step: int) -> float:
        return anneal(step, self.cfg.tau_start, self.cfg.tau_end, self.cfg.tau_anneal_steps)

    def loss(self, batch: dict, step: int = 0) -> dict:
        """Reconstruction of ``batch["mel"] (B, n_mels, T)`` through its unit sequence (+ adversarial terms)."""
        x = self.norm(batch["mel"])
        logits = self.encoder(x)
        if self.training:
            units = gumbel_softmax(logits, self.tau_at(step), self.cfg.hard, dim=1)
        else:
            units = F.one_hot(logits.argmax(dim=1), self.cfg.vocab_size).transpose(1, 2).to(logits)
        spk = None
        if self.speaker_encoder is not None:
            spk = self.speaker_encoder(self.norm(batch.get("ref", batch["mel"])))
        recon = F.l1_loss(self.decoder(units, x.shape[-1], spk), x)
        probs = logits.softmax(dim=1).mean(dim=(0, 2))
        perplexity = torch.exp(-(probs * probs.clamp_min(1e-9).log()).sum())
        out = {"recon": recon.detach(), "perplexity": perplexity.detach(), "tau": torch.tensor(self.tau_at(step))}
        total = recon
        if self.discriminator is not None and self._ensure_phone_pool():
            real = self._real_batch(units.shape[0], units.shape[-1], units.device)
            d_real, d_fake = self.discriminator(real), self.discriminator(units.detach())
            d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            frozen = {n: p.detach() for n, p in self.discriminator.named_parameters()}
            g_logits = torch.func.functional_call(self.discriminator, frozen, (units,))
            g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            total = total + d_loss + self.cfg.adv_weight * g_loss
            d_acc = 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            out.update({"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_acc": d_acc})
        return {"total": total, **out}


@torch.no_grad()
def fit_unit_map(model: SeqEmbed, manifest: str | Path, audio=None, split: str = "train", max_utts: int = 500,
                 seed: int = 0) -> dict:
    """Map each unit to the phone it most often covers on ``manifest``'s aligned ``split`` rows
    (features from its cache, computed when missing) and store the map in ``model.unit_phone``.

    Returns ``{"purity", "n_frames", "units_mapped", "n_utts"}`` (purity: fraction of unit
    steps whose phone is their unit's majority phone; ``n_utts == 0`` leaves the map unchanged).
    """
    from vcconv.audio import AudioConfig
    from vcconv.data.features import build_cache, default_cache_dir, load_cached
    from vcconv.data.manifest import read_manifest

    audio = audio or AudioConfig()
    rows = [r for r in read_manifest(manifest, split) if r.phones and Path(r.phones).is_file()]
    if len(rows) > max_utts:
        rows = random.Random(seed).sample(rows, max_utts)
    cache_dir = default_cache_dir(manifest)
    feats = load_cached(rows, audio, cache_dir)
    missing = [r for r in rows if r.utt_id not in feats]
    if missing:
        build_cache(missing, audio, cache_dir)
        feats.update(load_cached(missing, audio, cache_dir))
    v, n_ph = model.cfg.vocab_size, len(PHONES)
    counts = np.zeros((v, n_ph), np.int64)
    hop = audio.hop_length / audio.sample_rate
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n_utts = 0
    for r in rows:
        if r.utt_id not in feats:
            continue
        mel, offset = feats[r.utt_id]
        units = model.units(torch.as_tensor(mel.astype(np.float32), device=device)[None])[0].cpu().numpy()
        step = hop * model.downsample
        labels = np.asarray(frame_labels(read_alignment(r.phones), len(units), step,
                                         offset + hop * (model.downsample - 1) / 2))
        keep = labels >= 0
        np.add.at(counts, (units[keep], labels[keep]), 1)
        n_utts += 1
    model.train(was_training)
    total = int(counts.sum())
    if n_utts == 0 or total == 0:
        return {"purity": float("nan"), "n_frames": 0, "units_mapped": 0, "n_utts": n_utts}
    mapping = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)
    model.unit_phone.copy_(torch.as_tensor(mapping, dtype=torch.long))
    return {"purity": float(counts.max(axis=1).sum() / total), "n_frames": total,
            "units_mapped": int((mapping >= 0).sum()), "n_utts": n_utts}
