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
    window = torch.hann_window(cfg.win_length, device=mag.device)
    length = (mag.shape[-1] - 1) * cfg.hop_length
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=gen).to(mag.device) * 2 * torch.pi
    spec = torch.polar(mag, phase)
    prev = torch.zeros_like(spec)

    def istft(s: torch.Tensor) -> torch.Tensor:
        return torch.istft(s, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True, length=length)

    def stft(w: torch.Tensor) -> torch.Tensor:
        return torch.stft(w, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                          pad_mode="reflect", return_complex=True)

    for _ in range(n_iter):
        rebuilt = stft(istft(spec))
        accel = rebuilt + (momentum / (1 + momentum)) * (rebuilt - prev) if momentum > 0 else rebuilt
        prev = rebuilt
        spec = mag * torch.exp(1j * torch.angle(accel))
    wav = istft(spec)
    peak = wav.abs().amax(dim=-1, keepdim=True).clamp(min=1e-6)
    wav = wav / torch.clamp(peak / 0.95, min=1.0)
    return wav[0] if squeeze else wav


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
