"""One shared phone set (ARPAbet, 39 phones + ``sil``) and maps from each engine's labels.

Alignment files are TSV with one row per phone: ``start<TAB>end<TAB>phone`` in seconds.
"""

from __future__ import annotations

from pathlib import Path

ARPABET = (
    "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z zh"
).split()
PHONES = ("sil", *ARPABET)
PHONE_TO_ID = {p: i for i, p in enumerate(PHONES)}

# flite / festival (CMU "radio" phone set) -> shared set
_CMU_EXTRA = {
    "ax": "ah", "axr": "er", "dx": "d", "el": "l", "em": "m", "en": "n", "nx": "n", "ix": "ih",
    "pau": "sil", "h#": "sil", "brth": "sil", "#": "sil", "ssil": "sil",
}

# espeak-ng English phoneme mnemonics -> shared set
_ESPEAK = {
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "f": "f", "v": "v", "T": "th", "D": "dh",
    "s": "s", "z": "z", "S": "sh", "Z": "zh", "h": "hh", "m": "m", "n": "n", "N": "ng", "l": "l", "r": "r",
    "w": "w", "j": "y", "tS": "ch", "dZ": "jh", "t#": "t", "?": "t", "n-": "n", "l-": "l", "r-": "r",
    "x": "k", "W": "w", "C": "hh",
    "a": "ae", "aa": "ae", "A:": "aa", "A@": "aa", "A": "aa", "0": "aa", "E": "eh", "e@": "eh", "e": "eh",
    "I": "ih", "I#": "ih", "I2": "ih", "i": "iy", "i:": "iy", "i@": "ih", "i@3": "ih", "O:": "ao", "O@": "ao",
    "o@": "ao", "O": "ao", "U": "uh", "U@": "uh", "u:": "uw", "u": "uw", "V": "ah", "@": "ah", "@2": "ah",
    "@5": "ah", "@L": "ah", "a#": "ah", "3:": "er", "3": "er", "@r": "er", "aI": "ay", "aI@": "ay",
    "aI3": "ay", "aU": "aw", "aU@": "aw", "eI": "ey", "oU": "ow", "oU#": "ow", "OI": "oy", "o": "ow",
}


def map_cmu(label: str) -> str:
    """Map a flite/festival phone label to the shared set (``spn`` if unknown)."""
    label = label.strip().lower()
    if label in PHONE_TO_ID:
        return label
    return _CMU_EXTRA.get(label, "spn")


def map_espeak(label: str) -> str:
    """Map an espeak-ng phoneme mnemonic to the shared set (``spn`` if unknown)."""
    label = label.strip().strip("'',%=")
    if not label or label.startswith("_"):
        return "sil"
    return _ESPEAK.get(label, "spn")


def write_alignment(path: str | Path, segments: list[tuple[float, float, str]]) -> None:
    """Write ``[(start_s, end_s, phone), ...]`` as TSV."""
    lines = [f"{s:.4f}\t{e:.4f}\t{p}" for s, e, p in segments if e > s]
    Path(path).write_text("\n".join(lines) + "\n")


def read_alignment(path: str | Path) -> list[tuple[float, float, str]]:
    """Read a TSV alignment written by :func:`write_alignment`."""
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        s, e, p = line.split("\t")
        out.append((float(s), float(e), p))
    return out


def frame_labels(
    segments: list[tuple[float, float, str]], n_frames: int, hop_s: float, offset_s: float = 0.0
) -> list[int]:
    """Phone id per frame (centre time ``i * hop_s + offset_s``); -1 where no known phone covers it.

    ``offset_s`` is the time of the first frame in the original file (e.g. after silence trimming).
    """
    labels = [-1] * n_frames
    j = 0
    for i in range(n_frames):
        t = i * hop_s + offset_s
        while j < len(segments) and segments[j][1] <= t:
            j += 1
        if j < len(segments) and segments[j][0] <= t:
            labels[i] = PHONE_TO_ID.get(segments[j][2], -1)
    return labels
