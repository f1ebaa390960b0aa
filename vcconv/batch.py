"""Batch conversion: a folder tree (``convert_dir``) or a pairs CSV (``convert_pairs``).

Both build a list of :class:`BatchJob` and hand it to :func:`run_jobs`, which

* removes stale ``.*.part.wav`` temp files left by a killed run in the output folders;
* skips outputs that exist already (unless ``force``), so a killed run resumes;
* converts the rest in-process (``workers=1``) or in ``workers`` processes that
  each load the model once and use ``max(1, cores // workers)`` torch threads;
* computes each set of reference clips' speaker vector once (per process);
* reports and skips unusable inputs (:class:`~vcconv.errors.AudioError`), writes
  ``failures.tsv`` (``path<TAB>problem``) when anything failed;
* writes every output atomically (temp file + rename, see :func:`vcconv.audio.save_audio`),
  so ``kill -9`` never leaves a partial file under an output name.

Outputs are 16-bit WAV at the model's sample rate.  Several batches may share an output
folder at the same time: each output is claimed (:func:`claim_output`) before it is
converted, so no job is converted twice and no batch removes another's temp files.  A pairs
CSV only writes under its output folder (:func:`read_pairs`).
"""

from __future__ import annotations

import csv
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from vcconv.audio import AUDIO_EXTENSIONS, load_audio, save_audio
from vcconv.errors import AudioError, DataError, VcconvError
from vcconv.system import new_file_mode

log = logging.getLogger(__name__)

FAILURES_FILE = "failures.tsv"
PART_GLOB = ".*.part.wav"  # temp names written by vcconv.audio.save_audio
CLAIM_SUFFIX = ".claim"  # ".NAME.wav.claim": held (locked) by the process converting NAME.wav
STAGES = ("load", "features", "model", "vocoder", "write")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchJob:
    """One conversion: ``source`` in the voice of ``references`` (averaged) -> ``output``."""

    source: Path
    references: tuple[Path, ...]
    output: Path


@dataclass
class BatchSummary:
    """What a batch did.  ``failures`` holds ``(path, problem)`` pairs, also written to ``failures_file``."""

    total: int = 0
    converted: int = 0
    skipped: int = 0  # outputs that existed already (or were finished by a concurrent batch meanwhile)
    claimed_elsewhere: int = 0  # being converted by another live process sharing the output folder
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0  # duration of the outputs written by this run
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    stale_parts_removed: int = 0
    failures_file: Path | None = None
    workers: int = 1
    threads: int = 1

    @property
    def rtf(self) -> float:
        """Wall seconds per second of converted audio (``nan`` when nothing was converted)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else float("nan")


# ----------------------------------------------------------------------- planning


def _resolve(p: Path) -> Path:
    return Path(os.path.abspath(Path(p).expanduser())).resolve()


def find_audio(in_dir: str | Path, exclude: Sequence[str | Path] = ()) -> list[Path]:
    """Audio files under ``in_dir`` (recursive, sorted).

    Hidden files and folders (names starting with ``.``, e.g. temp files) and the
    ``exclude`` folders (an output folder nested in the input) are left out.
    """
    root = Path(in_dir)
    skip = {_resolve(Path(e)) for e in exclude}
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _resolve(here / d) not in skip)
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(here / name)
    return sorted(found)


def plan_dir(in_dir: str | Path, references: Sequence[str | Path] | str | Path, out_dir: str | Path) -> list[BatchJob]:
    """Jobs for every audio file under ``in_dir``: ``out_dir/<same relative path>.wav``.

    Raises :class:`VcconvError` when ``out_dir`` is ``in_dir`` (outputs would be taken as
    inputs by the next run) or when any output would overwrite a source or reference.
    ``out_dir`` nested inside ``in_dir`` is allowed: it is left out of the scan.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    refs = _as_refs(references)
    if not in_dir.exists():
        raise DataError(f"{in_dir}: input folder not found")
    if not in_dir.is_dir():
        raise DataError(f"{in_dir}: not a folder (use 'vcconv convert' for one file)")
    if _resolve(out_dir) == _resolve(in_dir):
        raise VcconvError(
            f"{out_dir}: output folder is the input folder; converted files would be read as inputs "
            "by the next run. Choose another -o folder"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise VcconvError(f"{out_dir}: exists and is not a folder")
    sources = find_audio(in_dir, exclude=[out_dir])
    if not sources:
        raise DataError(f"{in_dir}: no audio files found ({', '.join(AUDIO_EXTENSIONS)})")
    jobs = [BatchJob(s, refs, (out_dir / s.relative_to(in_dir)).with_suffix(".wav")) for s in sources]
    first: dict[Path, Path] = {}
    for job in jobs:
        other = first.setdefault(job.output, job.source)
        if other != job.source:
            raise VcconvError(f"{other} and {job.source} would both be written to {job.output}; rename one of them")
    _check_no_overwrite(jobs)
    return jobs


def read_pairs(
    pairs_csv: str | Path,
    output_root: str | Path | None = None,
    *,
    allow_outside: bool = False,
) -> tuple[list[BatchJob], list[tuple[str, str]]]:
    """Jobs from a CSV with columns ``source,target,output`` (a header row).

    Sources and targets may be anywhere (relative ones are taken from the CSV's folder);
    ``target`` may list several reference clips separated by ``;``.  Outputs must end in
    ``.wav`` and be unique, and are placed under ``output_root`` (default: the CSV's
    folder; relative outputs are taken from it): an output that resolves outside it
    (an absolute path elsewhere, ``..``, a symbolic link) is refused unless
    ``allow_outside``, so a CSV from someone else cannot write over files beyond the
    folder meant for the results.

    Returns ``(jobs, refused)``: ``refused`` holds ``(source, problem)`` of the rows
    refused for their output (each is one line of ``failures.tsv``); a job's output is
    the resolved path that was checked.
    """
    pairs_csv = Path(pairs_csv)
    if not pairs_csv.is_file():
        raise DataError(f"{pairs_csv}: pairs CSV not found")
    base = pairs_csv.parent
    root = Path(output_root).expanduser() if output_root is not None else base
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: output folder exists and is not a folder")
    try:
        with open(pairs_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{pairs_csv}: cannot read ({err})") from None
    missing = [c for c in ("source", "target", "output") if c not in header]
    if missing:
        raise DataError(f"{pairs_csv}: needs a header row with columns source,target,output (missing: {', '.join(missing)})")

    def path(text: str, folder: Path = base) -> Path:
        p = Path(text.strip()).expanduser()
        return p if p.is_absolute() else folder / p

    jobs, lines, refused = [], [], []
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if not any(row.values()):
            continue
        empty = [c for c in ("source", "target", "output") if not row.get(c)]
        if empty:
            raise DataError(f"{pairs_csv}:{line}: empty {', '.join(empty)}")
        refs = tuple(path(t) for t in row["target"].split(";") if t.strip())
        if Path(row["output"]).suffix.lower() != ".wav":
            raise DataError(f"{pairs_csv}:{line}: output '{row['output']}' must end in .wav (outputs are WAV files)")
        source = path(row["source"])
        out, problem = _place_output(row["output"], root, allow_outside)
        if problem:
            refused.append((str(source), f"{pairs_csv.name} line {line}: {problem}"))
            log.info("%s line %d: %s", pairs_csv, line, problem)
            continue
        jobs.append(BatchJob(source, refs, out))
        lines.append(line)
    if not jobs and not refused:
        raise DataError(f"{pairs_csv}: no rows")
    seen: dict[Path, int] = {}
    for line, job in zip(lines, jobs):
        if job.output in seen:
            raise DataError(f"{pairs_csv}: lines {seen[job.output]} and {line} write the same output {job.output}")
        seen[job.output] = line
    _check_no_overwrite(jobs)
    return jobs, refused


def _place_output(text: str, root: Path, allow_outside: bool) -> tuple[Path, str | None]:
    """Where a pairs row's ``output`` lands: ``(resolved path, None)``, or ``(path, why it is refused)``.

    Resolving follows ``..`` and symbolic links the way the kernel will when the file is
    written, so ``link/../x.wav`` or a link to ``/etc`` cannot pass for a path under ``root``.
    """
    given = Path(text.strip()).expanduser()
    try:
        out = (given if given.is_absolute() else root / given).resolve()
    except (OSError, RuntimeError) as err:  # a symbolic-link loop
        return root / given, f"output '{text}' cannot be resolved ({err}); refused"
    if fnmatch.fnmatch(out.name, PART_GLOB):
        return out, f"output '{text}' has the name of a vcconv temp file; refused"
    if allow_outside:
        return out, None
    top = root.resolve()
    if out == top or top not in out.parents:
        if given.is_absolute() and not os.path.normpath(given).startswith(str(top) + os.sep):
            how = "is an absolute path outside the output folder"
        elif ".." in given.parts:
            how = f"leads through '..' to {out}, outside the output folder"
        else:
            how = f"leads through a symbolic link to {out}, outside the output folder"
        return out, (f"output '{text}' {how} {top}; refused, nothing written "
                     "(use --output DIR to choose the folder, or --allow-outside)")
    return out, None


def _as_refs(references: Sequence[str | Path] | str | Path) -> tuple[Path, ...]:
    refs = (references,) if isinstance(references, (str, Path)) else tuple(references)
    if not refs:
        raise VcconvError("at least one --target reference clip is needed")
    return tuple(Path(r) for r in refs)


def _check_no_overwrite(jobs: list[BatchJob]) -> None:
    inputs = {_resolve(j.source) for j in jobs} | {_resolve(r) for j in jobs for r in j.references}
    for job in jobs:
        if _resolve(job.output) in inputs:
            raise VcconvError(f"{job.output}: refusing to write over an input file (source or reference)")


def clean_stale_parts(folders: Sequence[str | Path], recursive: bool = True) -> int:
    """Delete ``.*.part.wav`` temp files (left by a killed run) in ``folders``.  Returns how many.

    A temp file whose output is claimed by a live process (another batch writing to the
    same folder now) is kept; unclaimed ``.*.wav.claim`` files of killed runs are removed too.
    """
    n = 0
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in folder.rglob(PART_GLOB) if recursive else folder.glob(PART_GLOB):
            stem = p.name[1 : -len(".part.wav")].rsplit(".", 1)[0]  # save_audio: ".STEM.XXXXXXXX.part.wav"
            if claim_held(p.with_name(f"{stem}.wav")):
                continue
            try:
                p.unlink()
                n += 1
            except FileNotFoundError:
                pass
        for c in folder.rglob(f".*.wav{CLAIM_SUFFIX}") if recursive else folder.glob(f".*.wav{CLAIM_SUFFIX}"):
            fd = _lock(c, create=False)
            if fd is not None:
                release_claim(c, fd)
    if n:
        log.info("removed %d stale temp file(s) of an interrupted run", n)
    return n


# ------------------------------------------------------------------------ claims
#
# Two batches may share an output folder: before converting ``NAME.wav`` a process takes an
# exclusive, non-blocking ``flock`` on ``.NAME.wav.claim``; a process that finds it locked
# leaves that job to its holder.  The holder writes the output (atomically), then unlinks
# the claim while still holding the lock.  The kernel drops the lock of a process that dies,
# so a claim left by ``kill -9`` is taken over at once (no pid files, no pid reuse).


def claim_path(output: str | Path) -> Path:
    """``DIR/NAME.wav`` -> ``DIR/.NAME.wav.claim``."""
    output = Path(output)
    return output.with_name(f".{output.name}{CLAIM_SUFFIX}")


def _lock(claim: Path, create: bool = True) -> int | None:
    """An fd holding an exclusive lock on the file now at ``claim``, or ``None`` when it is locked elsewhere
    (or absent and ``create`` is false)."""
    if fcntl is None:  # pragma: no cover - no POSIX locks (Windows): one batch per folder
        return os.open(claim, os.O_CREAT | os.O_RDWR, 0o644) if create else None
    while True:
        try:
            fd = os.open(claim, (os.O_CREAT if create else 0) | os.O_RDWR, 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the holder before us may have unlinked the file after we opened it: lock the live one
            if os.fstat(fd).st_ino == os.stat(claim).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
        if not create:
            return None


def claim_output(output: str | Path) -> int | None:
    """Claim ``output`` for this process: an fd to pass to :func:`release_claim`, or ``None``
    when another live process holds the claim (it is converting that output now)."""
    claim = claim_path(output)
    claim.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(claim)
    if fd is not None:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for a curious user; the lock is what counts
    return fd


def release_claim(claim_or_output: str | Path, fd: int) -> None:
    """Remove the claim file (while still holding its lock) and drop the lock."""
    claim = Path(claim_or_output)
    if not claim.name.endswith(CLAIM_SUFFIX):
        claim = claim_path(claim)
    try:
        claim.unlink()
    except FileNotFoundError:
        pass
    os.close(fd)


def claim_held(output: str | Path) -> bool:
    """True when a live process holds the claim on ``output``."""
    claim = claim_path(output)
    if fcntl is None or not claim.exists():  # pragma: no cover - trivial
        return False
    try:
        fd = os.open(claim, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


# --------------------------------------------------------------------- converting


class _Worker:
    """A loaded :class:`~vcconv.convert.Converter` plus a cache of speaker vectors."""

    def __init__(self, model, vocoder, device, options: dict | None = None):
        from vcconv.convert import make_converter

        self.conv = make_converter(model, vocoder, device, **(options or {}))
        self.speakers: dict[tuple[str, ...], torch.Tensor | AudioError] = {}

    def speaker(self, refs: tuple[Path, ...]) -> torch.Tensor:
        key = tuple(str(_resolve(r)) for r in refs)
        if key not in self.speakers:
            try:
                self.speakers[key] = self.conv.speaker_vector(list(refs))
            except AudioError as err:  # remembered: every job with this reference fails the same way
                self.speakers[key] = err
        spk = self.speakers[key]
        if isinstance(spk, AudioError):
            raise spk
        return spk

    def run(self, job: BatchJob, force: bool, started_ns: int = 0) -> dict:
        """Claim and convert one job.  Returns ``{"status", "ok", "error", "seconds", "timings"}``;
        never raises for bad input.

        ``status``: ``"converted"``, ``"failed"``, ``"claimed"`` (another live process is converting
        this output now: left to it) or ``"skipped"`` (the output appeared meanwhile: with ``force``,
        one written since ``started_ns``, the ``time.time_ns()`` at which this batch started).
        """
        idle = {"ok": False, "error": None, "seconds": 0.0, "timings": dict.fromkeys(STAGES, 0.0)}
        try:
            fd = claim_output(job.output)
        except OSError as err:
            return {**idle, "status": "failed", "error": (str(job.output), f"cannot write here ({err.strerror})")}
        if fd is None:
            return {**idle, "status": "claimed"}
        try:
            try:
                done = job.output.stat().st_mtime_ns
            except FileNotFoundError:
                done = None
            if done is not None and (not force or done >= started_ns):
                return {**idle, "status": "skipped"}
            res = self._convert(job, force)
            return {**res, "status": "converted" if res["ok"] else "failed"}
        finally:
            release_claim(job.output, fd)

    @torch.no_grad()
    def _convert(self, job: BatchJob, force: bool) -> dict:
        """Convert one job.  Returns ``{"ok", "error", "seconds", "timings"}``; never raises for bad input."""
        conv = self.conv
        timings = dict.fromkeys(STAGES, 0.0)
        try:
            spk = self.speaker(job.references)
        except AudioError as err:
            return {"ok": False, "error": (str(job.source), f"reference clip {err.path}: {err.problem}"),
                    "seconds": 0.0, "timings": timings}
        try:
            result = conv.convert(job.source, references=list(job.references), speaker=spk)
            out = result.wav
            t4 = time.perf_counter()
            save_audio(job.output, out, conv.audio.sample_rate, overwrite=force)
            t5 = time.perf_counter()
        except AudioError as err:
            return {"ok": False, "error": (err.path, err.problem), "seconds": 0.0, "timings": timings}
        except VcconvError as err:
            return {"ok": False, "error": (str(job.source), str(err)), "seconds": 0.0, "timings": timings}
        except Exception as err:  # noqa: BLE001 - one odd file must not stop a batch of thousands
            log.warning("%s: unexpected error", job.source, exc_info=True)
            return {"ok": False, "error": (str(job.source), f"unexpected error ({type(err).__name__}: {err})"),
                    "seconds": 0.0, "timings": timings}
        timings.update({k: v for k, v in result.timings.items() if k in timings}, write=t5 - t4)
        return {"ok": True, "error": None, "seconds": len(out) / conv.audio.sample_rate, "timings": timings}


# state of a worker process (one per process, set by _init_process)
_PROCESS: dict = {}


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the batch process dies (e.g. ``kill -9``)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _init_process(model, vocoder, device, threads: int, options: dict | None = None) -> None:
    _die_with_parent()
    torch.set_num_threads(threads)
    try:
        _PROCESS["worker"] = _Worker(model, vocoder, device, options)
    except VcconvError as err:
        _PROCESS["fatal"] = str(err)


def _run_in_process(job: BatchJob, force: bool, started_ns: int = 0) -> dict:
    if "fatal" in _PROCESS:
        return {"fatal": _PROCESS["fatal"]}
    return _PROCESS["worker"].run(job, force, started_ns)


def run_jobs(
    jobs: list[BatchJob],
    *,
    model: str | Path | None = None,
    vocoder: str | None = None,
    device: str | None = None,
    force: bool = False,
    workers: int = 1,
    threads: int = 0,
    progress: Progress | None = None,
    failures_file: str | Path | None = None,
    clean_folders: Sequence[str | Path] = (),
    strength: float | None = None,
    pitch_shift: float = 0.0,
    f0: str | None = None,
    spectrum_match: float | None = None,
    source_mix: float | None = None,
    spectrum_spread: float | None = None,
    source_mix_high: float | None = None,
    adapt_steps: int | None = None,
) -> BatchSummary:
    """Run ``jobs`` (see the module docstring).  ``threads=0``: ``max(1, idle cores // workers)``
    (:func:`vcconv.system.cpu_threads`, measured once at the start).
    ``strength``, ``pitch_shift``, ``f0``, ``spectrum_match``, ``spectrum_spread``, ``source_mix``,
    ``source_mix_high`` and ``adapt_steps`` are :class:`~vcconv.convert.Converter` options
    (``None``: the model's own).

    ``progress(done, total)`` is called as jobs finish (skipped ones count as done).
    ``failures_file`` is written when anything failed, and removed when nothing did.
    """
    from vcconv.convert import DEFAULT_F0, given_options, is_builtin_model, resolve_model_path
    from vcconv.system import cpu_threads

    start = time.perf_counter()
    started_ns = time.time_ns()  # with force: outputs written after this were made by a concurrent batch
    options = {"strength": strength, "pitch_shift": pitch_shift,  # strength None: the model's own
               "f0": f0 or DEFAULT_F0}
    options.update(given_options(spectrum_match=spectrum_match, source_mix=source_mix,
                                 spectrum_spread=spectrum_spread, source_mix_high=source_mix_high,
                                 adapt_steps=adapt_steps))
    if not is_builtin_model(model):  # "world" has no file
        model = resolve_model_path(model).resolve()  # a missing model fails here, before any worker starts
    workers = max(1, int(workers))
    # chosen once, before the workers start; cores other programs keep busy are left to them
    n_threads = cpu_threads(threads, world_size=1 if threads else workers, adapt_to_load=not threads)
    options["threads"] = n_threads
    summary = BatchSummary(total=len(jobs), workers=workers, threads=n_threads)
    summary.stale_parts_removed = clean_stale_parts(clean_folders)

    todo = []
    for job in jobs:
        if job.output.exists() and not force:
            summary.skipped += 1
        else:
            todo.append(job)
    done = summary.skipped
    if progress:
        progress(done, len(jobs))

    def record(job: BatchJob, res: dict) -> None:
        nonlocal done
        done += 1
        if res.get("status") == "claimed":
            summary.claimed_elsewhere += 1
        elif res.get("status") == "skipped":
            summary.skipped += 1
        elif res["ok"]:
            summary.converted += 1
            summary.audio_seconds += res["seconds"]
            for k, v in res["timings"].items():
                summary.stage_seconds[k] += v
        else:
            summary.failed += 1
            summary.failures.append(res["error"])
            log.info("%s: %s", *res["error"])
        if progress:
            progress(done, len(jobs))

    if todo and (workers == 1 or len(todo) == 1):
        previous = torch.get_num_threads()
        torch.set_num_threads(n_threads)
        try:
            worker = _Worker(model, vocoder, device, options)
            for job in todo:
                record(job, worker.run(job, force, started_ns))
        finally:
            torch.set_num_threads(previous)
    elif todo:
        _run_pool(todo, workers, (model, vocoder, device, n_threads, options), force, record, started_ns)

    summary.failures.sort()
    if failures_file is not None:
        summary.failures_file = _write_failures(Path(failures_file), summary.failures)
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _run_pool(todo: list[BatchJob], workers: int, init_args: tuple, force: bool, record, started_ns: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from vcconv.errors import ModelError

    # spawn: fresh interpreters (no forked torch thread pools); at most 2 jobs queued per worker
    # so a Ctrl-C or a fatal error stops quickly.
    ex = ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                             initializer=_init_process, initargs=init_args)
    pending: dict = {}
    queue = iter(todo)
    try:
        while True:
            while len(pending) < 2 * workers:
                job = next(queue, None)
                if job is None:
                    break
                pending[ex.submit(_run_in_process, job, force, started_ns)] = job
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    raise VcconvError("a worker process died (out of memory?); run again to resume, "
                                      "perhaps with fewer --workers") from None
                if "fatal" in res:
                    raise ModelError(res["fatal"])
                record(job, res)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _write_failures(path: Path, failures: list[tuple[str, str]]) -> Path | None:
    if not failures:
        if path.exists():
            path.unlink()
        return None
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # unique per process
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("path\tproblem\n")
            for p, problem in failures:
                f.write(f"{p}\t{' '.join(problem.split())}\n")
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------------- the API


def convert_dir(
    in_dir: str | Path,
    references: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    vocoder: str | None = None,
    device: str | None = None,
    force: bool = False,
    workers: int = 1,
    threads: int = 0,
    progress: Progress | None = None,
    strength: float | None = None,
    pitch_shift: float = 0.0,
    f0: str | None = None,
    spectrum_match: float | None = None,
    source_mix: float | None = None,
    spectrum_spread: float | None = None,
    source_mix_high: float | None = None,
    adapt_steps: int | None = None,
) -> BatchSummary:
    """Convert every audio file under ``in_dir`` to the voice of ``references``.

    Outputs mirror the input tree: ``in_dir/a/b.flac`` -> ``out_dir/a/b.wav``.  Existing
    outputs are kept (``force=True`` redoes them).  Unusable references raise
    :class:`AudioError` before anything is converted; unusable sources are reported
    in the summary and ``out_dir/failures.tsv``.
    """
    jobs = plan_dir(in_dir, references, out_dir)
    for ref in jobs[0].references:  # fail early: a bad reference would fail every file
        load_audio(ref, None)
    return run_jobs(jobs, model=model, vocoder=vocoder, device=device, force=force, workers=workers,
                    threads=threads, progress=progress, failures_file=Path(out_dir) / FAILURES_FILE,
                    clean_folders=[out_dir], strength=strength, pitch_shift=pitch_shift, f0=f0,
                    spectrum_match=spectrum_match, source_mix=source_mix, spectrum_spread=spectrum_spread,
                    source_mix_high=source_mix_high, adapt_steps=adapt_steps)


def convert_pairs(
    pairs_csv: str | Path,
    *,
    output_root: str | Path | None = None,
    allow_outside: bool = False,
    model: str | Path | None = None,
    vocoder: str | None = None,
    device: str | None = None,
    force: bool = False,
    workers: int = 1,
    threads: int = 0,
    progress: Progress | None = None,
    strength: float | None = None,
    pitch_shift: float = 0.0,
    f0: str | None = None,
    spectrum_match: float | None = None,
    source_mix: float | None = None,
    spectrum_spread: float | None = None,
    source_mix_high: float | None = None,
    adapt_steps: int | None = None,
) -> BatchSummary:
    """Convert the rows of a ``source,target,output`` CSV (see :func:`read_pairs`).

    Outputs go under ``output_root`` (default: the CSV's folder); a row whose output would
    land outside it is refused (unless ``allow_outside``) and counted as failed.  Failures
    are written to ``<csv name>.failures.tsv`` beside the CSV; a row whose reference clip is
    unusable fails alone.
    """
    pairs_csv = Path(pairs_csv)
    jobs, refused = read_pairs(pairs_csv, output_root, allow_outside=allow_outside)
    # temp files sit next to their outputs: clean those folders only (not recursively)
    removed = clean_stale_parts(sorted({j.output.parent for j in jobs}), recursive=False)
    summary = run_jobs(jobs, model=model, vocoder=vocoder, device=device, force=force, workers=workers,
                       threads=threads, progress=progress, failures_file=None,
                       strength=strength, pitch_shift=pitch_shift, f0=f0,
                    spectrum_match=spectrum_match, source_mix=source_mix, spectrum_spread=spectrum_spread,
                    source_mix_high=source_mix_high, adapt_steps=adapt_steps)
    summary.stale_parts_removed = removed
    summary.total += len(refused)
    summary.failed += len(refused)
    summary.failures = refused + summary.failures  # refused rows first, in CSV order
    summary.failures_file = _write_failures(pairs_csv.with_name(f"{pairs_csv.stem}.{FAILURES_FILE}"), summary.failures)
    return summary
