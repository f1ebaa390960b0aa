"""A self-contained static HTML report of a conversion run.

Input: the pairs CSV (``source,target,output`` + optional ``source_speaker,
target_speaker,text``) and the per-pair CSV written by ``vcconv eval``.
Output: one HTML file with everything inlined (no external URL, no script):

* the metric table (mean ± 95 % CI, :func:`vcconv.eval.conversion.summarize`);
* a 2-D PCA (numpy SVD) of resemblyzer embeddings of sources, references and
  outputs, coloured by speaker (outputs by their *target* speaker), marker by role;
* for up to ``max_pairs`` pairs: the three clips as base64 WAV ``<audio>``
  players and their log-mel spectrograms as a base64 PNG.

Audio is re-encoded as 16 kHz 16-bit mono and cut at ``max_seconds`` to bound the file size.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vcconv.errors import AudioError, DataError, VcconvError

log = logging.getLogger(__name__)

REPORT_SR = 16000
ROLES = ("source", "target", "output")
ROLE_LABEL = {"source": "source", "target": "reference", "output": "converted"}
ROLE_MARKER = {"source": "o", "target": "s", "output": "^"}
MAX_EMBED_FILES = 300

from vcconv.eval.conversion import METRIC_LABELS  # noqa: E402  (one table of metric names)
_HIDDEN = {"logf0_output", "logf0_target", "logf0_source"}
_PAIR_COLUMNS = (("cos_to_target", "cos→target"), ("cos_to_source", "cos→source"), ("id_pred", "identified as"),
                 ("wer", "WER"), ("dnsmos_ovrl", "DNSMOS"), ("f0_diff_st", "ΔF0 st"))  # fmt: skip


# --------------------------------------------------------------------------- inputs


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def _header(path: Path) -> set[str]:
    with open(path, newline="") as f:
        return {h.strip() for h in (next(csv.reader(f), None) or [])}


def find_run_files(run_dir: str | Path) -> tuple[Path, Path]:
    """``(pairs_csv, eval_csv)`` in a run folder.

    The eval CSV is ``*_eval.csv`` (or any CSV with a ``cos_to_target`` column);
    the pairs CSV is the same name without ``_eval`` (or any CSV with
    ``source,target,output`` and no scores).  When no separate pairs CSV is
    there, the eval CSV (which repeats those columns) stands in for it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a folder (give --pairs and --eval instead)")
    csvs = sorted(run_dir.glob("*.csv"))
    evals = [p for p in csvs if p.stem.endswith("_eval")] or [p for p in csvs if "cos_to_target" in _header(p)]
    if not evals:
        raise DataError(f"{run_dir}: no per-pair eval CSV (*_eval.csv, written by 'vcconv eval')")
    if len(evals) > 1:
        names = ", ".join(p.name for p in evals)
        raise DataError(f"{run_dir}: several eval CSVs ({names}); choose one with --eval")
    eval_csv = evals[0]
    pairs_csv = eval_csv.with_name(eval_csv.name[: -len("_eval.csv")] + ".csv")
    if not pairs_csv.is_file():
        others = [p for p in csvs if p != eval_csv and {"source", "target", "output"} <= _header(p)
                  and "cos_to_target" not in _header(p)]  # fmt: skip
        pairs_csv = others[0] if len(others) == 1 else eval_csv
    return pairs_csv, eval_csv


def _resolve(path: str, bases: Sequence[Path]) -> str:
    """``path`` as given if it exists, else the first base folder that holds it."""
    if not path:
        return ""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return str(p)
    for base in bases:
        if (base / p).exists():
            return str(base / p)
    return str(p)


def _typed(row: Mapping[str, str]) -> dict:
    """CSV strings -> floats where numeric; empty cells dropped (the inverse of ``write_csv``)."""
    from vcconv.eval.conversion import TEXT_COLUMNS

    out: dict = {}
    for key, value in row.items():
        if value == "":
            continue
        if key in TEXT_COLUMNS:
            out[key] = value
            continue
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def load_run(pairs_csv: str | Path, eval_csv: str | Path) -> list[dict]:
    """Per-pair rows: the eval CSV's scores (numbers as floats), plus ``text`` from the pairs CSV.

    Audio paths are resolved against the working folder, then the eval CSV's
    and the pairs CSV's folders.
    """
    pairs_csv, eval_csv = Path(pairs_csv), Path(eval_csv)
    for p in (pairs_csv, eval_csv):
        if not p.is_file():
            raise DataError(f"{p}: CSV not found")
    rows = [_typed(r) for r in _read_csv(eval_csv)]
    if not rows:
        raise DataError(f"{eval_csv}: no rows")
    missing = {"source", "target", "output"} - set(rows[0])
    if missing:
        raise DataError(f"{eval_csv}: missing column(s) {', '.join(sorted(missing))}")
    pairs = _read_csv(pairs_csv) if pairs_csv != eval_csv else []
    if pairs and len(pairs) != len(rows):
        log.warning("%s has %d rows, %s has %d: transcripts not joined", pairs_csv, len(pairs), eval_csv, len(rows))
        pairs = []
    bases = [eval_csv.parent, pairs_csv.parent]
    for k, row in enumerate(rows):
        if pairs and pairs[k].get("text") and "text" not in row:
            row["text"] = pairs[k]["text"]
        for role in ROLES:
            row[role] = _resolve(str(row.get(role, "")), bases)
    return rows


# --------------------------------------------------------------------------- pieces


def _wav_data_uri(path: str, max_seconds: float) -> str:
    import soundfile as sf

    from vcconv.audio import load_audio

    wav = load_audio(path, REPORT_SR)[: int(max_seconds * REPORT_SR)]
    buf = io.BytesIO()
    sf.write(buf, wav, REPORT_SR, subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png_data_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no matplotlib URL in the file
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def spectrogram_png(paths: Sequence[tuple[str, str]], max_seconds: float = 10.0) -> str:
    """Log-mel spectrograms side by side, one panel per ``(title, path)``; a PNG data URI."""
    import torch

    from vcconv.audio import AudioConfig, load_audio, log_mel

    plt = _pyplot()
    cfg = AudioConfig()
    fig, axes = plt.subplots(1, len(paths), figsize=(3.6 * len(paths), 2.2), dpi=80, squeeze=False)
    for ax, (title, path) in zip(axes[0], paths):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("s", fontsize=8)
        ax.tick_params(labelsize=7)
        try:
            wav = load_audio(path, cfg.sample_rate)[: int(max_seconds * cfg.sample_rate)]
        except AudioError as err:
            ax.text(0.5, 0.5, err.problem, ha="center", va="center", fontsize=8, wrap=True)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        with torch.no_grad():
            mel = log_mel(wav, cfg).numpy()
        secs = mel.shape[1] * cfg.hop_length / cfg.sample_rate
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=max(float(mel.max()), -5.0),
                  extent=(0, secs, 0, cfg.n_mels))  # fmt: skip
        ax.set_ylabel("mel bin", fontsize=8)
    fig.tight_layout()
    return _png_data_uri(fig)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` -> ``(N, 2)`` projection on the first two principal axes, and their explained-variance ratios."""
    x = np.asarray(x, np.float64)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    proj = centred @ vt[:k].T
    if k < 2:
        proj = np.pad(proj, ((0, 0), (0, 2 - k)))
    var = s**2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return proj, np.pad(ratio, (0, 2 - len(ratio)))


def embedding_points(rows: Sequence[Mapping], max_files: int = MAX_EMBED_FILES) -> list[tuple[str, str, str]]:
    """Unique ``(path, role, speaker)`` to embed: outputs count as their target speaker."""
    seen: set[tuple[str, str]] = set()
    points = []
    for row in rows:
        for role in ROLES:
            path = str(row.get(role, ""))
            spk_key = "source_speaker" if role == "source" else "target_speaker"
            speaker = str(row.get(spk_key) or Path(path).parent.name or "?")
            if path and (path, role) not in seen:
                seen.add((path, role))
                points.append((path, role, speaker))
    return points[:max_files]


def embedding_png(rows: Sequence[Mapping], *, device: str | None = None, embedder=None) -> str:
    """PCA of resemblyzer embeddings of every source, reference and output; a PNG data URI."""
    from vcconv.eval.conversion import EvalCache
    from vcconv.eval.speaker import SpeakerEmbedder

    embedder = embedder or SpeakerEmbedder.get(device)
    embs, kept = [], []
    for path, role, speaker in embedding_points(rows):
        try:
            wav = EvalCache.load(path)
        except AudioError as err:
            log.warning("not in the embedding plot: %s", err)
            continue
        embs.append(embedder.embed(wav, REPORT_SR))
        kept.append((role, speaker))
    if len(embs) < 2:
        raise DataError("fewer than 2 usable files for the embedding plot")
    xy, ratio = pca_2d(np.stack(embs))

    plt = _pyplot()
    speakers = sorted({s for _, s in kept})
    cmap = plt.get_cmap("tab10" if len(speakers) <= 10 else "tab20")
    colour = {s: cmap(i % cmap.N) for i, s in enumerate(speakers)}
    fig, ax = plt.subplots(figsize=(8.0, 5.5), dpi=96)
    for role in ROLES:
        for spk in speakers:
            idx = [i for i, (r, s) in enumerate(kept) if r == role and s == spk]
            if idx:
                hollow = role == "source"
                ax.scatter(xy[idx, 0], xy[idx, 1], marker=ROLE_MARKER[role], s=55 if role == "output" else 40,
                           facecolors="none" if hollow else colour[spk], edgecolors=colour[spk], linewidths=1.3,
                           alpha=0.9)  # fmt: skip
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=colour[s], label=s) for s in speakers]
    handles += [Line2D([], [], ls="", marker=ROLE_MARKER[r], color="0.3", mfc="none" if r == "source" else "0.3",
                       label=ROLE_LABEL[r] + (" (as its target)" if r == "output" else "")) for r in ROLES]  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.0f} %)")
    ax.set_title("speaker embeddings (resemblyzer), PCA", fontsize=11)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_data_uri(fig)


def metric_rows(summary: Mapping) -> list[tuple[str, str, str, int]]:
    """``(column, label, "mean ± ci", n)`` for every metric of a :func:`summarize` result, known ones first."""
    metrics = summary["metrics"]
    known = {c for c, _, _ in METRIC_LABELS}
    order = [(c, label, d) for c, label, d in METRIC_LABELS if c in metrics]
    order += [(c, c, 3) for c in metrics if c not in known and c not in _HIDDEN]
    out = []
    for col, label, digits in order:
        m = metrics[col]
        if m["n"] == 0:
            continue
        text = f"{m['mean']:.{digits}f}"
        if math.isfinite(m["ci95"]):
            text += f" ± {m['ci95']:.{digits}f}"
        out.append((col, label, text, m["n"]))
    return out


# --------------------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#1d1d1f;background:#fafafa;padding:0 16px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666;font-size:.9em}
table.metrics{border-collapse:collapse;font-size:.92em}
table.metrics td,table.metrics th{padding:3px 12px;border-bottom:1px solid #e4e4e4;text-align:left}
table.metrics td.num{text-align:right;font-variant-numeric:tabular-nums}
.pair{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:10px 14px;margin:12px 0}
.pair h3{font-size:1em;margin:0 0 4px 0}.pair .text{color:#444;font-style:italic;font-size:.9em;margin-bottom:6px}
.clips{display:flex;gap:14px;flex-wrap:wrap}.clip{flex:1;min-width:250px}.clip .lbl{font-size:.85em;color:#555}
.clip audio{width:100%}.spec{width:100%;max-width:1100px;margin-top:6px}
.scores{font-size:.85em;color:#333}.scores span{margin-right:14px}.err{color:#b00020}
img.plot{max-width:100%}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def _pair_html(k: int, row: Mapping, max_seconds: float) -> str:
    src_spk, tgt_spk = row.get("source_speaker", ""), row.get("target_speaker", "")
    head = f"{k + 1}. {_e(src_spk or Path(row['source']).stem)} → {_e(tgt_spk or Path(row['target']).stem)}"
    parts = [f'<div class="pair"><h3>{head}</h3>']
    text = row.get("text") or row.get("ref_text")
    if text:
        parts.append(f'<div class="text">“{_e(text)}”</div>')
    scores = [f"<span>{label}: <b>{_e(_fmt(row[c]))}</b></span>" for c, label in _PAIR_COLUMNS if c in row]
    if row.get("hyp_text"):
        scores.append(f"<span>heard: “{_e(row['hyp_text'])}”</span>")
    if scores:
        parts.append(f'<div class="scores">{"".join(scores)}</div>')
    parts.append('<div class="clips">')
    for role in ROLES:
        path = str(row[role])
        try:
            player = f'<audio controls preload="metadata" src="{_wav_data_uri(path, max_seconds)}"></audio>'
        except AudioError as err:
            player = f'<div class="err">{_e(err.problem)}</div>'
        parts.append(f'<div class="clip"><div class="lbl">{ROLE_LABEL[role]}: {_e(Path(path).name)}</div>{player}</div>')
    parts.append("</div>")
    png = spectrogram_png([(ROLE_LABEL[r], str(row[r])) for r in ROLES], max_seconds)
    parts.append(f'<img class="spec" alt="log-mel spectrograms" src="{png}">')
    if row.get("error"):
        parts.append(f'<div class="err">output: {_e(row["error"])}</div>')
    parts.append("</div>")
    return "".join(parts)


def build_report(
    pairs_csv: str | Path,
    eval_csv: str | Path,
    out_html: str | Path,
    *,
    max_pairs: int = 12,
    embeddings: bool = True,
    device: str | None = None,
    title: str | None = None,
    max_seconds: float = 20.0,
    embedder=None,
) -> Path:
    """Write the HTML report of one run and return its path (overwrites: refusing is the caller's job).

    Args:
        pairs_csv / eval_csv: the pairs CSV and ``vcconv eval``'s per-pair CSV
            (the same file may be given twice).
        max_pairs: pairs shown with players and spectrograms (the first ones).
        embeddings: draw the speaker-embedding PCA (needs resemblyzer; when it is
            missing the page says so instead of failing).
        device: device of the speaker encoder.
        max_seconds: clips are cut to this length in the page.
        embedder: anything with ``embed(wav, sr) -> (D,)`` instead of resemblyzer.
    """
    from vcconv.eval.conversion import summarize

    rows = load_run(pairs_csv, eval_csv)
    summary = summarize(rows)
    out_html = Path(out_html)
    title = title or f"Conversion report: {Path(eval_csv).parent.name or Path(eval_csv).stem}"

    body = [f"<h1>{_e(title)}</h1>"]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body.append(f'<div class="meta">{summary["n"]} pairs from {_e(Path(eval_csv).name)}'
                f' ({_e(Path(pairs_csv).name)}); {summary["n_failed"]} unusable output(s); generated {stamp}</div>')  # fmt: skip

    body.append("<h2>Metrics (mean ± 95 % CI over pairs)</h2>")
    table = ['<table class="metrics"><tr><th>metric</th><th>value</th><th>n</th></tr>']
    for _, label, text, n in metric_rows(summary):
        table.append(f'<tr><td>{_e(label)}</td><td class="num">{_e(text)}</td><td class="num">{n}</td></tr>')
    for key, label in (("wer_median", "WER (median of utterances)"), ("wer_corpus", "WER (corpus)"), ("cer_corpus", "CER (corpus)"),
                       ("wer_source_corpus", "WER of the source (corpus)")):  # fmt: skip
        if key in summary:
            table.append(f'<tr><td>{label}</td><td class="num">{_fmt(summary[key])}</td><td></td></tr>')
    table.append("</table>")
    body.append("".join(table))

    if embeddings:
        body.append("<h2>Speaker embeddings</h2>")
        try:
            png = embedding_png(rows, device=device, embedder=embedder)
            body.append(f'<img class="plot" alt="PCA of speaker embeddings" src="{png}">')
            body.append('<div class="meta">Outputs are coloured by their target speaker: a working conversion '
                        'puts each triangle among the squares of its colour.</div>')  # fmt: skip
        except VcconvError as err:
            log.warning("embedding plot left out: %s", err)
            body.append(f'<div class="meta">embedding plot left out: {_e(err)}</div>')

    shown = rows[: max(0, max_pairs)]
    body.append(f"<h2>Listen ({len(shown)} of {len(rows)} pairs)</h2>")
    body.extend(_pair_html(k, row, max_seconds) for k, row in enumerate(shown))

    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(f".{out_html.name}.part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out_html)
    return out_html
