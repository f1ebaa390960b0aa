"""Corpus manifests: one TSV row per utterance, with seeded speaker-disjoint splits.

Columns: ``utt_id speaker path duration text phones split``.

* ``path`` / ``phones`` are absolute paths (``phones`` empty when there is no alignment);
* ``split`` is ``train`` (training speakers), ``valid`` (held-out utterances of
  training speakers) or ``test`` (speakers never used in training).
"""

from __future__ import annotations

import csv
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from vcconv.errors import DataError

COLUMNS = ("utt_id", "speaker", "path", "duration", "text", "phones", "split")


@dataclass
class Utterance:
    utt_id: str
    speaker: str
    path: str
    duration: float = 0.0
    text: str = ""
    phones: str = ""
    split: str = "train"


def write_manifest(rows: list[Utterance], path: str | Path) -> Path:
    """Write rows as TSV (atomic: temp file then rename)."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([getattr(r, c) for c in COLUMNS])
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path, split: str | tuple[str, ...] | None = None) -> list[Utterance]:
    """Read a manifest; keep only ``split`` (a name or tuple of names) when given."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found (build one with 'vcconv data prepare')")
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if reader.fieldnames is None or not {"utt_id", "speaker", "path"} <= set(reader.fieldnames):
            raise DataError(f"{path}: not a vcconv manifest (needs columns utt_id, speaker, path)")
        names = {f.name for f in fields(Utterance)}
        rows = []
        for d in reader:
            d = {k: v for k, v in d.items() if k in names}
            d["duration"] = float(d.get("duration") or 0.0)
            rows.append(Utterance(**{k: (v if v is not None else "") for k, v in d.items()}))
    if split is not None:
        wanted = (split,) if isinstance(split, str) else tuple(split)
        rows = [r for r in rows if r.split in wanted]
    return rows


def assign_splits(
    rows: list[Utterance],
    n_test_speakers: int = 6,
    valid_fraction: float = 0.03,
    seed: int = 0,
    test_speakers: list[str] | None = None,
) -> list[Utterance]:
    """Seeded split: whole speakers to ``test``; a fraction of each remaining speaker's utterances to ``valid``.

    ``test_speakers`` overrides the random choice.  With fewer than 2 speakers no
    speaker is held out.
    """
    speakers = sorted({r.speaker for r in rows})
    rng = random.Random(seed)
    if test_speakers is None:
        n = min(n_test_speakers, max(0, len(speakers) - 1))
        test_speakers = sorted(rng.sample(speakers, n)) if n > 0 else []
    else:
        missing = set(test_speakers) - set(speakers)
        if missing:
            raise DataError(f"held-out speaker(s) not in corpus: {', '.join(sorted(missing))}")
    test_set = set(test_speakers)
    by_speaker: dict[str, list[Utterance]] = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, []).append(r)
    for spk, utts in by_speaker.items():
        utts.sort(key=lambda u: u.utt_id)
        if spk in test_set:
            for u in utts:
                u.split = "test"
            continue
        order = list(range(len(utts)))
        rng.shuffle(order)
        n_valid = int(round(valid_fraction * len(utts))) if len(utts) >= 4 else 0
        valid_idx = set(order[:n_valid])
        for i, u in enumerate(utts):
            u.split = "valid" if i in valid_idx else "train"
    return rows


def as_dicts(rows: list[Utterance]) -> list[dict]:
    return [asdict(r) for r in rows]
