"""Model families.  ``build_model(kind, config_dict)`` makes any of them from a checkpoint's config."""

from __future__ import annotations

from dataclasses import fields

from torch import nn

from vcconv.config import dataclass_from_dict
from vcconv.errors import ConfigError
from vcconv.models.adain_vc import AdaINConfig, AdaINVC
from vcconv.models.adversarial import AdaINFamily, AdversarialConfig, AdversarialVC
from vcconv.models.plain import PlainAE, PlainConfig
from vcconv.models.vq import VQVC, VQConfig

# "adain" is AdaINVC plus an optional adversarial loss (off by default: then exactly AdaINVC,
# same state_dict keys); see vcconv/models/adversarial.py.
MODEL_FAMILIES: dict[str, type[nn.Module]] = {
    "adain": AdaINFamily,
    "adversarial": AdversarialVC,
    "vq": VQVC,
    "plain": PlainAE,
}


def model_config(kind: str, d: dict):
    """The family's config dataclass built from ``d`` (unknown keys are an error)."""
    cls = family(kind)
    return dataclass_from_dict(cls.config_class, d)


def model_fields(kind: str) -> set[str]:
    return {f.name for f in fields(family(kind).config_class)}


def family(kind: str) -> type[nn.Module]:
    if kind not in MODEL_FAMILIES:
        raise ConfigError(f"unknown model kind '{kind}' (choose from {', '.join(sorted(MODEL_FAMILIES))})")
    return MODEL_FAMILIES[kind]


def build_model(kind: str, d: dict) -> nn.Module:
    return family(kind)(model_config(kind, d))


__all__ = ["MODEL_FAMILIES", "VQVC", "AdaINConfig", "AdaINFamily", "AdaINVC", "AdversarialConfig", "AdversarialVC",
           "PlainAE", "PlainConfig", "VQConfig", "build_model", "family", "model_config", "model_fields"]
import vcconv.repr  # noqa: E402,F401  (registers the repr-* model families)
