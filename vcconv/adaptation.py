"""Test-time speaker adaptation: refine a speaker vector on the reference clips themselves.

The speaker encoder maps an unseen voice to a vector from one forward pass; for a voice unlike
the training speakers that vector renders the voice only roughly.  Each reference clip is
also a training example for the voice it holds: its content code plus the right speaker vector
should rebuild its own mel.  :func:`refine_speaker` takes a few Adam steps on the vector alone
(the model's weights stay fixed) towards that reconstruction, with a penalty on the distance
from the encoder's vector so that the vector stays where the decoder was trained to read it.
"""

from __future__ import annotations

import math

import torch

from vcconv.errors import ModelError

DEFAULT_ADAPT_LR = 0.03
DEFAULT_ADAPT_REG = 0.01
ADAPT_MAX_FRAMES = 640  # per clip (~10 s at hop 256 / 16 kHz): bounds the cost of a long reference


def check_adapt_steps(steps) -> int:
    """``steps`` as an int >= 0, else a one-line :class:`ModelError`."""
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ModelError(f"--adapt-steps must be a whole number >= 0 (got {steps})")
    return int(steps)


def check_adapt_rate(value: float, name: str, positive: bool) -> float:
    """A finite float, > 0 when ``positive`` (a learning rate) else >= 0 (a penalty weight),
    else a one-line :class:`ModelError` naming the option ``name``."""
    value = float(value)
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        raise ModelError(f"{name} must be {'> 0' if positive else '>= 0'} (got {value})")
    return value


def store_adaptation(convert: dict, steps: int | None, lr: float | None, reg: float | None) -> None:
    """Check and store the given adaptation defaults in a model config's ``convert`` section
    (``None``: leave the stored value)."""
    if steps is not None:
        convert["adapt_steps"] = check_adapt_steps(steps)
    if lr is not None:
        convert["adapt_lr"] = check_adapt_rate(lr, "--adapt-lr", positive=True)
    if reg is not None:
        convert["adapt_reg"] = check_adapt_rate(reg, "--adapt-reg", positive=False)


def reconstruction_error(model, speaker: torch.Tensor, clips: list[tuple]) -> torch.Tensor:
    """Mean over ``clips`` of the L1 distance between the decoder's standardised log-mel for
    ``(content, speaker)`` and the clip's own standardised log-mel (the training loss), over the
    clip's voice bands only, so that a telephone reference does not teach the vector its channel.

    ``speaker``: ``(1, S)``; ``clips``: ``[(content (1, C, T), log-mel (1, n_mels, T)[, bands
    (n_mels,) bool]), ...]``: with ``bands`` (the converter passes
    :func:`vcconv.audio.matchable_bands`) only those count, else every band."""
    errors = []
    for content, mel, *rest in clips:
        error = (model.norm(model.decode(content, speaker)) - model.norm(mel)).abs()
        if rest and bool(rest[0].any()):
            error = error[:, rest[0], :]
        errors.append(error.mean())
    return torch.stack(errors).mean()


def refine_speaker(model, speaker: torch.Tensor, clips: list[tuple], steps: int,
                   lr: float = DEFAULT_ADAPT_LR, reg: float = DEFAULT_ADAPT_REG) -> torch.Tensor:
    """The speaker vector ``(1, S)`` after ``steps`` Adam steps (learning rate ``lr``) on
    :func:`reconstruction_error` of the reference ``clips`` plus ``reg * |v - speaker|^2``.

    Only the vector moves: gradients are taken with respect to it alone, so the model's
    weights and their ``.grad`` are untouched.  ``steps = 0`` returns ``speaker`` itself.
    Each clip is cut to its first :data:`ADAPT_MAX_FRAMES` frames.
    """
    if steps <= 0 or not clips:
        return speaker
    clips = [(content[..., :ADAPT_MAX_FRAMES], mel[..., :ADAPT_MAX_FRAMES], *rest) for content, mel, *rest in clips]
    start = speaker.detach()
    vector = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([vector], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = reconstruction_error(model, vector, clips) + reg * (vector - start).pow(2).sum()
            (vector.grad,) = torch.autograd.grad(loss, [vector])
            optimiser.step()
    return vector.detach()
