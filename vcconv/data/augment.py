"""Channel augmentation: what a real user's clip went through before it reached vcconv.

Pure numpy functions, each ``(N,) float32 -> (N,) float32`` at a sample rate; the
random ones take a ``numpy.random.Generator``, so one seed gives one output:

* :func:`lowpass` — band limit at a cut-off (zero-phase FFT filter, nothing above the cut-off);
* :func:`telephone` — band-pass 300–3400 Hz, down to 8 kHz, G.711-like 8-bit mu-law, back up;
* :func:`mu_law` — mu-law companding quantised to ``2**bits`` levels;
* :func:`spectral_quantise` — a low-bitrate-*like* effect: STFT log-magnitudes rounded to a
  dB step and bins far under each frame's peak dropped (not a real codec);
* :func:`add_noise` — white, pink or babble-like noise at an SNR measured on the active speech;
* :func:`reverb` with :func:`synthetic_rir` — exponentially decaying noise with a direct path;
* :func:`eq_tilt` — a spectral tilt in dB per octave around 1 kHz;
* :func:`gain` — a level change in dB.

:class:`ChannelAugment` draws a random chain of these from an
:class:`~vcconv.config.AugmentConfig` (a probability and a range for each), in one
fixed order: room (reverb), background noise, microphone (EQ tilt), level (gain),
channel band (telephone or low-pass), codec (mu-law or spectral quantisation).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from scipy import fft as sfft

from vcconv.config import AugmentConfig
from vcconv.errors import ConfigError

NOISE_KINDS = ("white", "pink", "babble")
ACTIVE_FRAME_S = 0.02  # frames for the active-speech level
ACTIVE_RANGE_DB = 30.0  # a frame is active when within this many dB of the loudest one
_PAD = 2048  # zero padding of FFT filters, so they act as linear (not circular) convolutions


# ------------------------------------------------------------------ filters


def _fft_size(n: int) -> int:
    return sfft.next_fast_len(n + _PAD, real=True)


@functools.lru_cache(maxsize=64)
def _freqs(size: int, sr: int) -> np.ndarray:
    return np.fft.rfftfreq(size, 1.0 / sr).astype(np.float32)


def _fft_filter(wav: np.ndarray, sr: int, response) -> np.ndarray:
    """Zero-phase filtering by a real frequency response (zero-padded: a linear convolution).

    ``response(size) -> (size // 2 + 1,)`` amplitude gains on the ``rfft`` grid of ``size``
    points at ``sr``.  ``(N,) -> (N,)`` float32.
    """
    n = wav.shape[0]
    size = _fft_size(n)
    spec = sfft.rfft(wav.astype(np.float32, copy=False), size)
    spec *= response(size)
    return sfft.irfft(spec, size)[:n].astype(np.float32, copy=False)


def _band_response(freqs: np.ndarray, low_hz: float, high_hz: float, transition_hz: float) -> np.ndarray:
    """Amplitude gains ``(F,)`` of a band-pass with raised-cosine edges ``transition_hz`` wide.

    The lower edge rises from 0 at ``low_hz - transition_hz`` to 1 at ``low_hz`` (no lower edge
    when ``low_hz <= 0``); the upper edge falls from 1 at ``high_hz - transition_hz`` to 0 at
    ``high_hz``, so nothing at or above ``high_hz`` passes.
    """
    g = np.ones_like(freqs)
    if low_hz > 0:
        lo = low_hz - transition_hz
        g = np.where(freqs <= lo, 0.0, g)
        ramp = (freqs > lo) & (freqs < low_hz)
        g = np.where(ramp, 0.5 - 0.5 * np.cos(np.pi * (freqs - lo) / transition_hz), g)
    hi = high_hz - transition_hz
    ramp = (freqs > hi) & (freqs < high_hz)
    g = np.where(ramp, 0.5 + 0.5 * np.cos(np.pi * (freqs - hi) / transition_hz), g)
    return np.where(freqs >= high_hz, 0.0, g).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _band_gains(size: int, sr: int, low_hz: float, high_hz: float, transition_hz: float) -> np.ndarray:
    return _band_response(_freqs(size, sr), low_hz, high_hz, transition_hz)


def _lowpass_gains(sr: int, cutoff_hz: float, transition_hz: float | None = None):
    """``response(size)`` of :func:`lowpass`."""
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(f"cut-off {cutoff_hz} Hz must lie between 0 and {sr / 2} Hz")
    width = 0.05 * cutoff_hz if transition_hz is None else transition_hz
    return lambda size: _band_gains(size, sr, 0.0, float(cutoff_hz), float(width))


def lowpass(wav: np.ndarray, sr: int, cutoff_hz: float, transition_hz: float | None = None) -> np.ndarray:
    """Band-limit to ``cutoff_hz``: unity gain up to ``cutoff_hz - transition_hz``, a raised-cosine
    roll-off, zero at and above ``cutoff_hz`` (zero-phase, no ripple).  ``(N,) -> (N,)`` float32.

    ``transition_hz`` defaults to 5 % of the cut-off.
    """
    return _fft_filter(wav, sr, _lowpass_gains(sr, cutoff_hz, transition_hz))


def telephone(wav: np.ndarray, sr: int, low_hz: float = 300.0, high_hz: float = 3400.0,
              codec: bool = True, pre=None) -> np.ndarray:
    """A narrow-band telephone channel: band-pass ``low_hz``–``high_hz`` (raised-cosine edges
    100 Hz wide: rising from ``low_hz - 100`` to ``low_hz``, falling to zero at ``high_hz``);
    with ``codec``, resampled to 8 kHz, 8-bit mu-law (G.711-like), resampled back and band-passed
    again (the receiving end's filter).  Resampling is exact FFT resampling, so nothing above
    ``high_hz`` comes back.  ``pre(size) -> gains`` (as :func:`_fft_filter` takes), if given, is a
    linear filter applied first in the same FFT pass (how :class:`ChannelAugment` fuses the EQ
    tilt).  ``(N,) -> (N,)`` float32.
    """
    n = wav.shape[0]
    q = sr // math.gcd(sr, 8000)  # a length multiple of q resamples to a whole number of 8 kHz samples
    size = q * sfft.next_fast_len(-(-(n + _PAD) // q), real=True)
    band = _band_gains(size, sr, float(low_hz), float(high_hz), 100.0)
    spec = sfft.rfft(wav.astype(np.float32, copy=False), size) * band
    if pre is not None:
        spec *= pre(size)
    if codec:
        size8 = size * 8000 // sr
        narrow = sfft.irfft(spec[: size8 // 2 + 1], size8) * np.float32(size8 / size)
        spec = np.zeros_like(spec)
        spec[: size8 // 2 + 1] = sfft.rfft(mu_law(narrow, 8), size8) * np.float32(size / size8)
        spec *= band
    return sfft.irfft(spec, size)[:n].astype(np.float32, copy=False)


def _tilt_gains(sr: int, db_per_octave: float, pivot_hz: float = 1000.0, floor_hz: float = 62.5):
    """``response(size)`` of :func:`eq_tilt`."""

    def response(size: int) -> np.ndarray:
        octaves = np.log2(np.maximum(_freqs(size, sr), np.float32(floor_hz)) / np.float32(pivot_hz))
        return np.power(np.float32(10.0), np.float32(db_per_octave / 20) * octaves)

    return response


def eq_tilt(wav: np.ndarray, sr: int, db_per_octave: float, pivot_hz: float = 1000.0,
            floor_hz: float = 62.5) -> np.ndarray:
    """Spectral tilt: gain ``db_per_octave * log2(f / pivot_hz)`` dB (unity at ``pivot_hz``), held
    constant below ``floor_hz`` so DC is not boosted without bound.  ``(N,) -> (N,)`` float32.
    """
    return _fft_filter(wav, sr, _tilt_gains(sr, db_per_octave, pivot_hz, floor_hz))


def gain(wav: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels (no clipping).  ``(N,) -> (N,)`` float32."""
    return (wav * np.float32(10 ** (db / 20))).astype(np.float32)


# ---------------------------------------------------------------- quantisers


def mu_law(wav: np.ndarray, bits: int = 8) -> np.ndarray:
    """mu-law companding (``mu = 2**bits - 1``), quantised to ``2**bits`` levels, expanded back.

    The input is clipped to [-1, 1] first (as a real codec would).  ``(N,) -> (N,)`` float32
    with at most ``2**bits`` distinct values.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"mu-law bits must be 1..16 (got {bits})")
    mu = 2**bits - 1
    x = np.clip(wav.astype(np.float32), -1.0, 1.0)
    scale = np.float32(np.log1p(mu))
    y = np.sign(x) * np.log1p(np.float32(mu) * np.abs(x)) / scale
    q = np.round((y + 1) * np.float32(mu / 2))  # integer code 0..mu
    y = q * np.float32(2 / mu) - 1
    return (np.sign(y) * np.expm1(np.abs(y) * scale) / np.float32(mu)).astype(np.float32)


def quantise_spectrum(mag: np.ndarray, step_db: float, floor_db: float) -> np.ndarray:
    """The core of :func:`spectral_quantise` on a magnitude spectrogram ``(F, T)``: magnitudes
    rounded to a grid of ``step_db`` dB, bins more than ``floor_db`` under their frame's peak set
    to zero.  ``(F, T) -> (F, T)``.
    """
    db = 20 * np.log10(np.maximum(mag, 1e-10))
    peak = db.max(axis=0, keepdims=True)
    q = np.round(db / step_db) * step_db
    return np.where(db < peak - floor_db, 0.0, np.power(10.0, q / 20))


def spectral_quantise(wav: np.ndarray, sr: int, step_db: float = 4.0, floor_db: float = 35.0,
                      frame_s: float = 0.032) -> np.ndarray:
    """A low-bitrate-*like* effect (not a real codec): STFT (sqrt-Hann frames of ``frame_s``, 50 %
    overlap, perfect reconstruction when nothing is changed), :func:`quantise_spectrum` on the
    magnitudes, original phases, overlap-add.  Coarse steps and a high floor give the "watery",
    band-dropping sound of a starved codec.  ``(N,) -> (N,)`` float32.
    """
    n = wav.shape[0]
    half = max(1, int(round(frame_s * sr)) // 2)
    n_frames = -(-n // half) + 1
    x = np.zeros((n_frames + 1) * half, np.float32)
    x[half : half + n] = wav
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * half) / (2 * half))).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, 2 * half)[::half] * window  # (n_frames, 2 * half)
    spec = sfft.rfft(frames, axis=1)
    mag = np.abs(spec)
    q = quantise_spectrum(mag.T, step_db, floor_db).T.astype(np.float32)
    spec *= q / np.maximum(mag, np.float32(1e-10))
    y = sfft.irfft(spec, 2 * half, axis=1).astype(np.float32) * window
    out = np.zeros_like(x)
    out[: n_frames * half] += y[:, :half].reshape(-1)  # first halves: frame k covers [k*half, (k+1)*half)
    out[half : (n_frames + 1) * half] += y[:, half:].reshape(-1)  # second halves, one hop later
    return out[half : half + n]


# --------------------------------------------------------------------- noise


def active_mask(wav: np.ndarray, sr: int, range_db: float = ACTIVE_RANGE_DB) -> np.ndarray:
    """Samples of active speech: ``(N,)`` bool, true in the 20 ms frames whose power is within
    ``range_db`` of the loudest frame (a simplified ITU-T P.56 active level).  A clip shorter than
    one frame is all active."""
    frame = max(1, int(round(ACTIVE_FRAME_S * sr)))
    n_frames = wav.shape[0] // frame
    mask = np.ones(wav.shape[0], dtype=bool)
    if n_frames < 1:
        return mask
    power = np.mean(wav[: n_frames * frame].astype(np.float64).reshape(n_frames, frame) ** 2, axis=1)
    active = power >= power.max() * 10 ** (-range_db / 10)
    mask[: n_frames * frame] = np.repeat(active, frame)
    mask[n_frames * frame :] = active[-1]
    return mask


@functools.lru_cache(maxsize=16)
def _pink_weights(size: int, sr: int) -> np.ndarray:
    return (1.0 / np.sqrt(np.maximum(_freqs(size, sr), 20.0))).astype(np.float32)


def make_noise(n: int, sr: int, kind: str, rng: np.random.Generator, like: np.ndarray | None = None) -> np.ndarray:
    """``(n,)`` float32 noise of unit power.

    * ``white``: Gaussian;
    * ``pink``: 1/f power spectrum (-3 dB/octave) from 20 Hz up;
    * ``babble``: babble-*like* (no real talkers): speech-shaped noise (the smoothed long-term
      magnitude spectrum of ``like`` with random phases), in 4 circularly shifted copies, each
      amplitude-modulated by its own syllabic-rate envelope (random, about 4 Hz), summed.
    """
    if kind == "white":
        x = rng.standard_normal(n, dtype=np.float32)
    elif kind == "pink":
        size = sfft.next_fast_len(n, real=True)  # Gaussian spectrum shaped 1/sqrt(f): one inverse FFT
        bins = size // 2 + 1
        spec = rng.standard_normal(bins, dtype=np.float32) + 1j * rng.standard_normal(bins, dtype=np.float32)
        x = sfft.irfft(spec * _pink_weights(size, sr), size)[:n]
    elif kind == "babble":
        if like is None:
            raise ValueError("babble noise needs the speech it goes with (like=)")
        size = sfft.next_fast_len(n, real=True)
        shape = np.abs(sfft.rfft(like.astype(np.float32, copy=False), size))
        shape = np.convolve(shape, np.full(9, 1 / 9, np.float32), mode="same")  # envelope, not harmonics
        phase = rng.random(shape.shape[0], dtype=np.float32) * np.float32(2 * np.pi)
        base = sfft.irfft(shape * (np.cos(phase) + 1j * np.sin(phase)), size)[:n]
        step = max(1, sr // 50)  # envelopes drawn at 50 Hz (smoothed to ~4 Hz), linearly interpolated
        k = -(-n // step) + 1
        kernel = np.hanning(13).astype(np.float32)
        knots = np.stack([np.abs(np.convolve(rng.standard_normal(k + 12, dtype=np.float32), kernel, mode="valid"))
                          for _ in range(4)])  # (4, k)
        frac = np.arange(step, dtype=np.float32) / np.float32(step)
        env = (knots[:, :-1, None] + (knots[:, 1:, None] - knots[:, :-1, None]) * frac).reshape(4, -1)[:, :n]
        shifts = rng.integers(n, size=4)
        x = sum(np.roll(base, int(sh)) * e for sh, e in zip(shifts, env))
    else:
        raise ValueError(f"noise kind must be one of {', '.join(NOISE_KINDS)} (got {kind!r})")
    power = float(np.mean(np.square(x, dtype=np.float64)))
    return (x / np.float32(np.sqrt(power if power > 0 else 1.0))).astype(np.float32, copy=False)


def add_noise(wav: np.ndarray, sr: int, snr_db: float, rng: np.random.Generator, kind: str = "white") -> np.ndarray:
    """Add ``kind`` noise (see :func:`make_noise`) scaled so that, over the active-speech samples of
    ``wav`` (:func:`active_mask`), speech power / noise power is exactly ``snr_db``.
    Silent input comes back unchanged.  ``(N,) -> (N,)`` float32.
    """
    mask = active_mask(wav, sr)
    p_speech = float(np.mean(wav[mask].astype(np.float64) ** 2))
    if p_speech <= 0:
        return wav.astype(np.float32)
    noise = make_noise(wav.shape[0], sr, kind, rng, like=wav)
    p_noise = float(np.mean(noise[mask].astype(np.float64) ** 2))
    scale = np.sqrt(p_speech / (max(p_noise, 1e-20) * 10 ** (snr_db / 10)))
    return (wav + scale * noise).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray, sr: int) -> float:
    """The SNR :func:`add_noise` sets: active-speech power of ``clean`` over the power of
    ``noisy - clean`` on the same samples, in dB."""
    mask = active_mask(clean, sr)
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean[mask].astype(np.float64) ** 2) / np.mean(noise[mask] ** 2)))


# -------------------------------------------------------------------- reverb


def synthetic_rir(sr: int, rt60_s: float, rng: np.random.Generator, drr_db: float = 3.0,
                  predelay_s: float = 0.003) -> np.ndarray:
    """A room impulse response ``(L,) float32``, ``L = rt60_s * sr`` (the tail ends 60 dB down).

    A unit direct path at sample 0; after ``predelay_s``, Gaussian noise whose energy falls by
    60 dB in ``rt60_s`` (amplitude ``exp(-6.91 t / rt60)``), scaled so the direct-to-reverberant
    energy ratio is ``drr_db``.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60 must be positive (got {rt60_s})")
    n = max(2, int(rt60_s * sr))
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    tail = rng.standard_normal(n, dtype=np.float32) * np.exp(np.float32(-3 * np.log(10) / rt60_s) * t)
    tail[: int(predelay_s * sr) + 1] = 0.0
    tail *= np.float32(np.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(np.square(tail, dtype=np.float64))), 1e-20)))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverb(wav: np.ndarray, rir: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Convolve with ``rir`` ``(L,)`` (the tail past the clip's end is cut off), then rescale so the
    active-speech level equals the input's (level changes belong to :func:`gain`).  ``(N,) -> (N,)`` float32.
    """
    n = wav.shape[0]
    size = sfft.next_fast_len(n + rir.shape[0] - 1, real=True)
    spec = sfft.rfft(wav.astype(np.float32, copy=False), size) * sfft.rfft(rir.astype(np.float32, copy=False), size)
    out = sfft.irfft(spec, size)[:n]
    mask = active_mask(wav, sr)
    p_in = float(np.mean(wav[mask].astype(np.float64) ** 2))
    p_out = float(np.mean(out[mask].astype(np.float64) ** 2))
    if p_in > 0 and p_out > 0:
        out *= np.sqrt(p_in / p_out)
    return out.astype(np.float32)


def load_rirs(folder: str | Path, sr: int) -> list[np.ndarray]:
    """Every sound file under ``folder`` as a room impulse response ``(L,) float32`` at ``sr``:
    mono, cut to start at its peak (the direct path), peak-normalised.  Read with soundfile
    rather than :func:`~vcconv.audio.load_audio`, whose spike check an impulse response would trip.
    A missing folder, a folder without any, or an unreadable file is a :class:`ConfigError`."""
    import soundfile as sf

    from vcconv.audio import resample

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: augment.rir_dir is not a folder")
    rirs = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg", ".aiff", ".aif")):
        try:
            h, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            raise ConfigError(f"{path}: cannot read this room impulse response ({err})") from None
        h = resample(h.mean(axis=1), file_sr, sr)
        peak = float(np.max(np.abs(h))) if h.size else 0.0
        if not np.isfinite(peak) or peak <= 0:
            raise ConfigError(f"{path}: room impulse response is silent or not finite")
        rirs.append((h[int(np.argmax(np.abs(h))) :] / peak).astype(np.float32))
    if not rirs:
        raise ConfigError(f"{folder}: augment.rir_dir holds no audio files")
    return rirs


# ------------------------------------------------------------------ measures


def schroeder_rt60(rir: np.ndarray, sr: int, top_db: float = -5.0, bottom_db: float = -25.0) -> float:
    """RT60 of an impulse response by Schroeder backward integration: a line fitted to the energy
    decay curve between ``top_db`` and ``bottom_db`` (T20 by default), extrapolated to -60 dB."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0] + 1e-300)
    idx = np.nonzero((edc <= top_db) & (edc >= bottom_db))[0]
    slope = np.polyfit(idx / sr, edc[idx], 1)[0]  # dB per second, negative
    return float(-60.0 / slope)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if x.shape[0] >= n else np.pad(x, (0, n - x.shape[0]))


# ------------------------------------------------------------------- chains


class ChannelAugment:
    """A random channel chain drawn from ``cfg`` (see :class:`~vcconv.config.AugmentConfig`).

    ``aug(wav (N,) float32, rng) -> (wav (N,) float32, applied)``, ``applied`` naming each
    transform with its drawn setting, e.g. ``["reverb rt60=0.41s drr=2.3dB", "noise pink 12.0dB"]``.
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int):
        check_augment_config(cfg, sample_rate)
        self.cfg = cfg
        self.sr = sample_rate
        self.rirs = load_rirs(cfg.rir_dir, sample_rate) if cfg.rir_dir else None

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        c, sr = self.cfg, self.sr
        applied: list[str] = []
        out = wav.astype(np.float32)
        if rng.random() < c.reverb_prob:
            if self.rirs is not None:
                k = int(rng.integers(len(self.rirs)))
                out = reverb(out, self.rirs[k], sr)
                applied.append(f"reverb rir#{k}")
            else:
                rt60 = rng.uniform(*c.reverb_rt60_s)
                drr = rng.uniform(*c.reverb_drr_db)
                out = reverb(out, synthetic_rir(sr, rt60, rng, drr_db=drr), sr)
                applied.append(f"reverb rt60={rt60:.2f}s drr={drr:.1f}dB")
        if rng.random() < c.noise_prob:
            kind = c.noise_kinds[int(rng.integers(len(c.noise_kinds)))]
            snr = rng.uniform(*c.noise_snr_db)
            out = add_noise(out, sr, snr, rng, kind)
            applied.append(f"noise {kind} {snr:.1f}dB")
        tilt = None  # the EQ tilt is a linear filter: it runs in the band filter's FFT pass
        if rng.random() < c.eq_prob:
            tilt = rng.uniform(*c.eq_db_per_octave)
            applied.append(f"eq {tilt:+.1f}dB/oct")
        if rng.random() < c.gain_prob:  # a scalar: commutes with the (linear) EQ
            db = rng.uniform(*c.gain_db)
            out = gain(out, db)
            applied.append(f"gain {db:+.1f}dB")
        pre = None if tilt is None else _tilt_gains(sr, tilt)
        if rng.random() < c.telephone_prob:
            out = telephone(out, sr, pre=pre)
            applied.append("telephone")
        elif rng.random() < c.lowpass_prob:
            cutoff = float(c.lowpass_cutoffs_hz[int(rng.integers(len(c.lowpass_cutoffs_hz)))])
            band = _lowpass_gains(sr, cutoff)
            out = _fft_filter(out, sr, band if pre is None else (lambda size: band(size) * pre(size)))
            applied.append(f"lowpass {cutoff / 1000:g}kHz")
        elif pre is not None:
            out = _fft_filter(out, sr, pre)
        if rng.random() < c.mulaw_prob:
            bits = int(c.mulaw_bits[int(rng.integers(len(c.mulaw_bits)))])
            out = mu_law(out, bits)
            applied.append(f"mu-law {bits}bit")
        elif rng.random() < c.spectral_prob:
            step = rng.uniform(*c.spectral_step_db)
            floor = rng.uniform(*c.spectral_floor_db)
            out = spectral_quantise(out, sr, step, floor)
            applied.append(f"spectral step={step:.1f}dB floor={floor:.0f}dB")
        return out, applied


def check_augment_config(cfg: AugmentConfig, sample_rate: int) -> None:
    """One-line :class:`ConfigError` for a probability outside [0, 1], a reversed range, an unknown
    noise kind or a cut-off at or above Nyquist."""
    for name in ("reverb", "noise", "eq", "gain", "telephone", "lowpass", "mulaw", "spectral"):
        p = getattr(cfg, f"{name}_prob")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"augment.{name}_prob must be between 0 and 1 (got {p})")
    for name in ("reverb_rt60_s", "reverb_drr_db", "noise_snr_db", "eq_db_per_octave", "gain_db",
                 "spectral_step_db", "spectral_floor_db"):
        r = getattr(cfg, name)
        if len(r) != 2 or r[0] > r[1]:
            raise ConfigError(f"augment.{name} must be a [low, high] pair (got {list(r)})")
    if cfg.reverb_rt60_s[0] <= 0 or cfg.spectral_step_db[0] <= 0:
        raise ConfigError("augment.reverb_rt60_s and augment.spectral_step_db must be positive")
    bad = [k for k in cfg.noise_kinds if k not in NOISE_KINDS]
    if bad or not cfg.noise_kinds:
        raise ConfigError(f"augment.noise_kinds must be some of {', '.join(NOISE_KINDS)} (got {list(cfg.noise_kinds)})")
    if not cfg.lowpass_cutoffs_hz or any(not 0 < f < sample_rate / 2 for f in cfg.lowpass_cutoffs_hz):
        raise ConfigError(f"augment.lowpass_cutoffs_hz must lie between 0 and {sample_rate // 2} Hz "
                          f"(got {list(cfg.lowpass_cutoffs_hz)})")
    if not cfg.mulaw_bits or any(not 1 <= int(b) <= 16 for b in cfg.mulaw_bits):
        raise ConfigError(f"augment.mulaw_bits must be 1..16 (got {list(cfg.mulaw_bits)})")
