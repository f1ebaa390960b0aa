"""Evaluate converted utterances: speaker similarity, closed-set identification, WER/CER, DNSMOS, MCD, F0.

One *pair* is one conversion: ``source`` (content utterance), ``target`` (the
reference utterance of the target voice given to the model) and ``output``
(what the model produced), plus optional ``source_speaker``,
``target_speaker``, ``text`` (transcript of the source) and
``parallel_target`` (the target speaker saying the source sentence).

Read the figures against baselines (:mod:`vcconv.eval.baselines`): a
meaningless output sits at a similar cosine to every voice, so
"closer to the target than to the source" on single utterances is won by
white noise most of the time.  Closed-set identification among all candidate
speakers (source included) together with WER is the figure to trust.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from vcconv.errors import AudioError

log = logging.getLogger(__name__)

EVAL_SR = 16000

# per-pair integer counts: summed for corpus rates, not averaged
COUNT_COLUMNS = ("word_errors", "ref_words", "char_errors", "ref_chars", "src_word_errors")
TEXT_MODES = ("known", "source")  # WER reference: the known text if any, or always the source's own transcript
TEXT_COLUMNS = (
    "source", "target", "output", "source_speaker", "target_speaker", "parallel_target",
    "id_pred", "ref_source", "ref_text", "hyp_text", "error", "channel",
)  # fmt: skip


class EvalCache:
    """Per-path caches so that a target or source used by many pairs is analysed once.

    Pass one to several :func:`evaluate_pairs` calls over the same pairs (the model, the
    peer, the copy baselines) and every source transcript, DNSMOS and embedding is computed
    once for all of them.  Entries are keyed by path, size and modification time, so a
    rewritten file is analysed again; :meth:`save` / :meth:`restore` keep them across runs
    (a rerun of a protocol scores only what changed)."""

    def __init__(self, embedder, *, asr: bool, f0: bool, asr_engine: str | None = None):
        self.embedder = embedder
        self.asr = asr
        self.asr_engine = asr_engine
        self.f0 = f0
        self._emb: dict[str, np.ndarray] = {}
        self._text: dict[str, str] = {}
        self._logf0: dict[str, float] = {}
        self._mos: dict[str, dict[str, float]] = {}

    @staticmethod
    def _key(path: str | Path) -> str:
        """``path|size|mtime_ns``: a rewritten file never hits an old entry."""
        try:
            st = os.stat(path)
            return f"{path}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            return f"{path}|missing"

    def save(self, path: str | Path) -> Path:
        """Write every cached figure as JSON (atomic); the ASR engine is recorded with it."""
        import json

        path = Path(path)
        data = {"asr_engine": self.asr_engine, "emb": {k: v.tolist() for k, v in self._emb.items()},
                "text": self._text, "logf0": self._logf0, "mos": self._mos}
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        return path

    def restore(self, path: str | Path) -> int:
        """Load a :meth:`save` file made with the same ASR engine (else only its non-ASR figures);
        returns the number of entries loaded (0 when there is no file)."""
        import json

        from vcconv.eval.asr import is_looping

        path = Path(path)
        if not path.is_file():
            return 0
        data = json.loads(path.read_text())
        self._emb.update({k: np.asarray(v, dtype=np.float32) for k, v in data["emb"].items()})
        if data.get("asr_engine") == self.asr_engine:
            # a looping text comes from before the beam re-decode (asr.is_looping): redo it
            self._text.update({k: t for k, t in data["text"].items() if not is_looping(t)})
        self._logf0.update(data["logf0"])
        self._mos.update(data["mos"])
        return sum(len(data[k]) for k in ("emb", "text", "logf0", "mos"))

    @staticmethod
    def load(path: str | Path) -> np.ndarray:
        """``(N,)`` float32 at 16 kHz, leading/trailing silence trimmed."""
        from vcconv.audio import load_audio, trim_silence

        wav = load_audio(path, EVAL_SR)
        trimmed = trim_silence(wav, sample_rate=EVAL_SR)
        return trimmed if trimmed.size >= EVAL_SR // 10 else wav

    def embedding(self, path: str, wav: np.ndarray | None = None) -> np.ndarray:
        key = self._key(path)
        if key not in self._emb:
            self._emb[key] = self.embedder.embed(self.load(path) if wav is None else wav, EVAL_SR)
        return self._emb[key]

    def transcript(self, path: str, wav: np.ndarray | None = None) -> str:
        from vcconv.eval.asr import transcribe

        key = self._key(path)
        if key not in self._text:
            self._text[key] = transcribe(self.load(path) if wav is None else wav, EVAL_SR, self.asr_engine)
        return self._text[key]

    def dnsmos(self, path: str, wav: np.ndarray | None = None) -> dict[str, float]:
        """DNSMOS of the whole file (not trimmed: background noise is part of what it judges)."""
        from vcconv.audio import load_audio
        from vcconv.eval.quality import dnsmos

        key = self._key(path)
        if key not in self._mos:
            self._mos[key] = dnsmos(load_audio(path, EVAL_SR) if wav is None else wav, EVAL_SR)
        return self._mos[key]

    def log_f0(self, path: str, wav: np.ndarray | None = None) -> float:
        from vcconv.eval.signal import log_f0_stats

        key = self._key(path)
        if key not in self._logf0:
            self._logf0[key] = log_f0_stats(self.load(path) if wav is None else wav, EVAL_SR)[0]
        return self._logf0[key]


def _opt(pair: Mapping, key: str) -> str:
    value = pair.get(key)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def evaluate_pairs(
    pairs: Sequence[Mapping],
    *,
    speaker_refs: Mapping[str, Sequence[str | Path]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    device: str | None = None,
    asr: bool = True,
    f0: bool = True,
    embedder=None,
    quality: bool = True,
    text_mode: str = "known",
    asr_engine: str | None = None,
    cache: "EvalCache | None" = None,
) -> tuple[list[dict], dict]:
    """Score every conversion in ``pairs``.

    Args:
        pairs: dicts with ``source``, ``target``, ``output`` (paths) and optional
            ``source_speaker``, ``target_speaker``, ``text``, ``parallel_target``.
        speaker_refs: a few reference utterances per candidate speaker (source
            speakers included).  Enables closed-set identification among *all*
            candidates and centroid-vs-centroid similarity.  A pair speaker
            missing from it is represented by that pair's own source / target file.
        progress: ``callback(done, total)`` after each pair.
        device: device of the speaker encoder (``None``: cuda if available).
        asr: transcribe outputs (WER / CER; whisper tiny.en, else pocketsphinx: see
            :func:`vcconv.eval.asr.asr_name`); off -> those columns are absent.
        f0: compute pYIN log-F0 statistics.
        quality: DNSMOS (overall, signal, background) of every output and source.
        text_mode: ``"known"``: WER against the pair's ``text`` when given, else the
            source's own transcript; ``"source"``: always the source's own transcript
            (what the recogniser hears in the unconverted source is the reference).
        asr_engine: ``"whisper"`` / ``"pocketsphinx"``; ``None``: :func:`~vcconv.eval.asr.asr_name`.
        cache: an :class:`EvalCache` shared with other calls (used when its embedder and ASR match).
        embedder: a :class:`vcconv.eval.speaker.SpeakerEmbedder` (or anything with
            ``embed(wav, sr) -> (256,)``); default the shared one for ``device``.

    Returns:
        ``rows`` (one dict per pair, see the column list in docs) and ``summary``
        (:func:`summarize`).  An output that cannot be loaded (silent, empty,
        missing) gives a row with ``error`` set, NaN similarities, wins counted
        as losses and all reference words counted as deleted.
    """
    from vcconv.eval.signal import f0_track, log_f0_stats_from_track, mcd_from_cepstra, mel_cepstrum
    from vcconv.eval.signal import semitones_from_log, vuv_error
    from vcconv.eval.speaker import SpeakerEmbedder, centroids, closed_set_identify, cosine

    if embedder is None:
        embedder = cache.embedder if cache is not None else SpeakerEmbedder.get(device)
    if text_mode not in TEXT_MODES:
        raise ValueError(f"text_mode must be one of {TEXT_MODES}, not {text_mode!r}")
    if asr:
        from vcconv.eval.asr import asr_name

        asr_engine = asr_name(asr_engine)
    if cache is None or cache.asr_engine != asr_engine or cache.embedder is not embedder:
        cache = EvalCache(embedder, asr=asr, f0=f0, asr_engine=asr_engine)
    feats = cache

    # candidate speakers for closed-set identification
    cents: dict[str, np.ndarray] = {}
    if speaker_refs is not None:
        refs = {spk: [str(p) for p in paths] for spk, paths in speaker_refs.items() if paths}
        for pair in pairs:
            for role, spk_key in (("source", "source_speaker"), ("target", "target_speaker")):
                spk = _opt(pair, spk_key)
                if spk and spk not in refs:
                    refs[spk] = [str(pair[role])]
        cents = centroids({spk: [feats.embedding(p) for p in paths] for spk, paths in refs.items()})

    total = len(pairs)
    if progress:
        progress(0, total)
    rows = []
    for k, pair in enumerate(pairs):
        for key in ("source", "target", "output"):
            if not _opt(pair, key):
                raise AudioError(f"pair {k + 1}", f"no '{key}' path")
        src, tgt, out = str(pair["source"]), str(pair["target"]), str(pair["output"])
        src_spk, tgt_spk = _opt(pair, "source_speaker"), _opt(pair, "target_speaker")
        text, parallel = _opt(pair, "text"), _opt(pair, "parallel_target")
        if text_mode == "source":
            text = ""
        row: dict = {"source": src, "target": tgt, "output": out, "source_speaker": src_spk, "target_speaker": tgt_spk}
        if _opt(pair, "channel"):
            row["channel"] = _opt(pair, "channel")  # e.g. clean / telephone: lets a summary be split by it

        try:
            out_wav = feats.load(out)
            error = ""
        except AudioError as err:
            out_wav, error = None, str(err)
            log.warning("output not usable: %s", err)

        # speaker similarity, single utterance vs single utterance
        e_src, e_tgt = feats.embedding(src), feats.embedding(tgt)
        e_out = feats.embedding(out, out_wav) if out_wav is not None else None
        row["cos_to_target"] = cosine(e_out, e_tgt) if e_out is not None else math.nan
        row["cos_to_source"] = cosine(e_out, e_src) if e_out is not None else math.nan
        row["margin"] = row["cos_to_target"] - row["cos_to_source"]
        row["target_win"] = bool(row["margin"] > 0)  # NaN > 0 is False: a failed output loses
        row["cos_source_target"] = cosine(e_src, e_tgt)  # how far apart the two voices were to begin with

        # closed-set identification and centroid vs centroid
        if cents:
            row["id_pred"] = closed_set_identify(e_out, cents) if e_out is not None else ""
            row["id_correct"] = (row["id_pred"] == tgt_spk) if tgt_spk else math.nan
            ct = cosine(e_out, cents[tgt_spk]) if (e_out is not None and tgt_spk in cents) else math.nan
            cs = cosine(e_out, cents[src_spk]) if (e_out is not None and src_spk in cents) else math.nan
            row["cos_to_target_centroid"], row["cos_to_source_centroid"] = ct, cs
            row["centroid_margin"] = ct - cs
            row["centroid_win"] = bool(ct - cs > 0) if (tgt_spk in cents and src_spk in cents) else math.nan

        # intelligibility
        if asr:
            from vcconv.eval.asr import rate, wer

            ref = text or feats.transcript(src)
            hyp = feats.transcript(out, out_wav) if out_wav is not None else ""
            row["ref_source"] = "text" if text else "asr"
            row.update(text_scores(ref, hyp))
            if text:  # the recogniser's own floor on the unconverted source
                row["src_word_errors"] = wer(text, feats.transcript(src))[0]
                row["wer_source"] = rate(row["src_word_errors"], row["ref_words"])

        # naturalness (no reference needed)
        if quality:
            mos_out = feats.dnsmos(out, None) if out_wav is not None else dict.fromkeys(("ovrl", "sig", "bak"), math.nan)
            for key, value in mos_out.items():
                row[f"dnsmos_{key}"] = value
            row["dnsmos_source_ovrl"] = feats.dnsmos(src)["ovrl"]

        # spectral distance to the target speaker saying the same sentence
        track_out = None
        if parallel:
            row["parallel_target"] = parallel
            if out_wav is not None:
                par_wav = feats.load(parallel)
                row["mcd"], path = mcd_from_cepstra(mel_cepstrum(out_wav, EVAL_SR), mel_cepstrum(par_wav, EVAL_SR))
                if f0:
                    track_out = f0_track(out_wav, EVAL_SR)
                    row["vuv_error"] = vuv_error(track_out[1], f0_track(par_wav, EVAL_SR)[1], path)
            else:
                row["mcd"] = math.nan
                if f0:
                    row["vuv_error"] = math.nan

        # pitch
        if f0:
            if out_wav is not None:
                track_out = track_out or f0_track(out_wav, EVAL_SR)
                lf_out = log_f0_stats_from_track(*track_out)[0]
            else:
                lf_out = math.nan
            lf_tgt, lf_src = feats.log_f0(tgt), feats.log_f0(src)
            row["logf0_output"], row["logf0_target"], row["logf0_source"] = lf_out, lf_tgt, lf_src
            row["f0_diff_st"] = semitones_from_log(lf_out, lf_tgt)  # NaN propagates
            row["f0_abs_diff_st"] = abs(row["f0_diff_st"])
            row["f0_source_diff_st"] = semitones_from_log(lf_src, lf_tgt)  # what a copy of the source would score

        row["error"] = error
        rows.append(row)
        if progress:
            progress(k + 1, total)
    summary = summarize(rows)
    if asr:
        summary["asr"] = asr_engine
    return rows, summary


# --------------------------------------------------------------------------- summary


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the Student-t confidence interval, and count of finite values.

    Half-width is ``t_{0.975, n-1} * std(ddof=1) / sqrt(n)`` (~``1.96 std / sqrt(n)``
    for large ``n``); NaN with fewer than 2 values.
    """
    x = np.asarray([float(v) for v in values if v is not None and v != ""], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, n
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def text_scores(ref: str, hyp: str) -> dict:
    """A row's word and character columns: ``ref_text``, ``hyp_text``, ``word_errors``,
    ``ref_words``, ``char_errors``, ``ref_chars``, ``wer``, ``cer``."""
    from vcconv.eval.asr import cer, rate, wer

    (we, rw), (ce, rc) = wer(ref, hyp), cer(ref, hyp)
    return {"ref_text": ref, "hyp_text": hyp, "word_errors": we, "ref_words": rw, "char_errors": ce,
            "ref_chars": rc, "wer": rate(we, rw), "cer": rate(ce, rc)}


def _numeric(value) -> bool:
    return isinstance(value, (bool, int, float, np.integer, np.floating))


def summarize(rows: Sequence[Mapping]) -> dict:
    """Mean and 95 % CI of every numeric column, plus the headline fractions and corpus rates.

    Returns a dict with ``n``, ``n_failed``, ``metrics`` (``{column: {"mean", "ci95", "n"}}``;
    booleans are averaged as fractions), ``target_win``, ``centroid_win``, ``id_accuracy``
    and the corpus rates ``wer_corpus``, ``cer_corpus``, ``wer_source_corpus``
    (summed errors over summed reference lengths), absent when not computed.
    """
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and key not in COUNT_COLUMNS and key not in TEXT_COLUMNS and _numeric(value):
                columns.append(key)
    metrics = {}
    for col in columns:
        mean, half, n = mean_ci([r[col] for r in rows if col in r and _numeric(r[col])])
        metrics[col] = {"mean": mean, "ci95": half, "n": n}
    summary: dict = {"n": len(rows), "n_failed": sum(1 for r in rows if r.get("error")), "metrics": metrics}
    wers = [float(r["wer"]) for r in rows if _numeric(r.get("wer")) and math.isfinite(r["wer"])]
    if wers:
        summary["wer_median"] = float(np.median(wers))
    for name, col in (("target_win", "target_win"), ("centroid_win", "centroid_win"), ("id_accuracy", "id_correct")):
        if col in metrics:
            summary[name] = metrics[col]["mean"]
    for name, err, length in (
        ("wer_corpus", "word_errors", "ref_words"),
        ("cer_corpus", "char_errors", "ref_chars"),
        ("wer_source_corpus", "src_word_errors", "ref_words"),
    ):
        used = [r for r in rows if err in r and length in r]
        if used:
            total = sum(int(r[length]) for r in used)
            summary[name] = sum(int(r[err]) for r in used) / total if total else math.nan
    return summary


# --------------------------------------------------------------------------- output


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(value) else f"{float(value):.6g}"
    return str(value)


def write_csv(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Write per-pair rows as CSV (columns: union of keys in first-seen order; NaN -> empty).

    Atomic (temporary file then rename); overwrites ``path``: refusing is the caller's job.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([_cell(row.get(c)) for c in columns])
    os.replace(tmp, path)
    return path


def read_pairs_csv(path: str | Path) -> list[dict]:
    """Read a pairs CSV (columns ``source,target,output`` + optional ``source_speaker,
    target_speaker,text,parallel_target``).  Relative paths are taken from the CSV's folder."""
    from vcconv.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pairs CSV not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"source", "target", "output"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))} (need source,target,output)")
        pairs = []
        for d in reader:
            pair = {k.strip(): (v or "").strip() for k, v in d.items() if k}
            for key in ("source", "target", "output", "parallel_target"):
                if pair.get(key) and not Path(pair[key]).is_absolute():
                    pair[key] = str(path.parent / pair[key])
            pairs.append(pair)
    if not pairs:
        raise DataError(f"{path}: no pairs")
    return pairs


# (column, label, digits) in the order shown; other numeric columns follow with their own names
METRIC_LABELS = (
    ("cos_to_target", "cos(output, target utt)", 3),
    ("cos_to_source", "cos(output, source utt)", 3),
    ("margin", "margin (target - source)", 3),
    ("target_win", "target win (utt vs utt)", 3),
    ("cos_source_target", "cos(source, target) before conversion", 3),
    ("cos_to_target_centroid", "cos(output, target centroid)", 3),
    ("cos_to_source_centroid", "cos(output, source centroid)", 3),
    ("centroid_margin", "centroid margin", 3),
    ("centroid_win", "target win (centroids)", 3),
    ("id_correct", "closed-set id accuracy", 3),
    ("wer", "WER (mean of utterances)", 3),
    ("cer", "CER (mean of utterances)", 3),
    ("wer_source", "WER of the source itself", 3),
    ("dnsmos_ovrl", "DNSMOS overall", 2),
    ("dnsmos_sig", "DNSMOS signal", 2),
    ("dnsmos_bak", "DNSMOS background", 2),
    ("dnsmos_source_ovrl", "DNSMOS overall of the source", 2),
    ("mcd", "MCD vs parallel target (dB)", 2),
    ("vuv_error", "V/UV error vs parallel target", 3),
    ("f0_diff_st", "F0 output - target (semitones)", 2),
    ("f0_abs_diff_st", "|F0 output - target| (st)", 2),
    ("f0_source_diff_st", "F0 source - target (st)", 2),
)


# --------------------------------------------------------------------------- headline

HEADLINE_FIGURES = (
    ("target id", lambda s: s.get("id_accuracy", math.nan)),
    ("median WER vs source", lambda s: s.get("wer_median", math.nan)),
    ("DNSMOS", lambda s: s.get("metrics", {}).get("dnsmos_ovrl", {}).get("mean", math.nan)),
)


def headline(columns: Mapping[str, Mapping], first: str | None = None) -> str:
    """One line of the figures that decide a conversion: closed-set target identification,
    median WER against the source and DNSMOS overall of ``first`` (default: the first
    column), each followed by the same figure of every other column (the DSP peer,
    copy-source, copy-reference, ...).  ``columns``: ``{name: summary}`` from :func:`summarize`.

    >>> headline({"model": {"id_accuracy": 0.9}, "peer": {"id_accuracy": 0.4}}).split(" | ")[0]
    'target id 0.90 (peer 0.40)'
    """
    first = first or next(iter(columns))
    others = [name for name in columns if name != first]
    parts = []
    for label, get in HEADLINE_FIGURES:
        def fmt(value: float) -> str:
            return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"

        if all(not math.isfinite(get(columns[n])) for n in columns):
            continue
        beside = ", ".join(f"{n} {fmt(get(columns[n]))}" for n in others)
        parts.append(f"{label} {fmt(get(columns[first]))}" + (f" ({beside})" if beside else ""))
    return " | ".join(parts)
