"""Baselines that a meaningful metric must reject.

A conversion figure means something only next to what a meaningless output
scores on the same pairs.  Two cheap ones:

* **noise** (:func:`noise_like`, :func:`make_noise_pairs`): white noise at the
  source's RMS and length.  It has no speaker and no words, yet on engine voices
  it beat the source in "cos to target > cos to source" ~80 % of the time;
* **copy of the source** (:func:`copy_source_pairs`): the output is the source
  itself: perfect WER, zero conversion; target-win and identification must be ~0;
* **copy of the reference** (:func:`copy_reference_pairs`): the output is the
  target's reference clip: perfect identity, none of the source's words (WER ~1);
* **the DSP peer** (:func:`world_peer_pairs`): the training-free WORLD voice
  changer (``vcconv convert --model world``) on the same pairs, the figure a
  learned model has to beat on real speech.

An untrained model (same architecture, random weights) is one more baseline;
converting with it is the caller's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def noise_like(wav: np.ndarray, seed: int | None = 0) -> np.ndarray:
    """White Gaussian noise with the RMS and length of ``wav``.  ``(N,)`` -> ``(N,)`` float32 in [-1, 1]."""
    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
    noise = np.random.default_rng(seed).standard_normal(wav.size)
    noise *= rms / max(float(np.sqrt(np.mean(noise**2))), 1e-12) if wav.size else 0.0
    return np.clip(noise, -1.0, 1.0).astype(np.float32)


def copy_source_pairs(pairs: Sequence[Mapping]) -> list[dict]:
    """The same pairs with ``output`` replaced by ``source`` (the do-nothing conversion)."""
    return [{**p, "output": p["source"]} for p in pairs]


def copy_reference_pairs(pairs: Sequence[Mapping]) -> list[dict]:
    """The same pairs with ``output`` replaced by ``target`` (the reference clip itself)."""
    return [{**p, "output": p["target"]} for p in pairs]


def world_peer_pairs(pairs: Sequence[Mapping], out_dir: str | Path, progress=None) -> list[dict]:
    """Convert every pair with the WORLD voice changer into ``out_dir`` (kept: a rerun reuses
    finished files).  ``progress(done, total)`` after each pair.

    Returns:
        the pairs with ``output`` pointing at the peer's conversions.
    """
    from vcconv.audio import save_audio
    from vcconv.convert import make_converter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peer = make_converter("world")
    converted = []
    for k, pair in enumerate(pairs):
        key = hashlib.sha1(f"{pair['source']}\n{pair['target']}".encode()).hexdigest()[:10]
        path = out_dir / f"world_{k:05d}_{key}.wav"  # named by its inputs: another pair list never reuses it
        if not path.exists():
            result = peer.convert(pair["source"], [pair["target"]])
            save_audio(path, result.wav, result.sample_rate)
        converted.append({**pair, "output": str(path)})
        if progress:
            progress(k + 1, len(pairs))
    return converted


def make_noise_pairs(
    pairs: Sequence[Mapping], out_dir: str | Path, seed: int = 0, sample_rate: int = 16000
) -> list[dict]:
    """Write one noise file per pair (RMS and length of its source) into ``out_dir``.

    File ``k`` is seeded with ``seed + k``, so the baseline is repeatable.

    Returns:
        the pairs with ``output`` pointing at the noise files.
    """
    from vcconv.audio import load_audio, save_audio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    noisy = []
    for k, pair in enumerate(pairs):
        src = load_audio(pair["source"], sample_rate)
        path = save_audio(out_dir / f"noise_{k:05d}.wav", noise_like(src, seed + k), sample_rate)
        noisy.append({**pair, "output": str(path)})
    return noisy
