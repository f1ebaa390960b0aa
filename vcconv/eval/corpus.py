"""Corpus-level checks: are the speakers of a corpus told apart by a speaker-verification embedding?

Also builds the held-out conversion protocol (every ordered pair of unseen speakers).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vcconv.data.manifest import Utterance, read_manifest


def speaker_metadata(manifest_rows: list[Utterance]) -> dict[str, dict]:
    """Per speaker: ``gender`` (F, M or ?), ``kind``, ``source``, ``licence``, ``person``, ``hours``.

    Read from the ``voices.json`` of a ``vcconv data synth`` corpus or the ``sources.json``
    of a ``vcconv data import`` folder found beside (or up to three folders above) each
    speaker's audio; speakers with neither get ``?`` / ``unknown``.  ``hours`` sums the
    manifest's durations.
    """
    import json

    found: dict[Path, dict[str, dict]] = {}

    def described(folder: Path) -> dict[str, dict]:
        if folder not in found:
            entries: dict[str, dict] = {}
            try:
                if (folder / "voices.json").is_file():
                    for v in json.loads((folder / "voices.json").read_text()).get("voices", []):
                        entries[v["name"]] = {
                            "gender": v.get("gender", "?"), "kind": v.get("kind", "synthetic"),
                            "source": v.get("engine", ""), "licence": v.get("licence", "unknown"),
                            "person": v.get("person", "") if v.get("kind") == "natural" else "",
                        }  # fmt: skip
                elif (folder / "sources.json").is_file():
                    for name, v in json.loads((folder / "sources.json").read_text()).get("speakers", {}).items():
                        g = str(v.get("gender", "")).lower()
                        entries[name] = {
                            "gender": {"female": "F", "male": "M", "f": "F", "m": "M"}.get(g, "?"), "kind": "real",
                            "source": v.get("source", ""), "licence": v.get("licence", "unknown"), "person": name,
                        }  # fmt: skip
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                entries = {}
            found[folder] = entries
        return found[folder]

    meta: dict[str, dict] = {}
    hours: dict[str, float] = {}
    for r in manifest_rows:
        hours[r.speaker] = hours.get(r.speaker, 0.0) + float(r.duration or 0.0) / 3600
        if r.speaker in meta:
            continue
        info = None
        for folder in list(Path(r.path).parents)[:4]:
            info = described(folder).get(r.speaker)
            if info is not None:
                break
        meta[r.speaker] = dict(info) if info else {"gender": "?", "kind": "unknown", "source": "", "licence": "unknown",
                                                   "person": ""}  # fmt: skip
    for spk, m in meta.items():
        m["hours"] = hours[spk]
    return meta


def speaker_separability(
    manifest: str | Path,
    n_utts: int = 10,
    seed: int = 0,
    distinct_below: float = 0.85,
    thresholds: tuple[float, ...] = (0.85, 0.90),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed ``n_utts`` utterances per speaker (resemblyzer); half build the speaker centroid,
    the other half are identified among all centroids (closed set).

    A speaker counts as *distinct* when its held-back utterances are all identified correctly
    and its centroid's cosine to every other centroid is below ``distinct_below``;
    ``n_below[t]`` counts speakers whose nearest other centroid is below cosine ``t``
    (each of ``thresholds``), also per kind in ``n_below_by_kind``.

    Returns ``{"speakers": [...per-speaker dict with gender, kind, licence, hours...],
    "id_accuracy", "n_distinct", "n_below", "n_below_by_kind", "same_speaker_cos",
    "nearest_other_cos_mean", "eer", "hours", "genders", "kinds", "people", "licences"}``;
    ``licences`` is a list of ``{"licence", "speakers", "hours", "kinds"}``, most hours first.
    """
    from vcconv.eval.speaker import SpeakerEmbedder, centroids, closed_set_identify, cosine

    rows = read_manifest(manifest)
    meta = speaker_metadata(rows)
    by_spk: dict[str, list[Utterance]] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, []).append(r)
    # a draw per speaker: adding a speaker to the corpus does not change the others' utterances
    chosen = {s: random.Random(f"{seed}:{s}").sample(sorted(u, key=lambda x: x.utt_id), min(n_utts, len(u)))
              for s, u in sorted(by_spk.items())}  # fmt: skip
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
                    "distinct": bool(hits) and acc == 1.0 and near_cos < distinct_below, **meta[spk]})  # fmt: skip
    kinds = Counter(p["kind"] for p in per)
    licences: dict[str, dict] = {}
    for p in per:
        lic = licences.setdefault(p["licence"], {"licence": p["licence"], "speakers": 0, "hours": 0.0, "kinds": Counter()})
        lic["speakers"] += 1
        lic["hours"] += p["hours"]
        lic["kinds"][p["kind"]] += 1
    # one person may stand behind two engines' voices ("CMU ARCTIC slt (as RHVoice slt)")
    people = {p["person"].split(" (")[0] or p["speaker"] for p in per if p["kind"] in ("natural", "real")}
    return {
        "speakers": per,
        "id_accuracy": correct / max(1, n_test),
        "n_distinct": sum(p["distinct"] for p in per),
        "n_below": {t: sum(p["nearest_cos"] < t for p in per) for t in thresholds},
        "n_below_by_kind": {t: {k: sum(p["nearest_cos"] < t for p in per if p["kind"] == k) for k in kinds} for t in thresholds},
        "n_speakers": len(per),
        "same_speaker_cos": float(np.mean(same)) if same else float("nan"),
        "eer": equal_error_rate(np.array(genuine), np.array(impostor)),
        "nearest_other_cos_mean": float(np.mean([p["nearest_cos"] for p in per])) if per else float("nan"),
        "hours": sum(p["hours"] for p in per),
        "genders": dict(Counter(p["gender"] for p in per)),
        "kinds": dict(kinds),
        "people": len(people),
        "licences": sorted(({**v, "kinds": dict(v["kinds"])} for v in licences.values()), key=lambda v: -v["hours"]),
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
