"""Offline speech quality: DNSMOS P.835 (signal, background, overall) through ``speechmos``.

DNSMOS is a non-intrusive estimate of a listening-test score (1-5) trained on
noisy and processed speech.  It needs no reference, so it scores converted speech
as readily as the source.  The ONNX models ship inside the ``speechmos`` wheel
(``pip install 'vcconv[eval]'``); they run here on one thread so that
evaluation leaves the other cores alone.

Clips shorter than the model's 9.01 s window are tiled to fill it (speechmos's own
rule); longer ones are scored in 9 s windows hopped by 1 s and averaged.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from vcconv.eval import require

DNSMOS_SR = 16000
DNSMOS_KEYS = {"ovrl": "ovrl_mos", "sig": "sig_mos", "bak": "bak_mos"}
ONNX_THREADS = 1


@lru_cache(maxsize=1)
def _dnsmos_model():
    """speechmos's DNSMOS scorer with single-threaded ONNX sessions."""
    ort = require("onnxruntime", "onnxruntime (DNSMOS)")
    speechmos_dnsmos = require("speechmos.dnsmos", "speechmos (DNSMOS)")
    folder = Path(speechmos_dnsmos.__file__).parent / "dnsmos_models"
    model = speechmos_dnsmos.DNSMOS(str(folder / "sig_bak_ovr.onnx"), str(folder / "model_v8.onnx"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = ONNX_THREADS
    opts.inter_op_num_threads = ONNX_THREADS
    model.onnx_sess = ort.InferenceSession(str(folder / "sig_bak_ovr.onnx"), opts)
    model.p808_onnx_sess = ort.InferenceSession(str(folder / "model_v8.onnx"), opts)
    return model


def dnsmos(wav: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS of ``wav`` (``(N,)`` float at ``sr``): ``{"ovrl", "sig", "bak"}`` on the 1-5 scale.

    An empty or all-zero clip scores NaN (nothing to judge)."""
    from vcconv.audio import resample

    x = resample(np.asarray(wav, dtype=np.float32).reshape(-1), sr, DNSMOS_SR)
    if x.size < DNSMOS_SR // 10 or not np.any(x):
        return dict.fromkeys(DNSMOS_KEYS, math.nan)
    x = np.clip(np.nan_to_num(x), -1.0, 1.0)
    scores = _dnsmos_model()(x, DNSMOS_SR, False)
    return {short: float(scores[key]) for short, key in DNSMOS_KEYS.items()}
