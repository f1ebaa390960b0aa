"""Adversarial mel loss for the AdaIN family: a patch discriminator on standardised log-mels.

An L1-trained decoder predicts the conditional median of the mel, which is blurred
(formant transitions and harmonics smeared), and that blur costs words in the ASR
of converted speech.  ``--set mel_gan_weight=W`` adds a least-squares GAN on the
decoder's reconstruction: a small 2-D conv discriminator over ``(n_mels, T)``
patches, its feature matching (``mel_fm_weight``), ramped in over
``mel_gan_anneal_steps``.  The losses are those of the vocoder's GAN stage
(:mod:`vcconv.vocoder.gan`).  The discriminator is training-only; it is dropped
from exported files.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from vcconv.vocoder.gan import _conv_stack, discriminator_loss, generator_losses

__all__ = ["MelDiscriminator", "discriminator_loss", "generator_losses"]


class MelDiscriminator(nn.Module):
    """``(B, n_mels, T)`` standardised log-mel -> ``[(patch logits (B, L), feature maps)]``."""

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels  # strided from the first layer: ~25 M multiply-adds per 80 x 128 patch at c = 16
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, c, (3, 9), (2, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, 2 * c, (3, 9), (2, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(2 * c, 4 * c, (3, 9), (2, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(4 * c, 4 * c, (3, 3), padding=(1, 1))),
        ])
        self.out = weight_norm(nn.Conv2d(4 * c, 1, (3, 3), padding=(1, 1)))

    def forward(self, mel: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [_conv_stack(self.convs, self.out, mel[:, None].float())]
