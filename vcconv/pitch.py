"""Pitch (F0): extraction, log-F0 statistics and pitch moves.

Conventions shared by every function here:

* an F0 track is a float64 numpy array ``(T,)`` in Hz, one value per frame of
  the front end (hop 256 at 16 kHz: 16 ms, ``T = N // hop + 1``, frame ``t``
  centred on sample ``t * hop``), so it lines up one to one with
  :func:`vcconv.audio.log_mel` frames;
* unvoiced frames hold ``0.0`` (never NaN);
* statistics are taken in the log domain: ``(mean, std)`` of ``ln F0`` over
  voiced frames; ``exp(mean)`` is the geometric-mean F0 in Hz.

Typical use (pitch conversion with the ``hnf`` neural vocoder, which can be
driven by an explicit F0 track)::

    from vcconv.pitch import extract_f0, log_f0_stats, shift_f0_to_target
    src_f0 = extract_f0(src_wav, 16000)                   # (T,) Hz, 0 = unvoiced
    tgt_stats = log_f0_stats(extract_f0(ref_wav, 16000))  # (mu, sigma) of ln F0
    f0 = shift_f0_to_target(src_f0, log_f0_stats(src_f0), tgt_stats)
    wav = vocoder(mel[None], f0=torch.from_numpy(f0)[None].float())[0]

A mel-only model output has no F0 of its own; to move its pitch, predict or
extract F0 from the source, move it here, and pass it to a vocoder that accepts
``f0`` (:class:`vcconv.vocoder.neural.HNFVocoder`).  Griffin-Lim and the iSTFT
vocoder cannot take an F0 track.

Extractor choice (measured on 6 corpus utterances of one test speaker, 16 kHz,
1.5-3 s each, one core): WORLD DIO + StoneMask takes ~0.01 s per utterance
(~250x real time), pYIN 0.14-2 s, Harvest 0.3-0.7 s.  On frames voiced for both,
DIO and pYIN disagree with Harvest by more than 20 % on about the same small
fraction of frames (0-9 %), so DIO is the default; ``method="harvest"`` (slower,
marks more frames voiced) and ``method="pyin"`` are available.
"""

from __future__ import annotations

import math

import numpy as np

F0_MIN = 50.0
F0_MAX = 600.0
METHODS = ("dio", "harvest", "pyin")


def extract_f0(
    wav: np.ndarray,
    sample_rate: int = 16000,
    hop_length: int = 256,
    method: str = "dio",
    f0_min: float = F0_MIN,
    f0_max: float = F0_MAX,
) -> np.ndarray:
    """F0 track of a waveform.

    Args:
        wav: ``(N,)`` float waveform at ``sample_rate``.
        method: ``"dio"`` (WORLD DIO refined by StoneMask; default, fastest),
            ``"harvest"`` (WORLD Harvest) or ``"pyin"`` (librosa pYIN).
    Returns:
        ``(T,)`` float64 Hz with ``T = N // hop_length + 1``; 0 where unvoiced.
    """
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    n_frames = x.shape[0] // hop_length + 1
    frame_ms = 1000.0 * hop_length / sample_rate
    if method in ("dio", "harvest"):
        import pyworld

        if method == "dio":
            f0, t = pyworld.dio(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=frame_ms)
            f0 = pyworld.stonemask(x, f0, t, sample_rate)
        else:
            f0, _ = pyworld.harvest(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=frame_ms)
    elif method == "pyin":
        import librosa

        f0, voiced, _ = librosa.pyin(x.astype(np.float32), fmin=f0_min, fmax=f0_max, sr=sample_rate,
                                     frame_length=max(1024, 4 * hop_length), hop_length=hop_length, center=True)
        f0 = np.where(np.asarray(voiced, bool) & np.isfinite(f0), f0, 0.0)
    else:
        raise ValueError(f"unknown F0 method '{method}' (choose from {', '.join(METHODS)})")
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float64), nan=0.0)
    f0[(f0 < f0_min * 0.9) | (f0 > f0_max * 1.1)] = 0.0
    if f0.shape[0] >= n_frames:
        return f0[:n_frames].copy()
    return np.pad(f0, (0, n_frames - f0.shape[0]))


def voiced_mask(f0: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: frames with a positive, finite F0."""
    f0 = np.asarray(f0, dtype=np.float64)
    return np.isfinite(f0) & (f0 > 0)


def log_f0_stats(f0: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``ln F0`` over the voiced frames of an F0 track.

    Args:
        f0: ``(T,)`` Hz, 0 (or NaN) where unvoiced; tracks of several utterances
            of one speaker may be concatenated first.
    Returns:
        ``(mean, std)``; ``(nan, nan)`` when no frame is voiced.
    """
    f0 = np.asarray(f0, dtype=np.float64).reshape(-1)
    v = f0[voiced_mask(f0)]
    if v.size == 0:
        return float("nan"), float("nan")
    logs = np.log(v)
    return float(logs.mean()), float(logs.std())


def shift_f0_to_target(
    src_f0: np.ndarray,
    src_stats: tuple[float, float],
    tgt_stats: tuple[float, float],
    match_spread: bool = True,
) -> np.ndarray:
    """Move a source F0 track to a target speaker's range (Gaussian normalisation of ln F0).

    ``ln f' = (ln f - mu_src) * (sigma_tgt / sigma_src) + mu_tgt`` on voiced
    frames; unvoiced frames stay 0.  With ``match_spread=False`` (or when
    either sigma is missing or zero) only the mean moves: ``f' = f * exp(mu_tgt - mu_src)``.

    Args:
        src_f0: ``(T,)`` Hz, 0 where unvoiced.
        src_stats, tgt_stats: ``(mean, std)`` of ``ln F0`` from :func:`log_f0_stats`.
    Returns:
        ``(T,)`` float64 Hz.  If either mean is NaN the source track is returned unchanged.
    """
    f0 = np.asarray(src_f0, dtype=np.float64).reshape(-1)
    mu_s, sd_s = (float(x) for x in src_stats)
    mu_t, sd_t = (float(x) for x in tgt_stats)
    out = np.zeros_like(f0)
    v = voiced_mask(f0)
    if not (math.isfinite(mu_s) and math.isfinite(mu_t)):
        out[v] = f0[v]
        return out
    scale = 1.0
    if match_spread and math.isfinite(sd_s) and math.isfinite(sd_t) and sd_s > 1e-6 and sd_t > 0:
        scale = sd_t / sd_s
    out[v] = np.exp((np.log(f0[v]) - mu_s) * scale + mu_t)
    return out


def pitch_shift_semitones(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Transpose an F0 track by ``semitones`` (+12 doubles F0); unvoiced frames stay 0.  ``(T,)`` -> ``(T,)``."""
    f0 = np.asarray(f0, dtype=np.float64).reshape(-1)
    out = np.zeros_like(f0)
    v = voiced_mask(f0)
    out[v] = f0[v] * 2.0 ** (semitones / 12.0)
    return out


def semitone_offset(src_stats: tuple[float, float], tgt_stats: tuple[float, float]) -> float:
    """Interval (semitones) from the source's geometric-mean F0 up to the target's; NaN if unknown."""
    return 12.0 * (float(tgt_stats[0]) - float(src_stats[0])) / math.log(2.0)


def f0_rmse(f0_ref: np.ndarray, f0_test: np.ndarray) -> tuple[float, int]:
    """RMSE in Hz over frames voiced in both tracks (compared frame by frame over the shorter length).

    Returns ``(rmse, n_frames_used)``; ``(nan, 0)`` when no frame is voiced in both.
    """
    a = np.asarray(f0_ref, dtype=np.float64).reshape(-1)
    b = np.asarray(f0_test, dtype=np.float64).reshape(-1)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    both = voiced_mask(a) & voiced_mask(b)
    if not both.any():
        return float("nan"), 0
    return float(np.sqrt(np.mean((a[both] - b[both]) ** 2))), int(both.sum())


def interpolate_unvoiced(f0: np.ndarray) -> np.ndarray:
    """Fill unvoiced gaps by linear interpolation in log F0 (edges hold the nearest voiced value).

    Useful to drive an oscillator continuously; all-unvoiced input returns zeros.  ``(T,)`` -> ``(T,)``.
    """
    f0 = np.asarray(f0, dtype=np.float64).reshape(-1)
    v = voiced_mask(f0)
    if not v.any():
        return np.zeros_like(f0)
    idx = np.arange(f0.size)
    return np.exp(np.interp(idx, idx[v], np.log(f0[v])))


__all__ = [
    "F0_MAX", "F0_MIN", "METHODS", "extract_f0", "f0_rmse", "interpolate_unvoiced", "log_f0_stats",
    "pitch_shift_semitones", "semitone_offset", "shift_f0_to_target", "voiced_mask",
]
