"""The audio front end on tiny made-up files: bad input, odd formats, DSP, atomic writes, CLI errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import BAD_CASES, DURATION, tone, write_bad_file, run_main

from vcconv.audio import (
    AudioConfig,
    audio_info,
    load_audio,
    log_mel,
    normalize_loudness,
    save_audio,
    trim_silence,
)
from vcconv.errors import AudioError

SR = 16000


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_gives_one_line_naming_it(bad_audio, case):
    path = bad_audio[case]
    with pytest.raises(AudioError) as info:
        load_audio(path)
    msg = str(info.value)
    assert path.name in msg
    assert BAD_CASES[case] in msg
    assert "\n" not in msg
    assert info.value.path == str(path)


@pytest.mark.parametrize("case", ["empty", "truncated", "non_audio"])
def test_header_check_catches_broken_files(bad_audio, case):
    with pytest.raises(AudioError, match=BAD_CASES[case]):
        audio_info(bad_audio[case])


def test_truncated_wav_is_not_silently_shortened(bad_audio):
    # libsndfile alone would return the half that is there; the header check refuses it
    with pytest.raises(AudioError, match=r"holds only 0\.1\d+ s of the 0\.300 s"):
        load_audio(bad_audio["truncated"])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


def test_header_only_wav_with_streaming_size(tmp_path):
    # a header with data size 0 (streamed writer) and no samples: "no audio samples", not "truncated"
    p = tmp_path / "hdr.wav"
    sf.write(str(p), np.zeros(0, np.float32), SR, subtype="PCM_16")
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(p)


# ------------------------------------------------------------------ odd but valid


@pytest.mark.parametrize("case", ["pcm_u8", "six_channel", "sr8k", "sr192k", "flac24"])
def test_odd_files_load_as_mono_16k(odd_audio, case):
    wav = load_audio(odd_audio[case], SR)
    assert wav.dtype == np.float32
    assert wav.ndim == 1
    assert abs(wav.shape[0] - int(DURATION * SR)) <= 2
    assert 0.2 < np.abs(wav).max() <= 1.0  # the 0.3-amplitude tone survived downmix / resampling


def test_keep_native_rate(odd_audio):
    wav = load_audio(odd_audio["sr8k"], sample_rate=None)
    assert wav.shape == (int(DURATION * 8000),)


def test_audio_info_reads_header(odd_audio):
    info = audio_info(odd_audio["six_channel"])
    assert info["channels"] == 6 and info["sample_rate"] == SR
    assert info["duration"] == pytest.approx(DURATION)


# ------------------------------------------------------------------ DSP


def test_log_mel_shape_and_batch():
    cfg = AudioConfig()
    a, b = tone(220, 0.25), tone(440, 0.25)
    n = a.shape[0]
    single = log_mel(a, cfg)
    assert single.shape == (cfg.n_mels, n // cfg.hop_length + 1) == (80, n // 256 + 1)
    assert single.dtype == torch.float32
    batch = log_mel(np.stack([a, b]), cfg)
    assert batch.shape == (2, 80, n // 256 + 1)
    torch.testing.assert_close(batch[0], single, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch[1], log_mel(b, cfg), atol=1e-4, rtol=1e-4)


def test_trim_silence_cuts_both_ends():
    silence = np.zeros(int(0.4 * SR), np.float32)
    wav = np.concatenate([silence, tone(300, 0.3), silence])
    out = trim_silence(wav, top_db=40, pad_s=0.05, sample_rate=SR)
    # 0.3 s of tone + at most 2 x (50 ms pad + one analysis frame)
    assert 0.3 * SR <= out.shape[0] <= (0.3 + 0.1 + 2 * 1024 / SR) * SR
    assert np.abs(out[: int(0.01 * SR)]).max() < 1e-6  # the pad is kept


def test_normalize_loudness_hits_target():
    wav = np.concatenate([np.zeros(int(0.2 * SR), np.float32), tone(200, 0.5, amp=0.02)])
    out = normalize_loudness(wav, target_dbfs=-23.0)
    active = out[int(0.2 * SR) :]
    rms_db = 20 * np.log10(np.sqrt(np.mean(active**2)))
    assert rms_db == pytest.approx(-23.0, abs=0.5)
    assert np.abs(out).max() <= 0.95 + 1e-6


def test_normalize_loudness_caps_peak():
    clicks = np.zeros(SR // 2, np.float32)
    clicks[::4000] = 0.01
    out = normalize_loudness(clicks, target_dbfs=-3.0, peak_limit=0.95)
    assert np.abs(out).max() == pytest.approx(0.95, abs=1e-4)


# ------------------------------------------------------------------ writing


def test_save_audio_round_trip_and_no_part_files(tmp_path):
    p = save_audio(tmp_path / "sub" / "x.wav", tone(), SR)
    back = load_audio(p, SR)
    np.testing.assert_allclose(back, tone(), atol=1 / 2**15 * 2)
    assert [f.name for f in p.parent.iterdir()] == ["x.wav"]
    with pytest.raises(AudioError, match="exists already"):
        save_audio(p, tone(), SR, overwrite=False)


def test_save_audio_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    p = save_audio(tmp_path / "x.wav", tone(), SR)
    before = p.read_bytes()

    def broken_write(file, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF partial")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_audio(p, tone(440), SR)
    assert p.read_bytes() == before  # the old file is intact
    assert [f.name for f in tmp_path.iterdir()] == ["x.wav"]  # no .part left behind


# ------------------------------------------------------------------ CLI




def _corpus_with_bad_files(root, write_tone):
    for spk, freq in (("alice", 220), ("bob", 330)):
        for i in range(3):
            write_tone(root / spk / f"{spk}_{i}.wav", freq=freq)
    for case in BAD_CASES:
        write_bad_file(root / "bob" / f"{case}.wav", case)
    return root


def test_cli_prepare_skips_and_lists_bad_files(tmp_path, write_tone, capsys):
    root = _corpus_with_bad_files(tmp_path / "corpus", write_tone)
    manifest = tmp_path / "out" / "manifest.tsv"
    code, out, err = run_main(["data", "prepare", str(root), "-o", str(manifest), "--n-test-speakers", "1"], capsys)
    assert code == 0, err
    assert "Traceback" not in out + err
    for case in BAD_CASES:
        assert f"{case}.wav" in out
    assert f"skipped {len(BAD_CASES)} file(s)" in out
    assert manifest.is_file() and (tmp_path / "out" / "manifest_report.tsv").is_file()


def test_cli_bad_input_exits_2_with_one_line(tmp_path, bad_audio, capsys):
    # a corpus whose only file is unusable: one red line naming the file, exit 2
    root = tmp_path / "c"
    write_bad_file(root / "alice" / "broken.wav", "non_audio")
    code, out, err = run_main(["data", "prepare", str(root), "-o", str(tmp_path / "m.tsv")], capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "broken.wav" in lines[0] and "not an audio file" in lines[0]
    assert "Traceback" not in out + err


def test_cli_refuses_to_overwrite(tmp_path, write_tone, capsys):
    root = tmp_path / "c"
    write_tone(root / "alice" / "a.wav")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("keep me\n")
    code, _, err = run_main(["data", "prepare", str(root), "-o", str(manifest), "--no-cache"], capsys)
    assert code == 2 and "m.tsv" in err and "--force" in err
    assert manifest.read_text() == "keep me\n"


def test_cli_subprocess_bad_file_no_traceback(tmp_path, bad_audio):
    proc = subprocess.run(
        [sys.executable, "-m", "vcconv", "data", "prepare", str(bad_audio["empty"]), "-o", str(tmp_path / "m.tsv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "empty.wav" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("argv, needle", [
    (["convert"], "Missing argument"),
    (["convert", "x.wav", "--bogus-option"], "No such option"),
    (["no-such-command"], "No such command"),
])
def test_cli_usage_errors_exit_2_without_traceback(argv, needle, capsys):
    # typer vendors click in recent releases: the usage-error path must not need `import click`
    code, out, err = run_main(argv, capsys)
    assert code == 2
    assert needle in out + err
    assert "Traceback" not in out + err and "ModuleNotFoundError" not in out + err


def test_cli_info_lists_models(tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    from vcconv.system import pretrained_dir, system_info

    save_file({"w": torch.zeros(2)}, str(tmp_path / "tiny_vc.safetensors"), metadata={"kind": "adain_vc"})
    monkeypatch.setenv("VCCONV_PRETRAINED", str(tmp_path))
    facts = system_info()
    assert {"vcconv", "python", "torch", "torchaudio", "device", "threads", "cpu_count", "models"} <= set(facts)
    assert facts["device"] == "cpu" or facts["device"].startswith("cuda:0 (")
    assert {"name": "tiny_vc", "kind": "adain_vc", "path": str(tmp_path / "tiny_vc.safetensors")} in facts["models"]
    assert pretrained_dir().name == "pretrained"
    code, out, err = run_main(["info"], capsys)
    assert code == 0, err
    assert "device" in out and "tiny_vc" in out and "adain_vc" in out


def test_package_versions_and_fingerprints_tell_inputs_apart(tmp_path):
    from vcconv.system import file_fingerprints, package_versions

    versions = package_versions(("torch", "no-such-distribution-xyz"))
    assert versions["torch"] == torch.__version__.split("+")[0] and versions["no-such-distribution-xyz"] == "missing"
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    a.write_bytes(b"one"); b.write_bytes(b"one"); c.write_bytes(b"two")
    prints = file_fingerprints([a, b, c, tmp_path / "gone.wav"])
    assert prints[str(a)] == prints[str(b)] != prints[str(c)]
    assert len(prints[str(a)]) == 12 and prints[str(tmp_path / "gone.wav")] == "unreadable"
