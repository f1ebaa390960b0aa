"""Cached content front-end features (e.g. whisper encoder states) for training.

A model whose content encoder reads a pretrained front end (``model.content_input``, see
:mod:`vcconv.models.frontends`) trains on features computed once per utterance: the clean
waveform (variant 0) and ``n_augmented`` copies through random channels
(:class:`~vcconv.data.augment.ChannelAugment`, seeded per utterance and variant).  Each file
``CACHE/frontend-<name>-<audio key>-aug<K>/<utt_id>.<digest>.npz`` holds ``feat0 .. featK``
``(dim, T)`` float16 at the model's frame rate and ``mel1 .. melK`` ``(n_mels, T)`` float16, the
log-mels of the augmented copies (the speaker reference's channel augmentation); the clean mel
is the ordinary feature cache's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vcconv.audio import AudioConfig, log_mel
from vcconv.config import AugmentConfig
from vcconv.data.augment import ChannelAugment
from vcconv.data.features import cache_path, prepared_waveform
from vcconv.data.manifest import Utterance
from vcconv.errors import AudioError


def frontend_cache_path(cache_dir: str | Path, name: str, cfg: AudioConfig, n_augmented: int, utt_id: str,
                        audio_path: str | Path) -> Path:
    mel_file = cache_path(cache_dir, cfg, utt_id, audio_path)
    return Path(cache_dir) / f"frontend-{name}-{cfg.key()}-aug{n_augmented}" / mel_file.name


def _utt_seed(utt_id: str) -> int:
    return int(hashlib.sha1(utt_id.encode()).hexdigest()[:8], 16)


def frontend_variants(wav: np.ndarray, cfg: AudioConfig, frontend, augment: ChannelAugment, n_augmented: int,
                      seed: int) -> dict[str, np.ndarray]:
    """Front-end features of ``wav (N,)`` and of ``n_augmented`` channel-augmented copies.

    Returns ``{"feat0": (dim, T), "feat1": ..., "mel1": (n_mels, T), ...}`` float16, ``T`` the
    clean log-mel's frame count.
    """
    n_frames = log_mel(wav, cfg).shape[-1]
    out = {"feat0": frontend(wav, n_frames, cfg.hop_length).astype(np.float16)}
    rng = np.random.default_rng(seed)
    for k in range(1, n_augmented + 1):
        aug, _ = augment(wav, rng)
        aug = np.clip(aug, -1.0, 1.0).astype(np.float32)
        out[f"feat{k}"] = frontend(aug, n_frames, cfg.hop_length).astype(np.float16)
        out[f"mel{k}"] = log_mel(aug, cfg).numpy()[:, :n_frames].astype(np.float16)
    return out


def build_frontend_cache(rows: list[Utterance], cfg: AudioConfig, cache_dir: str | Path, name: str,
                         augment_cfg: AugmentConfig, n_augmented: int = 2,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
    """Compute the missing front-end files (resumable).  Returns ``{utt_id: error}`` for failures."""
    from vcconv.models.frontends import load_frontend

    frontend = load_frontend(name)
    augment = ChannelAugment(augment_cfg, cfg.sample_rate)
    failures: dict[str, str] = {}
    for i, r in enumerate(rows):
        out = frontend_cache_path(cache_dir, name, cfg, n_augmented, r.utt_id, r.path)
        if not out.exists():
            try:
                wav, _ = prepared_waveform(r.path, cfg)
            except AudioError as err:
                failures[r.utt_id] = str(err)
                continue
            arrays = frontend_variants(wav, cfg, frontend, augment, n_augmented, _utt_seed(r.utt_id))
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.stem}.{os.getpid()}.part.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, out)
        if progress and (i % 20 == 0 or i == len(rows) - 1):
            progress(i + 1, len(rows))
    return failures


def load_frontend_cache(rows: list[Utterance], cfg: AudioConfig, cache_dir: str | Path, name: str,
                        n_augmented: int) -> dict[str, dict[str, np.ndarray]]:
    """``{utt_id: {"feat0": ..., "mel1": ...}}`` for every cached row (missing ones skipped)."""
    out = {}
    for r in rows:
        p = frontend_cache_path(cache_dir, name, cfg, n_augmented, r.utt_id, r.path)
        if p.exists():
            with np.load(p) as z:
                out[r.utt_id] = {k: z[k] for k in z.files}
    return out
