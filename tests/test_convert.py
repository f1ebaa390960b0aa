"""End-to-end conversion with the shipped weights (they are committed under pretrained/)."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET = ROOT / "examples" / "source_male.wav", ROOT / "examples" / "target_female.wav"
pytestmark = pytest.mark.skipif(not (ROOT / "pretrained" / "adain-base.safetensors").exists(), reason="no shipped model")


def _median_f0(path):
    from vcconv.audio import load_audio
    from vcconv.eval.signal import f0_track

    f0, voiced = f0_track(load_audio(path, 16000), 16000)
    return float(np.nanmedian(f0[voiced]))


def test_convert_moves_pitch_towards_target_and_pitch_shift_doubles_it(tmp_path):
    pytest.importorskip("pyworld")
    from vcconv.convert import convert

    out0, out12 = tmp_path / "a.wav", tmp_path / "b.wav"
    convert(SOURCE, TARGET, out0)
    convert(SOURCE, TARGET, out12, pitch_shift=12.0)
    src, tgt, f0, f12 = _median_f0(SOURCE), _median_f0(TARGET), _median_f0(out0), _median_f0(out12)
    assert abs(np.log(f0 / tgt)) < abs(np.log(src / tgt)) / 2  # male source -> female target range
    assert 1.8 < f12 / f0 < 2.2


def test_pitch_shift_with_griffin_lim_is_a_clear_error(tmp_path):
    from vcconv.convert import convert
    from vcconv.errors import ModelError

    with pytest.raises(ModelError, match="pitch-shift"):
        convert(SOURCE, TARGET, tmp_path / "x.wav", vocoder="griffinlim", pitch_shift=3.0)


def test_refuses_to_write_over_an_input(tmp_path):
    import shutil

    from vcconv.convert import convert
    from vcconv.errors import ModelError

    src = tmp_path / "s.wav"
    shutil.copy(SOURCE, src)
    before = src.read_bytes()
    with pytest.raises(ModelError, match="over an input"):
        convert(src, TARGET, src)
    assert src.read_bytes() == before
