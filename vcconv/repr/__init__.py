"""Auxiliary auto-encoders: self-supervised speech representations to probe and compare.

One module a method, each a model family the generic training loop can train:

==================  ======================  =============================================
method (CLI)        model kind              module
==================  ======================  =============================================
``dim``             ``repr-dim``            :mod:`vcconv.repr.dim` (Deep InfoMax)
``cpc``             ``repr-cpc``            :mod:`vcconv.repr.cpc` (Contrastive Predictive Coding)
``quick-thought``   ``repr-quick-thought``  :mod:`vcconv.repr.quick_thought` (+ skip-thought decoder)
``binary``          ``repr-binary``         :mod:`vcconv.repr.binary` (binary codes)
``seq``             ``repr-seq``            :mod:`vcconv.repr.seq_embed` (unit sequence + phone GAN)
==================  ======================  =============================================

Every model has a ``norm`` (:class:`~vcconv.models.adain_vc.MelNormalizer`),
``loss(batch, step)``, ``content(mel) -> (B, D, T)`` and ``embed(mel) -> (B, E)``
(see :class:`~vcconv.repr.common.ReprModel`).  Importing this package registers the
families in :data:`vcconv.models.MODEL_FAMILIES`, so checkpoints of them rebuild
with :func:`vcconv.checkpoint.load_model_file`.
"""

from __future__ import annotations

from torch import nn

from vcconv.repr.binary import BinaryAE, BinaryConfig
from vcconv.repr.common import ReprModel
from vcconv.repr.cpc import CPC, CPCConfig
from vcconv.repr.dim import DeepInfoMax, DIMConfig
from vcconv.repr.quick_thought import QuickThought, QuickThoughtConfig
from vcconv.repr.seq_embed import SeqConfig, SeqEmbed

FAMILIES: dict[str, type[nn.Module]] = {
    "repr-dim": DeepInfoMax,
    "repr-cpc": CPC,
    "repr-quick-thought": QuickThought,
    "repr-binary": BinaryAE,
    "repr-seq": SeqEmbed,
}
METHODS: dict[str, str] = {kind.removeprefix("repr-"): kind for kind in FAMILIES}  # "dim" -> "repr-dim"


def register() -> None:
    """Add the ``repr-*`` families to :data:`vcconv.models.MODEL_FAMILIES` (idempotent)."""
    # a from-import, not attribute access: vcconv.models may be mid-import (it imports this package last)
    from vcconv.models import MODEL_FAMILIES

    MODEL_FAMILIES.update(FAMILIES)


register()

__all__ = [
    "BinaryAE", "BinaryConfig", "CPC", "CPCConfig", "DeepInfoMax", "DIMConfig", "FAMILIES", "METHODS",
    "QuickThought", "QuickThoughtConfig", "ReprModel", "SeqConfig", "SeqEmbed", "register",
]  # fmt: skip
