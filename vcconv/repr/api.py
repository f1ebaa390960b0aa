"""Library functions behind ``vcconv repr``: build a run config, train, embed audio files.

The CLI only binds arguments to these.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vcconv.config import RunConfig
from vcconv.errors import ConfigError, ModelError
from vcconv.repr import METHODS

log = logging.getLogger(__name__)


def method_kind(method: str) -> str:
    """``"dim"`` -> ``"repr-dim"`` (a kind ``"repr-..."`` is accepted as is)."""
    kind = method if method.startswith("repr-") else f"repr-{method}"
    if kind not in METHODS.values():
        raise ConfigError(f"unknown representation method '{method}' (choose from {', '.join(METHODS)})")
    return kind


def repr_run_config(method: str, overrides: Sequence[str] = (), *, manifest: str | Path | None = None,
                    config: str | Path | None = None, max_steps: int | None = None,
                    time_budget: float | None = None) -> RunConfig:
    """The :class:`RunConfig` of a ``repr-<method>`` run: defaults, then ``config`` (JSON/TOML file), then
    ``key=value`` ``overrides``.  For ``seq`` the phone pool comes from ``manifest`` (unless
    ``phone_manifest`` is set) and ``frame_hop_s`` from the audio config.  Unknown keys are a
    :class:`ConfigError` here, before any work.
    """
    from vcconv.config import apply_overrides, load_config_file
    from vcconv.models import model_config, model_fields

    kind = method_kind(method)
    base = load_config_file(config) if config else {}
    base["model_kind"] = kind
    cfg = apply_overrides(RunConfig.from_dict(base), list(overrides), model_fields(kind))
    if kind == "repr-seq":
        if manifest is not None and not cfg.model.get("phone_manifest"):
            cfg.model["phone_manifest"] = str(Path(manifest).resolve())
        cfg.model.setdefault("frame_hop_s", cfg.audio.hop_length / cfg.audio.sample_rate)
    model_config(kind, cfg.model)
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    if time_budget is not None:
        cfg.train.time_budget_min = time_budget
    return cfg


def train_repr(run_dir: str | Path, manifest: str | Path, cfg: RunConfig, device: str | None = None,
               progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train (or resume) a ``repr-*`` model with :func:`vcconv.train.train`.

    For ``repr-seq`` the unit -> phone map is then fitted on the manifest's aligned
    training rows and ``model.safetensors`` rewritten with it (summary key ``"unit_map"``).
    """
    from vcconv.train import train

    method_kind(cfg.model_kind)
    summary = train(run_dir, manifest, cfg, device=device, progress=progress)
    if cfg.model_kind == "repr-seq":
        from vcconv.checkpoint import load_model_file, save_safetensors
        from vcconv.repr.seq_embed import fit_unit_map

        path = Path(run_dir) / "model.safetensors"
        model, saved_cfg = load_model_file(path, device)
        summary["unit_map"] = fit_unit_map(model, manifest, saved_cfg.audio)
        if summary["unit_map"]["n_utts"]:
            save_safetensors(model, saved_cfg, path)
    return summary


def load_repr_model(path: str | Path, device: str | None = None) -> tuple[torch.nn.Module, RunConfig]:
    """A model with ``embed`` and ``content`` from a ``.safetensors`` file or a run directory
    (its ``model.safetensors`` when present, which holds the final weights, else ``last.pt``)."""
    from vcconv.checkpoint import load_model_file

    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"
    model, cfg = load_model_file(path, device)
    if not (callable(getattr(model, "embed", None)) and callable(getattr(model, "content", None))):
        raise ModelError(f"{path}: a '{cfg.model_kind}' model has no embed()/content(); train one with 'vcconv repr train'")
    return model, cfg


@torch.inference_mode()
def embed_files(model: torch.nn.Module, paths: Sequence[str | Path], audio=None) -> dict:
    """Utterance embeddings and frame codes of audio files (trimmed and normalised as in training).

    Returns ``{"files": [str], "embeddings": (N, E) float32, "content": [(D, T_i)],
    "codes": [(T_i,)] | None, "units": [(T'_i,)] | None, "unit_strings": [[str]] | None}``
    (``codes`` for models with discrete codes, ``units`` / ``unit_strings`` for ``repr-seq``).
    """
    from vcconv.audio import AudioConfig
    from vcconv.data.features import extract

    audio = audio or AudioConfig()
    device = next(model.parameters()).device
    has_codes, has_units = callable(getattr(model, "codes", None)), callable(getattr(model, "units", None))
    out: dict = {"files": [], "embeddings": [], "content": [], "codes": [] if has_codes else None,
                 "units": [] if has_units else None, "unit_strings": [] if has_units else None}
    for p in paths:
        mel, _ = extract(p, audio)
        x = torch.as_tensor(mel, dtype=torch.float32, device=device)[None]
        out["files"].append(str(p))
        out["embeddings"].append(model.embed(x)[0].float().cpu().numpy())
        out["content"].append(model.content(x)[0].float().cpu().numpy())
        if has_codes:
            out["codes"].append(model.codes(x)[0].cpu().numpy())
        if has_units:
            out["units"].append(model.units(x)[0].cpu().numpy())
            out["unit_strings"].append(model.unit_strings(x, collapse=True)[0])
    out["embeddings"] = np.stack(out["embeddings"]).astype(np.float32) if out["embeddings"] else np.zeros((0, 0), np.float32)
    return out


def save_embeddings(result: dict, path: str | Path, *, force: bool = False) -> Path:
    """Write :func:`embed_files` output as ``.npz``: ``files (N,)``, ``embeddings (N, E)``,
    ``content_<i> (D, T_i)`` and, when present, ``codes_<i>``, ``units_<i>``, ``unit_strings_<i>``.
    Refuses to overwrite without ``force``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ConfigError(f"{path}: the output must end in .npz")
    if path.exists() and not force:
        raise ConfigError(f"{path}: exists already (use --force to overwrite)")
    arrays = {"files": np.asarray(result["files"], dtype=str), "embeddings": result["embeddings"]}
    for i in range(len(result["files"])):
        arrays[f"content_{i}"] = result["content"][i]
        for key in ("codes", "units", "unit_strings"):
            if result.get(key) is not None:
                arrays[f"{key}_{i}"] = np.asarray(result[key][i], dtype=str if key == "unit_strings" else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path
