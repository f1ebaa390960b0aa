"""Build the real-voice training manifest of issue #14/#15: a synthetic corpus's training voices
plus every real recording whose speaker is not held out by bench/realspeech_split.json.

    python bench/training_manifest.py --corpus data/corpus-v2/manifest.tsv -o data/train-b.tsv
    python bench/training_manifest.py --corpus data/corpus-v2/manifest.tsv -o data/voc-b.tsv --natural-only
    python bench/training_manifest.py -o data/voc-real.tsv   # the real recordings only (no --corpus)

The corpus's own test speakers and the real-speech check's valid/test speakers never enter the
output; 3 % of each training speaker's rows become the validation split.  Paths are absolute,
so the feature cache lives beside the output manifest.  Prints the hours and speakers per source.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from vcconv.data.manifest import read_manifest, write_manifest

ROOT = Path(__file__).resolve().parents[1]


def synthetic_rows(corpus: Path, natural_only: bool) -> list:
    """The train and valid rows of a synthetic corpus manifest (natural engine voices only with ``natural_only``)."""
    voices = {}
    voices_json = corpus.parent / "voices.json"
    if voices_json.exists():
        voices = {v["name"]: v.get("kind", "") for v in json.loads(voices_json.read_text()).get("voices", [])}
    return [r for r in read_manifest(corpus, "train") + read_manifest(corpus, "valid")
            if not natural_only or voices.get(r.speaker, "natural") == "natural"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None,
                    help="synthetic corpus manifest (its train split is used); without it, real recordings only")
    ap.add_argument("--split-file", type=Path, default=ROOT / "bench" / "realspeech_split.json")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--natural-only", action="store_true", help="leave out WORLD warps and formant voices")
    ap.add_argument("--per-voice", type=int, default=0, help="at most this many rows per synthetic voice (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.output.exists():
        raise SystemExit(f"{args.output}: exists (remove it first)")
    split = json.loads(args.split_file.read_text())
    held = {s for names in split["splits"].values() for s in names}
    rng = random.Random(args.seed)
    synth = synthetic_rows(args.corpus, args.natural_only) if args.corpus else []
    if args.per_voice:
        by_voice: dict[str, list] = {}
        for r in synth:
            by_voice.setdefault(r.speaker, []).append(r)
        synth = [r for rows in by_voice.values() for r in rng.sample(rows, min(args.per_voice, len(rows)))]
    real = []
    for m in split["manifests"]:
        real += [r for r in read_manifest(ROOT / m) if r.speaker not in held]
    rows = []
    for source, part in (("synthetic", synth), ("real", real)):
        for r in part:
            r.path = str(Path(r.path).resolve()) if Path(r.path).is_absolute() else str((ROOT / r.path).resolve())
            r.split = "valid" if rng.random() < 0.03 else "train"
            rows.append(r)
        hours = sum(r.duration for r in part) / 3600
        print(f"{source:10s} {len(part):6d} rows {hours:6.2f} h {len({r.speaker for r in part}):4d} speakers")
    write_manifest(rows, args.output)
    counts = Counter(r.split for r in rows)
    print(f"wrote {args.output}: {dict(counts)}, {len({r.speaker for r in rows})} speakers, "
          f"{sum(r.duration for r in rows) / 3600:.2f} h")


if __name__ == "__main__":
    main()
