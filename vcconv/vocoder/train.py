"""Training loop for the neural vocoders of :mod:`vcconv.vocoder.neural`.

Same conventions as :mod:`vcconv.train`: one :class:`~vcconv.config.RunConfig`
(``model_kind = "vocoder-<arch>"``, ``model`` = the architecture dict), a run
directory holding ``config.json``, ``log.csv``, ``last.pt`` (resume) and
``model.safetensors``, a time budget, and checkpoints on a wall-clock period.

Data: waveforms of the manifest's ``train`` split, trimmed and
loudness-normalised exactly like the feature cache
(:func:`vcconv.audio.preprocess`), loaded lazily (an utterance is read, and its
F0 extracted for ``hnf``, the first time a segment is drawn from it).  Each step
draws ``batch_size`` random segments of ``L`` frames (``L`` uniform in
``[segment_frames // 2, segment_frames]``, one ``L`` per batch, ``L * hop``
samples, starting on a frame boundary so F0 frames line up); the log-mel input is
computed from the segment itself.  Validation: fixed 1 s segments of the
``valid`` split.

``train.time_budget_min`` counts the *cumulative* training time of the run:
a run stopped and resumed with the same command ends where an uninterrupted one
would, and the cosine learning-rate schedule follows the same clock.  SIGTERM or
SIGINT ends the loop after the current step, checkpointed, so ``kill`` loses nothing.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from vcconv.audio import AudioConfig, load_audio, log_mel, preprocess
from vcconv.checkpoint import (
    catch_stop_signals,
    default_device,
    load_training_state,
    restore_signals,
    save_training_state,
)
from vcconv.config import RunConfig, TrainConfig, apply_overrides
from vcconv.data.manifest import Utterance, read_manifest
from vcconv.errors import AudioError, DataError
from vcconv.vocoder.neural import (
    KIND_PREFIX,
    arch_of,
    build_vocoder,
    save_vocoder,
    vocoder_fields,
)

log = logging.getLogger(__name__)

CKPT_PERIOD_S = 120.0  # wall-clock checkpoint period
WARMUP_STEPS = 200
MIN_LR_FRACTION = 0.05
VALID_SEGMENTS = 16

VOCODER_TRAIN_DEFAULTS = {"batch_size": 16, "segment_frames": 62, "lr": 1e-3, "weight_decay": 1e-4, "grad_clip": 5.0,
                          "max_steps": 100_000, "log_every": 25, "val_every": 250, "ckpt_every": 10**9,
                          "warp_prob": 0.0}


def vocoder_config(arch: str = "istft", overrides: list[str] | None = None, audio: AudioConfig | None = None,
                   max_steps: int | None = None, time_budget: float | None = None) -> RunConfig:
    """The default :class:`RunConfig` of a vocoder run, with ``key=value`` overrides applied."""
    arch = arch_of(arch)
    cfg = RunConfig(model_kind=KIND_PREFIX + arch, audio=audio or AudioConfig(), model={},
                    train=replace(TrainConfig(), **VOCODER_TRAIN_DEFAULTS))
    cfg = apply_overrides(cfg, list(overrides or []), vocoder_fields(arch))
    build_vocoder(arch, cfg.model, cfg.audio)  # validate the model keys now
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    if time_budget is not None:
        cfg.train.time_budget_min = time_budget
    return cfg


# ------------------------------------------------------------------------ data


class WaveSegmentSampler:
    """Random waveform segments (and their F0 tracks) from a list of utterances, loaded lazily.

    ``sample(B)`` -> ``{"wav": (B, L * hop) float32, "f0": (B, L + 1) float32 Hz}``
    (``"f0"`` only when ``with_f0``).  With ``model_mel`` (a function ``(N,)`` preprocessed
    waveform -> ``(n_mels, T)`` log-mel frame-aligned with ``log_mel(wav)``, e.g.
    :meth:`vcconv.convert.Converter.self_conversion_mel`) the batch also holds
    ``"mel": (B, n_mels, L + 1)``: each segment's slice of that mel with probability
    ``model_mel_prob``, else the segment's own log-mel.  When the function has
    ``keeps_pitch = False`` (:func:`pitch_shifted_mel_source`) the batch also holds
    ``"f0_matches_mel": (B,)`` bool, False for the replaced segments, whose F0 the vocoder's F0
    head must not learn from their mel.
    """

    def __init__(self, rows: list[Utterance], audio: AudioConfig, segment_frames: int, *, with_f0: bool,
                 seed: int = 0, min_frames: int | None = None,
                 model_mel: Callable[[np.ndarray], torch.Tensor] | None = None, model_mel_prob: float = 0.5):
        if not rows:
            raise DataError("no utterances for vocoder training (empty split?)")
        self.rows = rows
        self.audio = audio
        self.max_frames = segment_frames
        self.min_frames = min_frames if min_frames is not None else max(1, segment_frames // 2)
        self.with_f0 = with_f0
        self.rng = random.Random(seed)
        self.cache: dict[int, tuple[np.ndarray, np.ndarray | None] | None] = {}
        self.model_mel = model_mel
        self.model_mel_prob = model_mel_prob
        self.mel_cache: dict[int, np.ndarray] = {}

    def _get(self, i: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        if i not in self.cache:
            try:
                wav = preprocess(load_audio(self.rows[i].path, self.audio.sample_rate), self.audio)
            except AudioError as err:
                log.warning("skipping %s", err)
                self.cache[i] = None
                return None
            f0 = None
            if self.with_f0:
                from vcconv.pitch import extract_f0

                f0 = extract_f0(wav, self.audio.sample_rate, self.audio.hop_length).astype(np.float32)
            pcm = np.round(np.clip(wav, -1, 1) * 32767).astype(np.int16)
            self.cache[i] = (pcm, f0)
        return self.cache[i]

    def _model_mel(self, i: int) -> np.ndarray:
        """``(n_mels, T)`` float16 model mel of utterance ``i`` (computed once)."""
        if i not in self.mel_cache:
            wav = self.cache[i][0].astype(np.float32) / 32767.0
            self.mel_cache[i] = self.model_mel(wav).float().cpu().numpy().astype(np.float16)
        return self.mel_cache[i]

    def segment(self, i: int, frames: int, rng: random.Random):
        """A random segment of utterance ``i``: ``(wav (frames * hop,), f0 (frames + 1,) or None,
        model-mel slice (n_mels, frames + 1) or None)`` (the slice only when drawn, see
        ``model_mel_prob``), or ``None`` for an unreadable utterance."""
        item = self._get(i)
        if item is None:
            return None
        pcm, f0 = item
        hop = self.audio.hop_length
        n = frames * hop
        total_frames = pcm.shape[0] // hop
        start = rng.randint(0, max(0, total_frames - frames)) if total_frames > frames else 0
        wav = pcm[start * hop : start * hop + n].astype(np.float32) / 32767.0
        if wav.shape[0] < n:
            wav = np.pad(wav, (0, n - wav.shape[0]))
        seg_f0 = None
        if f0 is not None:
            seg_f0 = f0[start : start + frames + 1]
            if seg_f0.shape[0] < frames + 1:
                seg_f0 = np.pad(seg_f0, (0, frames + 1 - seg_f0.shape[0]))
        seg_mel = None
        if self.model_mel is not None and rng.random() < self.model_mel_prob:
            mel = self._model_mel(i)[:, start : start + frames + 1].astype(np.float32)
            if mel.shape[1] < frames + 1:  # past the end: the silence level of the log-mel
                mel = np.pad(mel, ((0, 0), (0, frames + 1 - mel.shape[1])), constant_values=float(mel.min()))
            seg_mel = mel
        return wav, seg_f0, seg_mel

    def sample(self, batch_size: int, frames: int | None = None, rng: random.Random | None = None) -> dict:
        rng = rng or self.rng
        frames = frames or rng.randint(self.min_frames, self.max_frames)
        wavs, f0s, mels = [], [], []
        tries = 0
        while len(wavs) < batch_size:
            tries += 1
            if tries > 20 * batch_size:
                raise DataError("could not read enough training audio (see warnings above)")
            got = self.segment(rng.randrange(len(self.rows)), frames, rng)
            if got is None:
                continue
            wavs.append(got[0])
            f0s.append(got[1])
            mels.append(got[2])
        batch = {"wav": torch.from_numpy(np.stack(wavs))}
        if self.with_f0:
            batch["f0"] = torch.from_numpy(np.stack(f0s).astype(np.float32))
        if self.model_mel is not None:
            own = log_mel(batch["wav"], self.audio)
            for b, mel in enumerate(mels):
                if mel is not None:
                    own[b] = torch.from_numpy(mel)
            batch["mel"] = own
            if not getattr(self.model_mel, "keeps_pitch", True):
                batch["f0_matches_mel"] = torch.tensor([mel is None for mel in mels])
        return batch

    def get_state(self) -> list:
        return list(self.rng.getstate()[1])

    def set_state(self, state: list) -> None:
        self.rng.setstate((3, tuple(int(x) for x in state), None))


def estimate_mel_stats(sampler: WaveSegmentSampler, audio: AudioConfig, n_batches: int = 8,
                       seed: int = 99) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin log-mel mean and std ``(n_mels,)`` over a few random training segments."""
    from vcconv.audio import log_mel

    rng = random.Random(seed)
    mels = [log_mel(sampler.sample(16, sampler.max_frames, rng)["wav"], audio) for _ in range(n_batches)]
    cat = torch.cat([m.permute(1, 0, 2).reshape(audio.n_mels, -1) for m in mels], dim=1)
    return cat.mean(1), cat.std(1)


def pitch_shifted_mel_source(max_semitones: float, audio: AudioConfig, seed: int = 0,
                             render: Callable[[np.ndarray, np.ndarray], torch.Tensor] | None = None,
                             ) -> Callable[[np.ndarray], torch.Tensor]:
    """A function ``(N,)`` preprocessed waveform -> ``(n_mels, N // hop + 1)`` log-mel of its WORLD
    resynthesis (:func:`vcconv.dsp.world_vc.resynthesize_at_pitch`) at a pitch moved by a shift
    drawn uniformly from ``+-max_semitones`` on each call (WORLD frames = the mel's hop).
    With ``render(moved, original)`` (e.g. :meth:`vcconv.convert.Converter.conversion_mel`) the
    mel is that function's instead: the conversion of the moved resynthesis back to the voice of
    the original, whose waveform is then the exact target of that conversion."""
    from vcconv.audio import log_mel
    from vcconv.dsp.world_vc import require_pyworld, resynthesize_at_pitch

    require_pyworld()
    rng = random.Random(seed)
    frame_ms = 1000.0 * audio.hop_length / audio.sample_rate

    def shifted_mel(wav: np.ndarray) -> torch.Tensor:
        shift = rng.uniform(-max_semitones, max_semitones)
        moved = resynthesize_at_pitch(wav, shift, audio.sample_rate, frame_ms)
        if render is not None:
            return render(moved, wav)
        return log_mel(torch.from_numpy(moved), audio)

    shifted_mel.keeps_pitch = False  # the sampler marks these segments: their F0 is not the mel's
    return shifted_mel


def converted_mel_source(tc: TrainConfig, audio: AudioConfig) -> Callable[[np.ndarray], torch.Tensor] | None:
    """The sampler's replacement input mels, or ``None`` when neither option is set:
    ``train.vocoder_input_model``'s self-conversion (on the CPU: it runs in the sampler; the model
    must share the vocoder's audio settings); with ``train.vocoder_input_pitch_shift_st``, the
    mel of a pitch-moved WORLD resynthesis (:func:`pitch_shifted_mel_source`); with both, the
    model's conversion of that resynthesis to the voice of the original utterance."""
    shift = tc.vocoder_input_pitch_shift_st
    if not tc.vocoder_input_model:
        if shift <= 0:
            return None
        log.info("vocoder input: %.0f %% mels of WORLD resyntheses moved by up to +-%.1f semitones",
                 100 * tc.vocoder_input_prob, shift)
        return pitch_shifted_mel_source(shift, audio, tc.seed)
    from vcconv.convert import Converter
    from vcconv.vocoder.neural import audio_matches

    conv = Converter(tc.vocoder_input_model, vocoder="griffinlim", device="cpu")
    if not audio_matches(conv.audio, audio):
        raise DataError(f"{tc.vocoder_input_model}: its audio settings differ from the vocoder's")
    if shift > 0:
        log.info("vocoder input: %.0f %% conversions by %s of WORLD resyntheses moved by up to +-%.1f "
                 "semitones, back to their utterance's voice", 100 * tc.vocoder_input_prob,
                 tc.vocoder_input_model, shift)
        return pitch_shifted_mel_source(shift, audio, tc.seed, render=conv.conversion_mel)
    log.info("vocoder input: %.0f %% self-conversions by %s", 100 * tc.vocoder_input_prob, tc.vocoder_input_model)
    return conv.self_conversion_mel


# ---------------------------------------------------------------------- loop


def load_initial_weights(model: torch.nn.Module, weights: dict, where: str | Path) -> list[str]:
    """Load ``weights`` (a same-architecture vocoder's state dict, stats included) into ``model``.
    Layers the source lacks (e.g. a ``f0_ripple`` head added with ``--set``) keep their own
    initialisation; a tensor the model does not have, or of another shape, is a one-line error.
    Returns the names left at their initialisation."""
    own = model.state_dict()
    foreign = [k for k in weights if k not in own or own[k].shape != weights[k].shape]
    if foreign:
        raise DataError(f"{where}: its weights do not fit this vocoder config ({foreign[0]})")
    missing = [k for k in own if k not in weights]
    model.load_state_dict({**own, **weights})
    if missing:
        log.info("new layers start from their initialisation: %s", ", ".join(missing))
    return missing


def _lr_factor(step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    return warm * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * cos)


def train_vocoder(
    run_dir: str | Path,
    manifest: str | Path,
    cfg: RunConfig,
    device: str | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    init_from: str | Path | None = None,
) -> dict:
    """Train (or resume) a vocoder on ``manifest``'s train split.

    ``init_from`` (a vocoder ``.safetensors`` or run directory of the same architecture):
    fine-tune from its weights and feature statistics with a fresh optimizer at step 0; its
    config is kept except the model keys set in ``cfg`` (e.g. ``harmonic_synthesis=pulse``).

    Resumes from ``RUN_DIR/last.pt`` when present (its config wins, except
    ``train.max_steps`` and ``train.time_budget_min``).  Writes ``config.json``,
    ``log.csv`` (``step, time_s, split, total, mel, sc, logmag, extra``),
    ``last.pt`` every :data:`CKPT_PERIOD_S` seconds (and every
    ``train.ckpt_every`` steps) and ``model.safetensors`` (fp32) at the end.

    Returns ``{"steps", "wall_s", "train_s", "stop", "best_val", "run_dir"}``.
    """
    from vcconv.system import cpu_threads

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = default_device(device)
    resume = load_training_state(run_dir)
    if resume is not None:
        saved = RunConfig.from_dict(resume["config"])
        if saved.model_kind != cfg.model_kind:
            raise DataError(f"{run_dir} holds a '{saved.model_kind}' run, not '{cfg.model_kind}'")
        saved.train.max_steps = cfg.train.max_steps
        saved.train.time_budget_min = cfg.train.time_budget_min
        saved.train.num_threads = cfg.train.num_threads
        cfg = saved
    source = None
    if resume is None and init_from is not None:
        from vcconv.vocoder.neural import load_neural_vocoder

        source = load_neural_vocoder(init_from, "cpu")
        if source.kind != cfg.model_kind:
            raise DataError(f"{init_from} holds a '{source.kind}' vocoder, not '{cfg.model_kind}'")
        # cfg.model holds only the keys given with --set (vocoder_config starts from {})
        cfg.model, cfg.audio = {**source.run_config.model, **cfg.model}, source.audio
    tc = cfg.train
    if dev.type == "cpu":
        torch.set_num_threads(cpu_threads(tc.num_threads))
    torch.manual_seed(tc.seed)

    arch = arch_of(cfg.model_kind)
    model = build_vocoder(arch, cfg.model, cfg.audio).to(dev)
    cfg.model = asdict(model.cfg)  # store every architecture field, not only the overridden ones
    with_f0 = arch == "hnf" or bool(getattr(model.cfg, "f0_ripple", 0))
    sampler = WaveSegmentSampler(read_manifest(manifest, "train"), cfg.audio, tc.segment_frames,
                                 with_f0=with_f0, seed=tc.seed, model_mel=converted_mel_source(tc, cfg.audio),
                                 model_mel_prob=tc.vocoder_input_prob)
    valid_rows = read_manifest(manifest, "valid")
    val_batches: list[dict] = []
    if valid_rows:
        vs = WaveSegmentSampler(valid_rows, cfg.audio, tc.segment_frames, with_f0=with_f0, seed=1234)
        vrng = random.Random(1234)
        val_batches = [vs.sample(VALID_SEGMENTS // 2, tc.segment_frames, vrng) for _ in range(2)]

    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.8, 0.99))
    gan = GANStage(tc, dev, cfg.audio.target_dbfs) if tc.gan_after_steps >= 0 else None
    step, train_s, best_val = 0, 0.0, float("inf")
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step = int(resume["step"])
        torch.set_rng_state(resume["torch_rng"])
        extra = resume["extra"]
        train_s = float(extra.get("train_s", 0.0))
        best_val = float(extra.get("best_val", "inf"))
        if "sampler" in extra:
            sampler.set_state(extra["sampler"])
        if gan is not None and "gan" in resume.get("aux", {}):
            gan.load_state_dict(resume["aux"]["gan"])
        log.info("resumed from step %d (%.0f s trained)", step, train_s)
    else:
        if source is not None:
            load_initial_weights(model, source.state_dict(), init_from)
            log.info("fine-tuning from %s", init_from)
        else:
            mean, std = estimate_mel_stats(sampler, cfg.audio)
            model.set_stats(mean.to(dev), std.to(dev))
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    log_path = run_dir / "log.csv"
    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "time_s", "split", "total", "mel", "sc", "logmag", "extra"])

    def write_row(split: str, values: dict) -> None:
        rest = {k: round(v, 5) for k, v in values.items() if k not in ("total", "mel", "sc", "logmag")}
        writer.writerow([step, round(train_s, 1), split] + [f"{values.get(k, 0.0):.5f}" for k in
                                                            ("total", "mel", "sc", "logmag")] + [json.dumps(rest)])
        log_file.flush()

    def checkpoint() -> None:
        extra = {"sampler": sampler.get_state(), "train_s": train_s, "best_val": best_val}
        save_training_state(run_dir, model, optimizer, step, cfg, extra,
                            aux={"gan": gan.state_dict()} if gan is not None else None)

    budget_s = tc.time_budget_min * 60 if tc.time_budget_min > 0 else float("inf")
    wall0 = time.time()
    last_ckpt = time.time()
    running: dict[str, float] = {}
    n_running = 0
    stop = "max_steps"
    stop_signal: list[int] = []
    previous_handlers = catch_stop_signals(stop_signal)
    model.train()
    try:
        while step < tc.max_steps:
            if train_s >= budget_s:
                stop = "time_budget"
                break
            if stop_signal:
                stop = f"signal {stop_signal[0]}"
                break
            t0 = time.time()
            frac = train_s / budget_s if math.isfinite(budget_s) else step / max(1, tc.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = tc.lr * _lr_factor(step, frac)
            batch = {k: v.to(dev) for k, v in sampler.sample(tc.batch_size).items()}
            adversarial = gan is not None and step >= tc.gan_after_steps
            losses = model.loss(batch, step, keep_pred=True) if adversarial else model.loss(batch, step)
            if adversarial:
                losses.update(gan.step(losses.pop("pred"), batch["wav"], losses["total"]))
            total = losses["total"]
            if not math.isfinite(float(total.detach())):
                raise RuntimeError(f"loss became {float(total.detach())} at step {step}; lower train.lr")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            step += 1
            train_s += time.time() - t0
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + float(v.detach())
            n_running += 1
            if step % tc.log_every == 0 or step == tc.max_steps:
                means = {k: v / n_running for k, v in running.items()}
                means["lr"] = optimizer.param_groups[0]["lr"]
                write_row("train", means)
                if progress:
                    progress(step, tc.max_steps, means)
                running, n_running = {}, 0
            if val_batches and step % tc.val_every == 0:
                val = validate(model, val_batches, dev)
                best_val = min(best_val, val["total"])
                write_row("valid", val)
            if step % tc.ckpt_every == 0 or time.time() - last_ckpt > CKPT_PERIOD_S:
                checkpoint()
                last_ckpt = time.time()
    finally:
        checkpoint()
        log_file.close()
        restore_signals(previous_handlers)
    if val_batches:
        val = validate(model, val_batches, dev)
        best_val = min(best_val, val["total"])
    save_vocoder(model, run_dir / "model.safetensors", cfg=cfg)
    return {"steps": step, "wall_s": time.time() - wall0, "train_s": train_s, "stop": stop,
            "best_val": best_val, "run_dir": str(run_dir)}


class GANStage:
    """Discriminators, their optimizer and the generator's adversarial terms (vcconv.vocoder.gan)."""

    def __init__(self, tc, dev: torch.device, target_dbfs: float):
        from vcconv.vocoder.gan import Discriminators, unit_rms_gain

        self.tc = tc
        self.disc = Discriminators(input_gain=unit_rms_gain(target_dbfs)).to(dev)
        self.opt = torch.optim.AdamW(self.disc.parameters(), lr=tc.disc_lr, betas=(0.8, 0.99))

    def step(self, pred: torch.Tensor, wav: torch.Tensor, regression: torch.Tensor) -> dict:
        """One discriminator update on ``(B, N)`` real/generated audio; returns the generator's
        new ``"total"`` (regression + adversarial + feature matching) and the parts for the log."""
        from vcconv.vocoder.gan import discriminator_loss, generator_losses

        n = min(pred.shape[-1], wav.shape[-1])
        pred, wav = pred[..., :n], wav[..., :n]
        d_loss = discriminator_loss(self.disc(wav), self.disc(pred.detach()))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.disc.parameters(), 10.0)
        self.opt.step()
        with torch.no_grad():
            real = self.disc(wav)
        adv, fm = generator_losses(real, self.disc(pred))
        total = regression + self.tc.gan_weight * adv + self.tc.fm_weight * fm
        return {"total": total, "disc": d_loss.detach(), "adv": adv.detach(), "fm": fm.detach()}

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])


@torch.no_grad()
def validate(model: torch.nn.Module, batches: list[dict], dev: torch.device) -> dict:
    """Mean losses over fixed validation batches (noise seeded, so repeatable)."""
    was = model.training
    model.eval()
    state = torch.get_rng_state()
    torch.manual_seed(0)
    totals: dict[str, float] = {}
    for b in batches:
        for k, v in model.loss({k: v.to(dev) for k, v in b.items()}).items():
            totals[k] = totals.get(k, 0.0) + float(v) / len(batches)
    torch.set_rng_state(state)
    model.train(was)
    return totals


__all__ = ["WaveSegmentSampler", "estimate_mel_stats", "train_vocoder", "validate", "vocoder_config"]
