"""CPU thread choice: cores other processes keep busy are left to them."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vcconv import system

ROOT = Path(__file__).resolve().parent.parent

STAT = """cpu  400 0 200 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 300 0 150 500 0 0 0 0 0 0
intr 12345
"""


def test_cpu_ticks_sums_only_the_allowed_cpus():
    assert system._cpu_ticks(STAT, {0}) == (150, 650)
    assert system._cpu_ticks(STAT, {0, 1}) == (600, 1600)
    assert system._cpu_ticks(STAT, {7}) == (0, 0)


def test_requested_threads_are_capped_at_the_available_cores():
    cores = system.available_cores()
    assert system.cpu_threads(1) == 1
    assert system.cpu_threads(cores + 5) == cores
    assert system.cpu_threads(0, world_size=cores * 4) == 1


@pytest.mark.parametrize("busy, cores, expected", [(0.0, 2, 2), (0.1, 2, 2), (1.0, 2, 1), (1.9, 2, 1),
                                                   (2.0, 4, 2), (None, 4, 4), (0.9, 8, 7)])
def test_adapt_to_load_leaves_busy_cores_alone(monkeypatch, busy, cores, expected):
    monkeypatch.setattr(system, "available_cores", lambda: cores)
    monkeypatch.setattr(system, "busy_cores", lambda window_s=0.05: busy)
    assert system.cpu_threads(0, adapt_to_load=True) == expected
    assert system.cpu_threads(0) == cores  # without adapt_to_load the load is not looked at
    assert system.cpu_threads(3, adapt_to_load=True) == min(3, cores)  # an explicit request wins


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc/stat")
def test_busy_cores_sees_a_spinning_process():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # let it start spinning
        busy = system.busy_cores(window_s=0.3)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and busy > 0.6


def test_torch_threads_restores_the_previous_count():
    before = torch.get_num_threads()
    with system.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not (ROOT / "pretrained" / "adain-base.safetensors").exists(), reason="no shipped model")
def test_conversion_reports_the_threads_it_chose(monkeypatch):
    from vcconv.convert import Converter
    from vcconv.errors import ModelError

    src, ref = ROOT / "examples" / "source_male.wav", ROOT / "examples" / "target_female.wav"
    monkeypatch.setattr(system, "available_cores", lambda: 2)
    monkeypatch.setattr(system, "busy_cores", lambda window_s=0.05: 1.0)
    assert Converter(vocoder="griffinlim:2", device="cpu").convert(src, [ref]).threads == 1
    assert Converter(vocoder="griffinlim:2", device="cpu", threads=2).convert(src, [ref]).threads == 2
    with pytest.raises(ModelError, match="threads"):
        Converter(vocoder="griffinlim:2", device="cpu", threads=-1)
    # the load is measured once, then reused for a few seconds (a loop over short files)
    calls = []
    monkeypatch.setattr(system, "busy_cores", lambda window_s=0.05: calls.append(1) or 0.0)
    conv = Converter(vocoder="griffinlim:2", device="cpu")
    assert [conv.convert(src, [ref]).threads for _ in range(3)] == [2, 2, 2]
    assert len(calls) == 1


def test_written_weights_and_audio_get_the_umask_mode_not_0600(tmp_path):
    import os
    import stat

    import numpy as np
    import torch

    from vcconv.audio import save_audio
    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.system import new_file_mode

    old = os.umask(0o027)
    try:
        assert new_file_mode() == 0o640
        weights = save_safetensors(torch.nn.Linear(2, 2), RunConfig(), tmp_path / "m.safetensors")
        wav = save_audio(tmp_path / "a.wav", np.zeros(160, dtype=np.float32), 16000)
    finally:
        os.umask(old)
    for path in (weights, wav):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
