"""Corpus-level checks: are the speakers of a corpus told apart by a speaker-verification embedding?

Also builds the held-out conversion protocol (every ordered pair of unseen speakers).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vcconv.data.manifest import Utterance, read_manifest


def speaker_separability(
    manifest: str | Path,
    n_utts: int = 10,
    seed: int = 0,
    distinct_below: float = 0.85,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed ``n_utts`` utterances per speaker (resemblyzer); half build the speaker centroid,
    the other half are identified among all centroids (closed set).

    A speaker counts as *distinct* when its held-back utterances are all identified correctly
    and its centroid's cosine to every other centroid is below ``distinct_below``.

    Returns ``{"speakers": [...per-speaker dict...], "id_accuracy", "n_distinct",
    "same_speaker_cos", "nearest_other_cos_mean"}``.
    """
    from vcconv.eval.speaker import SpeakerEmbedder, centroids, closed_set_identify, cosine

    rows = read_manifest(manifest)
    by_spk: dict[str, list[Utterance]] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, []).append(r)
    rng = random.Random(seed)
    chosen = {s: rng.sample(sorted(u, key=lambda x: x.utt_id), min(n_utts, len(u))) for s, u in sorted(by_spk.items())}
    emb = SpeakerEmbedder.get()
    from vcconv.audio import load_audio

    total = sum(len(v) for v in chosen.values())
    done = 0
    embs: dict[str, np.ndarray] = {}
    for spk, utts in chosen.items():
        vecs = []
        for u in utts:
            vecs.append(emb.embed(load_audio(u.path, 16000), 16000))
            done += 1
            if progress:
                progress(done, total)
        embs[spk] = np.stack(vecs)
    half = {s: e[: max(1, len(e) // 2)] for s, e in embs.items()}
    test = {s: e[max(1, len(e) // 2) :] for s, e in embs.items()}
    cents = centroids(half)
    genuine, impostor = [], []
    for spk in cents:
        for v in test[spk]:
            for other, c in cents.items():
                (genuine if other == spk else impostor).append(cosine(v, c))
    per = []
    correct = n_test = 0
    same = []
    for spk in cents:
        hits = [closed_set_identify(v, cents) == spk for v in test[spk]]
        correct += sum(hits)
        n_test += len(hits)
        same += [cosine(v, cents[spk]) for v in test[spk]]
        others = [(o, cosine(cents[spk], cents[o])) for o in cents if o != spk]
        nearest, near_cos = max(others, key=lambda t: t[1]) if others else ("", 0.0)
        acc = float(np.mean(hits)) if hits else float("nan")
        per.append({"speaker": spk, "id_accuracy": acc, "nearest": nearest, "nearest_cos": near_cos,
                    "distinct": bool(hits) and acc == 1.0 and near_cos < distinct_below})
    return {
        "speakers": per,
        "id_accuracy": correct / max(1, n_test),
        "n_distinct": sum(p["distinct"] for p in per),
        "n_speakers": len(per),
        "same_speaker_cos": float(np.mean(same)) if same else float("nan"),
        "eer": equal_error_rate(np.array(genuine), np.array(impostor)),
        "nearest_other_cos_mean": float(np.mean([p["nearest_cos"] for p in per])) if per else float("nan"),
    }


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Verification EER from same-speaker (``genuine``) and different-speaker (``impostor``) scores."""
    if genuine.size == 0 or impostor.size == 0:
        return float("nan")
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    frr = np.array([(genuine < t).mean() for t in thresholds])
    far = np.array([(impostor >= t).mean() for t in thresholds])
    k = int(np.argmin(np.abs(frr - far)))
    return float((frr[k] + far[k]) / 2)


def heldout_pairs(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    n_speakers: int = 0,
    n_sentences: int = 10,
    seed: int = 0,
) -> list[dict]:
    """Every ordered pair of ``split`` speakers x ``n_sentences`` source sentences.

    The reference clip of the target is a *different* sentence of the target speaker
    than the source sentence; ``parallel_target`` is the target saying the source
    sentence (for MCD) when the corpus is parallel.  ``output`` paths go under
    ``out_dir/<source>__to__<target>/``.  Returns pair dicts (columns of ``vcconv eval``).
    """
    rows = read_manifest(manifest, split)
    by_spk: dict[str, dict[str, Utterance]] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, {})[r.text.strip().lower() or r.utt_id] = r
    speakers = sorted(by_spk)
    rng = random.Random(seed)
    if n_speakers:
        speakers = sorted(rng.sample(speakers, min(n_speakers, len(speakers))))
    shared = sorted(set.intersection(*(set(by_spk[s]) for s in speakers))) if speakers else []
    if len(shared) >= n_sentences + 1:
        sentences = rng.sample(shared, n_sentences + 1)
        ref_key, src_keys = sentences[0], sentences[1:]
    else:  # non-parallel corpus: each speaker's own utterances
        ref_key, src_keys = None, None
    pairs = []
    out_dir = Path(out_dir)
    for s in speakers:
        src_utts = [by_spk[s][k] for k in src_keys] if src_keys else sorted(by_spk[s].values(), key=lambda u: u.utt_id)[1 : n_sentences + 1]
        for t in speakers:
            if s == t:
                continue
            ref = by_spk[t][ref_key] if ref_key else sorted(by_spk[t].values(), key=lambda u: u.utt_id)[0]
            for u in src_utts:
                key = u.text.strip().lower() or u.utt_id
                parallel = by_spk[t].get(key)
                pairs.append({
                    "source": u.path, "target": ref.path,
                    "output": str(out_dir / f"{s}__to__{t}" / f"{u.utt_id}.wav"),
                    "source_speaker": s, "target_speaker": t, "text": u.text,
                    "parallel_target": parallel.path if parallel and src_keys else "",
                })
    return pairs
