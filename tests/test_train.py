"""The training loop: CLI, config overrides, resume, DDP under torchrun (2 CPU processes, gloo)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import make_tone_corpus
from vcconv.checkpoint import load_model_file, load_training_state

TINY = ["model.channels=16", "model.content_dim=4", "model.speaker_dim=8", "model.enc_blocks=1",
        "model.dec_blocks=1", "model.spk_blocks=1", "batch_size=4", "segment_frames=24", "reference_frames=24",
        "log_every=2", "val_every=2", "ckpt_every=2", "num_threads=1"]  # fmt: skip


def _sets(items):
    return [a for s in items for a in ("--set", s)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tone_corpus(tmp_path_factory.mktemp("train_tones"), valid=True)


def test_train_cli_resume_and_config(corpus, tmp_path):
    from vcconv.cli import main

    run = tmp_path / "run"
    main(["train", "--data", str(corpus), "--out", str(run), "--max-steps", "4", "--device", "cpu", *_sets(TINY)])
    state = load_training_state(run)
    assert state["step"] == 4
    assert state["config"]["model"]["channels"] == 16 and state["config"]["train"]["batch_size"] == 4
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,time_s,split") and any(",valid," in line for line in log)
    first, _ = load_model_file(run, "cpu")
    w4 = {k: v.clone() for k, v in first.state_dict().items()}

    # resume: continues from step 4 to 6 with the saved config (an override now is ignored for the model)
    main(["train", "--data", str(corpus), "--out", str(run), "--max-steps", "6", "--device", "cpu", *_sets(TINY)])
    assert load_training_state(run)["step"] == 6
    resumed, cfg = load_model_file(run / "model.safetensors", "cpu")
    assert cfg.model["channels"] == 16
    assert any(not torch.equal(w4[k], v) for k, v in resumed.state_dict().items())
    steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert max(steps) == 6 and steps == sorted(steps)


def test_bad_override_is_one_clear_error(corpus, tmp_path, capsys):
    from vcconv.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(corpus), "--out", str(tmp_path / "r"), "--set", "model.not_a_key=3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not_a_key" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_missing_manifest_is_one_clear_error(tmp_path, capsys):
    from vcconv.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(tmp_path / "nope.tsv"), "--out", str(tmp_path / "r"), "--max-steps", "1"])
    assert exc.value.code == 2
    assert "nope.tsv" in capsys.readouterr().err


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_two_cpu_processes_gloo(corpus, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", "29517", "-m", "vcconv", "train", "--data", str(corpus), "--out", str(run),
           "--max-steps", "4", "--device", "cpu", *_sets(TINY)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    state = load_training_state(run)
    assert state["step"] == 4
    model, _ = load_model_file(run / "model.safetensors", "cpu")
    with torch.no_grad():
        out = model(torch.randn(1, 80, 30) - 5, torch.randn(1, 80, 30) - 5)
    assert out.shape == (1, 80, 30) and torch.isfinite(out).all()
    assert json.loads((run / "config.json").read_text())["model_kind"] == "adain"


def test_sigterm_checkpoints_before_exit(corpus, tmp_path):
    import signal
    import time

    run = tmp_path / "sig"
    cmd = [sys.executable, "-m", "vcconv", "train", "--data", str(corpus), "--out", str(run), "--max-steps", "100000",
           "--device", "cpu", *_sets([s for s in TINY if not s.startswith("ckpt_every")] + ["ckpt_every=100000"])]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "log.csv").exists():
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    state = load_training_state(run)
    assert state is not None and state["step"] > 0  # saved on the signal, not by the (huge) ckpt_every
    assert (run / "model.safetensors").is_file()


def test_init_from_keeps_the_architecture_and_adds_an_adversary(corpus, tmp_path, capsys):
    from vcconv.cli import main

    base = tmp_path / "base"
    main(["train", "--data", str(corpus), "--out", str(base), "--max-steps", "2", "--device", "cpu", *_sets(TINY)])
    source, _ = load_model_file(base, "cpu")

    # fine-tune with --set adversarial_weight: the source's tiny architecture is kept (not the defaults),
    # its weights are loaded, and only the new classifier starts fresh
    tuned = tmp_path / "tuned"
    train_only = [s for s in TINY if not s.startswith("model.")]
    main(["train", "--data", str(corpus), "--out", str(tuned), "--max-steps", "1", "--device", "cpu",
          "--init-from", str(base), *_sets(train_only + ["lr=0", "weight_decay=0", "model.adversarial_weight=0.1",
                                                         "model.ae_warmup_steps=0", "model.clf_warmup_steps=0"])])
    model, cfg = load_model_file(tuned, "cpu")
    assert cfg.model["channels"] == 16 and cfg.model["adversarial_weight"] == 0.1
    assert model.classifier is not None
    for k, v in source.state_dict().items():  # lr 0: every inherited tensor is unchanged
        assert torch.equal(model.state_dict()[k], v), k

    # on a corpus with another speaker count the adversary's classifier starts fresh, the rest is inherited
    three = make_tone_corpus(tmp_path / "three", valid=True, speakers=(
        ("a", 1.0, "train"), ("b", 1.3, "train"), ("d", 1.15, "train"), ("c", 1.6, "test")))
    retuned = tmp_path / "retuned"
    main(["train", "--data", str(three), "--out", str(retuned), "--max-steps", "1", "--device", "cpu",
          "--init-from", str(tuned), *_sets(train_only + ["lr=0", "weight_decay=0"])])
    again, cfg2 = load_model_file(retuned, "cpu")
    assert cfg.model["n_speakers"] == 2 and cfg2.model["n_speakers"] == 3
    assert cfg2.model["adversarial_weight"] == 0.1 and again.classifier.out.weight.shape[0] == 3
    for k, v in model.state_dict().items():
        if not k.startswith("classifier."):
            assert torch.equal(again.state_dict()[k], v), k

    # a wider content code: the layers that write and read it start fresh, every other tensor is inherited
    wider = tmp_path / "wider"
    width = source.cfg.content_dim * 2
    main(["train", "--data", str(corpus), "--out", str(wider), "--max-steps", "1", "--device", "cpu",
          "--init-from", str(base), *_sets(train_only + ["lr=0", "weight_decay=0", f"model.content_dim={width}"])])
    widened, _ = load_model_file(wider, "cpu")
    assert widened.cfg.content_dim == width and widened.decoder.inp.weight.shape[1] == width
    fresh = {k for k, v in source.state_dict().items() if widened.state_dict()[k].shape != v.shape}
    assert fresh and all(k.startswith(("content_encoder.mean", "content_encoder.logvar", "decoder.inp")) for k in fresh)
    for k, v in source.state_dict().items():
        if k not in fresh:
            assert torch.equal(widened.state_dict()[k], v), k

    # weights of another architecture are one clear error
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(corpus), "--out", str(tmp_path / "bad"), "--max-steps", "1", "--device", "cpu",
              "--init-from", str(base), *_sets(train_only + ["model.channels=32"])])
    assert exc.value.code == 2 and "do not fit" in capsys.readouterr().err


def test_a_failing_run_gives_back_the_callers_signal_handlers(corpus, tmp_path):
    import signal

    from vcconv.cli.train import build_run_config
    from vcconv.train import train

    cfg = build_run_config("adain", None, TINY, max_steps=6, time_budget=None)
    before = signal.getsignal(signal.SIGINT)

    def fail(step, total, means):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        train(tmp_path / "run", corpus, cfg, device="cpu", progress=fail)
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again in the caller's session
