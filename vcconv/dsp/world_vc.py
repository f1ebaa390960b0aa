"""A training-free WORLD voice converter: the DSP peer every learned model is reported beside.

``vcconv convert --model world`` (and ``vcconv batch --model world``):

1. WORLD analysis of the source (DIO + StoneMask F0, CheapTrick spectral envelope, D4C
   aperiodicity; 5 ms frames, 1024-point FFT at 16 kHz: 513 bins of 15.6 Hz);
2. log-F0 moved to the target's median and spread (the source's own statistics come
   from the source itself; spread ratio clipped to :data:`SPREAD_RATIO_RANGE`);
3. spectral envelope (and aperiodicity) warped along frequency by a formant ratio: the
   median over F1-F3 of target / source median LPC formant frequencies, clipped to
   :data:`FORMANT_RATIO_RANGE`;
4. a long-term envelope EQ: the difference of the target's and the warped source's
   average log envelopes, smoothed across frequency, level-neutral, clipped to
   +-:data:`EQ_LIMIT_DB`;
5. WORLD resynthesis.

No model file, instant, any input: unvoiced or pitchless input keeps F0 zero and a
formant ratio of 1.  Inputs longer than :data:`CHUNK_SECONDS` are processed in
cross-faded chunks (memory stays bounded).  Needs ``pyworld``
(``pip install "vcconv[world]"``).

Arrays: waveforms ``(N,)`` float; F0 ``(T,)`` float64 Hz with 0 = unvoiced; envelopes and
aperiodicities ``(T, F)`` float64 with ``F = FFT_SIZE // 2 + 1``; frame ``t`` is centred on
sample ``t * hop`` (``hop = sample_rate * FRAME_PERIOD_MS / 1000``), ``T = N // hop + 1``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vcconv.audio import AudioConfig, load_audio, normalize_loudness, preprocess
from vcconv.errors import ModelError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_PERIOD_MS = 5.0
FFT_SIZE = 1024
FORMANT_RATIO_RANGE = (0.8, 1.25)
SPREAD_RATIO_RANGE = (0.5, 2.0)
EQ_LIMIT_DB = 12.0
EQ_SMOOTH_HZ = 300.0  # Gaussian smoothing (standard deviation) of the EQ curve across frequency
N_FORMANTS = 3
LPC_MAX_FRAMES = 400  # voiced frames (evenly spaced) read for the formant medians
MAX_FORMANT_HZ = 5500.0  # LPC formants: the signal is resampled to twice this (as Praat does)
LPC_POLES = 5  # resonances the LPC fits below MAX_FORMANT_HZ (order 10)
FORMANT_RANGES = ((200.0, 1100.0), (600.0, 3000.0), (1700.0, 4200.0))  # Hz: where F1, F2, F3 may lie
MIN_VOICED_FRAMES = 10  # fewer: no reliable F0 / formant statistics, nothing is moved
CHUNK_SECONDS = 30.0
OVERLAP_SECONDS = 0.25
PROFILE_SECONDS = 60.0  # a long source's own statistics come from the chunks starting before this
INSTALL_HINT = 'pip install "vcconv[world]"'


def require_pyworld():
    """The ``pyworld`` module, or :class:`ModelError` saying what to install."""
    try:
        import pyworld
    except ImportError:
        raise ModelError(f"--model world needs the pyworld package: {INSTALL_HINT}") from None
    return pyworld


# ----------------------------------------------------------------------- analysis


@dataclass
class WorldFeatures:
    """WORLD parameters of one waveform: ``f0 (T,)`` Hz (0 unvoiced), ``sp (T, F)`` power
    envelope, ``ap (T, F)`` aperiodicity in [0, 1]."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray


def hop_samples(sample_rate: int, frame_period_ms: float = FRAME_PERIOD_MS) -> int:
    hop = sample_rate * frame_period_ms / 1000.0
    if abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"frame period {frame_period_ms} ms is not a whole number of samples at {sample_rate} Hz")
    return int(round(hop))


def analyse(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_period_ms: float = FRAME_PERIOD_MS,
            fft_size: int = FFT_SIZE) -> WorldFeatures:
    """WORLD analysis of ``(N,)`` -> :class:`WorldFeatures` with ``T = N // hop + 1`` frames.

    F0 comes from :func:`vcconv.pitch.extract_f0` (DIO + StoneMask, 50-600 Hz)."""
    from vcconv.pitch import extract_f0

    pw = require_pyworld()
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    f0 = extract_f0(x, sample_rate, hop_length=hop_samples(sample_rate, frame_period_ms))
    t = np.arange(f0.shape[0], dtype=np.float64) * (frame_period_ms / 1000.0)
    sp = pw.cheaptrick(x, f0, t, sample_rate, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, sample_rate, fft_size=fft_size)
    return WorldFeatures(f0, sp, ap)


def synthesize(feats: WorldFeatures, sample_rate: int = SAMPLE_RATE, n_samples: int | None = None,
               frame_period_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """WORLD synthesis -> ``(N,)`` float32; trimmed or zero-padded to ``n_samples`` when given."""
    pw = require_pyworld()
    y = pw.synthesize(np.ascontiguousarray(feats.f0, dtype=np.float64), np.ascontiguousarray(feats.sp),
                      np.ascontiguousarray(feats.ap), sample_rate, frame_period_ms)
    y = np.nan_to_num(y.astype(np.float32))
    if n_samples is not None:
        y = y[:n_samples] if y.shape[0] >= n_samples else np.pad(y, (0, n_samples - y.shape[0]))
    return y


def resynthesize_at_pitch(wav: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE,
                          frame_period_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """``(N,)`` -> ``(N,)`` float32: WORLD analysis, F0 multiplied by ``2 ** (semitones / 12)``,
    resynthesis with the same spectral envelope and aperiodicity (formants kept)."""
    feats = analyse(wav, sample_rate, frame_period_ms)
    feats = WorldFeatures(feats.f0 * 2.0 ** (semitones / 12.0), feats.sp, feats.ap)
    return synthesize(feats, sample_rate, n_samples=np.asarray(wav).reshape(-1).shape[0],
                      frame_period_ms=frame_period_ms)


# ------------------------------------------------------------------ statistics


def log_f0_median_spread(f0: np.ndarray) -> tuple[float, float]:
    """Median and robust spread (1.4826 x median absolute deviation) of ``ln F0`` over voiced
    frames of ``(T,)``; ``(nan, nan)`` with fewer than :data:`MIN_VOICED_FRAMES` voiced frames."""
    f0 = np.asarray(f0, dtype=np.float64).reshape(-1)
    v = f0[np.isfinite(f0) & (f0 > 0)]
    if v.size < MIN_VOICED_FRAMES:
        return float("nan"), float("nan")
    logs = np.log(v)
    med = float(np.median(logs))
    return med, float(1.4826 * np.median(np.abs(logs - med)))


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Levinson-Durbin on autocorrelations ``(B, order + 1)`` -> LPC polynomials ``(B, order + 1)``
    (``a[:, 0] = 1``, prediction error filter ``A(z) = sum_k a_k z^-k``)."""
    B = r.shape[0]
    a = np.zeros((B, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1:0:-1], axis=1)
        k = -acc / np.maximum(err, 1e-12)
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * a[:, i - 1::-1]
        err = err * (1.0 - k**2)
    return a


def frame_formants(wav: np.ndarray, centres: np.ndarray, sample_rate: int = SAMPLE_RATE,
                   n_formants: int = N_FORMANTS, window_s: float = 0.025,
                   max_bandwidth: float = 500.0) -> np.ndarray:
    """LPC formant frequencies F1-F3 of the frames centred on sample indices ``centres (K,)``.

    Praat-like: the signal is resampled to twice :data:`MAX_FORMANT_HZ`, and each frame
    pre-emphasised, Hamming-windowed and fitted with an autocorrelation LPC of order
    ``2 x`` :data:`LPC_POLES` (five resonances).  Of the roots with bandwidth below
    ``max_bandwidth`` Hz, F1, F2, F3 are the lowest in :data:`FORMANT_RANGES` in turn, each
    at least 150 Hz above the previous one: a frame missing a formant gets NaN from there
    on, rather than an F3 counted as F2.  Returns ``(K, n_formants)`` Hz."""
    from vcconv.audio import resample

    n_formants = min(n_formants, len(FORMANT_RANGES))
    centres = np.asarray(centres, dtype=np.int64).reshape(-1)
    out = np.full((centres.size, n_formants), np.nan)
    sr = int(2 * MAX_FORMANT_HZ)
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    x = resample(x, sample_rate, sr).astype(np.float64) if sample_rate != sr else x.astype(np.float64)
    n = int(round(window_s * sr))
    if centres.size == 0 or x.size < n:
        return out
    order = 2 * LPC_POLES
    starts = np.clip((centres * sr) // sample_rate - n // 2, 0, x.size - n)
    frames = x[starts[:, None] + np.arange(n)[None, :]]
    frames = np.concatenate([frames[:, :1], frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1) * np.hamming(n)
    r = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * n)) ** 2, 2 * n)[:, : order + 1]
    keep = r[:, 0] > 1e-10
    if not keep.any():
        return out
    r = r[keep]
    r[:, 0] *= 1.0 + 1e-6  # a touch of white-noise correction keeps the recursion stable
    a = _levinson(r, order)
    companion = np.zeros((a.shape[0], order, order))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(companion)
    freq = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-12)) * sr / np.pi
    freq = np.sort(np.where((roots.imag > 0) & (bw < max_bandwidth), freq, np.inf), axis=1)
    found = np.full((freq.shape[0], n_formants), np.nan)
    last = np.zeros(freq.shape[0])
    rows = np.arange(freq.shape[0])
    for k, (lo, hi) in enumerate(FORMANT_RANGES[:n_formants]):
        ok = (freq > np.maximum(lo, last + 150.0)[:, None]) & (freq < hi)
        has = ok.any(axis=1)
        found[:, k] = np.where(has, freq[rows, ok.argmax(axis=1)], np.nan)
        last = np.where(has, found[:, k], np.inf)
    out[np.where(keep)[0]] = found
    return out


def formant_ratio(src_formants: np.ndarray, tgt_formants: np.ndarray,
                  limits: tuple[float, float] = FORMANT_RATIO_RANGE) -> float:
    """Median over formants of ``target / source`` (``(n_formants,)`` Hz each, NaN unknown),
    clipped to ``limits``; 1.0 when no formant is known for both."""
    s, t = np.asarray(src_formants, np.float64), np.asarray(tgt_formants, np.float64)
    ok = np.isfinite(s) & np.isfinite(t) & (s > 0) & (t > 0)
    if not ok.any():
        return 1.0
    return float(np.clip(np.median(t[ok] / s[ok]), *limits))


def warp_envelope(env: np.ndarray, ratio: float) -> np.ndarray:
    """Scale the frequency axis of ``(T, F)`` by ``ratio``: ``out[:, k] = env[:, k / ratio]``
    (linear interpolation; above the top bin the last bin is held).  ``ratio > 1`` moves
    formants up."""
    env = np.asarray(env, dtype=np.float64)
    if ratio == 1.0:
        return env.copy()
    n_bins = env.shape[-1]
    pos = np.arange(n_bins, dtype=np.float64) / ratio
    lo = np.minimum(np.floor(pos).astype(np.int64), n_bins - 1)
    hi = np.minimum(lo + 1, n_bins - 1)
    frac = np.where(pos >= n_bins - 1, 0.0, pos - lo)
    return env[..., lo] * (1.0 - frac) + env[..., hi] * frac


def _frames_for_envelope(feats: WorldFeatures) -> np.ndarray:
    """Frames the long-term envelope averages: voiced ones (enough of them), else the loud ones."""
    voiced = feats.f0 > 0
    if voiced.sum() >= MIN_VOICED_FRAMES:
        return voiced
    level = 10.0 * np.log10(feats.sp.sum(axis=1) + 1e-30)
    return level > np.percentile(level, 95) - 30.0


def long_term_envelope(feats: WorldFeatures) -> np.ndarray:
    """Average log envelope ``(F,)`` dB over the voiced (else the loud) frames."""
    return (10.0 * np.log10(feats.sp[_frames_for_envelope(feats)] + 1e-30)).mean(axis=0)


def envelope_eq(src_env_db: np.ndarray, tgt_env_db: np.ndarray, sample_rate: int = SAMPLE_RATE,
                smooth_hz: float = EQ_SMOOTH_HZ, limit_db: float = EQ_LIMIT_DB) -> np.ndarray:
    """EQ gains ``(F,)`` dB taking ``src_env_db`` towards ``tgt_env_db`` (both ``(F,)`` dB):
    the difference, Gaussian-smoothed across frequency (``smooth_hz`` standard deviation),
    its mean removed (level-neutral), clipped to +-``limit_db``."""
    diff = np.asarray(tgt_env_db, np.float64) - np.asarray(src_env_db, np.float64)
    n_bins = diff.shape[0]
    sigma = smooth_hz / (sample_rate / 2 / (n_bins - 1))
    half = int(math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    padded = np.pad(diff, half, mode="edge")
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="valid")
    return np.clip(smooth - smooth.mean(), -limit_db, limit_db)


# ---------------------------------------------------------------------- profiles


@dataclass
class SpeakerProfile:
    """What the WORLD converter knows of a voice.

    ``log_f0``: ``(median, spread)`` of ln F0 (NaN: no voiced speech); ``formants``: ``(3,)`` Hz
    median F1-F3 (NaN unknown); ``envelope``: ``(F,)`` dB long-term average log envelope;
    ``seconds``: audio read."""

    log_f0: tuple[float, float]
    formants: np.ndarray
    envelope: np.ndarray
    seconds: float

    @property
    def median_f0(self) -> float:
        """Median F0 in Hz (NaN when unknown)."""
        return math.exp(self.log_f0[0]) if math.isfinite(self.log_f0[0]) else float("nan")


def vowel_frames(feats: WorldFeatures) -> np.ndarray:
    """Indices of the frames formants are read from: voiced and, among the voiced ones, not in
    the quietest 30 % (vowel nuclei rather than voiced consonants and onsets)."""
    voiced = feats.f0 > 0
    if not voiced.any():
        return np.zeros(0, np.int64)
    level = 10.0 * np.log10(feats.sp.sum(axis=1) + 1e-30)
    return np.where(voiced & (level >= np.quantile(level[voiced], 0.3)))[0]


def profile_from_features(clips: list[tuple[np.ndarray, WorldFeatures]],
                          sample_rate: int = SAMPLE_RATE) -> SpeakerProfile:
    """Pool one or more analysed clips ``[(wav (N,), features), ...]`` of one voice into a profile.

    Formants: per formant, the median over the :func:`vowel_frames` (at most
    :data:`LPC_MAX_FRAMES` of them, evenly spaced) where LPC found all of F1-F3; NaN with
    fewer than :data:`MIN_VOICED_FRAMES` such frames."""
    hop = hop_samples(sample_rate)
    f0s, formants, envs, weights = [], [], [], []
    picks = [vowel_frames(f) for _, f in clips]
    n_picked = sum(p.size for p in picks)
    for (wav, feats), frames in zip(clips, picks):
        f0s.append(feats.f0)
        take = max(1, round(LPC_MAX_FRAMES * frames.size / max(n_picked, 1)))
        if frames.size > take:
            frames = frames[np.linspace(0, frames.size - 1, take).round().astype(np.int64)]
        formants.append(frame_formants(wav, frames * hop, sample_rate))
        envs.append(long_term_envelope(feats))
        weights.append(int(_frames_for_envelope(feats).sum()))
    per_frame = np.concatenate(formants)
    complete = per_frame[np.isfinite(per_frame).all(axis=1)]
    med = np.median(complete, axis=0) if complete.shape[0] >= MIN_VOICED_FRAMES else np.full(N_FORMANTS, np.nan)
    envelope = np.average(np.stack(envs), axis=0, weights=np.maximum(weights, 1))
    return SpeakerProfile(log_f0_median_spread(np.concatenate(f0s)), med, envelope,
                          sum(w.shape[0] for w, _ in clips) / sample_rate)


def speaker_profile(wavs: list[np.ndarray], sample_rate: int = SAMPLE_RATE) -> SpeakerProfile:
    """Profile of one voice from clips ``[(N,), ...]`` at ``sample_rate`` (analysed here)."""
    return profile_from_features([(w, analyse(w, sample_rate)) for w in wavs], sample_rate)


# ---------------------------------------------------------------------- mapping


@dataclass
class Mapping:
    """How a source is moved to a target: F0 statistics, formant ratio, EQ ``(F,)`` dB."""

    src_log_f0: tuple[float, float]
    tgt_log_f0: tuple[float, float]
    formant_ratio: float
    eq_db: np.ndarray
    pitch_shift: float = 0.0


def plan_mapping(src: SpeakerProfile, tgt: SpeakerProfile, pitch_shift: float = 0.0,
                 sample_rate: int = SAMPLE_RATE) -> Mapping:
    """The :class:`Mapping` from ``src`` to ``tgt``; the EQ compares the target's long-term
    envelope with the source's *after* the formant warp."""
    ratio = formant_ratio(src.formants, tgt.formants)
    warped = warp_envelope(src.envelope[None], ratio)[0] if ratio != 1.0 else src.envelope
    eq = envelope_eq(warped, tgt.envelope, sample_rate)
    mu_s, sd_s = src.log_f0
    mu_t, sd_t = tgt.log_f0
    if all(math.isfinite(v) for v in (sd_s, sd_t)) and sd_s > 1e-6:  # clip the spread ratio
        sd_t = sd_s * float(np.clip(sd_t / sd_s, *SPREAD_RATIO_RANGE))
    return Mapping((mu_s, sd_s), (mu_t, sd_t), ratio, eq, pitch_shift)


def map_features(feats: WorldFeatures, mapping: Mapping) -> WorldFeatures:
    """Apply a :class:`Mapping`: F0 moved in log domain (unvoiced frames stay 0; a source or
    target without voiced speech leaves F0 unchanged), envelope and aperiodicity warped,
    envelope EQ'd."""
    from vcconv.pitch import pitch_shift_semitones, shift_f0_to_target

    f0 = shift_f0_to_target(feats.f0, mapping.src_log_f0, mapping.tgt_log_f0)
    if mapping.pitch_shift:
        f0 = pitch_shift_semitones(f0, mapping.pitch_shift)
    sp = warp_envelope(feats.sp, mapping.formant_ratio) * (10.0 ** (mapping.eq_db / 10.0))[None, :]
    ap = np.clip(warp_envelope(feats.ap, mapping.formant_ratio), 0.0, 1.0)
    return WorldFeatures(f0, np.maximum(sp, 1e-30), ap)


def chunk_bounds(n_samples: int, hop: int, chunk: int, overlap: int) -> list[tuple[int, int, int]]:
    """``[(start, end, core_start), ...]``: chunks of ``chunk`` samples (+ ``overlap`` read before
    each but the first), all starting on a frame boundary, covering ``[0, n_samples)``."""
    chunk = max(hop, chunk // hop * hop)
    overlap = overlap // hop * hop
    out = []
    for core in range(0, n_samples, chunk):
        out.append((max(0, core - overlap), min(n_samples, core + chunk), core))
    return out


def convert_wav(wav: np.ndarray, target: SpeakerProfile, source: SpeakerProfile | None = None,
                pitch_shift: float = 0.0, sample_rate: int = SAMPLE_RATE,
                chunk_seconds: float = CHUNK_SECONDS, timings: dict | None = None) -> np.ndarray:
    """Convert ``(N,)`` at ``sample_rate`` to the voice of ``target``; returns ``(N,)`` float32.

    ``source``: the source's own profile (default: read from the chunks that start within
    the first :data:`PROFILE_SECONDS` of ``wav``; their analyses are reused, so each sample is
    analysed once).  Inputs longer than ``chunk_seconds`` are analysed
    and synthesised in chunks, cross-faded over :data:`OVERLAP_SECONDS`.  ``timings`` (if
    given) receives seconds of ``features`` (analysis), ``model`` (statistics and mapping)
    and ``vocoder`` (synthesis)."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    n = x.shape[0]
    hop = hop_samples(sample_rate)
    spent = dict.fromkeys(("features", "model", "vocoder"), 0.0)
    bounds = chunk_bounds(n, hop, int(chunk_seconds * sample_rate), int(OVERLAP_SECONDS * sample_rate))
    analysed: dict[int, WorldFeatures] = {}  # chunks read for the source's statistics, kept for conversion
    if source is None:
        clips = []
        for i, (a, e, core) in enumerate(bounds):
            if clips and core >= PROFILE_SECONDS * sample_rate:
                break
            t = time.perf_counter()
            analysed[i] = analyse(x[a:e], sample_rate)
            spent["features"] += time.perf_counter() - t
            clips.append((x[a:e], analysed[i]))
        t = time.perf_counter()
        source = profile_from_features(clips, sample_rate)
        spent["model"] += time.perf_counter() - t
    t = time.perf_counter()
    mapping = plan_mapping(source, target, pitch_shift, sample_rate)
    spent["model"] += time.perf_counter() - t
    log.info("WORLD: F0 %.0f -> %.0f Hz, formant ratio %.3f, EQ %+.1f..%+.1f dB", source.median_f0,
             target.median_f0, mapping.formant_ratio, mapping.eq_db.min(), mapping.eq_db.max())
    out = np.zeros(n, np.float32)
    for i, (a, e, core) in enumerate(bounds):
        t0 = time.perf_counter()
        feats = analysed.pop(i) if i in analysed else analyse(x[a:e], sample_rate)
        t1 = time.perf_counter()
        mapped = map_features(feats, mapping)
        t2 = time.perf_counter()
        y = synthesize(mapped, sample_rate, e - a)
        spent["features"] += t1 - t0
        spent["model"] += t2 - t1
        spent["vocoder"] += time.perf_counter() - t2
        ov = core - a
        if ov:  # linear cross-fade with the previous chunk's tail
            fade = np.linspace(0.0, 1.0, ov + 2, dtype=np.float32)[1:-1]
            out[a:core] = out[a:core] * (1.0 - fade) + y[:ov] * fade
        out[core:e] = y[ov:]
    if timings is not None:
        timings.update(spent)
    return out


# ---------------------------------------------------------------------- converter


class WorldConverter:
    """``vcconv convert --model world``: the same interface as :class:`vcconv.convert.Converter`
    where the rest of vcconv uses it (``audio``, ``device``, ``speaker_vector``, ``convert``).

    Runs on the CPU in one thread whatever ``device`` says (WORLD has no GPU path).
    ``pitch_shift`` moves the output a further number of semitones.  ``vocoder``,
    ``strength`` and ``f0="predict"`` belong to the learned models: set explicitly they are
    a :class:`ModelError`; ``threads`` is accepted and ignored."""

    name = "world"

    def __init__(self, vocoder: str | None = None, device: str | None = None, pitch_shift: float = 0.0,
                 strength: float | None = None, f0: str = "auto", threads: int | None = None,
                 spectrum_match: float | None = None, source_mix: float | None = None,
                 spectrum_spread: float | None = None, source_mix_high: float | None = None,
                 adapt_steps: int | None = None):
        import torch

        require_pyworld()
        if vocoder is not None:
            raise ModelError("--vocoder does not apply to --model world (WORLD resynthesises the speech itself)")
        if strength is not None:
            raise ModelError("--strength does not apply to --model world (it always moves F0, formants and "
                             "envelope fully to the target's)")
        from vcconv.convert import given_options

        given = list(given_options(spectrum_match=spectrum_match, source_mix=source_mix,
                                   spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                                   adapt_steps=adapt_steps))
        if given:
            raise ModelError(f"--{given[0].replace('_', '-')} does not apply to --model world (it maps the "
                             "envelope to the target's itself)")
        if f0 not in ("auto", "transfer"):
            raise ModelError(f"--f0 {f0} does not apply to --model world (it always transfers the source's "
                             "intonation to the target's range)")
        if device not in (None, "cpu"):
            log.info("--model world runs on the CPU (asked for %s)", device)
        self.device = torch.device("cpu")
        self.audio = AudioConfig(sample_rate=SAMPLE_RATE)
        self.pitch_shift = float(pitch_shift)
        self.threads = 1
        self._profiles: dict[tuple[str, ...], SpeakerProfile] = {}

    def speaker_vector(self, references: list[str | Path]) -> SpeakerProfile:
        """The :class:`SpeakerProfile` of one or more reference clips (silence-trimmed, pooled);
        cached per tuple of resolved paths."""
        key = tuple(str(Path(r).resolve()) for r in references)
        if key not in self._profiles:
            wavs = [preprocess(load_audio(r, self.audio.sample_rate), self.audio, trim=True) for r in references]
            self._profiles[key] = speaker_profile(wavs, self.audio.sample_rate)
        return self._profiles[key]

    def convert(self, source: str | Path, references: list[str | Path] | None = None,
                speaker: SpeakerProfile | None = None):
        """Words and timing of ``source`` in the voice of ``references`` (or a ``speaker`` profile
        from :meth:`speaker_vector`) -> :class:`vcconv.convert.ConversionResult`, same length as
        the source at 16 kHz."""
        from vcconv.convert import ConversionResult

        t0 = time.perf_counter()
        if speaker is None:
            if not references:
                raise ModelError("at least one --target reference clip is needed")
            speaker = self.speaker_vector(references)
        t_ref = time.perf_counter()
        wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
        t_load = time.perf_counter()
        timings = {"reference": t_ref - t0, "load": t_load - t_ref}
        out = convert_wav(wav, speaker, pitch_shift=self.pitch_shift, sample_rate=self.audio.sample_rate,
                          timings=timings)
        out = normalize_loudness(out, self.audio.target_dbfs)
        return ConversionResult(out, self.audio.sample_rate, timings, threads=1)
