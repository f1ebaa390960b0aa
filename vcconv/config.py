"""Dataclass configs, config files (JSON or TOML) and ``--set key=value`` overrides.

A run's full config is one :class:`RunConfig`: the audio front end, the model
(a dict whose keys the model family's own dataclass validates) and the
training loop.  Overrides use dotted keys: ``model.content_dim=16``,
``train.batch_size=16``, ``audio.n_mels=64``; a bare key is looked up in
``train`` then ``model``.
"""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from vcconv.audio import AudioConfig
from vcconv.errors import ConfigError


@dataclass
class TrainConfig:
    """Training loop settings (model-independent)."""

    batch_size: int = 32
    segment_frames: int = 128  # frames per training segment (~2 s at hop 256 / 16 kHz)
    reference_frames: int = 128  # frames of the reference clip fed to the speaker encoder
    warp_prob: float = 0.5  # fraction of samples given a random mel-axis warp (pseudo-speakers)
    warp_range: float = 0.12  # warp factor drawn from 1 +- warp_range
    # information perturbation: the content encoder reads the segment with a random mel-axis warp
    # (formants and pitch move together) while the decoder rebuilds the unwarped segment from the
    # reference's speaker vector -> speaker cues are pushed out of the content code
    content_warp_prob: float = 0.0
    content_warp_range: float = 0.15
    lr: float = 5e-4
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    max_steps: int = 20000
    time_budget_min: float = 0.0  # 0 = no budget
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 250
    samples_every: int = 2000
    n_samples: int = 2
    seed: int = 0
    num_threads: int = 0  # 0 = choose automatically
    amp: bool = True  # mixed precision on CUDA only
    workers: int = 0


CONVERT_KEYS = {"strength"}


def check_strength(strength: float) -> float:
    """A conversion strength (see :class:`vcconv.convert.Converter`) as a float, or a one-line error."""
    from vcconv.errors import ModelError

    if not 0.0 <= strength <= 4.0:
        raise ModelError(f"--strength must be between 0 and 4 (got {strength})")
    return float(strength)


@dataclass
class RunConfig:
    model_kind: str = "adain"
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    # conversion defaults that belong to these weights (``{"strength": 1.0}``), set by
    # ``vcconv export --strength``; read by :class:`vcconv.convert.Converter`
    convert: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "model_kind": self.model_kind,
            "audio": self.audio.to_dict(),
            "model": dict(self.model),
            "train": asdict(self.train),
        }
        if self.convert:
            d["convert"] = dict(self.convert)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        convert = dict(d.get("convert", {}))
        unknown = set(convert) - CONVERT_KEYS
        if unknown:
            raise ConfigError(f"unknown conversion default(s): {', '.join(sorted(unknown))}")
        return cls(
            model_kind=d.get("model_kind", "adain"),
            audio=AudioConfig.from_dict(d.get("audio", {})),
            model=dict(d.get("model", {})),
            train=_dataclass_from(TrainConfig, d.get("train", {})),
            convert=convert,
        )


def _dataclass_from(cls, d: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s): {', '.join(sorted(unknown))}")
    return cls(**d)


def dataclass_from_dict(cls, d: dict):
    """Build dataclass ``cls`` from ``d``, naming any unknown key in a :class:`ConfigError`."""
    return _dataclass_from(cls, d)


def load_config_file(path: str | Path) -> dict:
    """Read a ``.json`` or ``.toml`` config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(path.read_text())
        return json.loads(path.read_text())
    except (ValueError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot parse config ({err})") from None


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.1"`` -> 0.1, ``"true"`` -> True, other text stays a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(cfg: RunConfig, overrides: list[str], model_fields: set[str] | None = None) -> RunConfig:
    """Apply ``key=value`` strings to ``cfg`` (see module docstring for key forms)."""
    d = cfg.to_dict()
    train_keys = {f.name for f in fields(TrainConfig)}
    audio_keys = {f.name for f in fields(AudioConfig)}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = parse_value(raw)
        if "." in key:
            section, name = key.split(".", 1)
            if section not in ("audio", "model", "train"):
                raise ConfigError(f"override '{item}': section must be audio, model or train")
        elif key in train_keys:
            section, name = "train", key
        elif model_fields is None or key in model_fields:
            section, name = "model", key
        elif key in audio_keys:
            section, name = "audio", key
        else:
            raise ConfigError(f"override '{item}': unknown key '{key}'")
        if section == "train" and name not in train_keys:
            raise ConfigError(f"override '{item}': unknown train key '{name}'")
        if section == "audio" and name not in audio_keys:
            raise ConfigError(f"override '{item}': unknown audio key '{name}'")
        if section == "model" and model_fields is not None and name not in model_fields:
            raise ConfigError(f"override '{item}': unknown model key '{name}'")
        d[section][name] = value
    return RunConfig.from_dict(d)


def merged(base: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that accepts only known fields."""
    if not is_dataclass(base):
        raise TypeError("merged() needs a dataclass")
    return replace(base, **changes)
