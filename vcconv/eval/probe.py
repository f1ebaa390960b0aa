"""Linear probes on frozen codes: how much speaker and phone information a representation holds.

A *code extractor* is anything with

* ``content(mel (B, n_mels, T)) -> (B, D, T')`` frame-level content code (required;
  a plain callable ``f(mel) -> (B, D, T')`` is taken as ``content``),
* ``speaker(mel) -> (B, S)`` an utterance-level speaker vector (optional),
* ``codes(mel) -> (B, T') long`` discrete code indices (optional, for VQ models).

``mel`` is the raw log-mel of the feature cache (the model normalises it itself).
``T'`` may differ from ``T`` (a down-sampling encoder): phone labels are then
read at the code's own frame rate.

Probes (multinomial logistic regression on standardised inputs, small L2,
full-batch L-BFGS; :func:`probe_accuracy`):

* ``speaker_from_content``: speaker identity from the utterance-mean content
  code (lower = better disentangled).  With instance normalisation on the
  content output (AdaIN-VC) the utterance mean is ~0 by construction, so this
  one sits at chance trivially;
* ``speaker_from_speaker_vector``: speaker identity from ``speaker(mel)`` (higher = better);
* ``speaker_from_content_frames``: the same from single content frames, plus
  ``utterance_vote_accuracy``: the frame log-probabilities summed per test utterance.
  Linear, so it is *also* at chance by construction on an instance-normalised code:
  every utterance has zero mean per channel, the class means coincide, and the
  convex logistic loss is minimised by a constant guess;
* ``speaker_from_content_frames_mlp``: the same with one hidden layer (256 ReLU),
  which can read the second-order structure that instance norm leaves: the
  disentanglement figure to compare across models;
* ``phone_from_content``: phone identity per content frame (± ``context``
  frames), trained on training-split speakers, tested on the probe speakers
  (speaker-disjoint); chance is the majority-class rate of the test frames;
* ``code_phone`` (discrete codes only): code-phone purity and normalised mutual information.

The speaker probes are closed-set: the held-out speakers of the manifest (split
``test`` by default, never seen in training), each speaker's utterances shuffled
with ``seed`` and split 50/50 into probe-train and probe-test.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vcconv.errors import DataError

log = logging.getLogger(__name__)

MAX_FRAMES = 200_000  # cap on the frames of one frame-level probe's train set (and of its test set)
DEFAULT_L2 = 1e-3  # weight decay on standardised inputs: the loss is mean CE + l2 * ||W||^2
MAX_ITER = 200


# --------------------------------------------------------------------------- linear probe


@dataclass
class LinearProbe:
    """A fitted multinomial logistic regression: ``classes[argmax((x - mean) / std @ W + b)]``."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (D, C)
    bias: np.ndarray  # (C,)
    classes: np.ndarray  # (C,) the label of each output

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) - self.mean) / self.std

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(N, D)`` -> ``(N, C)``."""
        return self.standardise(x) @ self.weight + self.bias

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        """``(N, D)`` -> ``(N, C)`` log-probabilities."""
        logits = self.logits(x)
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(N, D)`` -> ``(N,)`` labels."""
        return self.classes[self.logits(x).argmax(axis=1)]


@dataclass
class MLPProbe(LinearProbe):
    """One hidden layer (ReLU) before the softmax: ``W2 relu((x - mean) / std @ W1 + b1) + b2``.

    A linear probe cannot see speaker information that instance normalisation has
    turned into second-order structure (every utterance's code has zero mean per
    channel, so class means coincide and the linear optimum is a constant guess);
    this one can.  ``weight`` / ``bias`` are the output layer.
    """

    hidden_weight: np.ndarray | None = None  # (D, H)
    hidden_bias: np.ndarray | None = None  # (H,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(self.standardise(x) @ self.hidden_weight + self.hidden_bias, 0.0) @ self.weight + self.bias


def _standardised(x: np.ndarray, y: Sequence, who: str):
    """Checked ``(N, D)`` float32 inputs -> ``(classes, mean, std, x_std tensor, y index tensor)``."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{who} needs a non-empty (N, D) array, got shape {x.shape}")
    classes, y_idx = np.unique(np.asarray(y), return_inverse=True)
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6).astype(np.float32)
    return classes, mean, std, torch.from_numpy((x - mean) / std), torch.from_numpy(y_idx.astype(np.int64))


def fit_mlp_probe(x: np.ndarray, y: Sequence, *, hidden: int = 256, steps: int = 400, lr: float = 3e-3,
                  weight_decay: float = 1e-4, seed: int = 0) -> MLPProbe:
    """Fit an :class:`MLPProbe` on ``x (N, D)``, labels ``y (N,)``: full-batch AdamW, seeded init."""
    classes, mean, std, xt, yt = _standardised(x, y, "fit_mlp_probe")
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, len(classes)))
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.zero_()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(net(xt), yt).backward()
            opt.step()
    w1, b1, w2, b2 = (t.detach().numpy().copy() for t in (net[0].weight.T, net[0].bias, net[2].weight.T, net[2].bias))
    return MLPProbe(mean, std, w2, b2, classes, hidden_weight=w1, hidden_bias=b1)


def fit_linear_probe(
    x: np.ndarray, y: Sequence, *, l2: float = DEFAULT_L2, max_iter: int = MAX_ITER, seed: int = 0
) -> LinearProbe:
    """Fit a multinomial logistic regression on ``x (N, D)``, labels ``y (N,)`` (any sortable labels).

    Inputs are standardised with the training mean / std; weights start at zero
    and are fitted by full-batch L-BFGS (strong-Wolfe line search), so the
    result is deterministic; ``seed`` only seeds torch for symmetry with callers.
    """
    classes, mean, std, xt, yt = _standardised(x, y, "fit_linear_probe")
    d, c = xt.shape[1], len(classes)
    if c == 1:
        return LinearProbe(mean, std, np.zeros((d, 1), np.float32), np.zeros(1, np.float32), classes)

    torch.manual_seed(seed)
    w = torch.zeros(d, c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-9,
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearProbe(mean, std, w.detach().numpy().copy(), b.detach().numpy().copy(), classes)


def probe_accuracy(
    x_train: np.ndarray,
    y_train: Sequence,
    x_test: np.ndarray,
    y_test: Sequence,
    *,
    chance: str = "uniform",
    l2: float = DEFAULT_L2,
    max_iter: int = MAX_ITER,
    seed: int = 0,
    kind: str = "linear",
) -> dict:
    """Fit on the train set, score on the test set (``kind``: ``"linear"`` or ``"mlp"``).

    ``chance``: ``"uniform"`` (1 / number of classes, for balanced speaker
    sets) or ``"majority"`` (frequency of the commonest test label: the best a
    constant guess can score).  Test labels never seen in training count as errors.

    Returns ``{"accuracy", "chance", "train_accuracy", "n_train", "n_test", "n_classes"}``
    and the fitted probe under ``"_probe"`` (dropped by :func:`run_probes`).
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(y_test) == 0:
        raise ValueError("probe_accuracy needs at least one test example")
    if kind == "mlp":
        probe = fit_mlp_probe(x_train, y_train, seed=seed)
    elif kind == "linear":
        probe = fit_linear_probe(x_train, y_train, l2=l2, max_iter=max_iter, seed=seed)
    else:
        raise ValueError(f"kind must be 'linear' or 'mlp', not {kind!r}")
    acc = float(np.mean(probe.predict(x_test) == y_test))
    train_acc = float(np.mean(probe.predict(x_train) == y_train))
    n_classes = int(len(np.unique(np.concatenate([y_train, y_test]))))
    if chance == "uniform":
        base = 1.0 / n_classes
    elif chance == "majority":
        base = float(np.unique(y_test, return_counts=True)[1].max() / len(y_test))
    else:
        raise ValueError(f"chance must be 'uniform' or 'majority', not {chance!r}")
    return {
        "accuracy": acc, "chance": base, "train_accuracy": train_acc,
        "n_train": int(len(y_train)), "n_test": int(len(y_test)), "n_classes": n_classes, "_probe": probe,
    }  # fmt: skip


# --------------------------------------------------------------------------- discrete codes


def contingency(a: Sequence, b: Sequence) -> np.ndarray:
    """Counts ``(n_values(a), n_values(b))`` of the pairs ``(a[i], b[i])``."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"labelings differ in length: {a.shape[0]} vs {b.shape[0]}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    na, nb = int(ia.max(initial=-1)) + 1, int(ib.max(initial=-1)) + 1
    return np.bincount(ia * nb + ib, minlength=na * nb).reshape(na, nb)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def normalized_mutual_information(a: Sequence, b: Sequence) -> float:
    """NMI of two labelings, ``I(a; b) / mean(H(a), H(b))`` (the arithmetic normalisation, as sklearn).

    1 for identical partitions (labels may be renamed), ~0 for independent
    ones; 1 when both are constant, 0 when only one is.
    """
    c = contingency(a, b).astype(np.float64)
    n = c.sum()
    if n == 0:
        return math.nan
    p = c / n
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    ha, hb = _entropy(pa), _entropy(pb)
    if ha == 0 and hb == 0:
        return 1.0
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    return float(np.clip(mi / (0.5 * (ha + hb)), 0.0, 1.0))


def purity(clusters: Sequence, labels: Sequence) -> float:
    """Fraction of items whose label is the commonest label of their cluster (1 = every cluster pure)."""
    c = contingency(clusters, labels)
    return float(c.max(axis=1).sum() / c.sum()) if c.size else math.nan


def code_phone_scores(codes: Sequence, phones: Sequence) -> dict:
    """``{"purity", "phone_purity", "nmi", "n_codes", "n_phones", "n_frames"}`` of discrete codes vs phone labels.

    ``purity``: each code predicts its commonest phone (grows with the number of
    codes); ``phone_purity``: each phone predicts its commonest code (the reverse).
    """
    codes, phones = np.asarray(codes).reshape(-1), np.asarray(phones).reshape(-1)
    return {
        "purity": purity(codes, phones),
        "phone_purity": purity(phones, codes),
        "nmi": normalized_mutual_information(codes, phones),
        "n_codes": int(len(np.unique(codes))),
        "n_phones": int(len(np.unique(phones))),
        "n_frames": int(codes.size),
    }


# --------------------------------------------------------------------------- extractors


class CodeExtractor:
    """Uniform view of a model (or callable) as ``content`` / ``speaker`` / ``codes`` functions.

    Each returns numpy for one utterance: ``content(mel (n_mels, T)) -> (D, T')``,
    ``speaker(mel) -> (S,)`` or ``None``, ``codes(mel) -> (T',)`` or ``None``.
    """

    def __init__(self, model):
        if callable(getattr(model, "content", None)):
            self._content = model.content
        elif callable(model):
            self._content = model
        else:
            raise TypeError("a code extractor needs a .content(mel) method or must itself be callable")
        spk, codes = getattr(model, "speaker", None), getattr(model, "codes", None)
        self._speaker = spk if callable(spk) else None
        self._codes = codes if callable(codes) else None
        self.model = model
        self.device = _device_of(model)
        self.has_speaker = self._speaker is not None
        self.has_codes = self._codes is not None
        # a model whose content encoder reads a pretrained front end gets its features from the audio
        self.frontend_name = getattr(getattr(model, "cfg", None), "content_input", "mel")
        self.frontend = None
        if self.frontend_name != "mel":
            from vcconv.models.frontends import load_frontend

            self.frontend = load_frontend(self.frontend_name, threads=1)

    def front_end_features(self, path: str, audio, n_frames: int) -> torch.Tensor:
        """``(1, dim, n_frames)`` front-end features of the cached mel's waveform (same trimming)."""
        from vcconv.data.features import prepared_waveform

        wav, _ = prepared_waveform(path, audio)
        return torch.from_numpy(self.frontend(wav, n_frames, audio.hop_length)).to(self.device)[None]

    def _mel(self, mel: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(mel, np.float32), device=self.device)[None]

    @torch.inference_mode()
    def content(self, mel: np.ndarray, path: str | None = None, audio=None) -> np.ndarray:
        """``(n_mels, T)`` -> ``(D, T')``; a front-end model also needs the utterance's ``path`` and ``audio`` config."""
        if self.frontend is not None:
            feats = self.front_end_features(path, audio, mel.shape[-1])
            out = torch.as_tensor(self._content(self._mel(mel), feats))
        else:
            out = torch.as_tensor(self._content(self._mel(mel)))
        if out.ndim != 3 or out.shape[0] != 1:
            raise ValueError(f"content(mel) must return (B, D, T), got shape {tuple(out.shape)}")
        return out[0].float().cpu().numpy()

    @torch.inference_mode()
    def speaker(self, mel: np.ndarray) -> np.ndarray | None:
        if self._speaker is None:
            return None
        return torch.as_tensor(self._speaker(self._mel(mel))).reshape(-1).float().cpu().numpy()

    @torch.inference_mode()
    def codes(self, mel: np.ndarray) -> np.ndarray | None:
        if self._codes is None:
            return None
        return torch.as_tensor(self._codes(self._mel(mel))).reshape(-1).long().cpu().numpy()


def _device_of(model) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


# --------------------------------------------------------------------------- data


@dataclass
class _Utt:
    utt_id: str
    speaker: str
    role: str  # "train" / "test" (speaker probes) or "phone_train"
    content: np.ndarray  # (D, T')
    speaker_vec: np.ndarray | None  # (S,)
    codes: np.ndarray | None  # (T',)
    phones: np.ndarray | None  # (T',) phone id per frame, -1 unknown; None without an alignment


def _choose_probe_rows(rows, max_utts: int, rng: np.random.Generator) -> dict[str, str]:
    """``{utt_id: "train" | "test"}``: per speaker a seeded shuffle, ``max_utts`` kept, halves."""
    by_speaker: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r.utt_id):
        by_speaker.setdefault(r.speaker, []).append(r)
    roles = {}
    for spk in sorted(by_speaker):
        utts = by_speaker[spk]
        if len(utts) < 2:
            log.warning("speaker %s has %d utterance(s): left out of the speaker probes", spk, len(utts))
            continue
        order = rng.permutation(len(utts))[:max_utts]
        n_train = (len(order) + 1) // 2
        for k, i in enumerate(order):
            roles[utts[i].utt_id] = "train" if k < n_train else "test"
    return roles


def _choose_phone_train_rows(rows, exclude: set[str], n_speakers: int, max_utts: int, rng: np.random.Generator):
    """Up to ``max_utts`` aligned utterances of each of ``n_speakers`` seeded training speakers."""
    by_speaker: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r.utt_id):
        if r.split == "train" and r.phones and r.speaker not in exclude:
            by_speaker.setdefault(r.speaker, []).append(r)
    speakers = sorted(by_speaker)
    chosen = [speakers[i] for i in sorted(rng.permutation(len(speakers))[:n_speakers])]
    out = []
    for spk in chosen:
        utts = by_speaker[spk]
        out.extend(utts[i] for i in sorted(rng.permutation(len(utts))[:max_utts]))
    return out


def _with_context(x: np.ndarray, k: int) -> np.ndarray:
    """``(D, T)`` -> ``(D * (2k + 1), T)``: frames ``t-k .. t+k`` stacked (edges repeated)."""
    if k <= 0:
        return x
    t = x.shape[1]
    padded = np.pad(x, ((0, 0), (k, k)), mode="edge")
    return np.concatenate([padded[:, j : j + t] for j in range(2 * k + 1)], axis=0)


def _cap(x: np.ndarray, y: np.ndarray, groups: np.ndarray, limit: int, rng: np.random.Generator):
    if len(y) <= limit:
        return x, y, groups
    keep = np.sort(rng.choice(len(y), size=limit, replace=False))
    return x[keep], y[keep], groups[keep]


def _phone_frames(utts: list[_Utt], context: int, keep_sil: bool):
    """Stacked ``(N, D')`` features, ``(N,)`` phone ids and ``(N,)`` utterance indices of labelled frames."""
    from vcconv.data.phones import PHONE_TO_ID

    xs, ys, gs = [], [], []
    for i, u in enumerate(utts):
        if u.phones is None:
            continue
        feats = _with_context(u.content, context)
        keep = u.phones >= 0
        if not keep_sil:
            keep &= u.phones != PHONE_TO_ID["sil"]
        xs.append(feats[:, keep].T)
        ys.append(u.phones[keep])
        gs.append(np.full(int(keep.sum()), i))
    if not xs:
        return None
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(gs)


def _encode(
    ext: CodeExtractor, rows, roles: dict[str, str], feats: dict, hop_s: float,
    progress: Callable[[int, int], None] | None, audio=None,
) -> list[_Utt]:  # fmt: skip
    from vcconv.data.phones import frame_labels, read_alignment

    out = []
    total = len(rows)
    for k, r in enumerate(rows):
        mel, offset = feats[r.utt_id]
        content = ext.content(mel, r.path, audio)
        phones = None
        if r.phones and Path(r.phones).is_file():
            n_code = content.shape[1]
            code_hop = hop_s * mel.shape[-1] / max(n_code, 1)  # a down-sampling encoder has a longer hop
            phones = np.asarray(frame_labels(read_alignment(r.phones), n_code, code_hop, offset), np.int64)
        out.append(_Utt(r.utt_id, r.speaker, roles[r.utt_id], content, ext.speaker(mel), ext.codes(mel), phones))
        if progress:
            progress(k + 1, total)
    return out


def _load_features(rows, audio, cache_dir: Path) -> dict:
    from vcconv.data.features import build_cache, load_cached

    feats = load_cached(rows, audio, cache_dir)
    missing = [r for r in rows if r.utt_id not in feats]
    if missing:
        log.info("computing features of %d uncached utterance(s) into %s", len(missing), cache_dir)
        failures = build_cache(missing, audio, cache_dir)
        for utt_id, err in failures.items():
            log.warning("%s: %s (left out)", utt_id, err)
        feats.update(load_cached(missing, audio, cache_dir))
    return feats


# --------------------------------------------------------------------------- all probes


def run_probes(
    model,
    manifest: str | Path,
    *,
    split: str = "test",
    max_utts: int = 40,
    seed: int = 0,
    device: str | None = None,
    audio=None,
    cache_dir: str | Path | None = None,
    context: int = 0,
    keep_sil: bool = False,
    phone_train_speakers: int = 8,
    max_frames: int = MAX_FRAMES,
    l2: float = DEFAULT_L2,
    mlp: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run every probe that ``model`` supports on the corpus of ``manifest``.

    Args:
        model: a code extractor (see the module docstring), or a path that
            :func:`vcconv.checkpoint.load_model_file` accepts (``.safetensors`` or run folder).
        manifest: manifest TSV; features come from its cache (missing ones are computed).
        split: whose speakers the speaker probes use (default the held-out ``test``
            speakers); their utterances are also the phone probe's test set.
        max_utts: utterances per speaker (speaker probes and phone-probe training speakers).
        seed: seeds every shuffle and subsample.
        device: where a model loaded from a path runs; an ``nn.Module`` passed in
            is moved there when given (else it stays where it is).
        audio: :class:`~vcconv.audio.AudioConfig` of the features; default the
            checkpoint's (loaded model) or ``AudioConfig()``.
        cache_dir: feature cache (default: ``cache/`` beside the manifest).
        context: phone probe input is frames ``t-context .. t+context`` concatenated.
        keep_sil: keep ``sil`` frames in the phone probe (and code-phone scores).
        phone_train_speakers: training-split speakers whose utterances train the phone probe.
        max_frames: cap on each frame-level train set and test set (seeded subsample).
        l2: L2 weight of every linear probe.
        mlp: also fit the one-hidden-layer speaker probe on content frames
            (``speaker_from_content_frames_mlp``; see :class:`MLPProbe`).
        progress: ``callback(done, total)`` while utterances are encoded.

    Returns:
        ``{probe_name: {"accuracy", "chance", "train_accuracy", "n_train", "n_test",
        "n_classes", ...}, "code_phone": {...} (discrete models), "info": {...}}``;
        a probe that cannot run (no speaker vector, no alignments) is absent and
        its reason is listed in ``info["skipped"]``.
    """
    from vcconv.audio import AudioConfig
    from vcconv.data.features import default_cache_dir
    from vcconv.data.manifest import read_manifest

    start = time.perf_counter()
    if isinstance(model, (str, Path)):
        from vcconv.checkpoint import load_model_file

        model, cfg = load_model_file(model, device)
        audio = audio or cfg.audio
    elif device is not None and isinstance(model, torch.nn.Module):
        from vcconv.checkpoint import default_device

        model = model.to(default_device(device))
    audio = audio or AudioConfig()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(manifest)
    rng = np.random.default_rng(seed)

    rows = read_manifest(manifest)
    probe_pool = [r for r in rows if r.split == split]
    roles = _choose_probe_rows(probe_pool, max_utts, rng)
    probe_rows = [r for r in probe_pool if r.utt_id in roles]
    n_probe_speakers = len({r.speaker for r in probe_rows})
    if n_probe_speakers < 2:
        raise DataError(f"{manifest}: split '{split}' needs at least 2 speakers with 2+ utterances each for the probes")
    phone_rows = _choose_phone_train_rows(rows, {r.speaker for r in probe_rows}, phone_train_speakers, max_utts, rng)
    roles.update({r.utt_id: "phone_train" for r in phone_rows})
    all_rows = probe_rows + phone_rows

    feats = _load_features(all_rows, audio, cache_dir)
    all_rows = [r for r in all_rows if r.utt_id in feats]

    ext = CodeExtractor(model)
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        utts = _encode(ext, all_rows, roles, feats, audio.hop_length / audio.sample_rate, progress, audio)
    finally:
        if was_training:
            model.train()
    encode_s = time.perf_counter() - start

    train = [u for u in utts if u.role == "train"]
    test = [u for u in utts if u.role == "test"]
    results: dict = {}
    skipped: dict[str, str] = {}
    common = {"l2": l2, "seed": seed}

    # (a) speaker from the utterance-mean content code
    results["speaker_from_content"] = probe_accuracy(
        np.stack([u.content.mean(axis=1) for u in train]), [u.speaker for u in train],
        np.stack([u.content.mean(axis=1) for u in test]), [u.speaker for u in test], **common,
    )  # fmt: skip

    # (b) speaker from the speaker vector
    if ext.has_speaker:
        results["speaker_from_speaker_vector"] = probe_accuracy(
            np.stack([u.speaker_vec for u in train]), [u.speaker for u in train],
            np.stack([u.speaker_vec for u in test]), [u.speaker for u in test], **common,
        )  # fmt: skip
    else:
        skipped["speaker_from_speaker_vector"] = "the model has no speaker(mel)"

    # (c) speaker from single content frames (+ per-utterance vote)
    def frames(us: list[_Utt]):
        x = np.concatenate([u.content.T for u in us]).astype(np.float32)
        y = np.concatenate([np.full(u.content.shape[1], u.speaker, dtype=object) for u in us]).astype(str)
        g = np.concatenate([np.full(u.content.shape[1], i) for i, u in enumerate(us)])
        return x, y, g

    x_tr, y_tr, _ = _cap(*frames(train), max_frames, rng)
    x_te, y_te, g_te = _cap(*frames(test), max_frames, rng)
    for name, kind in (("speaker_from_content_frames", "linear"), ("speaker_from_content_frames_mlp", "mlp")):
        if kind == "mlp" and not mlp:
            continue
        res = probe_accuracy(x_tr, y_tr, x_te, y_te, kind=kind, **common)
        logp = res["_probe"].log_proba(x_te)
        votes = []
        for i in np.unique(g_te):
            pred = res["_probe"].classes[logp[g_te == i].sum(axis=0).argmax()]
            votes.append(pred == test[i].speaker)
        res["utterance_vote_accuracy"] = float(np.mean(votes))
        results[name] = res

    # (d) phone from content frames, speaker-disjoint
    phone_train = [u for u in utts if u.role == "phone_train"]
    tr, te = _phone_frames(phone_train, context, keep_sil), _phone_frames(train + test, context, keep_sil)
    if tr is None or te is None:
        skipped["phone_from_content"] = (
            "no aligned training-split utterances" if tr is None else f"no aligned utterances in split '{split}'"
        )
    else:
        x_tr, y_tr, _ = _cap(*tr, max_frames, rng)
        x_te, y_te, _ = _cap(*te, max_frames, rng)
        res = probe_accuracy(x_tr, y_tr, x_te, y_te, chance="majority", **common)
        res["context"] = context
        results["phone_from_content"] = res

    # (e) discrete codes vs phones
    if ext.has_codes:
        from vcconv.data.phones import PHONE_TO_ID

        codes, labels = [], []
        for u in utts:
            if u.phones is None or u.codes is None:
                continue
            n = min(len(u.codes), len(u.phones))
            keep = u.phones[:n] >= 0
            if not keep_sil:
                keep &= u.phones[:n] != PHONE_TO_ID["sil"]
            codes.append(u.codes[:n][keep])
            labels.append(u.phones[:n][keep])
        if codes and sum(len(c) for c in codes):
            results["code_phone"] = code_phone_scores(np.concatenate(codes), np.concatenate(labels))
        else:
            skipped["code_phone"] = "no aligned frames"
    for res in results.values():
        res.pop("_probe", None)

    results["info"] = {
        "split": split,
        "speakers": sorted({u.speaker for u in train + test}),
        "phone_train_speakers": sorted({u.speaker for u in phone_train}),
        "n_utts": {"probe_train": len(train), "probe_test": len(test), "phone_train": len(phone_train)},
        "content_dim": int(utts[0].content.shape[0]) if utts else 0,
        "context": context,
        "keep_sil": keep_sil,
        "max_utts": max_utts,
        "seed": seed,
        "skipped": skipped,
        "encode_s": round(encode_s, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return results
