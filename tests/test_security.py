"""Hostile inputs that must not run code or write outside the folder meant for them.

* checkpoints whose pickle calls ``os.system`` (or names any other global) are refused
  with one line naming the file and the global, at every place a ``.pt`` is read
  (model, vocoder, repr model, ``--init-from``, ``export``, resume);
* a pairs CSV cannot make ``vcconv batch --pairs`` write outside its output folder
  (absolute paths, ``..``, symbolic links), unless ``--allow-outside``.
"""

from __future__ import annotations

import json
import os
import pickle

import pytest
from conftest import run_main
import torch

from vcconv.checkpoint import load_model_file, safe_torch_load, save_safetensors, save_training_state
from vcconv.config import RunConfig
from vcconv.errors import ModelError
from vcconv.models import build_model

TINY = {"channels": 16, "content_dim": 4, "speaker_dim": 8, "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1}


class _RunsShell:
    """Unpickling this calls ``os.system(command)``: what a hostile checkpoint does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evals:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def _tiny_cfg() -> RunConfig:
    return RunConfig(model_kind="adain", model=dict(TINY))


def _evil_run(run_dir, marker, *, plain_pickle: bool = False):
    """A run folder whose ``last.pt`` looks like a training state but would run ``touch marker``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = {"model": build_model("adain", TINY).state_dict(), "config": json.dumps(_tiny_cfg().to_dict()),
             "step": _RunsShell(f"touch {marker}")}
    if plain_pickle:  # protocol 4, not torch's zip: torch's message then does not name the global
        with open(run_dir / "last.pt", "wb") as f:
            pickle.dump(state, f, protocol=4)
    else:
        torch.save(state, run_dir / "last.pt")
    return run_dir




def _assert_refused(err: str, path) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "posix.system" in lines[0] and "was not run" in lines[0], lines[0]
    assert "weights_only" not in err and "trust" not in err


# --------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("plain_pickle", [False, True], ids=["torch-zip", "plain-pickle-protocol-4"])
def test_malicious_last_pt_is_refused_and_not_run(tmp_path, plain_pickle):
    marker = tmp_path / "PWNED"
    run = _evil_run(tmp_path / "run", marker, plain_pickle=plain_pickle)
    for path in (run, run / "last.pt"):
        with pytest.raises(ModelError) as info:
            load_model_file(path, "cpu")
        msg = str(info.value)
        assert msg == (f"{run / 'last.pt'}: refused to load: it holds Python code (posix.system), which was not "
                       "run; only tensors and plain containers are accepted")
    assert not marker.exists()


def test_other_globals_are_named(tmp_path):
    torch.save({"x": _Evals()}, tmp_path / "e.pt")
    with pytest.raises(ModelError, match=r"holds Python code \(builtins\.eval\), which was not run"):
        safe_torch_load(tmp_path / "e.pt")


def test_tensors_and_plain_containers_still_load(tmp_path):
    torch.manual_seed(0)
    model = build_model("adain", TINY)
    save_training_state(tmp_path / "run", model, torch.optim.Adam(model.parameters()), 7, _tiny_cfg())
    loaded, cfg = load_model_file(tmp_path / "run", "cpu")
    assert cfg.model == TINY
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


@pytest.mark.parametrize("content, match", [
    (b"", "file is empty"),
    (os.urandom(600), "not a readable checkpoint"),
    (b"PK\x03\x04" + os.urandom(300), "not a readable checkpoint"),
    ("list", "not a vcconv training state"),
    ("badjson", "'config' entry is not valid JSON"),
    ("badconfig", "its config is not valid"),
    ("badtensor", "is not a tensor"),
])
def test_broken_checkpoints_give_one_line(tmp_path, content, match):
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    if content == "list":
        torch.save([1, 2, 3], path)
    elif content == "badjson":
        torch.save({"model": {}, "config": "{not json"}, path)
    elif content == "badconfig":
        torch.save({"model": {}, "config": json.dumps({"train": {"no_such_key": 1}})}, path)
    elif content == "badtensor":
        torch.save({"model": {"w": [1.0]}, "config": "{}"}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=match) as info:
        load_model_file(path.parent, "cpu")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_safetensors_with_bad_config_metadata(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "m.safetensors"), metadata={"config": "{oops"})
    with pytest.raises(ModelError, match="'config' entry is not valid JSON"):
        load_model_file(tmp_path / "m.safetensors", "cpu")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "k.safetensors"),
              metadata={"config": json.dumps({"model_kind": "no-such-model"})})
    with pytest.raises(ModelError, match="k.safetensors: its config does not describe a model"):
        load_model_file(tmp_path / "k.safetensors", "cpu")


def test_no_unguarded_torch_load_in_the_package():
    """Every torch.load call of vcconv is the one in checkpoint.safe_torch_load, with weights_only=True."""
    import ast
    import pathlib

    import vcconv

    root = pathlib.Path(vcconv.__file__).parent

    def torch_loads(tree):
        return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load" and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]

    everywhere = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        everywhere += [(path.relative_to(root).as_posix(), call.lineno) for call in torch_loads(tree)]
        if path.name == "checkpoint.py":
            (fn,) = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "safe_torch_load"]
            (call,) = torch_loads(fn)
            assert any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in call.keywords)
    assert everywhere == [("checkpoint.py", call.lineno)], everywhere


def test_cli_every_loader_refuses_the_malicious_run(tmp_path, capsys, write_tone):
    marker = tmp_path / "PWNED"
    run = _evil_run(tmp_path / "evil", marker)
    src, ref = write_tone(tmp_path / "s.wav", freq=200), write_tone(tmp_path / "r.wav", freq=400)
    manifest = tmp_path / "manifest.tsv"  # never reached: the checkpoint is refused first
    commands = [
        ["convert", src, "-t", ref, "-o", tmp_path / "o.wav", "--model", run, "--vocoder", "griffinlim:2"],
        ["export", run, "-o", tmp_path / "x.safetensors"],
        ["train", "--data", manifest, "--out", tmp_path / "t", "--init-from", run],
        ["train", "--data", manifest, "--out", run],  # resuming someone else's run folder
        ["vocode", src, "-o", tmp_path / "v.wav", "--vocoder", run],
        ["vocoder", "export", run, "-o", tmp_path / "voc.safetensors"],
        ["repr", "embed", run, src, "-o", tmp_path / "e.npz"],
    ]
    for argv in commands:
        code, _, err = run_main(argv, capsys)
        assert code == 2, (argv, err)
        _assert_refused(err, run / "last.pt")
    assert not marker.exists()
    assert not any((tmp_path / n).exists() for n in ("o.wav", "x.safetensors", "v.wav", "voc.safetensors", "e.npz"))


# ---------------------------------------------------------------------- pairs CSV


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    return save_safetensors(build_model("adain", TINY), _tiny_cfg(), tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.fixture
def escape_setup(tmp_path, write_tone):
    """``tmp/job/pairs.csv`` folder with a source and a reference; ``tmp/outside`` with a file to protect,
    and ``tmp/job/link`` -> ``tmp/outside``."""
    job, outside = tmp_path / "job", tmp_path / "outside"
    write_tone(job / "a.wav", freq=200)
    write_tone(job / "r.wav", freq=400)
    victim = outside / "victim.wav"
    write_tone(victim, freq=900)
    (job / "link").symlink_to(outside, target_is_directory=True)
    return job, outside, victim


ESCAPES = [
    ("{outside}/victim.wav", "is an absolute path outside the output folder"),
    ("{outside}/new.wav", "is an absolute path outside the output folder"),
    ("../outside/victim.wav", "leads through '..' to"),
    ("sub/../../outside/new2.wav", "leads through '..' to"),
    ("link/victim.wav", "leads through a symbolic link to"),
    ("link/../escaped.wav", "leads through '..' to"),  # the kernel resolves link/.. to tmp_path, not job/
]


def test_pairs_outputs_cannot_escape(tmp_path, escape_setup, tiny_model, capsys):
    job, outside, victim = escape_setup
    before = victim.read_bytes()
    rows = ["source,target,output", "a.wav,r.wav,out/fine.wav"]
    rows += [f"a.wav,r.wav,{text.format(outside=outside)}" for text, _ in ESCAPES]
    (job / "pairs.csv").write_text("\n".join(rows) + "\n")
    code, stdout, err = run_main(["batch", "--pairs", job / "pairs.csv", "--model", tiny_model,
                                   "--vocoder", "griffinlim:2", "--threads", "1"], capsys)
    assert code == 1, err
    assert (job / "out" / "fine.wav").is_file()
    assert victim.read_bytes() == before
    assert sorted(p.name for p in outside.iterdir()) == ["victim.wav"]
    assert not (tmp_path / "escaped.wav").exists()
    lines = (job / "pairs.failures.tsv").read_text().splitlines()[1:]
    assert len(lines) == len(ESCAPES)
    for line_no, (_, why) in enumerate(ESCAPES, start=3):
        (line,) = [ln for ln in lines if f"pairs.csv line {line_no}:" in ln]
        assert why in line and "refused, nothing written" in line and "--allow-outside" in line


def test_pairs_output_root_and_allow_outside(tmp_path, escape_setup, tiny_model, capsys):
    from vcconv.batch import convert_pairs

    job, outside, victim = escape_setup
    (job / "pairs.csv").write_text(f"source,target,output\na.wav,r.wav,x.wav\na.wav,r.wav,{outside}/abs_in_root.wav\n")
    s = convert_pairs(job / "pairs.csv", output_root=outside, model=tiny_model, vocoder="griffinlim:2", threads=1)
    assert (s.converted, s.failed) == (2, 0)  # relative outputs are taken from the output root
    assert (outside / "x.wav").is_file() and (outside / "abs_in_root.wav").is_file() and not (job / "x.wav").exists()
    (job / "p2.csv").write_text(f"source,target,output\na.wav,r.wav,{outside}/allowed.wav\n")
    code, _, err = run_main(["batch", "--pairs", job / "p2.csv", "--allow-outside", "--model", tiny_model,
                              "--vocoder", "griffinlim:2", "--threads", "1"], capsys)
    assert code == 0, err
    assert (outside / "allowed.wav").is_file()
    code, _, err = run_main(["batch", job, "-t", job / "r.wav", "-o", tmp_path / "o", "--allow-outside"], capsys)
    assert code == 2 and "--allow-outside only applies to --pairs" in err
