"""Speaker embeddings (resemblyzer d-vectors) and the comparisons built on them.

Embeddings are 256-dim unit vectors; the cosine of two of them is their dot
product.  Reference figures on engine voices (see docs/DATA.md): same voice,
different sentences ~0.90; different voices, same sentence ~0.59.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from vcconv.eval import require

log = logging.getLogger(__name__)

EMBED_SR = 16000  # resemblyzer's sampling rate
EMBED_DIM = 256
MIN_EMBED_S = 0.3  # shorter (after VAD trimming) than this: fall back to the untrimmed signal


class SpeakerEmbedder:
    """Lazy wrapper around ``resemblyzer.VoiceEncoder``.

    Use :meth:`get` for a process-wide instance per device; the network is
    loaded on the first :meth:`embed`.

    Args:
        device: ``"cpu"``, ``"cuda"``... ``None`` picks cuda when available, else cpu.
    """

    _instances: dict[str, "SpeakerEmbedder"] = {}
    _lock = threading.Lock()

    def __init__(self, device: str | None = None):
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = str(device)
        self._encoder = None

    @classmethod
    def get(cls, device: str | None = None) -> "SpeakerEmbedder":
        """The shared instance for ``device`` (created on first use)."""
        probe = cls(device)  # resolves None -> cuda/cpu without loading anything
        with cls._lock:
            return cls._instances.setdefault(probe.device, probe)

    @property
    def encoder(self):
        if self._encoder is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.morphology inside resemblyzer
                resemblyzer = require("resemblyzer", "resemblyzer (speaker embeddings)")
            self._encoder = resemblyzer.VoiceEncoder(self.device, verbose=False)
            log.debug("resemblyzer VoiceEncoder loaded on %s", self.device)
        return self._encoder

    @staticmethod
    def preprocess(wav: np.ndarray, sr: int) -> np.ndarray:
        """Resample to 16 kHz, normalise volume, shorten long silences (resemblyzer's recipe).

        ``(N,)`` at ``sr`` -> ``(M,)`` float32 at 16 kHz.  When the VAD leaves
        less than 0.3 s (tones, noise, near-silence) the untrimmed signal is used.
        """
        from vcconv.audio import resample

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            audio = require("resemblyzer.audio", "resemblyzer (speaker embeddings)")
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        wav = resample(wav, sr, EMBED_SR)
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if wav.size else 0.0
        if rms > 0:
            wav = audio.normalize_volume(wav, audio.audio_norm_target_dBFS, increase_only=True)
        trimmed = audio.trim_long_silences(np.clip(wav, -1.0, 1.0))
        if trimmed.shape[0] >= MIN_EMBED_S * EMBED_SR:
            wav = trimmed
        return np.asarray(wav, dtype=np.float32)

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Utterance embedding.  ``(N,)`` waveform at ``sr`` -> ``(256,)`` float32 unit vector."""
        prepared = self.preprocess(wav, sr)
        emb = np.asarray(self.encoder.embed_utterance(prepared), dtype=np.float32)
        return emb / max(float(np.linalg.norm(emb)), 1e-12)

    def embed_many(self, wavs: Iterable[np.ndarray], sr: int) -> np.ndarray:
        """Embed several utterances (same ``sr``).  Returns ``(K, 256)``."""
        embs = [self.embed(w, sr) for w in wavs]
        return np.stack(embs) if embs else np.zeros((0, EMBED_DIM), dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors ``(D,)`` (0.0 if either is all zeros)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else 0.0


def centroids(embeddings_by_speaker: Mapping[str, Sequence[np.ndarray] | np.ndarray]) -> dict[str, np.ndarray]:
    """Per-speaker centroid: mean of the embeddings ``(K, D)``, renormalised to unit length."""
    out: dict[str, np.ndarray] = {}
    for spk, embs in embeddings_by_speaker.items():
        arr = np.asarray(embs, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.shape[0] == 0:
            continue
        c = arr.mean(axis=0)
        out[spk] = c / max(float(np.linalg.norm(c)), 1e-12)
    return out


def rank_speakers(emb: np.ndarray, centroids: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """All candidate speakers with their cosine to ``emb``, best first."""
    scores = [(spk, cosine(emb, c)) for spk, c in centroids.items()]
    return sorted(scores, key=lambda s: (-s[1], s[0]))


def closed_set_identify(emb: np.ndarray, centroids: Mapping[str, np.ndarray]) -> str:
    """Name of the speaker whose centroid is nearest to ``emb`` by cosine."""
    if not centroids:
        raise ValueError("closed_set_identify needs at least one candidate centroid")
    return rank_speakers(emb, centroids)[0][0]
