"""Checkpoints that rebuild their own model.

* Released weights: ``.safetensors`` whose metadata holds ``kind`` and ``config``
  (the full :class:`~vcconv.config.RunConfig` as JSON), optionally fp16.
* Training state: ``RUN_DIR/last.pt`` with model, optimizer, step, config and
  RNG state, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from vcconv.config import RunConfig, check_strength
from vcconv.errors import ModelError


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The one device rule: ``None`` means CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ModelError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' requested but no CUDA device is available")
    return dev


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / compile wrappers."""
    return getattr(model, "module", model)


def save_safetensors(model: nn.Module, cfg: RunConfig, path: str | Path, *, fp16: bool = False, extra: dict | None = None) -> Path:
    """Write weights + config metadata atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    if fp16:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    meta = {"kind": cfg.model_kind, "config": json.dumps(cfg.to_dict()), "format": "vcconv-1"}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tmp = path.with_name(f".{path.name}.part")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{path}: not a readable safetensors file ({err})") from None
    return state, meta


def save_training_state(run_dir: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                        cfg: RunConfig, extra: dict | None = None) -> Path:
    """Atomically write ``RUN_DIR/last.pt`` (model, optimizer, step, config, RNG)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": json.dumps(cfg.to_dict()),
        "kind": cfg.model_kind,
        "torch_rng": torch.get_rng_state(),
        "extra": json.dumps(extra or {}),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    path = run_dir / "last.pt"
    tmp = run_dir / ".last.pt.part"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_training_state(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict | None:
    """``RUN_DIR/last.pt`` as a dict (``None`` if absent), loaded with ``weights_only=True``."""
    path = Path(run_dir) / "last.pt"
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a corrupt file is a user-facing problem
        raise ModelError(f"{path}: cannot load training state ({err})") from None
    state["config"] = json.loads(state["config"])
    state["extra"] = json.loads(state.get("extra", "{}"))
    return state


def load_model_file(path: str | Path, device: str | torch.device | None = None) -> tuple[nn.Module, RunConfig]:
    """Rebuild a model from a ``.safetensors`` file or a run directory (its ``last.pt``).

    Weights load strictly (a missing or unexpected tensor is an error); fp16
    weights are cast to the model's float32.
    """
    from vcconv.models import build_model

    path = Path(path)
    dev = default_device(device)
    if path.is_dir():
        state = load_training_state(path)
        if state is None:
            raise ModelError(f"{path}: no last.pt in this run directory")
        cfg = RunConfig.from_dict(state["config"])
        weights = state["model"]
    elif path.suffix == ".safetensors":
        weights, meta = read_safetensors(path)
        if "config" not in meta:
            raise ModelError(f"{path}: safetensors file has no vcconv config in its metadata")
        cfg = RunConfig.from_dict(json.loads(meta["config"]))
    elif path.suffix == ".pt":
        state = load_training_state(path.parent) if path.name == "last.pt" else None
        if state is None:
            raise ModelError(f"{path}: expected a run directory, last.pt or a .safetensors file")
        cfg = RunConfig.from_dict(state["config"])
        weights = state["model"]
    else:
        raise ModelError(f"{path}: expected a .safetensors file or a run directory")
    model = build_model(cfg.model_kind, cfg.model)
    own = model.state_dict()
    weights = {k: (v.to(own[k].dtype) if k in own else v) for k, v in weights.items()}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{path}: weights do not match the model config ({str(err).splitlines()[0]})") from None
    return model.to(dev).eval(), cfg


def export_model(source: str | Path, output: str | Path, *, fp16: bool = True, strength: float | None = None) -> dict:
    """Write released weights for ``source`` (run dir or safetensors) and check what fp16 costs.
    ``strength``: the conversion strength stored as this model's default (``None``: keep the source's).

    Returns ``{"bytes", "params", "max_diff"}``: ``max_diff`` is the largest absolute difference
    of the converted log-mel between the exported and the original weights on a fixed test input.
    """
    model, cfg = load_model_file(source, "cpu")
    if strength is not None:
        cfg.convert["strength"] = check_strength(strength)
    out = save_safetensors(model, cfg, output, fp16=fp16)
    reloaded, _ = load_model_file(out, "cpu")
    gen = torch.Generator().manual_seed(0)
    n_mels = cfg.audio.n_mels
    src = torch.randn(1, n_mels, 200, generator=gen) * 2 - 6
    ref = torch.randn(1, n_mels, 150, generator=gen) * 2 - 6
    with torch.no_grad():
        diff = (model(src, ref) - reloaded(src, ref)).abs().max().item() if hasattr(model, "speaker") else 0.0
    return {"bytes": out.stat().st_size, "params": sum(p.numel() for p in model.parameters()), "max_diff": diff}
