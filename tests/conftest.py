"""Shared fixtures: tiny made-up audio files (sine tones, fractions of a second), good and bad.

Nothing here calls a TTS engine or needs a GPU; every file is written into
``tmp_path`` by the test that asks for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DURATION = 0.3  # seconds of every tone


def tone(freq: float = 220.0, duration: float = DURATION, sr: int = 16000, channels: int = 1, amp: float = 0.3):
    """A sine tone, float32 ``(N,)`` or ``(N, channels)``."""
    t = np.arange(int(round(duration * sr))) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def _write(path: Path, data: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


@pytest.fixture
def write_tone():
    """``write_tone(path, freq=220, duration=0.3, sr=16000, channels=1, subtype=None) -> Path``."""

    def write(path, freq=220.0, duration=DURATION, sr=16000, channels=1, subtype=None, amp=0.3):
        return _write(Path(path), tone(freq, duration, sr, channels, amp), sr, subtype)

    return write


def write_bad_file(path: Path, case: str) -> Path:
    """Write one unusable file: empty, truncated, non_audio, silent, nan, one_sample."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":  # header declares 0.3 s, the file holds half of it (copy cut short)
        _write(path, tone(), 16000, "PCM_16")
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) // 2])
    elif case == "non_audio":
        path.write_text("this is a transcript, not a sound file\n" * 20)
    elif case == "silent":
        _write(path, np.zeros(int(DURATION * 16000), np.float32), 16000, "PCM_16")
    elif case == "nan":
        _write(path, np.full(int(DURATION * 16000), np.nan, np.float32), 16000, "FLOAT")
    elif case == "one_sample":
        _write(path, tone()[:1], 16000, "PCM_16")
    else:
        raise ValueError(case)
    return path


# case -> words the one-line error must contain (besides the file name)
BAD_CASES = {
    "empty": "empty",
    "truncated": "truncated",
    "non_audio": "not an audio file",
    "silent": "silent",
    "nan": "NaN",
    "one_sample": "too short",
}


@pytest.fixture
def bad_audio(tmp_path) -> dict[str, Path]:
    """``{case: path}`` for every case of :data:`BAD_CASES`, each file named ``<case>.wav``."""
    return {case: write_bad_file(tmp_path / "bad" / f"{case}.wav", case) for case in BAD_CASES}


@pytest.fixture
def odd_audio(tmp_path) -> dict[str, Path]:
    """Unusual but valid 0.3 s files: 8-bit PCM, 6 channels, 8 kHz, 192 kHz, 24-bit FLAC."""
    d = tmp_path / "odd"
    return {
        "pcm_u8": _write(d / "pcm_u8.wav", tone(), 16000, "PCM_U8"),
        "six_channel": _write(d / "six_channel.wav", tone(channels=6), 16000, "PCM_16"),
        "sr8k": _write(d / "sr8k.wav", tone(sr=8000), 8000, "PCM_16"),
        "sr192k": _write(d / "sr192k.wav", tone(sr=192000), 192000, "PCM_24"),
        "flac24": _write(d / "flac24.flac", tone(sr=48000), 48000, "PCM_24"),
    }


TONE_SEGMENTS = [(0.0, 0.1, "sil"), (0.1, 0.35, "aa"), (0.35, 0.6, "iy"), (0.6, 0.85, "s")]
TONE_PHONE_HZ = {"aa": 300.0, "iy": 700.0, "s": 1500.0}


def make_tone_corpus(root: Path, speakers=(("a", 1.0, "train"), ("b", 1.3, "train"), ("c", 1.6, "test")),
                     n_utts: int = 4, valid: bool = False) -> Path:
    """A tiny aligned corpus: one tone per 'phone', a speaker = a frequency scale.

    Writes ``root/<spk>/<spk><k>.wav`` + ``.phones`` and returns ``root/manifest.tsv``.
    With ``valid`` the last utterance of every train speaker goes to the ``valid`` split.
    """
    from vcconv.data.manifest import Utterance, write_manifest
    from vcconv.data.phones import write_alignment

    sr = 16000
    rows = []
    for n, (spk, scale, split) in enumerate(speakers):
        for k in range(n_utts):
            rng = np.random.default_rng(10 * n + k)
            parts = [np.zeros(int(0.1 * sr), np.float32)]
            for start, end, ph in TONE_SEGMENTS[1:]:
                t = np.arange(int(round((end - start) * sr))) / sr
                f = TONE_PHONE_HZ[ph] * scale * rng.uniform(0.97, 1.03)
                parts.append((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32))
            wav, phones = root / spk / f"{spk}{k}.wav", root / spk / f"{spk}{k}.phones"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), np.concatenate(parts), sr)
            write_alignment(phones, TONE_SEGMENTS)
            this_split = "valid" if (valid and split == "train" and k == n_utts - 1) else split
            rows.append(Utterance(f"{spk}{k}", spk, str(wav), 0.85, "", str(phones), this_split))
    return write_manifest(rows, root / "manifest.tsv")


def run_main(argv, capsys) -> tuple[int, str, str]:
    """Run the CLI in-process: ``(exit code, stdout, stderr)``; arguments may be paths."""
    from vcconv.cli import main

    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err
