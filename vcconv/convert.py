"""Conversion API: ``convert()`` for one file, ``Converter`` to reuse a loaded model.

The CLI's ``convert`` and ``batch`` commands are thin layers over these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vcconv.audio import AudioConfig, load_audio, log_mel, normalize_loudness, preprocess, save_audio
from vcconv.checkpoint import default_device, load_model_file
from vcconv.errors import ModelError
from vcconv.vocoder import load_vocoder

log = logging.getLogger(__name__)

DEFAULT_MODEL = "adain"
CHUNK_FRAMES = 1024  # ~16 s of frames per model call: bounded memory for any input length
OVERLAP_FRAMES = 32


def resolve_model_path(name_or_path: str | Path | None) -> Path:
    """A model name (``adain`` -> ``pretrained/adain*.safetensors``) or a path, checked to exist."""
    from vcconv.system import pretrained_dir

    name = str(name_or_path or DEFAULT_MODEL)
    p = Path(name)
    if p.exists():
        return p
    folder = pretrained_dir()
    for cand in (folder / f"{name}.safetensors", *sorted(folder.glob(f"{name}-*.safetensors"))):
        if cand.exists() and not cand.name.startswith("vocoder"):
            return cand
    raise ModelError(f"model '{name}' not found (not a file, and no {name}*.safetensors in {folder}); see 'vcconv info'")


@dataclass
class ConversionResult:
    wav: np.ndarray  # (N,) float32
    sample_rate: int
    timings: dict  # seconds: load, features, model, vocoder


class Converter:
    """A loaded model + vocoder, ready to convert many files.

    ``device=None`` picks CUDA when available, else CPU.
    """

    def __init__(self, model: str | Path | None = None, vocoder: str | None = None, device: str | None = None,
                 pitch_shift: float = 0.0):
        self.device = default_device(device)
        self.pitch_shift = pitch_shift
        self.model_path = resolve_model_path(model)
        self.model, self.cfg = load_model_file(self.model_path, self.device)
        self.audio: AudioConfig = self.cfg.audio
        self.vocoder = load_vocoder(vocoder, self.audio, self.device)
        if pitch_shift and not hasattr(self.vocoder, "predict_f0"):
            raise ModelError("--pitch-shift needs an F0-driven vocoder (the default hnf), not Griffin-Lim")

    def _vocode_batch(self, mel: torch.Tensor) -> torch.Tensor:
        """``(1, n_mels, T)`` -> ``(1, N)``; moves the vocoder's F0 by ``pitch_shift`` semitones."""
        if not self.pitch_shift:
            return self.vocoder(mel)
        f0 = self.vocoder.predict_f0(mel)
        return self.vocoder(mel, f0=f0 * 2.0 ** (self.pitch_shift / 12.0))

    @torch.no_grad()
    def speaker_vector(self, references: list[str | Path]) -> torch.Tensor:
        """Mean speaker vector of one or more reference clips (silence-trimmed).  -> ``(1, speaker_dim)``."""
        vecs = []
        for ref in references:
            wav = preprocess(load_audio(ref, self.audio.sample_rate), self.audio, trim=True)
            mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio).unsqueeze(0)
            vecs.append(self.model.speaker(mel))
        return torch.stack(vecs).mean(dim=0)

    @torch.no_grad()
    def convert_mel(self, source_mel: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """``(n_mels, T)`` source log-mel + ``(1, S)`` speaker -> converted ``(n_mels, T)``.

        Long inputs are processed in overlapping chunks (cross-faded), so memory is bounded.
        """
        T = source_mel.shape[-1]
        if T <= CHUNK_FRAMES:
            return self.model.decode(self.model.content(source_mel[None]), speaker)[0]
        out = torch.zeros_like(source_mel)
        weight = torch.zeros(T, device=source_mel.device)
        step = CHUNK_FRAMES - OVERLAP_FRAMES
        for s in range(0, T, step):
            e = min(T, s + CHUNK_FRAMES)
            seg = source_mel[:, s:e]
            conv = self.model.decode(self.model.content(seg[None]), speaker)[0]
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
    def vocode(self, mel: torch.Tensor) -> np.ndarray:
        """``(n_mels, T)`` -> ``(N,)`` float32, in chunks for long inputs."""
        T = mel.shape[-1]
        hop = self.audio.hop_length
        if T <= 4 * CHUNK_FRAMES:
            return self._vocode_batch(mel[None])[0].float().cpu().numpy()
        pieces = []
        ov = OVERLAP_FRAMES
        s = 0
        while s < T:
            e = min(T, s + 4 * CHUNK_FRAMES)
            a = max(0, s - ov)
            wav = self._vocode_batch(mel[None, :, a:e])[0].float().cpu().numpy()
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
        import time

        t0 = time.perf_counter()
        if speaker is None:
            if not references:
                raise ModelError("at least one --target reference clip is needed")
            speaker = self.speaker_vector(references)
        t_ref = time.perf_counter()
        wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
        t1 = time.perf_counter()
        mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
        t2 = time.perf_counter()
        converted = self.convert_mel(mel, speaker)
        t3 = time.perf_counter()
        out = self.vocode(converted)
        t4 = time.perf_counter()
        out = normalize_loudness(out, self.audio.target_dbfs)
        return ConversionResult(out, self.audio.sample_rate, {"reference": t_ref - t0, "load": t1 - t_ref,
                                                              "features": t2 - t1, "model": t3 - t2, "vocoder": t4 - t3})


def convert(source: str | Path, references: list[str | Path] | str | Path, output: str | Path,
            model: str | Path | None = None, vocoder: str | None = None, device: str | None = None,
            overwrite: bool = True, pitch_shift: float = 0.0) -> ConversionResult:
    """Convert one file and write ``output`` (16-bit WAV at the model's rate, atomically)."""
    if isinstance(references, (str, Path)):
        references = [references]
    if not references:
        raise ModelError("at least one --target reference clip is needed")
    source_p, output_p = Path(source).resolve(), Path(output).resolve()
    if output_p == source_p or output_p in {Path(r).resolve() for r in references}:
        raise ModelError(f"{output}: refusing to write over an input file")
    conv = Converter(model, vocoder, device, pitch_shift=pitch_shift)
    result = conv.convert(source, references)
    save_audio(output, result.wav, result.sample_rate, overwrite=overwrite)
    return result
