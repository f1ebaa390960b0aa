"""Held-out conversion protocol: every ordered pair of speakers never seen in training x N sentences.

Converts with the given model, an *untrained* model of the same architecture (same
feature normalisation) and the WORLD voice changer (the DSP peer), and scores white
noise, a copy of the source and a copy of the reference too, so every figure has its
baselines beside it.  WER (whisper tiny.en when installed, against the corpus text) is
also compared with the same source sentences resynthesised by the same vocoder without
conversion; ``--pocketsphinx`` adds the old recogniser's WER beside it.  DNSMOS per
system.  Prints one table and writes ``OUT/summary.json``.

    python bench/heldout_protocol.py --model pretrained/adain-base.safetensors \
        --manifest data/manifest.tsv --out runs/heldout
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from vcconv.audio import load_audio, log_mel, normalize_loudness, save_audio
from vcconv.batch import convert_pairs
from vcconv.checkpoint import load_model_file, save_safetensors
from vcconv.data.manifest import read_manifest
from vcconv.eval.asr import asr_name
from vcconv.eval.baselines import copy_reference_pairs, copy_source_pairs, make_noise_pairs, world_peer_pairs
from vcconv.eval.conversion import EvalCache, evaluate_pairs, headline, write_csv
from vcconv.eval.corpus import heldout_pairs
from vcconv.eval.speaker import SpeakerEmbedder, centroids, closed_set_identify
from vcconv.models import build_model
from vcconv.vocoder import load_vocoder


def speaker_refs(manifest: Path, speakers: set[str] | None, used: set[str], n: int = 5) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = {}
    for u in sorted(read_manifest(manifest), key=lambda u: u.utt_id):
        if (speakers is None or u.speaker in speakers) and u.path not in used:
            refs.setdefault(u.speaker, [])
            if len(refs[u.speaker]) < n:
                refs[u.speaker].append(u.path)
    return refs


def genders(manifest: Path) -> dict[str, str]:
    rows = read_manifest(manifest)
    if not rows:
        return {}
    corpus = Path(rows[0].path).parent.parent
    meta = corpus / "voices.json"
    if not meta.exists():
        return {}
    return {v["name"]: v["gender"] for v in json.loads(meta.read_text())["voices"]}


def identify_all(rows: list[dict], cents: dict[str, np.ndarray], emb: SpeakerEmbedder) -> float:
    hits = []
    for r in rows:
        try:
            e = emb.embed(load_audio(r["output"], 16000), 16000)
            hits.append(closed_set_identify(e, cents) == r["target_speaker"])
        except Exception:  # noqa: BLE001 - unusable output counts as a miss
            hits.append(False)
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--manifest", type=Path, default=Path("data/manifest.tsv"))
    ap.add_argument("--out", type=Path, default=Path("runs/heldout"))
    ap.add_argument("--sentences", type=int, default=10)
    ap.add_argument("--vocoder", default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--strength", type=float, default=1.0,
                    help="conversion strength (default 1: the model alone; the CLI default is 1.5)")
    ap.add_argument("--f0", default="predict", help="predict | transfer | auto (default predict: the model alone)")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip the untrained-model and noise baselines (model-comparison runs; the resynthesis "
                         "reference for the WER ratio is kept)")
    ap.add_argument("--pocketsphinx", action="store_true",
                    help="also score WER with pocketsphinx (the recogniser used before whisper) for comparison")
    ap.add_argument("--no-peer", action="store_true", help="skip the WORLD peer and the copy baselines")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out.resolve()  # absolute: pair CSV paths are resolved against the CSV folder
    out.mkdir(parents=True, exist_ok=True)

    # 1. pairs
    pairs = heldout_pairs(args.manifest, out / "model", n_sentences=args.sentences)
    write_csv(pairs, out / "pairs.csv")
    speakers = sorted({p["source_speaker"] for p in pairs})
    print(f"{len(pairs)} pairs over {len(speakers)} unseen speakers: {', '.join(speakers)}", flush=True)

    # 2. trained model
    s = convert_pairs(out / "pairs.csv", model=args.model, vocoder=args.vocoder, workers=args.workers,
                      strength=args.strength, f0=args.f0)
    print(f"converted {s.converted}, skipped {s.skipped}, failed {s.failed}", flush=True)

    # 3. untrained model, same architecture and feature normalisation
    trained, cfg = load_model_file(args.model, "cpu")
    if not args.no_baselines:
        torch.manual_seed(0)
        untrained = build_model(cfg.model_kind, cfg.model)
        untrained.norm.load_state_dict(trained.norm.state_dict())
        save_safetensors(untrained, cfg, out / "untrained.safetensors")
        pairs_u = [{**p, "output": p["output"].replace(str(out / "model"), str(out / "untrained"))} for p in pairs]
        write_csv(pairs_u, out / "pairs_untrained.csv")
        convert_pairs(out / "pairs_untrained.csv", model=out / "untrained.safetensors", vocoder=args.vocoder,
                      workers=args.workers)

    # 4. resynthesis of the sources by the same vocoder (the WER reference)
    voc = load_vocoder(args.vocoder, cfg.audio)
    resynth: dict[str, str] = {}
    for p in pairs:
        if p["source"] in resynth:
            continue
        dst = out / "resynth" / (Path(p["source"]).stem + ".wav")
        if not dst.exists():
            wav = normalize_loudness(load_audio(p["source"], cfg.audio.sample_rate), cfg.audio.target_dbfs)
            with torch.no_grad():
                y = voc(log_mel(wav, cfg.audio)[None])[0].detach()
            save_audio(dst, normalize_loudness(y.numpy(), cfg.audio.target_dbfs), cfg.audio.sample_rate)
        resynth[p["source"]] = str(dst)
    pairs_r = [{**p, "output": resynth[p["source"]]} for p in pairs]

    # 5. scoring
    used = {p[k] for p in pairs for k in ("source", "target", "parallel_target") if p.get(k)}
    refs6 = speaker_refs(args.manifest, set(speakers), used)
    refs_all = speaker_refs(args.manifest, None, used)
    emb = SpeakerEmbedder.get("cpu")
    cents_all = centroids({s: [emb.embed(load_audio(p, 16000), 16000) for p in ps] for s, ps in refs_all.items()})

    results = {}
    cache = EvalCache(emb, asr=True, f0=True, asr_engine=asr_name())
    print(f"ASR: {cache.asr_engine}", flush=True)
    rows, summ = evaluate_pairs(pairs, speaker_refs=refs6, cache=cache)
    write_csv(rows, out / "pairs_eval.csv")
    results["model"] = (rows, summ)
    if not args.no_baselines:
        rows_u, summ_u = evaluate_pairs(pairs_u, speaker_refs=refs6, asr=False, f0=True, cache=cache)
        write_csv(rows_u, out / "pairs_untrained_eval.csv")
        results["untrained"] = (rows_u, summ_u)
        noise_pairs = make_noise_pairs(pairs, out / "noise")
        rows_n, summ_n = evaluate_pairs(noise_pairs, speaker_refs=refs6, asr=False, f0=False, cache=cache)
        results["noise"] = (rows_n, summ_n)
    if not args.no_peer:
        peer = world_peer_pairs(pairs, out / "world")
        results["WORLD peer"] = evaluate_pairs(peer, speaker_refs=refs6, cache=cache)
        write_csv(results["WORLD peer"][0], out / "pairs_world_eval.csv")
        results["copy-source"] = evaluate_pairs(copy_source_pairs(pairs), speaker_refs=refs6, cache=cache)
        results["copy-reference"] = evaluate_pairs(copy_reference_pairs(pairs), speaker_refs=refs6, cache=cache)
    uniq = list({p["source"]: p for p in pairs_r}.values())
    rows_r, summ_r = evaluate_pairs(uniq, speaker_refs=None, asr=True, f0=False, cache=cache)
    results["resynth (no conversion)"] = (rows_r, summ_r)
    pocketsphinx_wer = {}
    if args.pocketsphinx:
        for name in ("model", "WORLD peer", "resynth (no conversion)"):
            if name in results:
                which = uniq if name.startswith("resynth") else [{**p, "output": r["output"]} for p, r in
                                                                 zip(pairs, results[name][0])]
                pocketsphinx_wer[name] = evaluate_pairs(which, speaker_refs=None, f0=False, quality=False,
                                                        asr_engine="pocketsphinx", embedder=emb)[1]["wer_corpus"]

    g = genders(args.manifest)
    table: dict[str, dict] = {}
    for name, (rows_x, summ_x) in results.items():
        m = summ_x["metrics"]
        col = {
            "pairs": summ_x["n"],
            "target_win_utt": m.get("target_win", {}).get("mean", math.nan),
            "margin_utt": m.get("margin", {}).get("mean", math.nan),
            "target_win_centroid": m.get("centroid_win", {}).get("mean", math.nan),
            "id_acc_6_unseen": m.get("id_correct", {}).get("mean", math.nan),
            "wer_corpus": summ_x.get("wer_corpus", math.nan),
            "wer_median": summ_x.get("wer_median", math.nan),
            "wer_corpus_pocketsphinx": pocketsphinx_wer.get(name, math.nan),
            "dnsmos_ovrl": m.get("dnsmos_ovrl", {}).get("mean", math.nan),
            "cer_corpus": summ_x.get("cer_corpus", math.nan),
            "mcd_db": m.get("mcd", {}).get("mean", math.nan),
        }
        if name != "resynth (no conversion)":
            col["id_acc_all_30"] = identify_all(rows_x, cents_all, emb)
        for label, want in (("M->F", ("M", "F")), ("F->M", ("F", "M")), ("same gender", None)):
            sel = [r for r in rows_x if "f0_diff_st" in r and g and
                   ((g.get(r["source_speaker"]), g.get(r["target_speaker"])) == want if want else
                    g.get(r["source_speaker"]) == g.get(r["target_speaker"]))]
            vals = [r["f0_diff_st"] for r in sel if not math.isnan(r["f0_diff_st"])]
            if vals:
                col[f"f0_out_minus_target_st {label}"] = float(np.mean(vals))
                col[f"|f0 diff| st {label}"] = float(np.mean(np.abs(vals)))
                col[f"f0_src_minus_target_st {label}"] = float(np.mean([r["f0_source_diff_st"] for r in sel]))
        table[name] = col
    for name in ("model", "WORLD peer"):
        if name in table:
            table[name]["wer_ratio_vs_resynth"] = table[name]["wer_corpus"] / max(
                1e-9, table["resynth (no conversion)"]["wer_corpus"])
    (out / "summary.json").write_text(json.dumps(table, indent=1))

    keys = sorted({k for c in table.values() for k in c}, key=lambda k: list(table["model"]).index(k) if k in table["model"] else 99)
    width = max(len(k) for k in keys) + 2
    print("".ljust(width) + "".join(n[:22].rjust(24) for n in table))
    for k in keys:
        cells = []
        for c in table.values():
            v = c.get(k)
            cells.append(("-" if v is None or (isinstance(v, float) and math.isnan(v)) else
                          (f"{v:.3f}" if isinstance(v, float) else str(v))).rjust(24))
        print(k.ljust(width) + "".join(cells))
    print("headline: " + headline({n: s for n, (_, s) in results.items() if not n.startswith("resynth")}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
