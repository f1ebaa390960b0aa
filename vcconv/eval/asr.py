"""Offline intelligibility: pocketsphinx transcription and WER / CER.

pocketsphinx (>= 5, English model inside the package) takes 16 kHz int16 only.
Its cepstral mean normalisation adapts across utterances, so a fresh
``Decoder`` is built for every utterance: the same audio always gives the same
words, whatever was decoded before (costs ~0.3 s a decoder on a CPU).

Error rates are returned as ``(errors, reference_length)`` so that corpus-level
rates are sums over utterances (``sum(errors) / sum(lengths)``), not means of
per-sentence ratios.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from vcconv.eval import require

ASR_SR = 16000

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_EDGE_APOSTROPHE = re.compile(r"(^|\s)'+|'+(\s|$)")


def transcribe(wav: np.ndarray, sr: int) -> str:
    """Words recognised in ``wav`` (``(N,)`` float in [-1, 1] at ``sr``), lowercase; ``""`` if none."""
    from vcconv.audio import resample

    ps = require("pocketsphinx", "pocketsphinx (offline ASR)")
    wav = resample(np.asarray(wav, dtype=np.float32).reshape(-1), sr, ASR_SR)
    pcm = (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype("<i2")
    decoder = ps.Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return normalize_text(hyp.hypstr) if hyp is not None else ""


def normalize_text(text: str) -> str:
    """Lowercase, ASCII-fold, drop punctuation (hyphens and slashes become spaces), collapse spaces.

    Apostrophes inside words are kept (``don't``), stray ones dropped.
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[-/_]", " ", text)
    text = _NON_WORD.sub("", text)
    text = _EDGE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions + deletions + insertions) between two sequences."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref  # distance is symmetric; keep the inner row short
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """Word errors and reference word count on normalised text: ``wer("a b c", "a x c") == (1, 3)``."""
    r, h = normalize_text(ref).split(), normalize_text(hyp).split()
    return edit_distance(r, h), len(r)


def cer(ref: str, hyp: str) -> tuple[int, int]:
    """Character errors and reference character count on normalised text (single spaces count)."""
    r, h = normalize_text(ref), normalize_text(hyp)
    return edit_distance(r, h), len(r)


def rate(errors: int, length: int) -> float:
    """``errors / length``; NaN for an empty reference."""
    return errors / length if length else float("nan")
