"""Generate a parallel multi-speaker corpus offline from Debian's TTS engines.

Layout written under ``OUT``::

    OUT/voices.json                 every pseudo-speaker's exact settings
    OUT/sentences.txt               the sentence list (line i = utterance i)
    OUT/<speaker>/<speaker>_0001.wav      16-bit PCM at the chosen rate
    OUT/<speaker>/<speaker>_0001.txt      the sentence
    OUT/<speaker>/<speaker>_0001.phones   TSV alignment in the shared phone set

Speakers come from flite (slt, awb, rms, kal16), festival (ked diphone),
espeak-ng variants, and WORLD re-synthesis of the natural-ish voices with a
scaled F0 and a frequency-scaled spectral envelope (a fixed "vocal tract" per
pseudo-speaker).  Generation is resumable: finished utterances are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vcconv.audio import resample, save_audio
from vcconv.data.phones import map_cmu, map_espeak, write_alignment
from vcconv.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceSpec:
    """One pseudo-speaker: an engine voice plus optional WORLD warp.

    ``f0_scale`` multiplies F0; ``formant_scale`` > 1 moves the spectral
    envelope up in frequency (a shorter vocal tract), < 1 down.
    """

    name: str
    engine: str  # flite | festival | espeak
    voice: str
    gender: str  # "F" | "M" (as perceived after warping)
    f0_scale: float = 1.0
    formant_scale: float = 1.0
    rate: float = 1.0  # speaking-rate factor (espeak words per minute scale; flite duration_stretch inverse)
    engine_args: dict = field(default_factory=dict)

    @property
    def warped(self) -> bool:
        return self.f0_scale != 1.0 or self.formant_scale != 1.0


def default_voices() -> list[VoiceSpec]:
    """The shipped roster: 30 pseudo-speakers, 14 female and 16 male."""
    v: list[VoiceSpec] = [
        VoiceSpec("flite_slt", "flite", "slt", "F"),
        VoiceSpec("flite_awb", "flite", "awb", "M"),
        VoiceSpec("flite_rms", "flite", "rms", "M"),
        VoiceSpec("flite_kal16", "flite", "kal16", "M"),
        VoiceSpec("fest_ked", "festival", "ked_diphone", "M"),
        # WORLD warps of the natural-ish voices (moderate, fixed per speaker)
        VoiceSpec("slt_low", "flite", "slt", "M", f0_scale=0.62, formant_scale=0.86),
        VoiceSpec("slt_high", "flite", "slt", "F", f0_scale=1.2, formant_scale=1.08),
        VoiceSpec("slt_deep", "flite", "slt", "F", f0_scale=0.85, formant_scale=0.93),
        VoiceSpec("awb_fem", "flite", "awb", "F", f0_scale=1.6, formant_scale=1.15),
        VoiceSpec("awb_low", "flite", "awb", "M", f0_scale=0.82, formant_scale=0.92),
        VoiceSpec("rms_fem", "flite", "rms", "F", f0_scale=1.9, formant_scale=1.17),
        VoiceSpec("rms_high", "flite", "rms", "M", f0_scale=1.3, formant_scale=1.07),
        VoiceSpec("kal_fem", "flite", "kal16", "F", f0_scale=2.0, formant_scale=1.16),
        VoiceSpec("kal_tract", "flite", "kal16", "M", f0_scale=1.15, formant_scale=0.9),
        VoiceSpec("ked_fem", "festival", "ked_diphone", "F", f0_scale=1.85, formant_scale=1.15),
        VoiceSpec("ked_low", "festival", "ked_diphone", "M", f0_scale=0.85, formant_scale=0.92),
    ]
    # espeak-ng variants: formant synthesis, each variant a distinct voice
    for i in range(1, 8):
        v.append(VoiceSpec(f"espeak_m{i}", "espeak", f"en-us+m{i}", "M"))
    for i in range(1, 6):
        v.append(VoiceSpec(f"espeak_f{i}", "espeak", f"en-us+f{i}", "F"))
    v.append(VoiceSpec("espeak_f4_gb", "espeak", "en+f4", "F", f0_scale=1.1, formant_scale=1.08))
    v.append(VoiceSpec("espeak_m3_tract", "espeak", "en-us+m3", "M", f0_scale=0.9, formant_scale=0.9))
    return v


# ------------------------------------------------------------------ sentences

_FALLBACK_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.",
    "Please call Stella and ask her to bring these things.",
    "We also need a small plastic snake and a big toy frog.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
]

_OK_SENTENCE = re.compile(r"^[A-Za-z][A-Za-z ,.;:'!?-]*[.!?]?$")


def _candidate_sentences() -> Iterable[str]:
    wordnet = Path("/usr/share/wordnet")
    for name in ("data.verb", "data.adj", "data.noun", "data.adv"):
        f = wordnet / name
        if f.exists():
            for line in f.read_text(errors="ignore").splitlines():
                for q in re.findall(r'"([^"]+)"', line):
                    yield q.strip()
    fortunes = Path("/usr/share/games/fortunes")
    if fortunes.is_dir():
        for f in sorted(fortunes.iterdir()):
            if f.suffix or not f.is_file():
                continue
            for entry in f.read_text(errors="ignore").split("\n%\n"):
                entry = " ".join(entry.split())
                if entry:
                    yield entry


def load_sentences(n: int, seed: int = 0, min_words: int = 5, max_words: int = 20) -> list[str]:
    """``n`` distinct English sentences from offline text (WordNet examples, fortunes).

    Filtered to ``min_words``..``max_words`` words of letters and punctuation;
    a seeded shuffle makes the choice repeatable.  Falls back to a small built-in
    list when no text package is installed.
    """
    seen: set[str] = set()
    pool: list[str] = []
    for s in _candidate_sentences():
        s = s.replace("`", "'").strip(" '")
        words = s.split()
        if not (min_words <= len(words) <= max_words) or not _OK_SENTENCE.match(s):
            continue
        key = s.lower()
        if key not in seen:
            seen.add(key)
            s = s[0].upper() + s[1:]
            pool.append(s if s[-1] in ".!?" else s + ".")
    if len(pool) < n:
        for s in _FALLBACK_SENTENCES:
            if s.lower() not in seen:
                seen.add(s.lower())
                pool.append(s)
    pool.sort()
    rng = np.random.default_rng(seed)
    rng.shuffle(pool)
    if len(pool) < n:
        log.warning("only %d sentences available (asked for %d)", len(pool), n)
    return pool[:n]


# -------------------------------------------------------------------- engines

Segments = list[tuple[float, float, str]]


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        raise DataError(f"'{binary}' not found: install it with 'apt-get install {binary}'")


def synth_flite(voice: str, text: str) -> tuple[np.ndarray, int, Segments]:
    """flite: waveform ``(N,)``, sample rate, and phone segments from ``-psdur``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        res = subprocess.run(
            ["flite", "-voice", voice, "-t", text, "-o", str(out), "-psdur"],
            capture_output=True, text=True, check=True,
        )
        import soundfile as sf

        wav, sr = sf.read(str(out), dtype="float32")
    segs: Segments = []
    start = 0.0
    for tok in res.stdout.split():
        if ":" not in tok:
            continue
        label, end = tok.rsplit(":", 1)
        try:
            end_s = float(end)
        except ValueError:
            continue
        segs.append((start, end_s, map_cmu(label)))
        start = end_s
    dur = len(wav) / sr
    segs = [(s, min(e, dur), p) for s, e, p in segs if s < dur]
    return wav, sr, segs


def synth_festival_batch(voice: str, texts: list[str]) -> list[tuple[np.ndarray, int, Segments]]:
    """festival in one scheme batch: one process for many sentences."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{voice})"]
        for i, t in enumerate(texts):
            t = t.replace("\\", " ").replace('"', " ")
            lines.append(f'(set! u (utt.synth (Utterance Text "{t}")))')
            lines.append(f'(utt.save.wave u "{tmp}/{i}.wav" \'riff)')
            lines.append(f'(utt.save.segs u "{tmp}/{i}.segs")')
        script = Path(tmp) / "batch.scm"
        script.write_text("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", str(script)], capture_output=True, check=True)
        results = []
        for i in range(len(texts)):
            wav, sr = sf.read(f"{tmp}/{i}.wav", dtype="float32")
            segs: Segments = []
            start = 0.0
            body = Path(f"{tmp}/{i}.segs").read_text().split("#", 1)[-1]
            for line in body.splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    end_s = float(parts[0])
                    segs.append((start, end_s, map_cmu(parts[2])))
                    start = end_s
            results.append((wav, sr, segs))
    return results


class _Espeak:
    """Minimal ctypes binding of libespeak-ng: synchronous synthesis with phoneme events."""

    _instance: "_Espeak | None" = None

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise DataError("libespeak-ng not found: install it with 'apt-get install espeak-ng'") from None

        class EventId(ctypes.Union):
            _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

        class Event(ctypes.Structure):
            _fields_ = [
                ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", EventId),
            ]

        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))
        synchronous, phoneme_events, dont_exit = 0x02, 0x0001, 0x8000
        self.sample_rate = self.lib.espeak_Initialize(synchronous, 0, None, phoneme_events | dont_exit)
        if self.sample_rate <= 0:
            raise DataError("espeak-ng failed to initialise")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []

        def on_audio(wav, n, events):  # noqa: ANN001 - ctypes callback
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events[i].type != 0:
                if events[i].type == 7:  # phoneme event
                    self._events.append((events[i].sample, events[i].id.string.decode(errors="ignore")))
                i += 1
            return 0

        self._callback = callback_type(on_audio)  # keep a reference alive
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "_Espeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def synth(self, voice: str, text: str, rate_wpm: int = 165) -> tuple[np.ndarray, int, Segments]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"espeak-ng has no voice '{voice}'")
        self.lib.espeak_SetParameter(1, int(rate_wpm), 0)  # espeakRATE
        self._chunks, self._events = [], []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        wav = (np.concatenate(self._chunks) if self._chunks else np.zeros(1, np.int16)).astype(np.float32) / 32768.0
        sr = self.sample_rate
        dur = len(wav) / sr
        segs: Segments = []
        starts = [(s / sr, map_espeak(p)) for s, p in self._events]
        for k, (s, p) in enumerate(starts):
            e = starts[k + 1][0] if k + 1 < len(starts) else dur
            if e > s:
                segs.append((s, min(e, dur), p))
        if segs and segs[0][0] > 0:
            segs.insert(0, (0.0, segs[0][0], "sil"))
        return wav, sr, segs


def world_warp(wav: np.ndarray, sr: int, f0_scale: float, formant_scale: float) -> np.ndarray:
    """WORLD analysis/synthesis with scaled F0 and a frequency-scaled spectral envelope.

    ``(N,)`` -> ``(N',)`` with N' ~= N (same timing, so alignments still hold).
    """
    import pyworld as pw

    x = wav.astype(np.float64)
    f0, t = pw.dio(x, sr, frame_period=5.0, f0_floor=50.0, f0_ceil=600.0)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    if formant_scale != 1.0:
        bins = np.arange(sp.shape[1], dtype=np.float64)
        src = bins / formant_scale
        sp = np.stack([np.interp(src, bins, row, right=row[-1]) for row in sp])
        ap = np.stack([np.interp(src, bins, row, right=row[-1]) for row in ap])
    y = pw.synthesize(f0 * f0_scale, np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, 5.0)
    y = y[: len(wav)]
    peak = float(np.max(np.abs(y))) or 1.0
    return (y / peak * min(peak, 0.95)).astype(np.float32)


# -------------------------------------------------------------------- driver


def utterance_id(speaker: str, index: int) -> str:
    return f"{speaker}_{index + 1:04d}"


def _paths(out: Path, speaker: str, index: int) -> tuple[Path, Path, Path]:
    base = out / speaker / utterance_id(speaker, index)
    return base.with_suffix(".wav"), base.with_suffix(".txt"), base.with_suffix(".phones")


def _synth_many(spec: VoiceSpec, texts: list[str]) -> list[tuple[np.ndarray, int, Segments]]:
    if spec.engine == "flite":
        _require("flite")
        return [synth_flite(spec.voice, t) for t in texts]
    if spec.engine == "festival":
        _require("festival")
        return synth_festival_batch(spec.voice, texts)
    if spec.engine == "espeak":
        eng = _Espeak.get()
        return [eng.synth(spec.voice, t, rate_wpm=int(165 * spec.rate)) for t in texts]
    raise DataError(f"unknown TTS engine '{spec.engine}' (use flite, festival or espeak)")


def _run_job(job: tuple[dict, list[tuple[int, str]], str, int]) -> int:
    """Worker: synthesise one voice's batch of sentences and write wav/txt/phones."""
    spec_d, items, out_s, sample_rate = job
    spec = VoiceSpec(**spec_d)
    out = Path(out_s)
    results = _synth_many(spec, [t for _, t in items])
    for (index, text), (wav, sr, segs) in zip(items, results):
        if spec.warped:
            wav = world_warp(wav, sr, spec.f0_scale, spec.formant_scale)
        wav = resample(wav, sr, sample_rate)
        wav_p, txt_p, ph_p = _paths(out, spec.name, index)
        wav_p.parent.mkdir(parents=True, exist_ok=True)
        txt_p.write_text(text + "\n")
        write_alignment(ph_p, segs)
        save_audio(wav_p, wav, sample_rate)  # last: its presence marks the utterance done
    return len(items)


def synthesize_corpus(
    out_dir: str | Path,
    voices: list[VoiceSpec] | None = None,
    n_sentences: int = 300,
    sample_rate: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    batch_size: int = 25,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Generate (or finish generating) a parallel corpus in ``out_dir``.

    Every voice says the same ``n_sentences`` sentences.  Existing utterances are
    kept, so an interrupted run resumes.  ``progress(done, total)`` is called as
    batches finish.  Returns a summary dict (speakers, utterances, new, skipped).
    """
    import multiprocessing as mp

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    voices = voices if voices is not None else default_voices()
    names = [v.name for v in voices]
    if len(set(names)) != len(names):
        raise DataError("voice names must be unique")
    sentences = load_sentences(n_sentences, seed=seed)
    (out / "sentences.txt").write_text("\n".join(sentences) + "\n")
    meta = {
        "sample_rate": sample_rate,
        "seed": seed,
        "n_sentences": len(sentences),
        "voices": [asdict(v) for v in voices],
        "phone_set": "arpabet39+sil",
    }
    (out / "voices.json").write_text(json.dumps(meta, indent=1))

    jobs = []
    skipped = 0
    for spec in voices:
        todo = [(i, s) for i, s in enumerate(sentences) if not _paths(out, spec.name, i)[0].exists()]
        skipped += len(sentences) - len(todo)
        for k in range(0, len(todo), batch_size):
            jobs.append((asdict(spec), todo[k : k + batch_size], str(out), sample_rate))
    total = sum(len(j[1]) for j in jobs)
    done = 0
    if progress:
        progress(0, total)
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            done += _run_job(job)
            if progress:
                progress(done, total)
    else:
        ctx = mp.get_context("spawn")  # espeak's global state and torch threads: fresh processes
        with ctx.Pool(workers) as pool:
            for n in pool.imap_unordered(_run_job, jobs):
                done += n
                if progress:
                    progress(done, total)
    return {"speakers": len(voices), "sentences": len(sentences), "new": done, "skipped": skipped}
