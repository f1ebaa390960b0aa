"""Dataclass configs, config files (JSON or TOML) and ``--set key=value`` overrides.

A run's full config is one :class:`RunConfig`: the audio front end, the model
(a dict whose keys the model family's own dataclass validates) and the
training loop.  Overrides use dotted keys: ``model.content_dim=16``,
``train.batch_size=16``, ``audio.n_mels=64``, ``augment.noise_prob=0.5``; a bare key is looked up in
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
    # channel augmentation (see AugmentConfig): train from waveforms held in RAM; the content
    # encoder's input and the speaker reference go through random channels, the target stays clean
    augment: bool = False
    # models with a pretrained content front end (model.content_input): channel-augmented copies
    # per utterance whose features are cached (vcconv.data.frontend_cache)
    frontend_augmented: int = 2
    # vocoder GAN stage (vcconv.vocoder.gan): from this step on, multi-period + multi-resolution
    # discriminators add an adversarial and a feature-matching loss (-1 = regression only)
    gan_after_steps: int = -1
    gan_weight: float = 1.0
    fm_weight: float = 2.0
    disc_lr: float = 2e-4
    # vocoder robustness to converted mels: with this probability a training segment's input
    # log-mel is the self-conversion of its utterance by the VC model ``vocoder_input_model``
    # (a .safetensors file; Converter.self_conversion_mel) instead of the segment's own mel
    vocoder_input_model: str = ""
    vocoder_input_prob: float = 0.5
    # vocoder robustness to a given F0 that differs from the mel's own pitch (every conversion):
    # with probability ``vocoder_input_prob`` a segment's input log-mel is that of a WORLD
    # resynthesis of its utterance at the F0 moved by up to +-this many semitones (one draw per
    # utterance), while the F0 the synthesiser is given and the target stay the original's (0 = off);
    # with vocoder_input_model set too, the input is that model's conversion of the moved
    # resynthesis back to the original's voice (whose waveform is the exact target)
    vocoder_input_pitch_shift_st: float = 0.0


@dataclass
class AugmentConfig:
    """Channel augmentation (``vcconv.data.augment.ChannelAugment``): a probability and a range
    for each transform, applied in this order.  Ranges are ``[low, high]`` (uniform draws);
    lists of choices are drawn uniformly.  Used only with ``train.augment = true``."""

    reverb_prob: float = 0.25
    reverb_rt60_s: tuple = (0.2, 0.8)
    reverb_drr_db: tuple = (0.0, 10.0)  # direct-to-reverberant ratio of the generated rooms
    rir_dir: str = ""  # a folder of measured room impulse responses to use instead of generated ones
    noise_prob: float = 0.3
    noise_snr_db: tuple = (5.0, 30.0)  # on the active speech
    noise_kinds: tuple = ("white", "pink", "babble")
    eq_prob: float = 0.3
    eq_db_per_octave: tuple = (-3.0, 3.0)  # around 1 kHz
    gain_prob: float = 0.5
    gain_db: tuple = (-10.0, 10.0)
    telephone_prob: float = 0.2  # 300-3400 Hz, 8 kHz, 8-bit mu-law
    lowpass_prob: float = 0.2  # drawn only when the telephone channel was not
    lowpass_cutoffs_hz: tuple = (3400.0, 4000.0, 5500.0, 7000.0)
    mulaw_prob: float = 0.1
    mulaw_bits: tuple = (8,)
    spectral_prob: float = 0.1  # low-bitrate-like STFT quantisation; drawn only when mu-law was not
    spectral_step_db: tuple = (3.0, 6.0)
    spectral_floor_db: tuple = (35.0, 50.0)  # bins this far under the frame's peak are dropped
    content: bool = True  # augment the content encoder's input
    reference: bool = True  # augment the speaker reference


CONVERT_KEYS = {"strength", "spectrum_match", "spectrum_spread", "source_mix", "source_mix_high", "source_mix_split_hz",
                "adapt_steps", "adapt_lr", "adapt_reg"}
DEFAULT_MIX_SPLIT_HZ = 1500.0  # where a two-band source mix switches from source_mix to source_mix_high


def check_strength(strength: float) -> float:
    """A conversion strength (see :class:`vcconv.convert.Converter`) as a float, or a one-line error."""
    from vcconv.errors import ModelError

    if not 0.0 <= strength <= 4.0:
        raise ModelError(f"--strength must be between 0 and 4 (got {strength})")
    return float(strength)


def check_split_hz(hz: float, audio: AudioConfig, option: str = "--source-mix-split-hz") -> float:
    """A two-band source mix's split frequency in Hz, inside the mel range of ``audio``, or a one-line error."""
    from vcconv.errors import ModelError

    top = audio.f_max or audio.sample_rate / 2
    if not audio.f_min < hz < top:
        raise ModelError(f"{option} must lie inside the mel range {audio.f_min:g}-{top:g} Hz (got {hz:g})")
    return float(hz)


def check_fraction(amount: float, option: str) -> float:
    """A conversion fraction (``--spectrum-match``, ``--spectrum-spread``, ``--source-mix``; see :class:`vcconv.convert.Converter`)
    in [0, 1], or a one-line error naming ``option``."""
    from vcconv.errors import ModelError

    if not 0.0 <= amount <= 1.0:
        raise ModelError(f"{option} must be between 0 and 1 (got {amount})")
    return float(amount)


@dataclass
class RunConfig:
    model_kind: str = "adain"
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # conversion defaults that belong to these weights (``{"strength": 1.0}``), set by
    # ``vcconv export --strength``; read by :class:`vcconv.convert.Converter`
    convert: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "model_kind": self.model_kind,
            "audio": self.audio.to_dict(),
            "model": dict(self.model),
            "train": asdict(self.train),
            "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.augment).items()},
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
            augment=_augment_from(d.get("augment", {})),
            convert=convert,
        )


def _dataclass_from(cls, d: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s): {', '.join(sorted(unknown))}")
    return cls(**d)


def _augment_from(d: dict) -> AugmentConfig:
    """AugmentConfig from a dict; lists (JSON, ``--set augment.gain_db=[-6,6]``) become tuples."""
    if not isinstance(d, dict):
        raise ConfigError("the augment section must be a table of key = value")
    cfg = _dataclass_from(AugmentConfig, d)
    for f in fields(AugmentConfig):
        default, value = f.default, getattr(cfg, f.name)
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"augment.{f.name} must be true or false (got {value!r})")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"augment.{f.name} must be a number (got {value!r})")
            value = float(value)
        setattr(cfg, f.name, value)
    return cfg


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
    augment_keys = {f.name for f in fields(AugmentConfig)}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = parse_value(raw)
        if "." in key:
            section, name = key.split(".", 1)
            if section not in ("audio", "model", "train", "augment"):
                raise ConfigError(f"override '{item}': section must be audio, model, train or augment")
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
        if section == "augment" and name not in augment_keys:
            raise ConfigError(f"override '{item}': unknown augment key '{name}'")
        if section == "model" and model_fields is not None and name not in model_fields:
            raise ConfigError(f"override '{item}': unknown model key '{name}'")
        d[section][name] = value
    return RunConfig.from_dict(d)


def merged(base: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that accepts only known fields."""
    if not is_dataclass(base):
        raise TypeError("merged() needs a dataclass")
    return replace(base, **changes)
