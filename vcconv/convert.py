"""Conversion API: ``convert()`` for one file, ``Converter`` to reuse a loaded model.

The CLI's ``convert`` and ``batch`` commands are thin layers over these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vcconv.adaptation import DEFAULT_ADAPT_LR, DEFAULT_ADAPT_REG, check_adapt_rate, check_adapt_steps, refine_speaker
from vcconv.audio import (AudioConfig, band_statistics, carried_bands, lacks_low_band, load_audio, log_mel,  # noqa: F401
                          matchable_bands, mel_band_centres, normalize_loudness, preprocess, save_audio,
                          speech_frames)
from vcconv.checkpoint import default_device, load_model_file
from vcconv.config import DEFAULT_MIX_SPLIT_HZ, check_fraction, check_split_hz, check_strength
from vcconv.errors import ModelError
from vcconv.models.frontends import load_frontend
from vcconv.pitch import extract_f0
from vcconv.system import cpu_threads, torch_threads
from vcconv.vocoder import load_vocoder

log = logging.getLogger(__name__)

DEFAULT_MODEL = "adain-whisper"  # the shipped default (pretrained/adain-whisper.safetensors); `--model adain-base`: the previous one
CHUNK_FRAMES = 1024  # ~16 s of frames per model call: bounded memory for any input length
OVERLAP_FRAMES = 32


BUILTIN_MODELS = ("world",)  # training-free converters: no model file (vcconv.dsp)


def is_builtin_model(name: str | Path | None) -> bool:
    """True for the name of a built-in, training-free converter (``"world"``)."""
    return isinstance(name, str) and name in BUILTIN_MODELS


def resolve_model_path(name_or_path: str | Path | None) -> Path:
    """A model name or a path, checked to exist.

    A name is ``pretrained/<name>.safetensors``, else the one ``pretrained/<name>-*.safetensors``;
    where a family prefix matches several (``adain`` -> adain-base, adain-whisper) it means the
    default model when that is one of them, and is refused as ambiguous otherwise (it once picked
    the first alphabetically: the old default, silently)."""
    from vcconv.system import pretrained_dir

    name = str(name_or_path or DEFAULT_MODEL)
    p = Path(name)
    if p.exists():
        return p
    folder = pretrained_dir()
    exact = folder / f"{name}.safetensors"
    if exact.exists():
        return exact
    family = [c for c in sorted(folder.glob(f"{name}-*.safetensors")) if not c.name.startswith("vocoder")]
    default = folder / f"{DEFAULT_MODEL}.safetensors"
    if default in family:
        return default
    if len(family) == 1:
        return family[0]
    if family:
        raise ModelError(f"model name '{name}' is ambiguous: {', '.join(c.stem for c in family)}; give the full name")
    raise ModelError(f"model '{name}' not found (not a file, and no {name}*.safetensors in {folder}); see 'vcconv info'")


F0_MODES = ("auto", "predict", "transfer")
# Strength for a model file that stores none (a model stores its own with `vcconv export --strength`).
# Chosen on 60 held-out pairs for a model without the adversary (docs/models.md, "Conversion strength
# and F0"): strength 1.0 / 1.5 / 2.0 gave target-win 0.600 / 0.967 / 0.983, closed-set id
# 0.567 / 0.883 / 0.817, WER ratio 0.90 / 0.98 / 1.24; F0 transfer cut |F0 error| from ~1.1 to
# 0.3-0.8 semitones.
DEFAULT_STRENGTH = 1.5
DEFAULT_F0 = "auto"
AUTO_THREADS_TTL_S = 5.0  # automatic thread choice: how long a load measurement is reused
SOURCE_VOICE_SECONDS = 30  # the source's own speaker vector (strength != 1) reads at most this much


@dataclass
class ConversionResult:
    wav: np.ndarray  # (N,) float32
    sample_rate: int
    timings: dict  # seconds: load, features, model, vocoder
    threads: int = 0  # torch CPU threads used (0 on CUDA)


class Converter:
    """A loaded model + vocoder, ready to convert many files.

    ``device=None`` picks CUDA when available, else CPU.
    """

    def __init__(self, model: str | Path | None = None, vocoder: str | None = None, device: str | None = None,
                 pitch_shift: float = 0.0, strength: float | None = None, f0: str = DEFAULT_F0,
                 threads: int | None = None, spectrum_match: float | None = None,
                 source_mix: float | None = None, spectrum_spread: float | None = None,
                 source_mix_high: float | None = None, adapt_steps: int | None = None):
        """``strength``: 1 uses the target's speaker vector; above 1 it is pushed further
        away from the source's own vector, ``s = s_src + strength * (s_tgt - s_src)``
        (more target-like, at some cost in clarity); 0 keeps the source voice. ``None``: the
        strength stored with the model (``vcconv export --strength``), else :data:`DEFAULT_STRENGTH`.

        ``f0`` (F0-driven vocoder only): ``"predict"`` lets the vocoder's F0 head read the
        converted mel; ``"transfer"`` keeps the source's intonation, moved to the target
        speaker's log-F0 mean and spread (see :meth:`transfer_f0`); ``"auto"``: transfer
        when the vocoder takes an F0 track, else predict (Griffin-Lim keeps the mel's pitch).

        ``spectrum_match`` (0-1): after the model, move each mel band's mean and spread over the
        speech frames that far toward the reference clips' (:meth:`match_spectrum`; 1 = the
        reference's long-term spectrum, 0 = off).  ``None``: the model's own
        (``vcconv export --spectrum-match``), else 0.

        ``spectrum_spread`` (0-1): how much of the spread (std) of each band spectrum matching
        moves, as the power of the std ratio (1 = the reference's spread, 0 = the band means
        only: an equaliser that leaves the source's contrasts, hence its words, alone).
        ``None``: the model's own (``vcconv export --spectrum-spread``), else 1.

        ``source_mix`` (0-1): the share of the source's own log-mel mixed back into the model's
        output, before spectrum matching (0 = the model's output only; more keeps more of the
        source's words and less of the target's voice).  ``None``: the model's own, else 0.

        ``source_mix_high`` (0-1): a two-band mix: ``source_mix`` is then the source's share in
        the mel bands below the model's ``source_mix_split_hz`` (default 1500 Hz) and this one
        above it (:meth:`mix_source`).  ``None``: the model's own when ``source_mix`` is not
        given either; a ``source_mix`` given alone is one share for every band.

        ``adapt_steps`` (>= 0): test-time speaker adaptation, this many Adam steps that refine the
        speaker vector on the reference clips' own reconstruction (:meth:`speaker_vector`,
        :func:`vcconv.adaptation.refine_speaker`; 0 = the encoder's vector as it is).  ``None``:
        the model's own (``vcconv export --adapt-steps``; learning rate and penalty as stored by
        :func:`vcconv.checkpoint.export_model`, else 0.03 and 0.01), else 0.

        ``threads`` (CPU): torch threads for :meth:`convert`; ``None`` or 0 chooses them at each
        call from the cores other processes leave idle (:func:`vcconv.system.cpu_threads`)."""
        self.device = default_device(device)
        if threads is not None and threads < 0:
            raise ModelError(f"--threads must be 0 (automatic) or more (got {threads})")
        self.threads = threads or 0
        self._auto_threads: tuple[float, int] | None = None  # (time measured, threads)
        self.pitch_shift = pitch_shift
        if f0 not in F0_MODES:
            raise ModelError(f"unknown --f0 mode '{f0}' (choose from {', '.join(F0_MODES)})")
        self._ref_f0: dict[tuple[str, ...], np.ndarray] = {}
        if strength is not None:
            check_strength(strength)
        self.model_path = resolve_model_path(model)
        self.model, self.cfg = load_model_file(self.model_path, self.device)
        self.strength = check_strength(self.cfg.convert.get("strength", DEFAULT_STRENGTH) if strength is None else strength)
        own = self.cfg.convert
        self.spectrum_match = check_fraction(own.get("spectrum_match", 0.0) if spectrum_match is None
                                             else spectrum_match, "--spectrum-match")
        self.source_mix = check_fraction(own.get("source_mix", 0.0) if source_mix is None else source_mix,
                                         "--source-mix")
        if source_mix_high is None and source_mix is None:
            source_mix_high = own.get("source_mix_high")
        self.source_mix_high = None if source_mix_high is None else check_fraction(source_mix_high, "--source-mix-high")
        self.source_mix_split_hz = check_split_hz(float(own.get("source_mix_split_hz", DEFAULT_MIX_SPLIT_HZ)),
                                                  self.cfg.audio)
        self.spectrum_spread = check_fraction(own.get("spectrum_spread", 1.0) if spectrum_spread is None
                                              else spectrum_spread, "--spectrum-spread")
        self.adapt_steps = check_adapt_steps(own.get("adapt_steps", 0) if adapt_steps is None else adapt_steps)
        self.adapt_lr = check_adapt_rate(own.get("adapt_lr", DEFAULT_ADAPT_LR), "--adapt-lr", positive=True)
        self.adapt_reg = check_adapt_rate(own.get("adapt_reg", DEFAULT_ADAPT_REG), "--adapt-reg", positive=False)
        self._ref_spectrum: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._ref_mel: dict[str, torch.Tensor] = {}
        self._ref_wav: dict[str, np.ndarray] = {}
        self._ref_speaker: dict[tuple, torch.Tensor] = {}
        self.audio: AudioConfig = self.cfg.audio
        self.frontend = load_frontend(self.cfg.model.get("content_input", "mel"), threads or 0)
        self.vocoder = load_vocoder(vocoder, self.audio, self.device)
        self.f0_driven = hasattr(self.vocoder, "predict_f0")
        if pitch_shift and not self.f0_driven:
            raise ModelError("--pitch-shift needs an F0-driven vocoder (the default hnf), not Griffin-Lim")
        if f0 == "transfer" and not self.f0_driven:
            raise ModelError("--f0 transfer needs an F0-driven vocoder (the default hnf), not Griffin-Lim")
        self.f0_mode = ("transfer" if self.f0_driven else "predict") if f0 == "auto" else f0

    def _vocode_batch(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        """``(1, n_mels, T)`` [+ an F0 contour ``(1, T)`` Hz, voiced where the mel is] -> ``(1, N)``;
        moves the F0 by ``pitch_shift`` semitones."""
        if not self.f0_driven:
            return self.vocoder(mel)
        return self.vocoder(mel, f0=f0, f0_ratio=2.0 ** (self.pitch_shift / 12.0), voicing_from_mel=f0 is not None)

    @torch.no_grad()
    def reference_f0(self, references: list[str | Path]) -> np.ndarray:
        """Voiced F0 values (Hz) of the reference clips, read by the vocoder's F0 head; cached.
        A clip whose channel dropped the low band (:func:`vcconv.audio.lacks_low_band`, e.g. a
        telephone recording) is read by pYIN on its waveform instead, which follows the
        harmonics' period where the F0 head, trained on full-band mels, reads a harmonic; its
        octave jumps are dropped (:func:`without_octave_jumps`)."""
        key = tuple(str(Path(r).resolve()) for r in references)
        if key not in self._ref_f0:
            vals = []
            for ref in references:
                mel = self.reference_mel(ref)
                if lacks_low_band(band_statistics(mel)[0][:, 0], self.audio):
                    f0 = extract_f0(self.reference_wav(ref), self.audio.sample_rate, self.audio.hop_length,
                                    method="pyin")
                    f0 = without_octave_jumps(f0)
                else:
                    f0 = self.vocoder.predict_f0(mel[None])[0].cpu().numpy()
                vals.append(f0[f0 > 0])
            self._ref_f0[key] = np.concatenate(vals).astype(np.float64)
        return self._ref_f0[key]

    @torch.no_grad()
    def transfer_f0(self, source_mel: torch.Tensor, target_f0: np.ndarray) -> torch.Tensor | None:
        """F0 contour for the converted speech: the source's, Gaussian-normalised in log F0
        to the target's mean and spread, gaps in the source's voicing bridged in log F0.
        The vocoder voices it where the converted mel is voiced (``voicing_from_mel``).

        ``source_mel``: ``(n_mels, T)``; ``target_f0``: voiced Hz values.  Returns ``(1, T)``
        Hz, or ``None`` (the vocoder reads the converted mel itself) when the source or
        the target has no voiced frame.
        """
        from vcconv.pitch import interpolate_unvoiced, log_f0_stats, shift_f0_to_target

        src_f0 = self.vocoder.predict_f0(source_mel[None])[0].cpu().numpy().astype(np.float64)
        if (src_f0 > 0).sum() < 2 or target_f0.size < 2:
            return None
        moved = shift_f0_to_target(src_f0, log_f0_stats(src_f0), log_f0_stats(target_f0))
        return torch.from_numpy(interpolate_unvoiced(moved)).float().to(source_mel.device)[None]

    def reference_wav(self, reference: str | Path) -> np.ndarray:
        """Silence-trimmed waveform ``(N,)`` of one reference clip at the model's rate; cached
        (read once for its speaker vector, F0, spectrum and adaptation)."""
        key = str(Path(reference).resolve())
        if key not in self._ref_wav:
            self._ref_wav[key] = preprocess(load_audio(reference, self.audio.sample_rate), self.audio, trim=True)
        return self._ref_wav[key]

    def reference_mel(self, reference: str | Path) -> torch.Tensor:
        """Log-mel ``(n_mels, T)`` of :meth:`reference_wav`, on the device; cached."""
        key = str(Path(reference).resolve())
        if key not in self._ref_mel:
            self._ref_mel[key] = log_mel(torch.from_numpy(self.reference_wav(reference)).to(self.device), self.audio)
        return self._ref_mel[key]

    @torch.no_grad()
    def reference_spectrum(self, references: list[str | Path]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band mean and std ``(n_mels, 1)`` of the reference clips' log-mel speech frames; cached."""
        key = tuple(str(Path(r).resolve()) for r in references)
        if key not in self._ref_spectrum:
            mels = [self.reference_mel(r) for r in references]
            self._ref_spectrum[key] = band_statistics(torch.cat(mels, dim=-1))
        return self._ref_spectrum[key]

    def match_spectrum(self, mel: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(n_mels, T)`` converted log-mel with each band's mean and std over its speech frames
        moved ``spectrum_match`` of the way to the reference's ``(mean, std)`` (each ``(n_mels, 1)``);
        the std by the power ``spectrum_spread`` of the ratio (0: the means only).  Bands whose
        level in the reference is the channel's, not the voice's (:func:`vcconv.audio.matchable_bands`:
        a telephone or low-rate recording's empty upper bands, a telephone's high-passed low band)
        are left as the model made them."""
        mean, std = band_statistics(mel)
        ref_mean, ref_std = reference
        matched = (mel - mean) * (ref_std / std) ** self.spectrum_spread + ref_mean
        weight = self.spectrum_match * matchable_bands(ref_mean[:, 0], self.audio).to(mel.dtype)[:, None]
        return mel + weight * (matched - mel)

    def mix_source(self, converted: torch.Tensor, source_mel: torch.Tensor) -> torch.Tensor:
        """``(1 - share) * converted + share * source_mel``, both ``(n_mels, T)``: the share is
        ``source_mix`` in every band, or with ``source_mix_high`` set, :meth:`source_shares`."""
        if self.source_mix_high is None or self.source_mix_high == self.source_mix:
            if self.source_mix <= 0:
                return converted
            return (1.0 - self.source_mix) * converted + self.source_mix * source_mel
        share = self.source_shares().to(converted)[:, None]
        return (1.0 - share) * converted + share * source_mel

    def source_shares(self) -> torch.Tensor:
        """The source's share per mel band ``(n_mels,)``: ``source_mix`` below
        ``source_mix_split_hz``, ``source_mix_high`` above, a logistic step one band wide
        centred on the band nearest the split."""
        centres = torch.from_numpy(mel_band_centres(self.audio)).float()
        nearest = float((centres - self.source_mix_split_hz).abs().argmin())
        step = torch.sigmoid(torch.arange(len(centres), dtype=torch.float32) - nearest)
        high = self.source_mix if self.source_mix_high is None else self.source_mix_high
        return self.source_mix + (high - self.source_mix) * step

    @torch.no_grad()
    def self_conversion_mel(self, wav: np.ndarray) -> torch.Tensor:
        """The log-mel this converter hands its vocoder when ``wav`` (``(N,)`` at the model's
        rate, already preprocessed) is converted to its own voice (:meth:`conversion_mel` with
        ``wav`` as source and reference).  ``(n_mels, T)``, frame-aligned with ``log_mel(wav)``;
        a vocoder trained on these learns to render converted mels."""
        return self.conversion_mel(wav, wav)

    @torch.no_grad()
    def conversion_mel(self, source_wav: np.ndarray, reference_wav: np.ndarray) -> torch.Tensor:
        """The log-mel this converter hands its vocoder when ``source_wav`` is converted to the
        voice of ``reference_wav`` (both ``(N,)`` at the model's rate, preprocessed): decoder
        output, source mix and spectrum matching as in :meth:`convert`.  ``(n_mels, T)``,
        frame-aligned with ``log_mel(source_wav)``."""
        mel = log_mel(torch.from_numpy(source_wav).to(self.device), self.audio)
        speaker = self.apply_strength(self._speaker_of(reference_wav), source_wav)
        converted = self.mix_source(self.convert_mel(mel, speaker, self.content_features(source_wav, mel.shape[-1])), mel)
        if self.spectrum_match > 0:
            if reference_wav is source_wav:
                ref_mel = mel
            else:
                ref_mel = log_mel(torch.from_numpy(np.ascontiguousarray(reference_wav)).to(self.device), self.audio)
            converted = self.match_spectrum(converted, band_statistics(ref_mel))
        return converted

    @torch.no_grad()
    def speaker_vector(self, references: list[str | Path]) -> torch.Tensor:
        """Mean speaker vector of one or more reference clips (silence-trimmed), refined on the
        clips by ``adapt_steps`` steps of test-time adaptation when that is set (cached per
        reference list and setting).  -> ``(1, speaker_dim)``."""
        encoded = torch.stack([self.model.speaker(self.reference_mel(ref)[None]) for ref in references]).mean(dim=0)
        if self.adapt_steps == 0:
            return encoded
        key = (tuple(str(Path(r).resolve()) for r in references), self.adapt_steps, self.adapt_lr, self.adapt_reg)
        if key not in self._ref_speaker:
            clips = [self._reference_clip(ref) for ref in references]
            self._ref_speaker[key] = refine_speaker(self.model, encoded, clips, self.adapt_steps,
                                                    self.adapt_lr, self.adapt_reg)
        return self._ref_speaker[key]

    def _reference_clip(self, reference: str | Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Content code ``(1, C, T)``, log-mel ``(1, n_mels, T)`` and the bands its adaptation may
        fit ``(n_mels,)`` (:func:`vcconv.audio.matchable_bands`) of one silence-trimmed reference clip."""
        mel = self.reference_mel(reference)
        bands = matchable_bands(band_statistics(mel)[0][:, 0], self.audio)
        return self._content(mel, self.content_features(self.reference_wav(reference), mel.shape[-1])), mel[None], bands

    def _speaker_of(self, wav: np.ndarray) -> torch.Tensor:
        """``(N,)`` waveform at the model's rate -> speaker vector ``(1, speaker_dim)`` (silence trimmed)."""
        wav = preprocess(wav, self.audio, trim=True)
        mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio).unsqueeze(0)
        return self.model.speaker(mel)

    @torch.no_grad()
    def apply_strength(self, speaker: torch.Tensor, source_wav: np.ndarray) -> torch.Tensor:
        """``s_src + strength * (speaker - s_src)`` with ``s_src`` the source's own vector; ``(1, S)``."""
        if self.strength == 1.0:
            return speaker
        s_src = self._speaker_of(source_wav[: SOURCE_VOICE_SECONDS * self.audio.sample_rate])
        return s_src + self.strength * (speaker - s_src)

    def content_features(self, wav: np.ndarray, n_frames: int) -> torch.Tensor | None:
        """The content front end's features of the source waveform ``(N,)`` -> ``(dim, n_frames)``,
        or ``None`` for a model that reads its own mel."""
        if self.frontend is None:
            return None
        feats = self.frontend(wav, n_frames, self.audio.hop_length)
        return torch.from_numpy(feats).to(self.device)

    def _content(self, mel: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        return self.model.content(mel[None], None if features is None else features[None])

    @torch.no_grad()
    def convert_mel(self, source_mel: torch.Tensor, speaker: torch.Tensor,
                    features: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_mels, T)`` source log-mel + ``(1, S)`` speaker -> converted ``(n_mels, T)``.
        ``features (dim, T)``: the front end's (:meth:`content_features`) for models that read them.

        Long inputs are processed in overlapping chunks (cross-faded), so memory is bounded.
        """
        T = source_mel.shape[-1]
        if self.frontend is not None and features is None:
            raise ModelError("this model's content encoder reads front-end features: pass features=")
        if T <= CHUNK_FRAMES:
            return self.model.decode(self._content(source_mel, features), speaker)[0]
        out = torch.zeros_like(source_mel)
        weight = torch.zeros(T, device=source_mel.device)
        step = CHUNK_FRAMES - OVERLAP_FRAMES
        for s in range(0, T, step):
            e = min(T, s + CHUNK_FRAMES)
            seg = source_mel[:, s:e]
            conv = self.model.decode(self._content(seg, None if features is None else features[:, s:e]), speaker)[0]
            w = torch.ones(e - s, device=source_mel.device)
            ramp = min(OVERLAP_FRAMES, e - s)
            if s > 0:
                w[:ramp] = torch.linspace(0, 1, ramp + 2, device=w.device)[1:-1]
            out[:, s:e] += conv * w
            weight[s:e] += w
            if e == T:
                break
        return out / weight.clamp(min=1e-6)

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> np.ndarray:
        """``(n_mels, T)`` [+ F0 ``(1, T)`` Hz] -> ``(N,)`` float32, in chunks for long inputs."""
        T = mel.shape[-1]
        hop = self.audio.hop_length
        if T <= 4 * CHUNK_FRAMES:
            return self._vocode_batch(mel[None], f0)[0].float().cpu().numpy()
        pieces = []
        ov = OVERLAP_FRAMES
        s = 0
        while s < T:
            e = min(T, s + 4 * CHUNK_FRAMES)
            a = max(0, s - ov)
            wav = self._vocode_batch(mel[None, :, a:e], None if f0 is None else f0[:, a:e])[0].float().cpu().numpy()
            pieces.append((a * hop, wav))
            s = e
        total = (T - 1) * hop
        out = np.zeros(total, np.float32)
        norm = np.zeros(total, np.float32)
        for start, wav in pieces:
            n = min(len(wav), total - start)
            w = np.ones(n, np.float32)
            r = min(ov * hop, n)
            if start > 0:
                w[:r] = np.linspace(0, 1, r, dtype=np.float32)
            out[start : start + n] += wav[:n] * w
            norm[start : start + n] += w
        return out / np.maximum(norm, 1e-6)

    def convert(self, source: str | Path, references: list[str | Path] | None = None,
                speaker: torch.Tensor | None = None) -> ConversionResult:
        """Words of ``source`` in the voice of ``references`` (one or more clips, averaged),
        or of a precomputed ``speaker`` vector ``(1, S)`` from :meth:`speaker_vector`."""
        if self.device.type != "cpu":
            return self._convert(source, references, speaker)
        threads = self._cpu_threads()
        with torch_threads(threads):
            result = self._convert(source, references, speaker)
        result.threads = threads
        return result

    def _cpu_threads(self) -> int:
        """``self.threads`` if set, else the idle cores, measured (50 ms of sleep) at most every
        :data:`AUTO_THREADS_TTL_S` seconds so that a loop over short files does not pay it each time."""
        import time

        if self.threads:
            return cpu_threads(self.threads)
        now = time.monotonic()
        if self._auto_threads is None or now - self._auto_threads[0] > AUTO_THREADS_TTL_S:
            self._auto_threads = (now, cpu_threads(0, adapt_to_load=True))
        return self._auto_threads[1]

    def _convert(self, source: str | Path, references: list[str | Path] | None,
                 speaker: torch.Tensor | None) -> ConversionResult:
        import time

        t0 = time.perf_counter()
        if speaker is None:
            if not references:
                raise ModelError("at least one --target reference clip is needed")
            speaker = self.speaker_vector(references)
        target_f0 = None
        if self.f0_mode == "transfer":
            if not references:
                raise ModelError("--f0 transfer needs the reference clips, not only a speaker vector")
            target_f0 = self.reference_f0(references)
        t_ref = time.perf_counter()
        wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
        t1 = time.perf_counter()
        mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
        t2 = time.perf_counter()
        features = self.content_features(wav, mel.shape[-1])
        speaker = self.apply_strength(speaker, wav)  # model time: one more speaker-encoder pass
        converted = self.mix_source(self.convert_mel(mel, speaker, features), mel)
        if self.spectrum_match > 0:
            if not references:
                raise ModelError("spectrum matching needs the reference clips, not only a speaker vector")
            converted = self.match_spectrum(converted, self.reference_spectrum(references))
        t3 = time.perf_counter()
        f0 = None if target_f0 is None else self.transfer_f0(mel, target_f0)
        out = self.vocode(converted, f0)
        t4 = time.perf_counter()
        out = normalize_loudness(out, self.audio.target_dbfs)
        return ConversionResult(out, self.audio.sample_rate, {"reference": t_ref - t0, "load": t1 - t_ref,
                                                              "features": t2 - t1, "model": t3 - t2, "vocoder": t4 - t3})


def without_octave_jumps(f0: np.ndarray, half_width_octaves: float = 0.5) -> np.ndarray:
    """``(T,)`` Hz with the voiced frames further than ``half_width_octaves`` from the voiced
    median set to 0 (unvoiced): a tracker's octave errors would otherwise widen the log-F0
    spread that :meth:`Converter.transfer_f0` moves the source to."""
    f0 = np.asarray(f0, dtype=np.float64).copy()
    voiced = f0 > 0
    if voiced.sum() == 0:
        return f0
    distance = np.abs(np.log2(np.where(voiced, f0, 1.0) / np.median(f0[voiced])))
    f0[voiced & (distance > half_width_octaves)] = 0.0
    return f0

def given_options(**values) -> dict:
    """The conversion options that were set (``None`` means: the model's own, so it is left out;
    ``"world"`` takes none of them)."""
    return {key: value for key, value in values.items() if value is not None}


def make_converter(model: str | Path | None = None, vocoder: str | None = None, device: str | None = None,
                   **options):
    """A ready converter for ``model``: :class:`vcconv.dsp.world_vc.WorldConverter` for
    ``"world"`` (training-free WORLD DSP; ``vocoder``, ``strength`` and ``f0="predict"`` set
    explicitly are a :class:`ModelError`), else :class:`Converter`.  ``options``: the
    keyword arguments of :class:`Converter` (``pitch_shift``, ``strength``, ``f0``, ``threads``)."""
    if is_builtin_model(model):
        from vcconv.dsp.world_vc import WorldConverter

        return WorldConverter(vocoder=vocoder, device=device, **options)
    return Converter(model, vocoder, device, **options)


def convert(source: str | Path, references: list[str | Path] | str | Path, output: str | Path,
            model: str | Path | None = None, vocoder: str | None = None, device: str | None = None,
            overwrite: bool = True, pitch_shift: float = 0.0, strength: float | None = None,
            f0: str = DEFAULT_F0, threads: int | None = None,
            spectrum_match: float | None = None, source_mix: float | None = None,
            spectrum_spread: float | None = None, source_mix_high: float | None = None,
            adapt_steps: int | None = None) -> ConversionResult:
    """Convert one file and write ``output`` (16-bit WAV at the model's rate, atomically).
    ``threads=None``: chosen from the idle cores (see :class:`Converter`)."""
    if isinstance(references, (str, Path)):
        references = [references]
    if not references:
        raise ModelError("at least one --target reference clip is needed")
    source_p, output_p = Path(source).resolve(), Path(output).resolve()
    if output_p == source_p or output_p in {Path(r).resolve() for r in references}:
        raise ModelError(f"{output}: refusing to write over an input file")
    options = {"pitch_shift": pitch_shift, "strength": strength, "f0": f0, "threads": threads}
    options.update(given_options(spectrum_match=spectrum_match, source_mix=source_mix,
                                 spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                                 adapt_steps=adapt_steps))
    conv = make_converter(model, vocoder, device, **options)
    result = conv.convert(source, references)
    save_audio(output, result.wav, result.sample_rate, overwrite=overwrite)
    return result
