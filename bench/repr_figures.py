"""One figure per trained representation: its training curve and its utterance embeddings.

For each ``NAME=RUN_DIR`` the figure has two panels: the logged training loss
(``log.csv``) against steps, and a 2-D PCA of the utterance embeddings (``embed(mel)``
for ``repr-*`` models, ``speaker(mel)`` for voice-conversion models) of the manifest's
held-out speakers, one colour per speaker.  Writes ``OUT/repr-<NAME>.png``.

    python bench/repr_figures.py dim=runs/repr/dim cpc=runs/repr/cpc --data data/manifest.tsv --out docs/figures
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch


def _curve(run: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in csv.DictReader((run / "log.csv").open()) if r.get("split") == "train"]
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["total"]) for r in rows])


@torch.no_grad()
def _embeddings(run: Path, manifest: Path, per_speaker: int) -> tuple[np.ndarray, list[str]]:
    from vcconv.checkpoint import load_model_file
    from vcconv.data.features import cache_path
    from vcconv.data.manifest import read_manifest

    model, cfg = load_model_file(run, "cpu")
    model.eval()
    fn = model.embed if hasattr(model, "embed") else model.speaker
    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    by_spk: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r.utt_id):
        if len(by_spk.setdefault(r.speaker, [])) < per_speaker:
            by_spk[r.speaker].append(r)
    cache_dir = manifest.parent / "cache"
    embs, labels = [], []
    for spk, utts in sorted(by_spk.items()):
        for u in utts:
            f = cache_path(cache_dir, cfg.audio, u.utt_id, u.path)
            if f.is_file():
                mel = torch.from_numpy(np.load(f)["mel"].astype(np.float32))
            else:
                from vcconv.data.features import extract

                mel = torch.from_numpy(extract(u.path, cfg.audio)[0].astype(np.float32))
            embs.append(fn(mel[None]).reshape(-1).float().numpy())
            labels.append(spk)
    return np.stack(embs), labels


def figure(name: str, run: Path, manifest: Path, out: Path, per_speaker: int = 30) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, loss = _curve(run)
    emb, labels = _embeddings(run, manifest, per_speaker)
    x = (emb - emb.mean(0)) / (emb.std(0) + 1e-8)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.plot(steps, loss, lw=1)
    a.set_xlabel("step")
    a.set_ylabel("training loss")
    a.set_title(f"{name}: training")
    for spk in sorted(set(labels)):
        m = np.array([lab == spk for lab in labels])
        b.scatter(xy[m, 0], xy[m, 1], s=8, label=spk)
    b.set_title(f"{name}: embeddings (PCA), unseen speakers")
    b.legend(fontsize=6, markerscale=1.5)
    b.set_xticks([])
    b.set_yticks([])
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"repr-{name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("entries", nargs="+", help="NAME=RUN_DIR")
    ap.add_argument("--data", type=Path, default=Path("data/manifest.tsv"))
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--per-speaker", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for e in args.entries:
        name, _, run = e.partition("=")
        print(figure(name, Path(run), args.data, args.out, args.per_speaker))


if __name__ == "__main__":
    main()
