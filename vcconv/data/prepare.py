"""Turn a corpus folder into a checked manifest (and a feature cache).

``prepare_corpus`` scans the corpus (:mod:`vcconv.data.layouts`), checks every
file, skips the unusable ones, assigns seeded speaker-disjoint splits, writes
the manifest and, by default, computes the log-mel cache the trainers read.

Skipped files are never silent: each one is listed with its problem in
``<manifest stem>_report.tsv`` beside the manifest (columns ``path speaker
stage problem``), and the summary counts them.

Checks are two-level so that a large corpus is decoded once only:

* ``header``: every file's header is read (:func:`vcconv.audio.audio_info`),
  which catches empty, truncated (WAV), non-audio and too-short files and gives
  the duration;
* ``decode``: the samples themselves (NaN/Inf, silence, corrupt compressed
  streams) are checked while the feature cache is built, or, with
  ``cache=False``, by decoding each file once at its own rate.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vcconv.audio import MIN_DURATION_S, AudioConfig, audio_info, load_audio
from vcconv.data.features import build_cache, cache_path, default_cache_dir
from vcconv.data.layouts import detect_layout, scan_corpus
from vcconv.data.manifest import Utterance, assign_splits, read_manifest, write_manifest
from vcconv.errors import AudioError, DataError, VcconvError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
REPORT_COLUMNS = ("path", "speaker", "stage", "problem")

Progress = Callable[[str, int, int], None]


def report_path(manifest_path: str | Path) -> Path:
    """``dir/name_report.tsv`` for manifest ``dir/name.tsv``."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(f"{manifest_path.stem}_report.tsv")


def check_file(path: str | Path, *, decode: bool = False, min_duration: float = MIN_DURATION_S) -> float:
    """Check one audio file and return its duration in seconds.

    Reads the header only unless ``decode`` (then the samples are read too, at
    the file's own rate, to catch NaN, silence and corrupt streams).
    Raises :class:`AudioError` naming the file and its problem.
    """
    info = audio_info(path)
    duration = info["duration"]
    if duration < min_duration:
        n = info["frames"]
        raise AudioError(
            path,
            f"too short: {n} sample{'s' if n != 1 else ''} ({duration * 1000:.1f} ms), "
            f"need >= {min_duration * 1000:.0f} ms",
        )
    if decode:
        wav = load_audio(path, sample_rate=None, min_duration=min_duration)
        duration = wav.shape[0] / info["sample_rate"]
    return duration


def prepare_corpus(
    root: str | Path,
    manifest_path: str | Path,
    *,
    layout: str | None = None,
    mic: str = "mic1",
    n_test_speakers: int = 6,
    test_speakers: list[str] | None = None,
    valid_fraction: float = 0.03,
    seed: int = 0,
    audio_cfg: AudioConfig = AudioConfig(),
    cache: bool = True,
    workers: int = 1,
    progress: Progress | None = None,
    force: bool = False,
) -> dict:
    """Scan, check, split and write the manifest of the corpus at ``root``.

    Args:
        root: corpus folder (VCTK 0.92/0.80, LibriTTS, synth or one folder per speaker).
        manifest_path: TSV to write; refused if it exists unless ``force``.
        layout: force a layout instead of detecting it; ``mic``: VCTK 0.92 microphone.
        n_test_speakers / test_speakers: speakers held out entirely (random, seeded / named).
        valid_fraction: share of each training speaker's utterances kept for validation.
        cache: also compute the log-mel cache in ``default_cache_dir(manifest_path)``.
        workers: parallel threads for the checks and processes for the features.
        progress: ``progress(stage, done, total)`` with stage ``"checking"`` or ``"features"``.
    Returns:
        Summary dict: layout, root, manifest, report, cache_dir, speakers,
        test_speakers, utterances / speakers_per_split / hours_per_split (by
        split), hours, skipped, skipped_files (list of ``(path, problem)``).
    Raises:
        DataError: no corpus, manifest exists, unknown held-out speaker, nothing usable.
    """
    root = Path(root)
    manifest_path = Path(manifest_path)
    if manifest_path.exists() and not force:
        raise DataError(f"{manifest_path}: manifest exists already (use --force to overwrite)")
    if manifest_path.is_dir():
        raise DataError(f"{manifest_path}: is a folder, expected a manifest file name such as manifest.tsv")
    layout = layout or detect_layout(root)
    rows = scan_corpus(root, layout, mic=mic)
    speakers = sorted({r.speaker for r in rows})
    if test_speakers is not None:
        missing = sorted(set(test_speakers) - set(speakers))
        if missing:
            raise DataError(
                f"held-out speaker(s) not in {root}: {', '.join(missing)} "
                f"(speakers found: {_preview(speakers)})"
            )
        if set(speakers) <= set(test_speakers):
            raise DataError("every speaker is held out for testing; leave at least one for training")
    log.info("%s: layout %s, %d files of %d speakers", root, layout, len(rows), len(speakers))

    skipped: list[tuple[Utterance, str, str]] = []  # (row, stage, problem)

    # 1. header (+ samples when no cache will decode them) of every file
    rows, bad = _check_all(rows, decode=not cache, workers=workers, progress=progress)
    skipped += [(r, "decode" if not cache else "header", p) for r, p in bad]

    # 2. features; a file that fails to decode leaves the manifest too
    cache_dir = None
    if cache and rows:
        cache_dir = default_cache_dir(manifest_path)
        _drop_stale_features(rows, audio_cfg, cache_dir, manifest_path if force else None)
        cb = (lambda done, total: progress("features", done, total)) if progress else None
        failures = build_cache(rows, audio_cfg, cache_dir, workers=workers, progress=cb)
        if failures:
            by_id = {r.utt_id: r for r in rows}
            skipped += [(by_id[u], "decode", _problem(by_id[u].path, err)) for u, err in failures.items()]
            rows = [r for r in rows if r.utt_id not in failures]

    report = report_path(manifest_path)
    _write_report(report, skipped)
    if not rows:
        first = skipped[0] if skipped else None
        example = f", e.g. {first[0].path}: {first[2]}" if first else ""
        raise DataError(
            f"{root}: no usable audio: all {len(skipped)} file(s) failed the checks{example}; full list in {report}"
        )

    # 3. splits among the usable files, then the manifest
    if test_speakers is not None:
        gone = sorted(set(test_speakers) - {r.speaker for r in rows})
        if gone:
            raise DataError(f"held-out speaker(s) lost every file to the checks: {', '.join(gone)} (see {report})")
    rows = assign_splits(
        rows, n_test_speakers=n_test_speakers, valid_fraction=valid_fraction, seed=seed, test_speakers=test_speakers
    )
    rows.sort(key=lambda u: (u.speaker, u.utt_id))
    write_manifest(rows, manifest_path)

    summary = {
        "layout": layout,
        "root": str(root),
        "manifest": str(manifest_path),
        "report": str(report),
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
        "speakers": len({r.speaker for r in rows}),
        "test_speakers": sorted({r.speaker for r in rows if r.split == "test"}),
        "utterances": {s: sum(r.split == s for r in rows) for s in SPLITS},
        "speakers_per_split": {s: len({r.speaker for r in rows if r.split == s}) for s in SPLITS},
        "hours_per_split": {s: sum(r.duration for r in rows if r.split == s) / 3600 for s in SPLITS},
        "hours": sum(r.duration for r in rows) / 3600,
        "skipped": len(skipped),
        "skipped_files": sorted((r.path, p) for r, _, p in skipped),
    }
    log.info("wrote %s (%d utterances, %d skipped)", manifest_path, len(rows), len(skipped))
    return summary


# ------------------------------------------------------------------ helpers


def _check_all(
    rows: list[Utterance], *, decode: bool, workers: int, progress: Progress | None
) -> tuple[list[Utterance], list[tuple[Utterance, str]]]:
    """Fill ``duration`` of the good rows; return ``(good, [(bad_row, problem), ...])``.

    Threads suffice: libsndfile runs outside the GIL.
    """

    def one(r: Utterance) -> str | None:
        try:
            r.duration = round(check_file(r.path, decode=decode), 4)
        except VcconvError as err:
            return _problem(r.path, str(err))
        except OSError as err:  # unreadable file (permissions, vanished): a user-file problem too
            return f"cannot read ({err.strerror or err})"
        return None

    total = len(rows)
    if progress:
        progress("checking", 0, total)
    step = max(1, total // 100)
    pool = ThreadPoolExecutor(workers) if workers > 1 and total > 50 else None
    results = pool.map(one, rows) if pool else map(one, rows)
    good, bad = [], []
    try:
        for i, (r, problem) in enumerate(zip(rows, results), 1):
            if problem:
                bad.append((r, problem))
            else:
                good.append(r)
            if progress and (i % step == 0 or i == total):
                progress("checking", i, total)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return good, bad


def _problem(path: str, message: str) -> str:
    """``"PATH: problem"`` -> ``"problem"`` (the report has the path in its own column)."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _drop_stale_features(rows: list[Utterance], cfg: AudioConfig, cache_dir: Path, old_manifest: Path | None) -> None:
    """Delete cached features that no longer match their audio.

    The cache is keyed by utt_id only, so a re-prepared corpus (``force``) whose
    ids now point at other files, or audio edited after caching, would silently
    reuse old features.
    """
    old_paths: dict[str, str] = {}
    if old_manifest is not None and old_manifest.is_file():
        try:
            old_paths = {r.utt_id: r.path for r in read_manifest(old_manifest)}
        except DataError:
            old_paths = {}
    for r in rows:
        f = cache_path(cache_dir, cfg, r.utt_id, r.path)
        try:
            stale = (r.utt_id in old_paths and old_paths[r.utt_id] != r.path) or (
                os.stat(r.path).st_mtime > f.stat().st_mtime
            )
        except FileNotFoundError:
            continue
        if stale:
            log.info("dropping stale cached features %s", f)
            f.unlink(missing_ok=True)


def _write_report(path: Path, skipped: list[tuple[Utterance, str, str]]) -> None:
    """TSV of the skipped files (header only when none), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(REPORT_COLUMNS)
        for r, stage, problem in sorted(skipped, key=lambda x: x[0].path):
            w.writerow([r.path, r.speaker, stage, " ".join(problem.split())])
    os.replace(tmp, path)


def read_report(path: str | Path) -> list[dict]:
    """Rows of a report written by :func:`prepare_corpus` as dicts (path, speaker, stage, problem)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _preview(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
