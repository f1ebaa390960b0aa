"""Plain auto-encoder baseline: AdaIN-VC's parts without instance norm, AdaIN or KL.

The content encoder has no instance normalisation, the decoder gets the speaker
vector by concatenation, and there is no KL term: nothing but the bottleneck
width (``content_dim``) discourages speaker information in the content code.
It is :class:`~vcconv.models.adain_vc.AdaINVC` with other config defaults (the
same keys can be overridden, e.g. ``--set use_in=true``).
"""

from __future__ import annotations

from dataclasses import dataclass

from vcconv.models.adain_vc import AdaINConfig, AdaINVC


@dataclass
class PlainConfig(AdaINConfig):
    use_in: bool = False
    conditioning: str = "concat"
    kl_weight: float = 0.0


class PlainAE(AdaINVC):
    """Plain auto-encoder (``--model plain``).  Shapes and methods as :class:`AdaINVC`."""

    kind = "plain"
    config_class = PlainConfig
