"""Griffin-Lim phase reconstruction in torch, with the momentum ("fast Griffin-Lim") update."""

from __future__ import annotations

import torch

from vcconv.audio import AudioConfig, mel_to_linear


def griffin_lim(magnitude: torch.Tensor, cfg: AudioConfig, n_iter: int = 32, momentum: float = 0.99,
                seed: int = 0, power: float = 1.2) -> torch.Tensor:
    """Waveform from a linear magnitude spectrogram.

    Args:
        magnitude: ``(B, F, T)`` or ``(F, T)``, F = n_fft // 2 + 1.
        momentum: 0 gives classic Griffin-Lim; 0.99 is fast Griffin-Lim (Perraudin et al. 2013).
        power: magnitudes are raised to this power first (sharpens harmonics, a common GL trick).
    Returns:
        ``(B, N)`` or ``(N,)`` with ``N = (T - 1) * hop_length``.
    """
    squeeze = magnitude.dim() == 2
    mag = magnitude.unsqueeze(0) if squeeze else magnitude
    mag = mag.float() ** power
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=gen).to(mag.device) * 2 * torch.pi
    spec = refine_phase(torch.polar(mag, phase), mag, cfg, n_iter, momentum)
    wav = _istft(spec, cfg)
    peak = wav.abs().amax(dim=-1, keepdim=True).clamp(min=1e-6)
    wav = wav / torch.clamp(peak / 0.95, min=1.0)
    return wav[0] if squeeze else wav


def _window(cfg: AudioConfig, device) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, device=device)


def _istft(spec: torch.Tensor, cfg: AudioConfig, length: int | None = None) -> torch.Tensor:
    """``(B, F, T)`` complex -> ``(B, length)``, by default ``(T - 1) * hop`` samples."""
    length = (spec.shape[-1] - 1) * cfg.hop_length if length is None else length
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, _window(cfg, spec.device),
                       center=True, length=length)


def refine_phase(spec: torch.Tensor, magnitude: torch.Tensor, cfg: AudioConfig, n_iter: int,
                 momentum: float = 0.99, length: int | None = None) -> torch.Tensor:
    """``n_iter`` Griffin-Lim iterations from the phase of ``spec``, the magnitude held at ``magnitude``.

    Args:
        spec: ``(B, F, T)`` complex, the starting point (its phase is what is used).
        magnitude: ``(B, F, T)`` real, the magnitude every iterate is projected onto.
        momentum: 0 = classic Griffin-Lim; 0.99 = fast Griffin-Lim (Perraudin et al. 2013).
        length: samples of the signal the STFT frames (default ``(T - 1) * hop``).
    Returns:
        ``(B, F, T)`` complex with magnitude ``magnitude`` (``spec`` itself when ``n_iter`` is 0).
    """
    window = _window(cfg, spec.device)
    prev = torch.zeros_like(spec)
    for _ in range(n_iter):
        wav = _istft(spec, cfg, length)
        rebuilt = torch.stft(wav, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                             pad_mode="reflect", return_complex=True)
        accel = rebuilt + (momentum / (1 + momentum)) * (rebuilt - prev) if momentum > 0 else rebuilt
        prev = rebuilt
        size = accel.abs()
        # magnitude * exp(i angle(accel)), without the (3x slower) angle/exp; angle 0 where accel is 0
        spec = torch.where(size > 1e-12, accel * (magnitude / size.clamp(min=1e-12)), magnitude.to(accel.dtype))
    return spec


class GriffinLimVocoder:
    """Always-available mel-to-waveform baseline: pseudo-inverse mel, then fast Griffin-Lim."""

    name = "griffinlim"

    def __init__(self, cfg: AudioConfig, n_iter: int = 32, momentum: float = 0.99):
        self.cfg = cfg
        self.n_iter = n_iter
        self.momentum = momentum

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` or ``(n_mels, T)`` log-mel -> waveform ``(B, N)`` / ``(N,)``."""
        with torch.no_grad():
            return griffin_lim(mel_to_linear(log_mel, self.cfg), self.cfg, self.n_iter, self.momentum)
