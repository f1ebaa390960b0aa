"""Checkpoints that rebuild their own model.

* Released weights: ``.safetensors`` whose metadata holds ``kind`` and ``config``
  (the full :class:`~vcconv.config.RunConfig` as JSON), optionally fp16.
* Training state: ``RUN_DIR/last.pt`` with model, optimizer, step, config and
  RNG state, loaded by :func:`safe_torch_load` (``weights_only=True``).

Every ``torch.load`` of the package goes through :func:`safe_torch_load`: a file
that holds Python objects beyond tensors and plain containers (a pickle that
would call ``os.system``, a custom class) is refused with one line naming the
file and the offending global; nothing in it runs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from vcconv.adaptation import store_adaptation
from vcconv.config import RunConfig, check_fraction, check_split_hz, check_strength
from vcconv.errors import ModelError, VcconvError
from vcconv.system import new_file_mode


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
    os.chmod(tmp, new_file_mode())  # safetensors writes 0600
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
                        cfg: RunConfig, extra: dict | None = None, aux: dict | None = None) -> Path:
    """Atomically write ``RUN_DIR/last.pt`` (model, optimizer, step, config, RNG).
    ``extra``: JSON-able loop state; ``aux``: tensors of training-only parts (state dicts)."""
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
    if aux:
        state["aux"] = aux
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    path = run_dir / "last.pt"
    tmp = run_dir / ".last.pt.part"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu"):
    """``torch.load(path, weights_only=True)`` with one-line :class:`ModelError` failures.

    Only tensors and plain containers (dict, list, tuple, str, numbers, OrderedDict,
    torch sizes and dtypes) are accepted.  A file whose pickle names any other global
    (``posix.system``, ``builtins.eval``, a custom class) is refused: the message names
    the file and the global and says it was not run.  Empty, truncated and non-torch
    files are refused with a short reason.  Never falls back to unsafe loading.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ModelError(f"{path}: cannot read ({err.strerror or err})") from None
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, expected a checkpoint file")
    if size == 0:
        raise ModelError(f"{path}: file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the one line below says enough
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        bad = _blocked_global(path, str(err))
        if bad:
            raise ModelError(f"{path}: refused to load: it holds Python code ({bad}), which was not run; "
                             "only tensors and plain containers are accepted") from None
        raise ModelError(f"{path}: not a readable checkpoint (corrupt, or not written by torch.save: "
                         f"{_unpickle_reason(str(err))})") from None
    except Exception as err:  # noqa: BLE001 - zip, EOF, storage errors: all mean "a corrupt file"
        raise ModelError(f"{path}: not a readable checkpoint (corrupt or truncated: {_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[0] if lines else type(err).__name__)[:120]


def _unpickle_reason(message: str) -> str:
    """The informative line of torch's weights-only error (its advice to disable safe loading is dropped)."""
    m = re.search(r"(Unsupported operand \S+|WeightsUnpickler error: [^\n]+)", message)
    return m.group(1).strip()[:120] if m else "unsupported pickle content"


def _blocked_global(path: Path, message: str) -> str | None:
    """The global a weights-only load refused, from torch's message or, failing that, from the pickle's opcodes."""
    m = re.search(r"GLOBAL ([\w.]+)", message)
    if m:
        name = m.group(1)
        return name if "." in name else f"builtins.{name}"
    allowed = _allowed_globals()
    blocked = [name for name in _pickle_globals(path) if name not in allowed]
    # name the most telling one: code outside torch (os.system) before torch internals
    return next((n for n in blocked if not n.startswith("torch.")), blocked[0] if blocked else None)


def _allowed_globals() -> set[str]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return set(_get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - other torch versions
        return {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"}


def _pickle_globals(path: Path, limit: int = 4) -> list[str]:
    """``module.name`` of every global the pickle(s) in ``path`` reference, read with
    :mod:`pickletools` (which parses opcodes and executes nothing).  Handles the zip
    format of ``torch.save`` (``*/data.pkl``) and plain / legacy pickle streams."""
    blobs: list[bytes] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")][:limit]
        else:
            blobs = [path.read_bytes()[: 64 * 2**20]]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return []
    names: list[str] = []
    for blob in blobs:
        stream = io.BytesIO(blob)
        for _ in range(limit):  # a legacy torch file is several pickles in a row
            strings: list[str] = []
            memo: dict = {}
            try:
                for op, arg, _pos in pickletools.genops(stream):  # stops after STOP
                    if op.name in ("GLOBAL", "INST"):
                        names.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        names.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str) and ("UNICODE" in op.name or op.name.endswith("STRING")):
                        strings.append(arg)
                    elif op.name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                        memo[arg] = strings[-1]
                    elif op.name == "MEMOIZE" and strings:
                        memo[len(memo)] = strings[-1]
                    elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
                        strings.append(memo[arg])
            except (ValueError, EOFError, UnicodeDecodeError, IndexError, KeyError):
                break
    return names


def load_training_state(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict | None:
    """``RUN_DIR/last.pt`` as a dict (``None`` if absent), loaded by :func:`safe_torch_load`.

    Raises :class:`ModelError` (one line) when the file is unsafe, corrupt, or not a
    vcconv training state (a dict with a ``model`` state dict and a JSON ``config``).
    """
    path = Path(run_dir) / "last.pt"
    if not path.exists():
        return None
    return read_training_state(path, map_location)


def read_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A training-state file (``last.pt`` or a renamed copy) as a dict; see :func:`load_training_state`."""
    path = Path(path)
    state = safe_torch_load(path, map_location)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "config" not in state:
        raise ModelError(f"{path}: not a vcconv training state (expected a dict with 'model' and 'config')")
    bad = [k for k, v in state["model"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{path}: 'model' entry '{bad[0]}' is not a tensor")
    state["config"] = _json_field(path, "config", state["config"])
    state["extra"] = _json_field(path, "extra", state.get("extra", "{}"))
    return state


def _json_field(path: Path, key: str, value) -> dict:
    """A JSON-object field of a checkpoint (a string, or a dict already) as a dict; one-line error otherwise."""
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value)
    except (TypeError, ValueError):
        raise ModelError(f"{path}: its '{key}' entry is not valid JSON") from None
    if not isinstance(out, dict):
        raise ModelError(f"{path}: its '{key}' entry is not a JSON object")
    return out


def config_from(path: str | Path, d: dict) -> RunConfig:
    """:meth:`RunConfig.from_dict` for a config read from ``path``; any problem is one :class:`ModelError` line."""
    from vcconv.errors import ConfigError

    try:
        return RunConfig.from_dict(d)
    except ConfigError as err:
        raise ModelError(f"{path}: its config is not valid ({err})") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise ModelError(f"{path}: its config is not valid ({_first_line(err)})") from None


def meta_config(path: str | Path, meta: dict) -> RunConfig:
    """The :class:`RunConfig` in a safetensors file's metadata (``meta["config"]``, JSON)."""
    if "config" not in meta:
        raise ModelError(f"{path}: safetensors file has no vcconv config in its metadata")
    return config_from(path, _json_field(Path(path), "config", meta["config"]))


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
        cfg = config_from(path / "last.pt", state["config"])
        weights = state["model"]
    elif path.suffix == ".safetensors":
        weights, meta = read_safetensors(path)
        cfg = meta_config(path, meta)
    elif path.suffix == ".pt":
        if not path.is_file():
            raise ModelError(f"{path}: file not found")
        state = read_training_state(path)
        cfg = config_from(path, state["config"])
        weights = state["model"]
    else:
        raise ModelError(f"{path}: expected a .safetensors file or a run directory")
    try:
        model = build_model(cfg.model_kind, cfg.model)
    except VcconvError as err:
        raise ModelError(f"{path}: its config does not describe a model this version can build ({err})") from None
    except Exception as err:  # noqa: BLE001 - a config a file brings is user input
        raise ModelError(f"{path}: its config does not describe a model this version can build "
                         f"({_first_line(err)})") from None
    own = model.state_dict()
    weights = {k: (v.to(own[k].dtype) if k in own else v) for k, v in weights.items()}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{path}: weights do not match the model config ({str(err).splitlines()[0]})") from None
    return model.to(dev).eval(), cfg


def export_model(source: str | Path, output: str | Path, *, fp16: bool = True, strength: float | None = None,
                 spectrum_match: float | None = None, source_mix: float | None = None,
                 spectrum_spread: float | None = None, source_mix_high: float | None = None,
                 source_mix_split_hz: float | None = None, adapt_steps: int | None = None,
                 adapt_lr: float | None = None, adapt_reg: float | None = None) -> dict:
    """Write released weights for ``source`` (run dir or safetensors) and check what fp16 costs.
    ``strength`` / ``spectrum_match`` / ``spectrum_spread`` / ``source_mix`` / ``source_mix_high`` /
    ``source_mix_split_hz`` / ``adapt_steps`` / ``adapt_lr`` / ``adapt_reg``: conversion defaults stored with the model (``None``: keep the source's;
    a ``source_mix`` given without ``source_mix_high`` drops a stored high-band share).

    Returns ``{"bytes", "params", "max_diff"}``: ``max_diff`` is the largest absolute difference
    of the converted log-mel between the exported and the original weights on a fixed test input.
    """
    model, cfg = load_model_file(source, "cpu")
    if getattr(model, "mel_disc", None) is not None:  # training-only: not released
        model.drop_training_parts()
        cfg.model["mel_gan_weight"] = 0.0
    if strength is not None:
        cfg.convert["strength"] = check_strength(strength)
    if spectrum_match is not None:
        cfg.convert["spectrum_match"] = check_fraction(spectrum_match, "--spectrum-match")
    if source_mix is not None:
        cfg.convert["source_mix"] = check_fraction(source_mix, "--source-mix")
        if source_mix_high is None:
            cfg.convert.pop("source_mix_high", None)
    if source_mix_high is not None:
        cfg.convert["source_mix_high"] = check_fraction(source_mix_high, "--source-mix-high")
    if source_mix_split_hz is not None:
        cfg.convert["source_mix_split_hz"] = check_split_hz(source_mix_split_hz, cfg.audio)
    if spectrum_spread is not None:
        cfg.convert["spectrum_spread"] = check_fraction(spectrum_spread, "--spectrum-spread")
    store_adaptation(cfg.convert, adapt_steps, adapt_lr, adapt_reg)
    out = save_safetensors(model, cfg, output, fp16=fp16)
    reloaded, _ = load_model_file(out, "cpu")
    gen = torch.Generator().manual_seed(0)
    n_mels = cfg.audio.n_mels
    src = torch.randn(1, n_mels, 200, generator=gen) * 2 - 6
    ref = torch.randn(1, n_mels, 150, generator=gen) * 2 - 6
    extra = {}
    if cfg.model.get("content_input", "mel") != "mel":  # front-end features: a fixed random stand-in
        from vcconv.models.frontends import feature_dim

        extra["features"] = torch.randn(1, feature_dim(cfg.model["content_input"], n_mels), 200, generator=gen)
    with torch.no_grad():
        diff = (model(src, ref, **extra) - reloaded(src, ref, **extra)).abs().max().item() if hasattr(model, "speaker") else 0.0
    return {"bytes": out.stat().st_size, "params": sum(p.numel() for p in model.parameters()), "max_diff": diff}


def catch_stop_signals(flag: list[int]) -> dict:
    """SIGTERM / SIGINT end the loop after the current step, so the run checkpoints before exiting."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda signum, frame: flag.append(signum))
    return previous


def restore_signals(previous: dict) -> None:
    """Put back the handlers that :func:`catch_stop_signals` replaced."""
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)
