"""Vocoders: ``(B, n_mels, T)`` log-mel -> ``(B, (T - 1) * hop)`` waveform.

* :class:`GriffinLimVocoder` - always available, no weights.
* Neural vocoders (:mod:`vcconv.vocoder.neural`): ``istft`` (Vocos-style) and
  ``hnf`` (harmonic-plus-noise, F0-driven), shipped as
  ``pretrained/vocoder-<arch>.safetensors``.

:func:`load_vocoder` resolves a name to one of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vcconv.audio import AudioConfig
from vcconv.errors import ModelError
from vcconv.vocoder.griffin_lim import GriffinLimVocoder, griffin_lim

log = logging.getLogger(__name__)

GRIFFIN_LIM_NAMES = ("griffinlim", "gl")


def _vocoder_files() -> list[Path]:
    """``vocoder*.safetensors`` in the model folders, in search order (env folders first, then by name)."""
    from vcconv.system import model_dirs

    files = []
    for d in model_dirs():
        if d.is_dir():
            files.extend(sorted(d.glob("vocoder*.safetensors")))
    return files


def _file_audio(path: Path) -> AudioConfig | None:
    """The AudioConfig stored in a vocoder file's metadata (``None`` if it is not a vocoder file)."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        cfg = json.loads(meta.get("config", "{}"))
    except Exception as err:  # noqa: BLE001 - a broken file must not stop the fallback
        log.warning("%s: unreadable vocoder file (%s)", path, err)
        return None
    if not str(meta.get("kind", "")).startswith("vocoder-"):
        return None
    return AudioConfig.from_dict(cfg.get("audio", {}))


def available_vocoders() -> list[dict]:
    """``[{"name", "path", "audio"}]`` for every shipped neural vocoder file."""
    out = []
    for f in _vocoder_files():
        audio = _file_audio(f)
        if audio is not None:
            out.append({"name": f.stem, "path": str(f), "audio": audio})
    return out


def default_vocoder_path(audio_cfg: AudioConfig) -> Path | None:
    """The first shipped neural vocoder whose front end matches ``audio_cfg`` (``None`` if none does)."""
    from vcconv.vocoder.neural import audio_matches

    for v in available_vocoders():
        if audio_matches(v["audio"], audio_cfg):
            return Path(v["path"])
    return None


def _find_named(name: str) -> Path | None:
    from vcconv.system import model_dirs

    for d in model_dirs():
        for cand in (d / f"{name}.safetensors", d / f"vocoder-{name}.safetensors"):
            if cand.is_file():
                return cand
    return None


def load_vocoder(name: str | None, audio_cfg: AudioConfig, device=None):
    """Resolve a vocoder name to a callable ``(B, n_mels, T) -> (B, (T - 1) * hop)``.

    * ``None`` / ``"default"``: the shipped neural vocoder
      (``pretrained/vocoder*.safetensors``, first by name) whose front end
      matches ``audio_cfg``; Griffin-Lim (32 iterations) when none does;
    * ``"griffinlim"`` / ``"gl"`` or ``"griffinlim:N"`` (N iterations);
    * a name in the model folders: ``"vocoder-hnf"`` or just ``"hnf"``;
    * a path: a vocoder ``.safetensors`` file or a vocoder run directory.

    A named neural vocoder trained for another front end is an error
    (:class:`~vcconv.errors.ModelError`), never a silent mismatch.
    """
    from vcconv.vocoder.neural import audio_matches, load_neural_vocoder

    if name in (None, "default"):
        path = default_vocoder_path(audio_cfg)
        if path is None:
            log.info("no shipped neural vocoder matches this front end; using Griffin-Lim")
            return GriffinLimVocoder(audio_cfg)
        return load_neural_vocoder(path, device)
    if name in GRIFFIN_LIM_NAMES:
        return GriffinLimVocoder(audio_cfg)
    if name.startswith(("griffinlim:", "gl:")):
        try:
            n_iter = int(name.split(":", 1)[1])
        except ValueError:
            raise ModelError(f"bad vocoder '{name}': use griffinlim:N with N an integer") from None
        if n_iter < 0:
            raise ModelError(f"bad vocoder '{name}': N must be >= 0")
        return GriffinLimVocoder(audio_cfg, n_iter=n_iter)
    path = Path(name).expanduser()
    if not (path.suffix == ".safetensors" or path.is_dir() or path.name == "last.pt"):
        found = _find_named(name)
        if found is None:
            names = ", ".join(["griffinlim", "griffinlim:N"] + [v["name"] for v in available_vocoders()])
            raise ModelError(f"unknown vocoder '{name}' (available: {names}; or a .safetensors path)")
        path = found
    elif not path.exists():
        raise ModelError(f"{path}: vocoder file not found")
    model = load_neural_vocoder(path, device)
    if not audio_matches(model.audio, audio_cfg):
        raise ModelError(f"{path}: vocoder was trained for another front end "
                         f"({model.audio.sample_rate} Hz, hop {model.audio.hop_length}, {model.audio.n_mels} mels)")
    return model


def vocode_file(source: str | Path, output: str | Path, vocoder: str | None = None, device=None,
                pitch_shift: float = 0.0, threads: int | None = None) -> dict:
    """Copy synthesis: ``source`` (audio file, or a ``.npy`` log-mel ``(n_mels, T)``) -> ``output`` WAV.

    Audio is loudness-normalised like the training data (not trimmed) and turned
    into a log-mel with the front end of :class:`~vcconv.audio.AudioConfig`.
    ``pitch_shift`` (semitones) needs a vocoder that takes F0 (``hnf``).
    ``threads`` (CPU): torch threads; ``None``/0 = the cores other processes leave idle.
    Returns ``{"seconds", "vocoder_s", "vocoder", "threads"}``.
    """
    import time

    import numpy as np
    import torch

    from vcconv.audio import (
        AudioConfig,
        load_audio,
        log_mel,
        normalize_loudness,
        save_audio,
    )
    from vcconv.errors import VcconvError
    from vcconv.system import cpu_threads, torch_threads

    source, output = Path(source), Path(output)
    audio = AudioConfig()
    voc = load_vocoder(vocoder, audio, device)
    if source.suffix.lower() == ".npy":
        if not source.is_file():
            raise VcconvError(f"{source}: file not found")
        with open(source, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":
            raise VcconvError(f"{source}: not a .npy file (no NumPy header)")
        try:
            mel = np.load(source, allow_pickle=False)  # never unpickle a file (it could run code)
        except (ValueError, OSError, EOFError) as err:
            why = ("it holds Python objects, which are not loaded" if "pickle" in str(err).lower()
                   else str(err).splitlines()[0][:100])
            raise VcconvError(f"{source}: not a readable .npy array ({why})") from None
        if not isinstance(mel, np.ndarray) or mel.ndim != 2 or mel.shape[0] != audio.n_mels:
            raise VcconvError(f"{source}: expected a log-mel array of shape ({audio.n_mels}, T), "
                              f"got {getattr(mel, 'shape', type(mel).__name__)}")
        if not np.issubdtype(mel.dtype, np.floating) and not np.issubdtype(mel.dtype, np.integer):
            raise VcconvError(f"{source}: expected a numeric log-mel array, got dtype {mel.dtype}")
        if mel.shape[1] == 0 or not np.isfinite(mel).all():
            raise VcconvError(f"{source}: the log-mel array is empty or holds NaN/infinite values")
        if np.abs(mel).max() > 100:  # natural-log magnitudes of audio stay within about -12..10
            raise VcconvError(f"{source}: values up to {np.abs(mel).max():.3g} are not a log-mel (natural log)")
        mel = torch.from_numpy(mel.astype(np.float32))
    else:
        wav = normalize_loudness(load_audio(source, audio.sample_rate), audio.target_dbfs)
        mel = log_mel(wav, audio)
    dev = next(voc.parameters()).device if isinstance(voc, torch.nn.Module) else torch.device("cpu")
    mel = mel.to(dev)
    if pitch_shift and not hasattr(voc, "predict_f0"):
        raise VcconvError("--pitch-shift needs an F0-driven vocoder (hnf)")
    n_threads = cpu_threads(threads or 0, adapt_to_load=not threads) if dev.type == "cpu" else 0
    t0 = time.time()
    with torch.no_grad(), torch_threads(n_threads or torch.get_num_threads()):
        if pitch_shift:
            out = voc(mel[None], f0_ratio=2.0 ** (pitch_shift / 12.0))[0]  # one backbone pass
        else:
            out = voc(mel[None])[0]
    elapsed = time.time() - t0
    save_audio(output, out, audio.sample_rate)
    return {"seconds": out.shape[-1] / audio.sample_rate, "vocoder_s": elapsed, "threads": n_threads,
            "vocoder": getattr(voc, "kind", getattr(voc, "name", type(voc).__name__))}


__all__ = ["GriffinLimVocoder", "available_vocoders", "default_vocoder_path", "griffin_lim", "load_vocoder", "vocode_file"]
