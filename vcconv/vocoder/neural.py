"""Small neural vocoders (log-mel -> waveform) that train and run on a CPU.

Two families, both working at the frame rate of the front end (hop 256 at
16 kHz: 62.5 frames/s) and leaving the sample rate to an inverse STFT, which is
what keeps them cheap (a HiFi-GAN upsampling stack costs ~100x more per second):

* ``istft`` (:class:`ISTFTVocoder`, after Vocos, Siuzdenko et al. 2023): a
  ConvNeXt-1D backbone predicts, per frame and FFT bin, a log-magnitude and a
  phase given as the angle ``atan2(b, a)`` of two outputs (used as
  ``(cos, sin) = (a, b) / |(a, b)|``); ``torch.istft`` makes the waveform.
* ``hnf`` (:class:`HNFVocoder`, harmonic-plus-noise / source-filter, in the
  spirit of DDSP and NSF): an F0-driven band-limited pulse train (all harmonics
  up to Nyquist, unit amplitude) and white noise are each shaped, in the STFT
  domain, by a per-frame magnitude envelope the backbone predicts; the phase of
  voiced sound therefore comes from the oscillator and is coherent by
  construction.  F0 comes from a small classification head on the mel (so the
  vocoder needs nothing but a mel), or is given explicitly (``f0=``): an
  extracted track, or one moved with :mod:`vcconv.pitch` to change the pitch.

Both predict log-magnitudes as a correction of the pseudo-inverse of the mel
filter bank (``log(pinv(M) exp(mel))``), which gives a usable output from the
first step.  Both are trained without a discriminator by
:func:`reconstruction_losses` (multi-resolution STFT: spectral convergence +
log-magnitude L1, plus log-mel L1); see :mod:`vcconv.vocoder.train`.

Released weights are ``.safetensors`` with metadata ``kind = "vocoder-<arch>"``
and ``config`` (a :class:`vcconv.config.RunConfig` whose ``model`` dict holds
the architecture config); :func:`load_neural_vocoder` rebuilds the model.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.audio import AudioConfig, log_mel, mel_filterbank
from vcconv.config import RunConfig, dataclass_from_dict
from vcconv.errors import ConfigError, ModelError
from vcconv.vocoder.griffin_lim import istft, refine_phase

KIND_PREFIX = "vocoder-"
# set VCCONV_CPU_BF16=0 to keep inference in float32 on CPUs with native bfloat16
CPU_BF16_ENV = "VCCONV_CPU_BF16"
LOG_EPS = 1e-5
MAX_LOG_MAG = math.log(1e3)


# --------------------------------------------------------------------- configs


@dataclass
class ISTFTConfig:
    """Architecture of :class:`ISTFTVocoder`."""

    dim: int = 192  # backbone channels
    hidden: int = 576  # ConvNeXt pointwise expansion
    layers: int = 6
    kernel: int = 7
    mel_prior: bool = True  # predict log-magnitude as a correction of log(pinv(mel))
    # inference-only post-filter on the output's STFT S (phase kept, RMS kept; not in the
    # training losses): log|S| <- postfilter * ((1 - prior_blend) * log|S| + prior_blend * log pinv(mel)),
    # i.e. spectral sharpening (postfilter > 1) of a magnitude pulled towards the mel's pseudo-inverse.
    # postfilter = 1 and prior_blend = 0: off. hnf blends only when its own F0 head drives it
    # unshifted (copy synthesis): pinv(mel) holds the mel's pitch in its low harmonics
    postfilter: float = 1.0
    prior_blend: float = 0.0
    # post-filter phase refinement: Griffin-Lim iterations (fast GL) that start from the
    # vocoder's own phase and hold the blended, sharpened magnitude (0 = one projection only);
    # only where the prior blend applies (hnf: its own F0, unshifted)
    postfilter_iters: int = 0
    # post-filter magnitude: {} = the mel's pseudo-inverse; else the MagConfig of a learned
    # mel -> magnitude network stored in the same file (`vcconv vocoder export --magnitude-prior`)
    prior_net: dict = field(default_factory=dict)
    # loss weights; w_phase: anti-wrapping phase losses on the predicted STFT phase
    # (instantaneous phase, group delay, instantaneous frequency; APNet, Ai & Ling 2023)
    w_mel: float = 1.0
    w_stft: float = 1.0
    w_phase: float = 0.0


@dataclass
class HNFConfig:
    """Architecture of :class:`HNFVocoder`."""

    dim: int = 192
    hidden: int = 576
    layers: int = 6
    kernel: int = 7
    mel_prior: bool = True
    f0_min: float = 50.0
    f0_max: float = 600.0
    f0_bins: int = 180  # log-spaced classes between f0_min and f0_max (~24 cents each)
    f0_sigma_bins: float = 1.0  # width of the Gaussian soft target
    voiced_threshold: float = 0.5
    nyquist_margin: float = 0.95  # harmonics above margin * sr/2 are dropped (no aliasing)
    # minimum-phase harmonic envelope (cepstral folding): measured worse on the corpus (spectral
    # convergence 0.48 vs 0.31 at step 150), so off by default
    min_phase: bool = False
    # "stft": the pulse train's STFT times a zero-phase harmonic envelope (the first recipe);
    # "pulse": pitch-synchronous, one minimum-phase impulse response per glottal pulse,
    # overlap-added in time (source-filter as in WORLD / LPC synthesis)
    harmonic_synthesis: str = "stft"
    # inference-only post-filter on the output's STFT S (phase kept, RMS kept; not in the
    # training losses): log|S| <- postfilter * ((1 - prior_blend) * log|S| + prior_blend * log pinv(mel)),
    # i.e. spectral sharpening (postfilter > 1) of a magnitude pulled towards the mel's pseudo-inverse.
    # postfilter = 1 and prior_blend = 0: off. hnf blends only when its own F0 head drives it
    # unshifted (copy synthesis): pinv(mel) holds the mel's pitch in its low harmonics
    postfilter: float = 1.0
    prior_blend: float = 0.0
    # post-filter phase refinement: Griffin-Lim iterations (fast GL) that start from the
    # vocoder's own phase and hold the blended, sharpened magnitude (0 = one projection only);
    # only where the prior blend applies (hnf: its own F0, unshifted)
    postfilter_iters: int = 0
    # post-filter magnitude: {} = the mel's pseudo-inverse; else the MagConfig of a learned
    # mel -> magnitude network stored in the same file (`vcconv vocoder export --magnitude-prior`)
    prior_net: dict = field(default_factory=dict)
    # where the full blend does not apply (a given or shifted F0: conversions), move only the
    # output's spectral envelope (cepstrum below envelope_lifter samples of quefrency) this
    # fraction towards the prior's envelope, keeping the output's own harmonics (0 = off)
    prior_envelope_blend: float = 0.0
    envelope_lifter: int = 24
    # sharpening where the full blend does not apply (a given or shifted F0: conversions);
    # 0 = the same as postfilter
    postfilter_given_f0: float = 0.0
    # phase iterations there (0 = keep the phase; 8 moved real-speech valid WER 0.25 -> 0.21 at the
    # same DNSMOS with no spectrum match: not adopted, docs/models.md "Where the words go")
    postfilter_iters_given_f0: int = 0
    # loss weights
    w_mel: float = 1.0
    w_stft: float = 1.0
    w_f0: float = 0.2
    w_vuv: float = 0.2


@dataclass
class MagConfig:
    """Architecture of :class:`MagnitudeVocoder`: a learned log-mel -> STFT log-magnitude
    (a correction of the mel's pseudo-inverse), rendered by Griffin-Lim on its own or used as
    the magnitude an hnf/istft post-filter blends towards (``prior_net``)."""

    dim: int = 192
    hidden: int = 576
    layers: int = 6
    kernel: int = 7
    mel_prior: bool = True
    gl_iters: int = 32  # Griffin-Lim iterations when it renders audio by itself
    power: float = 1.0  # magnitude exponent before Griffin-Lim (1 = off)
    # loss weights: log-magnitude L1 and spectral convergence of the linear magnitude,
    # against the STFT of the training audio (the front end's framing)
    w_logmag: float = 1.0
    w_sc: float = 1.0
    # F0-conditioned harmonic ripple (0 = off): the mel cannot resolve the harmonics of the upper
    # bands, the F0 places them. This many frequency bands of learned ripple depth, interpolated
    # over the bins; see MagnitudeVocoder.harmonic_ripple
    f0_ripple: int = 0


ARCH_CONFIGS = {"istft": ISTFTConfig, "hnf": HNFConfig, "mag": MagConfig}


# ---------------------------------------------------------------------- layers


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP, with layer scale and a residual.  ``(B, C, T) -> (B, C, T)``."""

    def __init__(self, dim: int, hidden: int, kernel: int = 7, layer_scale: float = 0.1):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class Backbone(nn.Module):
    """Normalised log-mel -> frame features.  ``(B, n_mels, T) -> (B, dim, T)``."""

    def __init__(self, n_mels: int, dim: int, hidden: int, layers: int, kernel: int):
        super().__init__()
        self.embed = nn.Conv1d(n_mels, dim, kernel, padding=kernel // 2)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, kernel, 1.0 / max(1, layers)) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.norm_out(x.transpose(1, 2)).transpose(1, 2)


# ---------------------------------------------------------------------- losses


def _stft(wav: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Magnitude STFT with a Hann window.  ``(B, N) -> (B, n_fft // 2 + 1, frames)``."""
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-10))


STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               resolutions=STFT_RESOLUTIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral convergence and log-magnitude L1, averaged over STFT resolutions.

    Args:
        pred, target: ``(B, N)`` waveforms.
    Returns:
        ``(sc, logmag)`` scalars.
    """
    sc, lm = 0.0, 0.0
    for n_fft, hop in resolutions:
        p, t = _stft(pred, n_fft, hop), _stft(target, n_fft, hop)
        sc = sc + torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-8)
        lm = lm + F.l1_loss(torch.log(p + LOG_EPS), torch.log(t + LOG_EPS))
    n = len(resolutions)
    return sc / n, lm / n


def _anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """``|x - 2 pi round(x / 2 pi)|``: the distance of a phase difference from 0 on the circle."""
    return torch.abs(x - 2 * math.pi * torch.round(x / (2 * math.pi)))


def phase_losses(pred_phase: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Anti-wrapping phase losses (APNet, Ai & Ling 2023), each weighted by the square root
    of the target magnitude (normalised to mean 1 per utterance) so silent bins, whose phase
    is noise, count little.

    Args:
        pred_phase: ``(B, F, T)`` predicted STFT phase (radians).
        target: ``(B, F, T)`` complex STFT of the target waveform (same framing).
    Returns:
        ``{"ip", "gd", "iaf"}``: instantaneous phase, group delay (difference along
        frequency) and instantaneous frequency (difference along time).
    """
    weight = target.abs().sqrt()
    weight = weight / weight.mean(dim=(1, 2), keepdim=True).clamp(min=1e-8)
    true_phase = torch.angle(target)
    err = pred_phase - true_phase
    gd = torch.diff(pred_phase, dim=1) - torch.diff(true_phase, dim=1)
    iaf = torch.diff(pred_phase, dim=2) - torch.diff(true_phase, dim=2)
    return {"ip": (_anti_wrap(err) * weight).mean(),
            "gd": (_anti_wrap(gd) * weight[:, 1:]).mean(),
            "iaf": (_anti_wrap(iaf) * weight[..., 1:]).mean()}


def input_mel(batch: dict, audio: AudioConfig) -> torch.Tensor:
    """The log-mel a training batch feeds the vocoder: ``batch["mel"] (B, n_mels, L + 1)``
    when the sampler supplies one (e.g. a VC model's converted mel), else the log-mel of
    ``batch["wav"] (B, L * hop)``."""
    return batch["mel"] if "mel" in batch else log_mel(batch["wav"], audio)


def reconstruction_losses(pred: torch.Tensor, target: torch.Tensor, audio: AudioConfig,
                          w_mel: float = 1.0, w_stft: float = 1.0) -> dict[str, torch.Tensor]:
    """``{"total", "mel", "sc", "logmag"}`` for ``(B, N)`` predicted and target waveforms.

    ``mel`` is the L1 distance of natural-log mels (the front end's own
    :func:`~vcconv.audio.log_mel`); ``total = w_stft * (sc + logmag) + w_mel * mel``.
    """
    n = min(pred.shape[-1], target.shape[-1])
    pred, target = pred[..., :n], target[..., :n]
    sc, lm = multi_resolution_stft_loss(pred, target)
    mel = F.l1_loss(log_mel(pred, audio), log_mel(target, audio))
    return {"total": w_stft * (sc + lm) + w_mel * mel, "mel": mel, "sc": sc, "logmag": lm}


# ---------------------------------------------------------------------- models


class _MelVocoder(nn.Module):
    """Shared parts: mel normalisation buffers, backbone, the mel-prior magnitude and iSTFT."""

    arch = ""
    config_class: type = ISTFTConfig

    def __init__(self, cfg, audio: AudioConfig):
        super().__init__()
        self.cfg = cfg
        self.audio = audio
        self.n_freq = audio.n_fft // 2 + 1
        self.register_buffer("mel_mean", torch.zeros(audio.n_mels))
        self.register_buffer("mel_std", torch.ones(audio.n_mels))
        self.register_buffer("window", torch.hann_window(audio.win_length), persistent=False)
        fb = mel_filterbank(audio)
        self.register_buffer("mel_pinv", torch.linalg.pinv(fb), persistent=False)  # (F, n_mels)
        self.backbone = Backbone(audio.n_mels, cfg.dim, cfg.hidden, cfg.layers, cfg.kernel)
        if getattr(cfg, "prior_net", None):
            self.magnitude_prior = MagnitudeVocoder(dataclass_from_dict(MagConfig, dict(cfg.prior_net)), audio)

    @property
    def kind(self) -> str:
        return KIND_PREFIX + self.arch

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin log-mel mean and std ``(n_mels,)`` of the training data."""
        self.mel_mean.copy_(mean.to(self.mel_mean))
        self.mel_std.copy_(std.clamp(min=1e-3).to(self.mel_std))

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel -> ``(B, dim, T)`` float32.

        At inference on a CPU with native bfloat16 (:func:`cpu_has_native_bf16`) the backbone
        runs under bfloat16 autocast, about 1.7x faster; its output differs from float32 by
        bfloat16 rounding (tested).  Training, gradients, CUDA and other CPUs use float32."""
        x = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
        if self.training or x.device.type != "cpu" or torch.is_grad_enabled() or not cpu_has_native_bf16():
            return self.backbone(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.backbone(x).float()

    def prior_log_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """``log(pinv(M) exp(mel))``, floored: ``(B, n_mels, T) -> (B, F, T)``."""
        if not self.cfg.mel_prior:
            return torch.zeros(mel.shape[0], self.n_freq, mel.shape[-1], device=mel.device, dtype=mel.dtype)
        lin = torch.matmul(self.mel_pinv, torch.exp(mel))
        return torch.log(torch.clamp(lin, min=LOG_EPS))

    def postfilter_prior(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        """The log-magnitude the post-filter blends towards: ``(B, n_mels, T) -> (B, F, T)``;
        the learned ``magnitude_prior`` when the file has one (given the synthesised F0 ``(B, T)``
        Hz, which a prior with ``f0_ripple`` reads), else :meth:`prior_log_magnitude`."""
        net = getattr(self, "magnitude_prior", None)
        return net.log_magnitude(mel, f0) if net is not None else self.prior_log_magnitude(mel)

    def istft(self, spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(B, F, T)`` complex -> ``(B, length)``, by default ``(T - 1) * hop`` samples."""
        return istft(spec, self.audio, self.window, length)

    def apply_postfilter(self, wav: torch.Tensor, mel: torch.Tensor | None = None,
                         envelope_only: bool = False, f0: torch.Tensor | None = None) -> torch.Tensor:
        """Post-filter at inference: ``(B, N)`` [+ its log-mel ``(B, n_mels, T)`` and the F0
        ``(B, T)`` Hz it was synthesised with] -> ``(B, N)``.

        The STFT log-magnitude is moved a fraction ``cfg.prior_blend`` towards the mel's
        pseudo-inverse (:meth:`prior_log_magnitude`) and multiplied by ``cfg.postfilter``
        (spectral sharpening); the phase is kept or, where a blend applies, refined by
        ``cfg.postfilter_iters`` Griffin-Lim iterations that start from it (on the real-speech
        valid split they raised copy-synthesis PESQ but not conversions, which run without the
        blend); the result is scaled back to the input's RMS. A no-op with ``postfilter == 1``
        and ``prior_blend == 0``, and in training mode.  ``envelope_only`` (a given or shifted
        F0): ``cfg.prior_envelope_blend`` of the prior's spectral envelope instead,
        ``cfg.postfilter_iters_given_f0`` iterations, and the sharpening ``cfg.postfilter_given_f0``
        when it is set."""
        power = float(getattr(self.cfg, "postfilter", 1.0))
        if envelope_only and getattr(self.cfg, "postfilter_given_f0", 0.0):
            power = float(self.cfg.postfilter_given_f0)
        key = "prior_envelope_blend" if envelope_only else "prior_blend"
        blend = float(getattr(self.cfg, key, 0.0)) if mel is not None else 0.0
        if envelope_only:
            iters = int(getattr(self.cfg, "postfilter_iters_given_f0", 0))
        else:
            iters = int(getattr(self.cfg, "postfilter_iters", 0)) if blend else 0
        if (power == 1.0 and blend == 0.0 and not iters) or self.training:
            return wav
        spec = self.stft(wav)
        power_spec = spec.real.square() + spec.imag.square()  # |S|^2 without a complex abs
        log_mag = 0.5 * torch.log(power_spec.clamp(min=1e-14))
        if blend:
            prior = self.postfilter_prior(mel.float(), f0)[..., : spec.shape[-1]]
            if envelope_only:
                lifter = int(getattr(self.cfg, "envelope_lifter", 24))
                log_mag = log_mag + blend * (cepstral_envelope(prior, lifter) - cepstral_envelope(log_mag, lifter))
            else:
                log_mag = torch.lerp(log_mag, prior, blend)
        target = torch.exp(power * log_mag)
        # polar(target, angle(spec)) without angle/polar (~3x faster); 0 where spec is 0
        start = spec * (target * torch.rsqrt(power_spec.clamp_(min=1e-24)))
        spec = refine_phase(start, target, self.audio, iters, length=wav.shape[-1])
        out = self.istft(spec, length=wav.shape[-1])
        rms_in = wav.pow(2).mean(-1, keepdim=True).sqrt()
        rms_out = out.pow(2).mean(-1, keepdim=True).sqrt().clamp(min=1e-9)
        return out * (rms_in / rms_out)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """``(B, N) -> (B, F, N // hop + 1)`` complex (the same framing as the front end)."""
        a = self.audio
        return torch.stft(wav, a.n_fft, a.hop_length, a.win_length, self.window, center=True,
                          pad_mode="reflect", return_complex=True)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ISTFTVocoder(_MelVocoder):
    """Vocos-style vocoder: ConvNeXt backbone -> per-bin log-magnitude and phase -> iSTFT."""

    arch = "istft"
    config_class = ISTFTConfig

    def __init__(self, cfg: ISTFTConfig, audio: AudioConfig):
        super().__init__(cfg, audio)
        self.head = nn.Conv1d(cfg.dim, 3 * self.n_freq, 1)
        with torch.no_grad():
            self.head.weight[: self.n_freq].mul_(0.1)
            self.head.bias[: self.n_freq].zero_()

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` -> complex STFT ``(B, F, T)``."""
        h = self.head(self.features(mel))
        logmag, a, b = h.split(self.n_freq, dim=1)
        mag = torch.exp(torch.clamp(logmag + self.prior_log_magnitude(mel), max=MAX_LOG_MAG))
        r = torch.sqrt(a * a + b * b + 1e-9)  # phase = atan2(b, a): (cos, sin) = (a, b) / r
        return torch.complex(mag * a / r, mag * b / r)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` or ``(n_mels, T)`` log-mel -> waveform ``(B, N)`` / ``(N,)``, ``N = (T - 1) * hop``."""
        squeeze = mel.dim() == 2
        mel = mel[None] if squeeze else mel
        wav = self.apply_postfilter(self.istft(self.spectrum(mel.float())), mel)
        return wav[0] if squeeze else wav

    def loss(self, batch: dict, step: int = 0, keep_pred: bool = False) -> dict[str, torch.Tensor]:
        """``batch["wav"]``: ``(B, N)`` with N a multiple of hop.  Returns losses with a ``"total"``
        (and the generated ``"pred" (B, N)`` when ``keep_pred``, for the GAN stage)."""
        wav = batch["wav"]
        spec = self.spectrum(input_mel(batch, self.audio).float())  # the network alone, as in hnf: no post-filter
        pred = self.istft(spec)
        losses = reconstruction_losses(pred, wav, self.audio, self.cfg.w_mel, self.cfg.w_stft)
        if self.cfg.w_phase:  # the magnitude is an exp, never 0: the angle is atan2(b, a) of the head
            target = self.stft(wav)[..., : spec.shape[-1]]
            phase = phase_losses(torch.angle(spec)[..., : target.shape[-1]], target)
            losses.update(phase)
            losses["total"] = losses["total"] + self.cfg.w_phase * (phase["ip"] + phase["gd"] + phase["iaf"])
        if keep_pred:
            losses["pred"] = pred
        return losses


class HNFVocoder(_MelVocoder):
    """Harmonic-plus-noise source-filter vocoder driven by F0 (predicted from the mel, or given)."""

    arch = "hnf"
    config_class = HNFConfig

    def __init__(self, cfg: HNFConfig, audio: AudioConfig):
        super().__init__(cfg, audio)
        self.env_head = nn.Conv1d(cfg.dim, 2 * self.n_freq, 1)
        self.f0_head = nn.Conv1d(cfg.dim, cfg.f0_bins + 1, 1)
        with torch.no_grad():
            self.env_head.weight.mul_(0.1)
            self.env_head.bias.zero_()
            self.env_head.bias[self.n_freq:].fill_(-1.0)  # start mostly harmonic
        lo, hi = math.log(cfg.f0_min), math.log(cfg.f0_max)
        self.register_buffer("bin_log_f0", torch.linspace(lo, hi, cfg.f0_bins), persistent=False)

    # ---- F0 head
    def f0_logits(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim, T)`` -> class logits ``(B, f0_bins, T)`` and voiced logit ``(B, T)``."""
        h = self.f0_head(feats)
        return h[:, :-1], h[:, -1]

    def decode_f0(self, logits: torch.Tensor, voiced_logit: torch.Tensor) -> torch.Tensor:
        """Local weighted mean of log-F0 around the best class; 0 where unvoiced.  -> ``(B, T)`` Hz."""
        prob = torch.softmax(logits.float(), dim=1)
        best = prob.argmax(dim=1, keepdim=True)  # (B, 1, T)
        idx = torch.arange(logits.shape[1], device=logits.device)[None, :, None]
        near = (idx - best).abs() <= 4
        w = prob * near
        log_f0 = (w * self.bin_log_f0[None, :, None]).sum(1) / w.sum(1).clamp(min=1e-8)
        voiced = torch.sigmoid(voiced_logit) > self.cfg.voiced_threshold
        return torch.where(voiced, torch.exp(log_f0), torch.zeros_like(log_f0))

    def predict_f0(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel -> ``(B, T)`` F0 in Hz (0 = unvoiced)."""
        return self.decode_f0(*self.f0_logits(self.features(mel.float())))

    # ---- sources
    def _sample_f0(self, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame F0 ``(B, T)`` Hz -> sample-rate F0 ``(B, (T - 1) * hop)`` (float64; log-interpolated
        through unvoiced gaps, 0 for rows with no voiced frame) and the voiced gate (linearly interpolated)."""
        a = self.audio
        B, T = f0.shape
        n = (T - 1) * a.hop_length
        f0 = f0.double()
        voiced = (f0 > 0).double()
        log_f = torch.where(f0 > 0, torch.log(f0.clamp(min=1.0)), torch.zeros_like(f0))
        filled = _fill_gaps(log_f, f0 > 0)  # (B, T), 0 where a row has no voiced frame at all
        up = lambda x: F.interpolate(x[:, None], size=n + 1, mode="linear", align_corners=True)[:, 0, :n]
        has_voice = (f0 > 0).any(dim=1, keepdim=True)
        f_s = torch.where(has_voice, torch.exp(up(filled)), torch.zeros(B, n, dtype=f0.dtype, device=f0.device))
        return f_s, up(voiced)

    def harmonic_source(self, f0: torch.Tensor, phase0: torch.Tensor | None = None) -> torch.Tensor:
        """Band-limited pulse train: the sum of every harmonic below the Nyquist margin, unit amplitude each.

        ``sum_{k=1..K} cos(k phi) = sin((K + 1/2) phi) / (2 sin(phi / 2)) - 1/2`` with
        ``K = floor(margin * sr / 2 / f0)`` per sample.  Scaled so each harmonic's
        STFT peak is ~1.  F0 is interpolated (log domain) through unvoiced gaps to
        keep the phase continuous, then the voiced mask (linearly interpolated) gates it.

        Args:
            f0: ``(B, T)`` Hz, 0 = unvoiced.
        Returns:
            ``(B, (T - 1) * hop)``.
        """
        a = self.audio
        f_s, v_s = self._sample_f0(f0)
        phi = torch.cumsum(2 * math.pi * f_s / a.sample_rate, dim=1)
        if phase0 is not None:
            phi = phi + phase0.double()[:, None]
        # the phase accumulates in float64; once wrapped to (-pi, pi] float32 is exact enough
        # (|(K + 1/2) phi| < 500 rad: ~3e-5 rad of rounding) and twice as fast
        phi = (torch.remainder(phi + math.pi, 2 * math.pi) - math.pi).float()
        k = torch.floor(self.cfg.nyquist_margin * a.sample_rate / 2 / f_s.clamp(min=1.0)).clamp(min=1.0).float()
        half = torch.sin(phi / 2)
        small = half.abs() < 1e-6
        dirichlet = torch.sin((k + 0.5) * phi) / (2 * torch.where(small, torch.ones_like(half), half)) - 0.5
        pulses = torch.where(small, k, dirichlet)
        scale = 2.0 / float(self.window.double().sum())
        return pulses * v_s.float() * scale

    def pulse_harmonics(self, f0: torch.Tensor, log_env: torch.Tensor) -> torch.Tensor:
        """Pitch-synchronous harmonic part: one impulse per glottal cycle, each filtered by the
        minimum-phase response of the harmonic envelope at its time, overlap-added.

        Pulses fall where the cumulative F0 phase crosses a multiple of 2*pi (fractional
        position kept by a linear-phase delay); the envelope is interpolated between frames;
        each pulse is scaled by ``period / sum(window)`` and the voiced gate, so that its
        harmonics' STFT peaks match those of :meth:`harmonic_source` times the envelope.

        Args:
            f0: ``(B, T)`` Hz, 0 = unvoiced.
            log_env: ``(B, F, T)`` log-magnitude envelope, F = n_fft // 2 + 1.
        Returns:
            ``(B, (T - 1) * hop)``.
        """
        a = self.audio
        B, T = f0.shape
        n = (T - 1) * a.hop_length
        n_fft = a.n_fft
        f_s, v_s = self._sample_f0(f0)
        dphi = 2 * math.pi * f_s / a.sample_rate
        phi = torch.cumsum(dphi, dim=1)
        cycle = torch.floor(phi / (2 * math.pi))
        starts = (cycle[:, 1:] > cycle[:, :-1]) & (v_s[:, 1:] > 0)
        b_idx, s_idx = torch.nonzero(starts, as_tuple=True)
        s_idx = s_idx + 1
        out = torch.zeros(B, n + n_fft, dtype=log_env.dtype, device=log_env.device)
        if b_idx.numel() == 0:
            return out[:, :n]
        frac = ((phi[b_idx, s_idx] - 2 * math.pi * cycle[b_idx, s_idx]) / dphi[b_idx, s_idx]).clamp(0, 1)
        gain = v_s[b_idx, s_idx] * a.sample_rate / (f_s[b_idx, s_idx] * self.window.sum().double())
        pos = ((s_idx.double() - frac) / a.hop_length).clamp(0, T - 1)
        j0 = torch.floor(pos).long().clamp(max=T - 1)
        j1 = (j0 + 1).clamp(max=T - 1)
        w = (pos - j0.double()).to(log_env.dtype)[:, None]
        env = log_env.transpose(1, 2)  # (B, T, F)
        log_mag = env[b_idx, j0] * (1 - w) + env[b_idx, j1] * w  # (P, F)
        spec = minimum_phase(log_mag[..., None], n_fft)[..., 0]  # (P, F)
        # the pulse is at s - frac: start the response one sample early and delay it by 1 - frac
        # (a causal shift; advancing a causal response would wrap its start to the buffer's end)
        omega = 2 * math.pi * torch.arange(spec.shape[-1], device=spec.device, dtype=torch.float64) / n_fft
        delay = torch.polar(torch.ones_like(omega)[None], -omega[None] * (1.0 - frac)[:, None]).to(spec.dtype)
        ir = torch.fft.irfft(spec * delay, n=n_fft, dim=-1) * gain.to(log_env.dtype)[:, None]  # (P, n_fft)
        idx = (b_idx * (n + n_fft) + s_idx - 1)[:, None] + torch.arange(n_fft, device=ir.device)[None]
        out = out.reshape(-1).index_add(0, idx.reshape(-1), ir.reshape(-1)).reshape(B, n + n_fft)
        return out[:, :n]

    def noise_spectrum(self, shape: tuple[int, int, int], device, seed: int | None) -> torch.Tensor:
        """Complex white noise in the STFT domain, ``E|N|^2 = 1``: ``(B, F, T)``."""
        if seed is None:
            re, im = torch.randn(shape, device=device), torch.randn(shape, device=device)
        else:
            g = torch.Generator(device="cpu").manual_seed(seed)
            re, im = torch.randn(shape, generator=g).to(device), torch.randn(shape, generator=g).to(device)
        return torch.complex(re, im) * (0.5**0.5)

    def synthesize(self, mel: torch.Tensor, f0: torch.Tensor | None = None, seed: int | None = 0,
                   feats: torch.Tensor | None = None, f0_ratio: float = 1.0,
                   voicing_from_mel: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n_mels, T)`` -> waveform ``(B, (T - 1) * hop)`` and the F0 used ``(B, T)``.

        ``f0`` (Hz) replaces the F0 head's reading; with ``voicing_from_mel`` it is kept only
        where the head finds the mel voiced.  The F0 used is multiplied by ``f0_ratio``.
        The backbone runs once either way.
        """
        mel = mel.float()
        feats = self.features(mel) if feats is None else feats
        if f0 is None or voicing_from_mel:
            with torch.no_grad():
                predicted = self.decode_f0(*self.f0_logits(feats))
            f0 = predicted if f0 is None else torch.where(predicted > 0, f0.to(predicted), torch.zeros_like(predicted))
        f0 = f0.to(mel.device).float() * f0_ratio
        if f0.shape[-1] != mel.shape[-1]:
            raise ValueError(f"f0 has {f0.shape[-1]} frames, mel has {mel.shape[-1]}")
        env = self.env_head(feats)
        prior = self.prior_log_magnitude(mel)
        log_h, log_n = env.split(self.n_freq, dim=1)
        log_harm_env = torch.clamp(log_h + prior, max=MAX_LOG_MAG)
        nz = torch.exp(torch.clamp(log_n + prior, max=MAX_LOG_MAG))
        noise = self.noise_spectrum(tuple(nz.shape), mel.device, seed)
        if self.cfg.harmonic_synthesis == "pulse":
            return self.pulse_harmonics(f0, log_harm_env) + self.istft(nz * noise), f0
        h = minimum_phase(log_harm_env, self.audio.n_fft) if self.cfg.min_phase else torch.exp(log_harm_env)
        harm = self.stft(self.harmonic_source(f0))
        return self.istft(h * harm + nz * noise), f0

    def forward(self, mel: torch.Tensor, f0: torch.Tensor | None = None, seed: int | None = 0,
                f0_ratio: float = 1.0, voicing_from_mel: bool = False) -> torch.Tensor:
        """``(B, n_mels, T)`` or ``(n_mels, T)`` log-mel [+ ``f0`` ``(B, T)`` / ``(T,)`` Hz, 0 = unvoiced]
        -> waveform ``(B, N)`` / ``(N,)``, ``N = (T - 1) * hop``.

        Without ``f0`` the F0 head predicts it from the mel.  ``seed`` fixes the
        noise (``None``: the global RNG), so the same input gives the same output.
        ``f0_ratio`` and ``voicing_from_mel``: see :meth:`synthesize`.
        """
        squeeze = mel.dim() == 2
        mel = mel[None] if squeeze else mel
        if f0 is not None:
            f0 = torch.as_tensor(f0, dtype=torch.float32)
            f0 = f0[None] if f0.dim() == 1 else f0
        wav, f0_used = self.synthesize(mel, f0, seed, f0_ratio=f0_ratio, voicing_from_mel=voicing_from_mel)
        # the mel's pseudo-inverse carries the mel's own pitch in its resolved low harmonics: blend
        # towards it only when that is the pitch being synthesised (own F0 head, unshifted)
        own_pitch = f0 is None and f0_ratio == 1.0
        wav = self.apply_postfilter(wav, mel, envelope_only=not own_pitch, f0=f0_used)
        return wav[0] if squeeze else wav

    def f0_targets(self, f0: torch.Tensor) -> torch.Tensor:
        """Gaussian soft class targets ``(B, f0_bins, T)`` for voiced frames of ``f0`` ``(B, T)``."""
        lo, hi = math.log(self.cfg.f0_min), math.log(self.cfg.f0_max)
        pos = (torch.log(f0.clamp(min=1.0)) - lo) / (hi - lo) * (self.cfg.f0_bins - 1)  # fractional bin
        idx = torch.arange(self.cfg.f0_bins, device=f0.device, dtype=torch.float32)[None, :, None]
        t = torch.exp(-0.5 * ((idx - pos[:, None]) / self.cfg.f0_sigma_bins) ** 2)
        return t / t.sum(1, keepdim=True).clamp(min=1e-8)

    def loss(self, batch: dict, step: int = 0, keep_pred: bool = False) -> dict[str, torch.Tensor]:
        """``batch["wav"]`` ``(B, N)``, ``batch["f0"]`` ``(B, N // hop + 1)`` Hz (0 = unvoiced);
        ``keep_pred``: also return the generated ``"pred" (B, N)`` (for the GAN stage).

        The synthesiser is driven by the given F0 (teacher forcing); the F0 head
        learns it by soft-label cross-entropy (voiced frames) and a voiced/unvoiced BCE.  Where
        ``batch["f0_matches_mel"]`` ``(B,)`` is False (an input mel at another pitch) the
        cross-entropy skips that segment; the voicing is the same and still learnt.
        """
        wav, f0 = batch["wav"], batch["f0"].float()
        mel = input_mel(batch, self.audio)
        feats = self.features(mel)
        pred, _ = self.synthesize(mel, f0, seed=None, feats=feats)
        losses = reconstruction_losses(pred, wav, self.audio, self.cfg.w_mel, self.cfg.w_stft)
        logits, v_logit = self.f0_logits(feats)
        voiced = f0 > 0
        vuv = F.binary_cross_entropy_with_logits(v_logit, voiced.float())
        learn_f0 = voiced
        if "f0_matches_mel" in batch:
            learn_f0 = voiced & batch["f0_matches_mel"].to(voiced.device)[:, None]
        if learn_f0.any():
            ce = -(self.f0_targets(f0) * torch.log_softmax(logits, dim=1)).sum(1)
            f0_ce = (ce * learn_f0).sum() / learn_f0.sum()
        else:
            f0_ce = logits.sum() * 0.0
        losses["f0"] = f0_ce
        losses["vuv"] = vuv
        losses["total"] = losses["total"] + self.cfg.w_f0 * f0_ce + self.cfg.w_vuv * vuv
        if keep_pred:
            losses["pred"] = pred
        return losses


class MagnitudeVocoder(_MelVocoder):
    """Learned magnitude + Griffin-Lim: ConvNeXt backbone -> per-bin log-magnitude correction of
    ``log pinv(mel)``, trained on the STFT magnitude of real audio (no phase, no waveform loss)."""

    arch = "mag"
    config_class = MagConfig

    def __init__(self, cfg: MagConfig, audio: AudioConfig):
        super().__init__(cfg, audio)
        self.mag_head = nn.Conv1d(cfg.dim, self.n_freq, 1)
        nn.init.zeros_(self.mag_head.weight)  # starts as the pseudo-inverse
        nn.init.zeros_(self.mag_head.bias)
        if cfg.f0_ripple:
            self.ripple_head = nn.Conv1d(cfg.dim, 2 * cfg.f0_ripple, 1)
            nn.init.zeros_(self.ripple_head.weight)  # starts without ripple
            nn.init.zeros_(self.ripple_head.bias)
            freqs = torch.arange(self.n_freq, dtype=torch.float32) * audio.sample_rate / audio.n_fft
            self.register_buffer("bin_hz", freqs, persistent=False)

    def harmonic_ripple(self, feats: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """Log-magnitude ripple at the harmonics of ``f0`` ``(B, T)`` Hz (0 = unvoiced: none):
        ``d1 cos(2 pi f / F0) + d2 cos(4 pi f / F0)`` per bin ``f``, the depths ``d1, d2`` read
        from the backbone's ``feats`` ``(B, dim, T)`` per band and interpolated over the bins.
        -> ``(B, F, T)``."""
        T = min(feats.shape[-1], f0.shape[-1])
        depth = self.ripple_head(feats[..., :T])  # (B, 2R, T)
        d1, d2 = (self._bands_to_bins(d.float()) for d in depth.chunk(2, dim=1))
        f0 = f0[..., :T].float().to(feats.device)
        voiced = (f0 > 0).float()[:, None, :]
        phase = 2 * math.pi * self.bin_hz[None, :, None] / f0.clamp(min=1.0)[:, None, :]
        ripple = (d1 * torch.cos(phase) + d2 * torch.cos(2 * phase)) * voiced
        if T < feats.shape[-1]:
            ripple = F.pad(ripple, (0, feats.shape[-1] - T))
        return ripple

    def _bands_to_bins(self, bands: torch.Tensor) -> torch.Tensor:
        """``(B, R, T)`` per-band values -> ``(B, F, T)``, linearly interpolated over the bins
        (band 0 at DC, band R - 1 at Nyquist)."""
        spread = F.interpolate(bands.transpose(1, 2), size=self.n_freq, mode="linear", align_corners=True)
        return spread.transpose(1, 2)

    def log_magnitude(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel [+ its F0 ``(B, T)`` Hz, for a model with ``f0_ripple``]
        -> ``(B, F, T)`` natural-log STFT magnitude."""
        mel = mel.float()
        feats = self.features(mel)
        out = self.prior_log_magnitude(mel) + self.mag_head(feats)
        if f0 is not None and getattr(self, "ripple_head", None) is not None:
            out = out + self.harmonic_ripple(feats, f0)
        return torch.clamp(out, min=math.log(LOG_EPS), max=MAX_LOG_MAG)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` / ``(n_mels, T)`` -> ``(B, N)`` / ``(N,)``: Griffin-Lim
        (``cfg.gl_iters``, magnitude raised to ``cfg.power``) on the predicted magnitude."""
        from vcconv.vocoder.griffin_lim import griffin_lim

        squeeze = mel.dim() == 2
        mel = mel[None] if squeeze else mel
        wav = griffin_lim(torch.exp(self.log_magnitude(mel)), self.audio, self.cfg.gl_iters, power=self.cfg.power)
        return wav[0] if squeeze else wav

    def loss(self, batch: dict, step: int = 0, keep_pred: bool = False) -> dict[str, torch.Tensor]:
        """``batch["wav"]`` ``(B, N)`` -> ``{"total", "sc", "logmag", "mel"}``: log-magnitude L1
        and spectral convergence against the waveform's STFT; ``mel`` = L1 of the log-mel the
        predicted magnitude implies (for the log only)."""
        if keep_pred:
            raise ConfigError("the 'mag' vocoder has no waveform output to train a GAN stage on")
        mel = input_mel(batch, self.audio)
        target = self.stft(batch["wav"]).abs()[..., : mel.shape[-1]]
        pred_log = self.log_magnitude(mel, batch.get("f0"))[..., : target.shape[-1]]
        logmag = F.l1_loss(pred_log, torch.log(target.clamp(min=LOG_EPS)))
        pred = torch.exp(pred_log)
        sc = torch.linalg.norm(target - pred) / torch.linalg.norm(target).clamp(min=1e-8)
        with torch.no_grad():
            fb = mel_filterbank(self.audio).to(pred)
            mel_err = F.l1_loss(torch.log(torch.clamp(fb @ pred, min=LOG_EPS)),
                                torch.log(torch.clamp(fb @ target, min=LOG_EPS)))
        total = self.cfg.w_logmag * logmag + self.cfg.w_sc * sc
        return {"total": total, "mel": mel_err, "sc": sc, "logmag": logmag}


def cepstral_envelope(log_mag: torch.Tensor, lifter: int) -> torch.Tensor:
    """Smooth spectral envelope: ``(B, F, T)`` log-magnitude with its real cepstrum cut at
    ``lifter`` samples of quefrency (below a pitch period, so harmonics go) -> same shape."""
    n_fft = 2 * (log_mag.shape[1] - 1)
    c = torch.fft.irfft(log_mag.transpose(1, 2), n=n_fft, dim=-1)
    keep = torch.zeros(n_fft, device=c.device, dtype=c.dtype)
    keep[:lifter] = 1.0
    keep[n_fft - lifter + 1:] = 1.0
    return torch.fft.rfft(c * keep, dim=-1).real.transpose(1, 2)


def minimum_phase(log_mag: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Minimum-phase frequency response with the given log-magnitude (real cepstrum folding).

    ``(B, n_fft // 2 + 1, T)`` real -> same shape complex, ``|out| = exp(log_mag)``
    up to cepstral aliasing.
    """
    c = torch.fft.irfft(log_mag.transpose(1, 2), n=n_fft, dim=-1)  # (B, T, n_fft) real cepstrum
    half = n_fft // 2
    fold = torch.ones(n_fft, device=c.device, dtype=c.dtype)
    fold[1:half] = 2.0
    fold[half + 1:] = 0.0
    return torch.exp(torch.fft.rfft(c * fold, dim=-1)).transpose(1, 2)


def _fill_gaps(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x`` ``(B, T)`` through frames where ``valid`` is False (edges: nearest valid).

    Rows with no valid frame come back as zeros.
    """
    B, T = x.shape
    out = torch.zeros_like(x)
    t = torch.arange(T, device=x.device, dtype=x.dtype)
    for b in range(B):
        idx = valid[b].nonzero().flatten()
        if idx.numel() == 0:
            continue
        if idx.numel() == T:
            out[b] = x[b]
            continue
        xs, ys = idx.to(x.dtype), x[b, idx]
        pos = torch.searchsorted(xs, t).clamp(1, max(1, idx.numel() - 1))
        if idx.numel() == 1:
            out[b] = ys[0]
            continue
        x0, x1 = xs[pos - 1], xs[pos]
        y0, y1 = ys[pos - 1], ys[pos]
        w = ((t - x0) / (x1 - x0)).clamp(0, 1)
        out[b] = y0 + w * (y1 - y0)
    return out


VOCODER_FAMILIES: dict[str, type[_MelVocoder]] = {"istft": ISTFTVocoder, "hnf": HNFVocoder, "mag": MagnitudeVocoder}


# ------------------------------------------------------------------ build/load


_NATIVE_BF16: bool | None = None


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (x86 ``avx512_bf16`` / ``amx_bf16``,
    read from ``/proc/cpuinfo``; False elsewhere, where oneDNN would only emulate it) and
    ``VCCONV_CPU_BF16`` is not ``0``."""
    global _NATIVE_BF16
    if os.environ.get(CPU_BF16_ENV, "1") == "0":
        return False
    if _NATIVE_BF16 is None:
        try:
            flags = set(Path("/proc/cpuinfo").read_text(errors="ignore").split())
        except OSError:
            flags = set()
        _NATIVE_BF16 = bool(flags & {"avx512_bf16", "amx_bf16"}) and torch.backends.mkldnn.is_available()
    return _NATIVE_BF16


def arch_of(kind: str) -> str:
    """``"vocoder-hnf"`` -> ``"hnf"`` (a bare arch name passes through)."""
    arch = kind.removeprefix(KIND_PREFIX)
    if arch not in VOCODER_FAMILIES:
        raise ConfigError(f"unknown vocoder architecture '{arch}' (choose from {', '.join(VOCODER_FAMILIES)})")
    return arch


def vocoder_fields(arch: str) -> set[str]:
    return set(ARCH_CONFIGS[arch_of(arch)].__dataclass_fields__)


def build_vocoder(arch: str, model: dict, audio: AudioConfig) -> _MelVocoder:
    """A fresh vocoder of ``arch`` (``"istft"``, ``"hnf"`` or ``"vocoder-<arch>"``) from a config dict."""
    arch = arch_of(arch)
    cfg = dataclass_from_dict(ARCH_CONFIGS[arch], dict(model))
    return VOCODER_FAMILIES[arch](cfg, audio)


def vocoder_run_config(model: _MelVocoder, train=None) -> RunConfig:
    """The :class:`RunConfig` stored with a vocoder's weights."""
    rc = RunConfig(model_kind=model.kind, audio=model.audio, model=asdict(model.cfg))
    if train is not None:
        rc.train = train
    return rc


def save_vocoder(model: _MelVocoder, path: str | Path, *, fp16: bool = False, cfg: RunConfig | None = None,
                 extra: dict | None = None) -> Path:
    """Write ``model`` as ``.safetensors`` with kind/config metadata (see module docstring)."""
    from vcconv.checkpoint import save_safetensors

    return save_safetensors(model, cfg or vocoder_run_config(model), path, fp16=fp16, extra=extra)


def load_neural_vocoder(path: str | Path, device: str | torch.device | None = None) -> _MelVocoder:
    """Rebuild a vocoder from a ``.safetensors`` file (kind ``vocoder-*``) or a vocoder run directory.

    Weights load strictly; fp16 files are cast to float32.  The returned model is
    in eval mode, on ``device`` (default: the one device rule), with ``.audio``
    (its :class:`~vcconv.audio.AudioConfig`) and ``.run_config``.
    """
    from vcconv.checkpoint import config_from, default_device, load_training_state, meta_config, read_safetensors

    path = Path(path)
    dev = default_device(device)
    if path.is_dir() or path.name == "last.pt":
        run_dir = path if path.is_dir() else path.parent
        state = load_training_state(run_dir)  # refuses pickled code, one line
        if state is None:
            raise ModelError(f"{run_dir}: no last.pt in this run directory")
        rc = config_from(run_dir / "last.pt", state["config"])
        weights = state["model"]
        where = run_dir
    elif path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelError(f"{path}: file not found")
        weights, meta = read_safetensors(path)
        rc = meta_config(path, meta)
        where = path
    else:
        raise ModelError(f"{path}: expected a vocoder .safetensors file or a run directory")
    if not rc.model_kind.startswith(KIND_PREFIX):
        raise ModelError(f"{where}: holds a '{rc.model_kind}' model, not a vocoder")
    model = build_vocoder(rc.model_kind, rc.model, rc.audio)
    own = model.state_dict()
    weights = {k: (v.to(own[k].dtype) if k in own else v) for k, v in weights.items()}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{where}: weights do not match the vocoder config ({str(err).splitlines()[0]})") from None
    rc.model = asdict(model.cfg)  # every architecture field explicit, so a re-export never depends on defaults
    model.run_config = rc
    return model.to(dev).eval()


def attach_magnitude_prior(model: _MelVocoder, prior: _MelVocoder, where: str = "magnitude prior") -> None:
    """Store ``prior`` (a :class:`MagnitudeVocoder`) in ``model`` as the magnitude its post-filter
    blends towards (config key ``prior_net``; its weights travel in the same file)."""
    if not isinstance(prior, MagnitudeVocoder):
        raise ModelError(f"{where}: holds a '{prior.kind}' vocoder, not a 'vocoder-mag' magnitude model")
    if isinstance(model, MagnitudeVocoder):
        raise ModelError(f"{where}: a 'vocoder-mag' model cannot take a magnitude prior")
    if not audio_matches(model.audio, prior.audio):
        raise ModelError(f"{where}: trained for another front end than the vocoder")
    model.cfg.prior_net = asdict(prior.cfg)
    model.magnitude_prior = prior.to(next(model.parameters()).device)
    if hasattr(model, "run_config"):
        model.run_config.model["prior_net"] = asdict(prior.cfg)


def detach_magnitude_prior(model: _MelVocoder) -> None:
    """Drop a stored magnitude prior: the post-filter blends towards ``log pinv(mel)`` again."""
    if getattr(model, "magnitude_prior", None) is not None:
        del model.magnitude_prior
    if hasattr(model.cfg, "prior_net"):
        model.cfg.prior_net = {}
        if hasattr(model, "run_config"):
            model.run_config.model["prior_net"] = {}


def audio_matches(a: AudioConfig, b: AudioConfig) -> bool:
    """True when two front ends produce the same log-mel (rate, FFT, hop, window, mel bank)."""
    keys = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


__all__ = [
    "ARCH_CONFIGS",
    "VOCODER_FAMILIES",
    "HNFConfig",
    "HNFVocoder",
    "MagConfig",
    "MagnitudeVocoder",
    "ISTFTConfig",
    "ISTFTVocoder",
    "attach_magnitude_prior",
    "audio_matches",
    "detach_magnitude_prior",
    "build_vocoder",
    "load_neural_vocoder",
    "multi_resolution_stft_loss",
    "reconstruction_losses",
    "save_vocoder",
    "vocoder_fields",
    "vocoder_run_config",
]
