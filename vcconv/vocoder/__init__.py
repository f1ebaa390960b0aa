"""Mel-to-waveform vocoders.  ``load_vocoder(name, audio_cfg)`` returns a callable
``(B, n_mels, T) log-mel -> (B, N) waveform``."""

from __future__ import annotations

from vcconv.audio import AudioConfig
from vcconv.errors import ModelError
from vcconv.vocoder.griffin_lim import GriffinLimVocoder, griffin_lim


def load_vocoder(name: str | None, audio_cfg: AudioConfig, device=None):
    """``None``/``"default"`` -> the best shipped vocoder for this front end (Griffin-Lim until a
    neural one is shipped); ``"griffinlim"`` or ``"griffinlim:N"`` (N iterations)."""
    if name in (None, "default", "griffinlim", "gl"):
        return GriffinLimVocoder(audio_cfg)
    if name.startswith("griffinlim:"):
        try:
            return GriffinLimVocoder(audio_cfg, n_iter=int(name.split(":", 1)[1]))
        except ValueError:
            raise ModelError(f"bad vocoder '{name}': use griffinlim:N with N an integer") from None
    raise ModelError(f"unknown vocoder '{name}' (available: griffinlim, griffinlim:N)")


__all__ = ["GriffinLimVocoder", "griffin_lim", "load_vocoder"]
