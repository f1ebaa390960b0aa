"""Facts about this installation: versions, compute device, available models.

``pretrained_dir()`` is the repository's ``pretrained/`` folder (next to the
package); ``$VCCONV_PRETRAINED`` (one folder, or several joined by ``os.pathsep``)
adds more folders, searched first.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

PRETRAINED_ENV = "VCCONV_PRETRAINED"


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
