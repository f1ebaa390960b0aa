"""AdaIN-VC plus an adversarial speaker classifier on the content code (Chou, Yeh, Lee & Lee 2018).

"Multi-target voice conversion without parallel data by adversarially learning
disentangled audio representations": a classifier tries to tell the training
speaker from the content code; the encoder is trained to make it fail, so
speaker information is squeezed out of the content path.

This module is AdaIN-VC (:class:`~vcconv.models.adain_vc.AdaINVC`, same
encoder / decoder / state_dict keys) with that classifier added:

* ``--model adversarial`` (``use_in=True``, the default) is "AdaIN + adversary";
  ``--set use_in=false --set conditioning=concat`` is close to the 2018 model
  (no instance norm; the decoder is conditioned on a speaker vector from the
  speaker encoder rather than on a speaker embedding table, so it stays one-shot).
* ``--model adain`` builds :class:`AdaINFamily`: exactly AdaIN-VC (no classifier,
  same keys, same loss) while ``adversarial_weight == 0``, its default; with
  ``--set adversarial_weight=0.1`` it gains the classifier and the schedule below.

Schedule (``step`` = the training loop's global step, 0-based):

1. ``step < ae_warmup_steps``: auto-encoder only (reconstruction + KL);
2. the next ``clf_warmup_steps``: classifier only, on the frozen content code;
3. then cycles of ``clf_steps`` classifier steps followed by one encoder step
   (encoder, speaker encoder and decoder; classifier frozen).

Each phase is one batch of the loop.  The encoder's adversarial loss pushes the
classifier's posterior towards the uniform distribution: ``KL(U || p) =
-log C - mean_c log p_c`` (>= 0, zero when the classifier is maximally confused).
Unlike the 2018 paper's ``-CE`` it is bounded below, so the encoder cannot win by
driving the classifier to confidently *wrong* answers (which still encodes the
speaker) or by blowing up the code scale.  Its weight grows linearly from 0 at
the start of the alternation to ``adversarial_weight`` over ``adv_anneal_steps``.

Optimisation: the loop's single optimizer (AdamW over every parameter) serves
both players.  Each step sets the gradients of the parameters that are *not*
trained in that phase to ``None`` (the classifier's are disabled during the
encoder's forward pass), and AdamW skips parameters without a gradient, weight
decay included.  Hence no second optimizer, and the classifier's Adam moments
are part of the optimizer state saved in ``last.pt``, so resume is exact.
The classifier uses the run's learning rate.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vcconv.errors import ConfigError
from vcconv.models.adain_vc import AdaINConfig, AdaINVC


@dataclass
class AdversarialConfig(AdaINConfig):
    adversarial_weight: float = 0.1  # weight of the encoder's confusion loss after annealing
    adv_anneal_steps: int = 2000  # linear ramp 0 -> adversarial_weight from the start of the alternation
    ae_warmup_steps: int = 2000  # auto-encoder only
    clf_warmup_steps: int = 500  # then classifier only
    clf_steps: int = 3  # then this many classifier steps per encoder step (the paper used 5)
    clf_channels: int = 128
    clf_layers: int = 3
    # adversarial mel loss on the reconstruction (vcconv.models.mel_gan; 0 = off): generator
    # weight after a linear ramp over mel_gan_anneal_steps, feature-matching weight, D width
    mel_gan_weight: float = 0.0
    mel_fm_weight: float = 2.0
    mel_gan_anneal_steps: int = 500
    mel_disc_channels: int = 16


@dataclass
class AdaINFamilyConfig(AdversarialConfig):
    """``--model adain``: the adversary is off unless asked for."""

    adversarial_weight: float = 0.0


class SpeakerClassifier(nn.Module):
    """Frame-level conv classifier on the content code, mean-pooled over time.

    ``(B, content_dim, T)`` -> logits ``(B, n_speakers)``.
    """

    def __init__(self, content_dim: int, channels: int, n_speakers: int, n_layers: int = 3, kernel: int = 5):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers += [nn.Conv1d(content_dim if i == 0 else channels, channels, kernel, padding=kernel // 2),
                       nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(channels, n_speakers)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(content).mean(dim=2))


def confusion_loss(logits: torch.Tensor) -> torch.Tensor:
    """``KL(uniform || softmax(logits))`` averaged over the batch.  ``(B, C)`` -> scalar, >= 0."""
    logp = F.log_softmax(logits.float(), dim=1)
    return -logp.mean(dim=1).mean() - math.log(logits.shape[1])


@contextmanager
def _frozen(params: list[nn.Parameter]):
    """Disable gradients of ``params`` inside the block (gradients still flow *through* them)."""
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)


def _all_reduce_grads(params: list[nn.Parameter]) -> None:
    """Average gradients over DDP ranks (``train_step`` bypasses the DDP wrapper's hooks)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


class AdversarialVC(AdaINVC):
    """AdaIN-VC + adversarial speaker classifier on the content code.

    Inference (``content`` / ``speaker`` / ``decode`` / ``forward``) is AdaIN-VC's;
    the classifier is used in training only.  ``cfg.n_speakers`` (set by the
    training loop from the manifest) sizes the classifier.
    """

    kind = "adversarial"
    config_class = AdversarialConfig
    always_classifier = True  # AdaINFamily builds it only when adversarial_weight > 0

    def __init__(self, cfg: AdversarialConfig):
        super().__init__(cfg)
        self.classifier: SpeakerClassifier | None = None
        if self.always_classifier or cfg.adversarial_weight > 0:
            if cfg.n_speakers < 2:
                raise ConfigError(f"the adversarial speaker classifier needs n_speakers >= 2 (got {cfg.n_speakers}); "
                                  "the training loop sets it from the manifest's training speakers")
            if cfg.clf_steps < 1:
                raise ConfigError(f"clf_steps must be >= 1 (got {cfg.clf_steps})")
            self.classifier = SpeakerClassifier(cfg.content_dim, cfg.clf_channels, cfg.n_speakers, cfg.clf_layers, cfg.kernel)
        self.mel_disc: nn.Module | None = None
        if cfg.mel_gan_weight > 0:
            from vcconv.models.mel_gan import MelDiscriminator

            self.mel_disc = MelDiscriminator(cfg.mel_disc_channels)

    def drop_training_parts(self) -> None:
        """Remove what only training uses and is not released (the mel discriminator)."""
        self.mel_disc = None
        self.cfg.mel_gan_weight = 0.0

    # ----------------------------------------------------------------- schedule
    def phase_at(self, step: int) -> str:
        """``"ae"`` (auto-encoder warm-up), ``"clf"`` (classifier step) or ``"enc"`` (encoder step with the adversary)."""
        c = self.cfg
        if step < c.ae_warmup_steps:
            return "ae"
        step -= c.ae_warmup_steps
        if step < c.clf_warmup_steps:
            return "clf"
        step -= c.clf_warmup_steps
        return "clf" if step % (c.clf_steps + 1) < c.clf_steps else "enc"

    def mel_gan_weight_at(self, step: int) -> float:
        c = self.cfg
        ramp = min(1.0, step / c.mel_gan_anneal_steps) if c.mel_gan_anneal_steps > 0 else 1.0
        return c.mel_gan_weight * ramp

    def adversarial_weight_at(self, step: int) -> float:
        c = self.cfg
        start = c.ae_warmup_steps + c.clf_warmup_steps
        if step < start:
            return 0.0
        if c.adv_anneal_steps <= 0:
            return c.adversarial_weight
        return c.adversarial_weight * min(1.0, (step - start) / c.adv_anneal_steps)

    # ----------------------------------------------------------------- training
    def _terms(self, batch: dict, step: int, phase: str) -> dict:
        """Every loss term of one batch; gradients only where ``phase`` trains.

        ``"total"`` is always the auto-encoder's objective (so the logged value
        means the same in every phase); ``"clf_loss"`` the classifier's. With the mel
        discriminator (not in ``"clf"`` phases) ``"_pred"`` / ``"_x"`` carry the decoder's
        and the true standardised mel ``(B, n_mels, T)`` for its own step.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and phase != "clf"):
            mu, pred, x, kl = self.reconstruct(batch)
            rec = F.l1_loss(pred, x)
        total = rec + self.kl_weight_at(step) * kl
        out = {"recon": rec, "kl": kl}
        if self.classifier is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and phase != "ae"):
                logits = self.classifier(mu.detach() if phase == "clf" else mu)
            w = self.adversarial_weight_at(step)
            adv = confusion_loss(logits)
            total = total + w * adv
            out.update(clf_loss=F.cross_entropy(logits.float(), batch["speaker"]), adv=adv,
                       clf_acc=(logits.argmax(dim=1) == batch["speaker"]).float().mean(), adv_weight=torch.tensor(w))
        if self.mel_disc is not None and phase != "clf":
            from vcconv.models.mel_gan import generator_losses

            with torch.no_grad():
                real = self.mel_disc(x)
            mel_adv, mel_fm = generator_losses(real, self.mel_disc(pred))
            total = total + self.mel_gan_weight_at(step) * (mel_adv + self.cfg.mel_fm_weight * mel_fm)
            out.update(mel_adv=mel_adv, mel_fm=mel_fm, _pred=pred, _x=x)
        out["total"] = total
        return out

    def loss(self, batch: dict, step: int = 0) -> dict:
        """As :meth:`AdaINVC.loss`, plus ``clf_loss``, ``adv``, ``clf_acc``, ``adv_weight`` when the
        classifier exists and ``mel_adv``, ``mel_fm`` with the mel discriminator (``"total"`` then
        includes their annealed terms)."""
        if self.classifier is None and self.mel_disc is None:
            return super().loss(batch, step)
        return {k: (v if k == "total" else v.detach()) for k, v in self._terms(batch, step, "enc").items()
                if not k.startswith("_")}

    @property
    def train_step(self):
        """The alternating step the training loop calls instead of its default one (``None``
        without a classifier and a mel discriminator, so ``--model adain`` trains exactly like AdaIN-VC)."""
        return self._alternating_step if (self.classifier is not None or self.mel_disc is not None) else None

    def _alternating_step(self, train_model, optimizer: torch.optim.Optimizer, batch: dict, step: int,
                          amp_ctx, grad_clip: float) -> dict:
        """One optimisation step of whichever player ``phase_at(step)`` names.  Returns detached losses.

        ``train_model`` (possibly the DDP wrapper) is not called: gradients are
        averaged over ranks by hand.
        """
        phase = self.phase_at(step) if self.classifier is not None else "ae"
        clf_params = list(self.classifier.parameters()) if self.classifier is not None else []
        disc_params = list(self.mel_disc.parameters()) if self.mel_disc is not None else []
        others = {id(p) for p in clf_params + disc_params}
        ae_params = [p for p in self.parameters() if id(p) not in others and p.requires_grad]
        optimizer.zero_grad(set_to_none=True)
        if phase == "clf":
            with amp_ctx():
                losses = self._terms(batch, step, phase)
            losses["clf_loss"].backward()
            params = clf_params
        else:
            with _frozen(clf_params + disc_params):
                with amp_ctx():
                    losses = self._terms(batch, step, phase)
                losses["total"].backward()
            params = ae_params
        _step(optimizer, params, grad_clip)  # AdamW skips the parameters whose grad is None
        pred, x = losses.pop("_pred", None), losses.pop("_x", None)
        if pred is not None:
            optimizer.zero_grad(set_to_none=True)
            from vcconv.models.mel_gan import discriminator_loss

            with amp_ctx():
                losses["mel_disc"] = discriminator_loss(self.mel_disc(x), self.mel_disc(pred.detach()))
            losses["mel_disc"].backward()
            _step(optimizer, disc_params, grad_clip)
        return {k: v.detach() for k, v in losses.items()}


def _step(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float) -> None:
    """Average ``params``' gradients over ranks, clip them, step (only they hold gradients)."""
    _all_reduce_grads(params)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


class AdaINFamily(AdversarialVC):
    """What ``--model adain`` builds: AdaIN-VC, optionally with the adversary as an extra loss.

    With ``adversarial_weight == 0`` (the default) it has no classifier, the same
    state_dict keys, loss and training step as :class:`AdaINVC`, so every
    ``adain`` checkpoint loads unchanged.
    """

    kind = "adain"
    config_class = AdaINFamilyConfig
    always_classifier = False
