"""One plain training loop for every model family.

A model exposes ``.loss(batch, step) -> dict`` with a ``"total"`` entry (and may
expose ``.extra_optimizers`` / ``.train_step`` for alternating schemes).  The
loop handles device, threads, mixed precision on CUDA, DDP under ``torchrun``,
time budgets, checkpoint/resume (model, optimizer, step, config, RNG),
validation loss, converted samples and a CSV log.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from vcconv.audio import LOG_FLOOR, AudioConfig, mel_filterbank
from vcconv.checkpoint import (
    catch_stop_signals,
    default_device,
    load_training_state,
    restore_signals,
    save_safetensors,
    save_training_state,
    unwrap,
)
from vcconv.config import RunConfig
from vcconv.data.augment import ChannelAugment
from vcconv.data.features import build_cache, cache_path, default_cache_dir, load_cached, prepared_waveform
from vcconv.data.manifest import Utterance, read_manifest
from vcconv.errors import AudioError, ConfigError, DataError
from vcconv.models import build_model
from vcconv.system import cpu_threads

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ threads


# -------------------------------------------------------------------- data


class SegmentSampler:
    """Random training segments of cached log-mels, with a reference clip from another
    utterance of the same speaker.

    ``batch()`` returns ``{"mel": (B, n_mels, segment_frames), "ref": (B, n_mels, reference_frames),
    "speaker": (B,) long}``.
    """

    def __init__(self, feats: dict[str, np.ndarray], rows: list[Utterance], segment_frames: int,
                 reference_frames: int, speakers: list[str], seed: int = 0, warp_prob: float = 0.0,
                 warp_range: float = 0.12, content_warp_prob: float = 0.0, content_warp_range: float = 0.15):
        self.content_warp_prob = content_warp_prob
        self.content_warp_range = content_warp_range
        self.warp_prob = warp_prob
        self.warp_range = warp_range
        self.seg = segment_frames
        self.ref = reference_frames
        self.speaker_index = {s: i for i, s in enumerate(speakers)}
        self.items: list[tuple[np.ndarray, int]] = []
        self.by_speaker: dict[int, list[int]] = {}
        for r in rows:
            if r.utt_id not in feats or r.speaker not in self.speaker_index:
                continue
            spk = self.speaker_index[r.speaker]
            self.by_speaker.setdefault(spk, []).append(len(self.items))
            self.items.append((feats[r.utt_id], spk))
        if not self.items:
            raise DataError("no usable utterances for training (empty split or feature cache)")
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def _crop(mel: np.ndarray, n: int, rng: random.Random) -> np.ndarray:
        t = mel.shape[1]
        if t >= n:
            s = rng.randint(0, t - n)
            return mel[:, s : s + n]
        reps = math.ceil(n / t)  # short clip: tile (reflect would invent content)
        return np.tile(mel, (1, reps))[:, :n]

    def _draw_pair(self) -> tuple[int, int]:
        """A random item and another item of the same speaker (itself when the speaker has one)."""
        idx = self.rng.randrange(len(self.items))
        choices = self.by_speaker[self.items[idx][1]]
        ref_idx = self.rng.choice(choices) if len(choices) == 1 else idx
        while ref_idx == idx and len(choices) > 1:
            ref_idx = self.rng.choice(choices)
        return idx, ref_idx

    def sample(self, batch_size: int) -> dict:
        mels, refs, spks, ins = [], [], [], []
        for _ in range(batch_size):
            idx, ref_idx = self._draw_pair()
            mel, spk = self.items[idx]
            seg = self._crop(mel, self.seg, self.rng).astype(np.float32)
            ref = self._crop(self.items[ref_idx][0], self.ref, self.rng).astype(np.float32)
            if self.warp_prob > 0 and self.rng.random() < self.warp_prob:
                # the same mel-axis warp on segment and reference = a new pseudo-speaker (VTLP-like)
                alpha = 1.0 + self.rng.uniform(-self.warp_range, self.warp_range)
                seg, ref = warp_mel(seg, alpha), warp_mel(ref, alpha)
            mels.append(seg)
            refs.append(ref)
            spks.append(spk)
            if self.content_warp_prob > 0:
                perturb = self.rng.random() < self.content_warp_prob
                alpha = 1.0 + self.rng.uniform(-self.content_warp_range, self.content_warp_range)
                ins.append(warp_mel(seg, alpha) if perturb else seg)
        batch = {
            "mel": torch.from_numpy(np.stack(mels).astype(np.float32)),
            "ref": torch.from_numpy(np.stack(refs).astype(np.float32)),
            "speaker": torch.tensor(spks, dtype=torch.long),
        }
        if ins:
            batch["mel_in"] = torch.from_numpy(np.stack(ins).astype(np.float32))
        return batch

    def get_state(self) -> list:
        return list(self.rng.getstate()[1])

    def set_state(self, state: list) -> None:
        self.rng.setstate((3, tuple(int(x) for x in state), None))


class FrontendSegmentSampler(SegmentSampler):
    """:class:`SegmentSampler` for models whose content encoder reads a front end's features.

    ``variants[utt_id]`` holds ``feat0`` (clean) .. ``featK`` ``(dim, T)`` and ``mel1`` ..
    ``melK`` ``(n_mels, T)`` (see :mod:`vcconv.data.frontend_cache`).  The batch adds
    ``"content_in": (B, dim, segment_frames)``: the features of a random variant (clean with
    probability ``clean_prob``) over the same frames as the clean target ``"mel"``; the
    reference ``"ref"`` is cut from a random variant's mel (its channel augmentation).  The
    pseudo-speaker mel warp, if on, moves target and reference together; the content
    features are left as they are (the words do not change).
    """

    def __init__(self, feats: dict[str, np.ndarray], variants: dict[str, dict[str, np.ndarray]],
                 rows: list[Utterance], segment_frames: int, reference_frames: int, speakers: list[str],
                 seed: int = 0, warp_prob: float = 0.0, warp_range: float = 0.12, clean_prob: float = 0.34):
        usable = {k: v for k, v in feats.items() if k in variants}
        super().__init__(usable, rows, segment_frames, reference_frames, speakers, seed, warp_prob, warp_range)
        self.variants = [variants[r.utt_id] for r in rows if r.utt_id in usable and r.speaker in self.speaker_index]
        self.n_aug = sum(1 for k in self.variants[0] if k.startswith("mel"))
        self.clean_prob = clean_prob

    def _pick(self) -> int:
        if self.n_aug == 0 or self.rng.random() < self.clean_prob:
            return 0
        return self.rng.randint(1, self.n_aug)

    def _window(self, t: int, n: int) -> tuple[int, int]:
        return (self.rng.randint(0, t - n), 0) if t >= n else (0, math.ceil(n / t))

    @staticmethod
    def _cut(x: np.ndarray, start: int, reps: int, n: int) -> np.ndarray:
        return (np.tile(x, (1, reps)) if reps else x)[:, start : start + n].astype(np.float32)

    def sample(self, batch_size: int) -> dict:
        mels, refs, spks, ins = [], [], [], []
        for _ in range(batch_size):
            idx, ref_idx = self._draw_pair()
            mel, spk = self.items[idx]
            start, reps = self._window(mel.shape[1], self.seg)
            v = self._pick()
            feats = self.variants[idx][f"feat{v}"]
            seg, content = self._cut(mel, start, reps, self.seg), self._cut(feats, start, reps, self.seg)
            ref_mel = self.items[ref_idx][0]
            w = self._pick()
            ref_src = ref_mel if w == 0 else self.variants[ref_idx][f"mel{w}"]
            r_start, r_reps = self._window(ref_mel.shape[1], self.ref)
            ref = self._cut(ref_src, r_start, r_reps, self.ref)
            if self.warp_prob > 0 and self.rng.random() < self.warp_prob:
                alpha = 1.0 + self.rng.uniform(-self.warp_range, self.warp_range)
                seg, ref = warp_mel(seg, alpha), warp_mel(ref, alpha)
            mels.append(seg)
            refs.append(ref)
            ins.append(content)
            spks.append(spk)
        return {
            "mel": torch.from_numpy(np.stack(mels).astype(np.float32)),
            "content_in": torch.from_numpy(np.stack(ins).astype(np.float32)),
            "ref": torch.from_numpy(np.stack(refs).astype(np.float32)),
            "speaker": torch.tensor(spks, dtype=torch.long),
        }


class WaveSegmentSampler:
    """Training segments cut from waveforms held in RAM, with channel augmentation.

    The batch is :class:`SegmentSampler`'s plus ``"mel_in"``: ``{"mel": (B, n_mels, segment_frames)``
    the clean target, ``"mel_in"``: the same segment through a random channel (the content
    encoder's input; then the content warp, if on), ``"ref": (B, n_mels, reference_frames)`` a
    clip of another utterance of the speaker through its own random channel, ``"speaker": (B,)}``.

    ``waves`` holds :func:`~vcconv.data.features.prepared_waveform` outputs as int16 (see
    :func:`load_training_waves`).  The clean mel of every utterance is computed once (float16,
    as the feature cache stores it); a crop's clean ``mel`` is a slice of it.  A waveform crop of
    ``n`` frames carries ``P = ceil(n_fft / 2 / hop)`` frames of context on each side (the
    utterance is reflect-padded as the STFT pads it), so its mel, context frames dropped, is the
    slice; the channel is applied to the crop with its context.  Only crops that a transform
    changed are re-analysed.  ``last_applied`` lists, per item of the last batch, the transforms
    of its content input and of its reference.
    """

    def __init__(self, waves: dict[str, np.ndarray], rows: list[Utterance], audio: AudioConfig,
                 segment_frames: int, reference_frames: int, speakers: list[str], augment: ChannelAugment,
                 seed: int = 0, warp_prob: float = 0.0, warp_range: float = 0.12, content_warp_prob: float = 0.0,
                 content_warp_range: float = 0.15):
        self.audio = audio
        self.augment = augment
        self.seg, self.ref = segment_frames, reference_frames
        self.warp_prob, self.warp_range = warp_prob, warp_range
        self.content_warp_prob, self.content_warp_range = content_warp_prob, content_warp_range
        hop = audio.hop_length
        self.context = math.ceil(audio.n_fft / 2 / hop)
        need = max(segment_frames, reference_frames)
        self.speaker_index = {s: i for i, s in enumerate(speakers)}
        self.items: list[tuple[np.ndarray, np.ndarray, int]] = []  # (padded int16 wave, clean mel, speaker)
        self.by_speaker: dict[int, list[int]] = {}
        for r in rows:
            if r.utt_id not in waves or r.speaker not in self.speaker_index:
                continue
            wav = waves[r.utt_id]
            if audio.frames(wav.shape[0]) < need:  # short clip: tile (as SegmentSampler tiles mels)
                wav = np.tile(wav, math.ceil(((need - 1) * hop + 1) / wav.shape[0]))
            # reflect-padded as the STFT pads it; one more sample on the right, where a crop ending
            # on the last frame reaches when the length is a multiple of the hop
            padded = np.pad(wav, (self.context * hop, self.context * hop + 1), mode="reflect")
            mel = self.log_mels(padded[None, :-1].astype(np.float32) / 32767.0)[0]
            mel = mel[:, self.context : self.context + audio.frames(wav.shape[0])].astype(np.float16)
            spk = self.speaker_index[r.speaker]
            self.by_speaker.setdefault(spk, []).append(len(self.items))
            self.items.append((padded, mel, spk))
        if not self.items:
            raise DataError("no usable utterances for training (empty split or no loadable audio)")
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.last_applied: list[tuple[list[str], list[str]]] = []

    def __len__(self) -> int:
        return len(self.items)

    def log_mels(self, wavs: np.ndarray) -> np.ndarray:
        """:func:`vcconv.audio.log_mel` of ``(B, L)`` float32 waveforms -> ``(B, n_mels, L // hop + 1)``
        float32 (the same STFT; the complex magnitude is taken by numpy, several times faster on CPU)."""
        c = self.audio
        window = torch.hann_window(c.win_length)
        spec = torch.stft(torch.from_numpy(np.ascontiguousarray(wavs, dtype=np.float32)), n_fft=c.n_fft,
                          hop_length=c.hop_length, win_length=c.win_length, window=window, center=True,
                          pad_mode="reflect", return_complex=True)
        mel = torch.matmul(mel_filterbank(c), torch.from_numpy(np.abs(spec.numpy())))
        return torch.log(torch.clamp(mel, min=LOG_FLOOR)).numpy()

    def crop(self, idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A random crop of item ``idx`` for ``n`` frames: ``(wave ((n - 1 + 2P) * hop + 1,) float32
        with context, clean mel (n_mels, n) float32)``."""
        padded, mel, _ = self.items[idx]
        hop = self.audio.hop_length
        s = self.rng.randint(0, mel.shape[1] - n)
        wave = padded[s * hop : s * hop + (n - 1 + 2 * self.context) * hop + 1].astype(np.float32) / 32767.0
        return wave, mel[:, s : s + n].astype(np.float32)

    def _channel(self, crops: list[tuple[np.ndarray, np.ndarray]], on: bool, n: int) -> tuple[np.ndarray, list]:
        """Mels ``(B, n_mels, n)`` of ``crops`` through random channels (the clean mel where none applied)."""
        out = np.stack([mel for _, mel in crops])
        applied, changed, waves = [], [], []
        for b, (wave, _) in enumerate(crops):
            wave, done = self.augment(wave, self.np_rng) if on else (wave, [])
            applied.append(done)
            if done:
                changed.append(b)
                waves.append(wave)
        if changed:
            out[changed] = self.log_mels(np.stack(waves))[:, :, self.context : self.context + n]
        return out, applied

    def sample(self, batch_size: int) -> dict:
        segs, refs, spks, warps, content_warps = [], [], [], [], []
        for _ in range(batch_size):
            idx = self.rng.randrange(len(self.items))
            spk = self.items[idx][2]
            choices = self.by_speaker[spk]
            ref_idx = self.rng.choice(choices) if len(choices) == 1 else idx
            while ref_idx == idx and len(choices) > 1:
                ref_idx = self.rng.choice(choices)
            segs.append(self.crop(idx, self.seg))
            refs.append(self.crop(ref_idx, self.ref))
            spks.append(spk)
            alpha = None
            if self.warp_prob > 0 and self.rng.random() < self.warp_prob:
                alpha = 1.0 + self.rng.uniform(-self.warp_range, self.warp_range)
            warps.append(alpha)
            beta = None
            if self.content_warp_prob > 0:
                perturb = self.rng.random() < self.content_warp_prob
                beta = 1.0 + self.rng.uniform(-self.content_warp_range, self.content_warp_range)
                beta = beta if perturb else None
            content_warps.append(beta)
        mel = np.stack([m for _, m in segs])
        mel_in, done_in = self._channel(segs, self.augment.cfg.content, self.seg)
        ref_mel, done_ref = self._channel(refs, self.augment.cfg.reference, self.ref)
        self.last_applied = list(zip(done_in, done_ref))
        for b, (alpha, beta) in enumerate(zip(warps, content_warps)):
            if alpha is not None:  # the same warp on all three = a new pseudo-speaker (as SegmentSampler)
                mel[b], mel_in[b] = warp_mel(mel[b], alpha), warp_mel(mel_in[b], alpha)
                ref_mel[b] = warp_mel(ref_mel[b], alpha)
            if beta is not None:
                mel_in[b] = warp_mel(mel_in[b], beta)
        return {
            "mel": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)),
            "mel_in": torch.from_numpy(np.ascontiguousarray(mel_in, dtype=np.float32)),
            "ref": torch.from_numpy(np.ascontiguousarray(ref_mel, dtype=np.float32)),
            "speaker": torch.tensor(spks, dtype=torch.long),
        }

    def get_state(self) -> dict:
        return {"crop": list(self.rng.getstate()[1]), "augment": self.np_rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.rng.setstate((3, tuple(int(x) for x in state["crop"]), None))
        self.np_rng.bit_generator.state = state["augment"]


def _frontend_samplers(cfg: RunConfig, feats: dict, rows_train: list, rows_valid: list, speakers: list,
                       cache_dir: Path, rank: int, name: str):
    """Train and validation :class:`FrontendSegmentSampler` (building the front-end cache if needed)."""
    from vcconv.data.frontend_cache import build_frontend_cache, load_frontend_cache

    tc, n_aug = cfg.train, cfg.train.frontend_augmented
    rows = rows_train + rows_valid
    if rank == 0:
        log.info("content front end %s: caching features of %d utterances (+%d channel copies each)", name,
                 len(rows), n_aug)
        build_frontend_cache(rows, cfg.audio, cache_dir, name, cfg.augment, n_aug)
    variants = load_frontend_cache(rows, cfg.audio, cache_dir, name, n_aug)
    sampler = FrontendSegmentSampler(feats, variants, rows_train, tc.segment_frames, tc.reference_frames, speakers,
                                     seed=tc.seed + 1000 * rank, warp_prob=tc.warp_prob, warp_range=tc.warp_range)
    val_sampler = None
    if rows_valid:
        try:
            val_sampler = FrontendSegmentSampler(feats, variants, rows_valid, tc.segment_frames, tc.reference_frames,
                                                 speakers, seed=1234)
        except DataError:
            pass
    return sampler, val_sampler


def load_training_waves(rows: list[Utterance], audio: AudioConfig) -> dict[str, np.ndarray]:
    """``{utt_id: (N,) int16}``: each row's :func:`~vcconv.data.features.prepared_waveform`, for
    :class:`WaveSegmentSampler`.  Files that fail to load are skipped with one warning."""
    waves, failed = {}, []
    t0 = time.time()
    for r in rows:
        try:
            wav, _ = prepared_waveform(r.path, audio)
        except AudioError:
            failed.append(r.path)
            continue
        waves[r.utt_id] = np.round(np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16)
    if failed:
        log.warning("augmentation: %d file(s) could not be loaded and are left out (first: %s)", len(failed), failed[0])
    n = sum(w.shape[0] for w in waves.values())
    log.info("augmentation: %d waveforms in RAM, %.2f h, %.0f MB, loaded in %.1f s", len(waves),
             n / audio.sample_rate / 3600, 2 * n / 1e6, time.time() - t0)
    return waves


def warp_mel(mel: np.ndarray, alpha: float) -> np.ndarray:
    """Stretch the mel-frequency axis by ``alpha`` (> 1 moves formants up).  ``(n_mels, T)`` -> same."""
    n = mel.shape[0]
    src = np.clip(np.arange(n, dtype=np.float32) / alpha, 0, n - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = (src - lo)[:, None]
    return mel[lo] * (1 - frac) + mel[hi] * frac


def mel_statistics(feats: dict[str, np.ndarray], max_utts: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std over (a sample of) cached log-mels: ``(n_mels,), (n_mels,)``."""
    keys = sorted(feats)[:: max(1, len(feats) // max_utts)]
    cat = np.concatenate([feats[k].astype(np.float32) for k in keys], axis=1)
    return torch.from_numpy(cat.mean(axis=1)), torch.from_numpy(cat.std(axis=1))


# ----------------------------------------------------------------- training


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train(
    run_dir: str | Path,
    manifest: str | Path,
    cfg: RunConfig,
    device: str | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    sample_fn: Callable[[torch.nn.Module, dict, Path, int], None] | None = None,
    init_from: str | Path | None = None,
) -> dict:
    """Train (or resume) the model described by ``cfg`` on ``manifest``'s train split.

    Resumes from ``RUN_DIR/last.pt`` if present (its config wins, except
    ``train.max_steps`` and ``train.time_budget_min`` which come from ``cfg``).
    Writes ``config.json``, ``log.csv``, ``last.pt`` and ``model.safetensors``.
    Returns a summary: steps, wall seconds, last losses, best validation loss.
    """
    rank, world, local_rank = _dist_info()
    distributed = world > 1
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if distributed and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
        torch.distributed.init_process_group(backend)
    dev = default_device(device)
    if distributed and dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if dev.type == "cpu":
        torch.set_num_threads(cpu_threads(cfg.train.num_threads, world))

    resume = load_training_state(run_dir)
    if resume is None and init_from is not None:
        from vcconv.checkpoint import load_model_file

        source_cfg = load_model_file(init_from, "cpu")[1]
        # the source's architecture and front end, with this run's --set model keys on top
        # (e.g. adversarial_weight=0.1 adds the speaker classifier to an AdaIN model)
        cfg.model, cfg.audio = {**source_cfg.model, **cfg.model}, source_cfg.audio
    if resume is not None:
        saved = RunConfig.from_dict(resume["config"])
        saved.train.max_steps = cfg.train.max_steps
        saved.train.time_budget_min = cfg.train.time_budget_min
        cfg = saved
    tc = cfg.train
    torch.manual_seed(tc.seed + rank)

    rows_train = read_manifest(manifest, "train")
    rows_valid = read_manifest(manifest, "valid")
    cache_dir = default_cache_dir(manifest)
    missing = [r for r in rows_train + rows_valid if not cache_path(cache_dir, cfg.audio, r.utt_id, r.path).exists()]
    if missing and rank == 0:
        build_cache(missing, cfg.audio, cache_dir)
    if distributed:
        torch.distributed.barrier()
    feats_all = load_cached(rows_train + rows_valid, cfg.audio, cache_dir)
    feats = {k: v[0] for k, v in feats_all.items()}
    speakers = sorted({r.speaker for r in rows_train})
    cfg.model.setdefault("n_mels", cfg.audio.n_mels)
    cfg.model["n_speakers"] = len(speakers)
    model = build_model(cfg.model_kind, cfg.model).to(dev)
    warps = dict(warp_prob=tc.warp_prob, warp_range=tc.warp_range, content_warp_prob=tc.content_warp_prob,
                 content_warp_range=tc.content_warp_range)
    content_input = cfg.model.get("content_input", "mel")
    if content_input != "mel":  # a pretrained front end: its features cached per utterance and channel
        sampler, val_sampler = _frontend_samplers(cfg, feats, rows_train, rows_valid, speakers, cache_dir, rank,
                                                  content_input)
    elif tc.augment:  # waveforms in RAM: channel-augmented content input and reference, clean target
        augment = ChannelAugment(cfg.augment, cfg.audio.sample_rate)
        sampler = WaveSegmentSampler(load_training_waves(rows_train, cfg.audio), rows_train, cfg.audio,
                                     tc.segment_frames, tc.reference_frames, speakers, augment,
                                     seed=tc.seed + 1000 * rank, **warps)
    else:
        sampler = SegmentSampler(feats, rows_train, tc.segment_frames, tc.reference_frames, speakers,
                                 seed=tc.seed + 1000 * rank, **warps)
    if content_input == "mel":
        val_sampler = None
        if rows_valid:
            try:
                val_sampler = SegmentSampler(feats, rows_valid, tc.segment_frames, tc.reference_frames, speakers, seed=1234)
            except DataError:
                val_sampler = None

    step = 0
    param_groups = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(param_groups, lr=tc.lr, weight_decay=tc.weight_decay)
    if resume is not None:
        unwrap(model).load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step = int(resume["step"])
        torch.set_rng_state(resume["torch_rng"])
        if "sampler" in resume["extra"]:
            sampler.set_state(resume["extra"]["sampler"])
        log.info("resumed from step %d", step)
    elif init_from is not None:
        # fine-tuning: weights (and feature statistics) of an existing model, fresh optimizer, step 0
        from vcconv.checkpoint import load_model_file

        source, source_cfg = load_model_file(init_from, "cpu")
        own = unwrap(model).state_dict()
        weights = source.state_dict()
        if source_cfg.model.get("content_input", "mel") != cfg.model.get("content_input", "mel"):
            # another content front end: the content encoder starts fresh, decoder and speaker encoder carry over
            weights = {k: v for k, v in weights.items() if not k.startswith("content_encoder.")}
        # the adversary's classifier knows the source corpus's speakers: on a corpus with another
        # speaker count it starts fresh (the rest must still fit exactly; reported below as newly initialised)
        if any(k.startswith("classifier.") and k in own and own[k].shape != v.shape for k, v in weights.items()):
            weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
        if source_cfg.model.get("content_dim") != cfg.model.get("content_dim"):
            # a wider or narrower content code: the layers that write and read it start fresh
            weights = {k: v for k, v in weights.items() if k not in own or own[k].shape == v.shape}
        try:
            result = unwrap(model).load_state_dict(weights, strict=False)
        except RuntimeError as err:  # a shape mismatch
            raise ConfigError(f"{init_from}: its weights do not fit this model config "
                              f"({str(err).splitlines()[0]})") from None
        if result.unexpected_keys:
            raise ConfigError(f"{init_from}: its weights do not fit this model config "
                              f"(unexpected tensors: {', '.join(result.unexpected_keys[:4])})")
        if result.missing_keys:  # parts this config adds (e.g. the adversary's classifier) start fresh
            parts = sorted({k.split(".")[0] for k in result.missing_keys})
            log.warning("fine-tuning from %s: %s newly initialised (%d tensors)", init_from, ", ".join(parts),
                        len(result.missing_keys))
    else:
        mean, std = mel_statistics({r.utt_id: feats[r.utt_id] for r in rows_train if r.utt_id in feats})
        unwrap(model).norm.set_stats(mean, std)
    if resume is None and rank == 0:
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    train_model = model
    if distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            LossModule(model), device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=True,  # e.g. the log-variance head when the KL term is off
        )
    use_amp = tc.amp and dev.type == "cuda"
    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext

    log_path = run_dir / "log.csv"
    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="") if rank == 0 else None
    writer = csv.writer(log_file) if log_file else None
    if writer and new_log:
        writer.writerow(["step", "time_s", "split", "total", "recon", "kl", "extra"])

    start = time.time()
    budget_s = tc.time_budget_min * 60 if tc.time_budget_min > 0 else float("inf")
    last_ckpt = time.time()
    best_val = float(resume["extra"].get("best_val", "inf")) if resume else float("inf")
    running: dict[str, float] = {}
    n_running = 0
    stop_reason = "max_steps"

    def checkpoint() -> None:
        if rank == 0:
            save_training_state(run_dir, model, optimizer, step, cfg, {"sampler": sampler.get_state(), "best_val": best_val})

    train_step = getattr(unwrap(model), "train_step", None)
    stop_signal: list[int] = []
    previous_handlers = catch_stop_signals(stop_signal)
    model.train()
    try:
        while step < tc.max_steps:
            if time.time() - start > budget_s:
                stop_reason = "time_budget"
                break
            if stop_signal:
                stop_reason = f"signal {stop_signal[0]}"
                break
            batch = {k: v.to(dev) for k, v in sampler.sample(tc.batch_size).items()}
            if train_step is not None:
                losses = train_step(train_model, optimizer, batch, step, amp_ctx, tc.grad_clip)
            else:
                with amp_ctx():
                    losses = train_model(batch, step) if distributed else train_model.loss(batch, step)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(param_groups, tc.grad_clip)
                optimizer.step()
            step += 1
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
            n_running += 1
            if not math.isfinite(float(losses["total"].detach())):
                raise RuntimeError(f"loss became {float(losses['total'].detach())} at step {step}; lower train.lr")
            if step % tc.log_every == 0 or step == tc.max_steps:
                means = {k: v / n_running for k, v in running.items()}
                if writer:
                    writer.writerow([step, round(time.time() - start, 1), "train", f"{means.get('total', 0):.5f}",
                                     f"{means.get('recon', 0):.5f}", f"{means.get('kl', 0):.5f}",
                                     json.dumps({k: round(v, 5) for k, v in means.items() if k not in ("total", "recon", "kl")})])
                    log_file.flush()
                if progress and rank == 0:
                    progress(step, tc.max_steps, means)
                running, n_running = {}, 0
            if val_sampler is not None and step % tc.val_every == 0 and rank == 0:
                val = validate(unwrap(model), val_sampler, tc, dev)
                best_val = min(best_val, val["total"])
                if writer:
                    writer.writerow([step, round(time.time() - start, 1), "valid", f"{val['total']:.5f}",
                                     f"{val.get('recon', 0):.5f}", f"{val.get('kl', 0):.5f}", "{}"])
                    log_file.flush()
            if sample_fn is not None and rank == 0 and step % tc.samples_every == 0:
                model.eval()
                sample_fn(unwrap(model), cfg.to_dict(), run_dir / "samples" / f"step{step:07d}", step)
                model.train()
            if step % tc.ckpt_every == 0 or time.time() - last_ckpt > 300:
                checkpoint()
                last_ckpt = time.time()
        checkpoint()
    finally:
        restore_signals(previous_handlers)  # also when the loop raises: a caller's Ctrl-C must work again
    if rank == 0:
        save_safetensors(model, cfg, run_dir / "model.safetensors")
    if log_file:
        log_file.close()
    if distributed:
        torch.distributed.barrier()
    return {"steps": step, "wall_s": time.time() - start, "stop": stop_reason, "best_val": best_val,
            "run_dir": str(run_dir)}


class LossModule(torch.nn.Module):
    """Routes ``forward(batch, step)`` to ``model.loss`` so DDP's gradient hooks see the call."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.module = model

    def forward(self, batch: dict, step: int) -> dict:
        return self.module.loss(batch, step)


@torch.no_grad()
def validate(model: torch.nn.Module, sampler: SegmentSampler, tc, dev: torch.device, n_batches: int = 4) -> dict:
    """Mean losses over ``n_batches`` repeatable validation batches (the sampler is re-seeded)."""
    was_training = model.training
    model.eval()
    state = sampler.rng.getstate()
    sampler.rng.seed(1234)
    totals: dict[str, float] = {}
    for _ in range(n_batches):
        batch = {k: v.to(dev) for k, v in sampler.sample(min(tc.batch_size, 16)).items()}
        for k, v in model.loss(batch, 10**9).items():
            totals[k] = totals.get(k, 0.0) + float(v) / n_batches
    sampler.rng.setstate(state)
    model.train(was_training)
    return totals
