"""Cached log-mel features, keyed by :class:`~vcconv.audio.AudioConfig`.

Each utterance's features live in ``CACHE/<cfg.key()>/<utt_id>.npz`` holding
``mel`` (``(n_mels, T)`` float16, after trimming and loudness normalisation)
and ``offset`` (seconds cut from the start by trimming, to line up alignments).
A different front end gets a different folder, so stale features are never used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vcconv.audio import AudioConfig, load_audio, log_mel, normalize_loudness, trim_silence
from vcconv.data.manifest import Utterance
from vcconv.errors import AudioError

log = logging.getLogger(__name__)


def default_cache_dir(manifest_path: str | Path) -> Path:
    return Path(manifest_path).resolve().parent / "cache"


def extract(path: str | Path, cfg: AudioConfig) -> tuple[np.ndarray, float]:
    """Load, trim, normalise and return ``(log_mel (n_mels, T) float32, trim_offset_s)``."""
    wav, offset = prepared_waveform(path, cfg)
    return log_mel(wav, cfg).numpy(), offset


def prepared_waveform(path: str | Path, cfg: AudioConfig) -> tuple[np.ndarray, float]:
    """The waveform the cached features are computed from: loaded at ``cfg.sample_rate``, silence
    trimmed, loudness normalised.  Returns ``((N,) float32, trim_offset_s)``."""
    import librosa

    wav = load_audio(path, cfg.sample_rate)
    _, (start, _) = librosa.effects.trim(wav, top_db=cfg.trim_top_db, frame_length=1024, hop_length=256)
    pad = int(0.05 * cfg.sample_rate)
    offset = max(0, start - pad) / cfg.sample_rate
    wav = normalize_loudness(trim_silence(wav, cfg.trim_top_db, sample_rate=cfg.sample_rate), cfg.target_dbfs)
    return wav, offset


def cache_path(cache_dir: str | Path, cfg: AudioConfig, utt_id: str, audio_path: str | Path) -> Path:
    """Cache file of one utterance: keyed by front end, utterance id *and* audio file, so two
    manifests that reuse an id for different files (VCTK 0.80 and 0.92 side by side) never share."""
    import hashlib

    digest = hashlib.sha1(str(Path(audio_path).resolve()).encode()).hexdigest()[:8]
    return Path(cache_dir) / f"features-{cfg.key()}" / f"{utt_id}.{digest}.npz"


def _extract_one(args: tuple[str, str, dict, str]) -> tuple[str, str | None]:
    utt_id, path, cfg_d, cache_dir = args
    cfg = AudioConfig.from_dict(cfg_d)
    out = cache_path(cache_dir, cfg, utt_id, path)
    if out.exists():
        return utt_id, None
    try:
        mel, offset = extract(path, cfg)
    except AudioError as err:
        return utt_id, str(err)
    out.parent.mkdir(parents=True, exist_ok=True)
    # unique per process: two trainings filling one cache at once must not share a temp file
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.part.npz")
    np.savez(tmp, mel=mel.astype(np.float16), offset=np.float32(offset))
    os.replace(tmp, out)
    return utt_id, None


def build_cache(
    rows: list[Utterance],
    cfg: AudioConfig,
    cache_dir: str | Path,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Compute missing features (resumable).  Returns ``{utt_id: error}`` for files that failed."""
    jobs = [(r.utt_id, r.path, cfg.to_dict(), str(cache_dir)) for r in rows]
    failures: dict[str, str] = {}
    done = 0
    if progress:
        progress(0, len(jobs))
    if workers > 1 and len(jobs) > 50:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_single_thread) as pool:
            for utt_id, err in pool.imap_unordered(_extract_one, jobs, chunksize=16):
                done += 1
                if err:
                    failures[utt_id] = err
                if progress and (done % 50 == 0 or done == len(jobs)):
                    progress(done, len(jobs))
    else:
        for job in jobs:
            utt_id, err = _extract_one(job)
            done += 1
            if err:
                failures[utt_id] = err
            if progress and (done % 20 == 0 or done == len(jobs)):
                progress(done, len(jobs))
    return failures


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def load_cached(rows: list[Utterance], cfg: AudioConfig, cache_dir: str | Path) -> dict[str, tuple[np.ndarray, float]]:
    """``{utt_id: (log_mel (n_mels, T) float16, offset_s)}`` for every cached row (missing ones skipped)."""
    out = {}
    for r in rows:
        p = cache_path(cache_dir, cfg, r.utt_id, r.path)
        if p.exists():
            with np.load(p) as z:
                out[r.utt_id] = (z["mel"], float(z["offset"]))
    return out
