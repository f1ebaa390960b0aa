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
    "*": "d", "l/": "l", "l/2": "l", "r/": "r", "w/": "w", "j/": "y", "IR": "er", "VR": "er", "UR": "uh", "O2": "ao",
}


# festival's British "mrpa" phone set (don_diphone, rab_diphone) -> shared set
_MRPA = {
    "uh": "ah", "e": "eh", "a": "ae", "o": "aa", "i": "ih", "u": "uh", "ii": "iy", "uu": "uw", "oo": "ao",
    "aa": "aa", "@@": "er", "ai": "ay", "ei": "ey", "oi": "oy", "au": "aw", "ou": "ow", "e@": "eh", "i@": "ih",
    "u@": "uh", "@": "ah", "h": "hh", "#": "sil",
    **{c: c for c in "p t k b d g s z sh zh f v th dh ch jh m n ng l y r w".split()},
}

# MBROLA symbols whose sound is clear whatever the voice's table says (syllabic or dark
# l, r-coloured vowels, flap, front rounded vowels)
_MBROLA_FORCE = {"_": "sil", "#": "sil", "R": "r", "r=": "er", "l=": "l", "5": "l", "6": "er", "4": "d", "9": "ah", "2": "ah", "2:": "er"}

# MBROLA symbols that are not espeak-ng English mnemonics and that the voice's espeak
# translation table (mbrola_ph/*_phtrans) does not explain (see mbrola_phone_map)
_MBROLA_FALLBACK = {
    **_MBROLA_FORCE, "L": "l",
    "k_h": "k", "p_h": "p", "t_h": "t", "kh": "k", "ph": "p", "th": "t", "?": "t", "x": "k", "X": "k",
    "OY": "oy", "Ei": "ey", "Au": "aw", "Y": "ih", "u0": "ah", "{:": "ae",
    "a:": "aa", "e:": "ey", "o:": "ow", "E:": "eh", "}:": "uw", "rs": "sh", "C": "hh", "J": "jh", "dj": "jh",
    "tj": "ch", "G": "g", "&": "ae", "$": "ow", "q": "jh", "c": "ch",
}

# IPA (espeak-ng's IPA as piper uses it) -> shared set; multi-character phones first
_IPA = {
    "aɪ": "ay", "aʊ": "aw", "eɪ": "ey", "oʊ": "ow", "əʊ": "ow", "ɔɪ": "oy", "tʃ": "ch", "dʒ": "jh", "ə": "ah", "ɚ": "er", "ɝ": "er", "ɜ": "er", "ɪ": "ih", "ᵻ": "ih", "i": "iy",
    "ɛ": "eh", "e": "ey", "æ": "ae", "a": "aa", "ɑ": "aa", "ɒ": "aa", "ɔ": "ao", "o": "ow", "ʊ": "uh",
    "u": "uw", "ʌ": "ah", "ɐ": "ah", "ð": "dh", "θ": "th", "ʃ": "sh", "ʒ": "zh", "ŋ": "ng", "ɹ": "r",
    "r": "r", "ɾ": "d", "ʔ": "t", "ɡ": "g", "g": "g", "j": "y", "w": "w", "h": "hh", "l": "l", "ɫ": "l",
    "x": "k", "ç": "hh", **{c: c for c in "m n p b t d k f v s z".split()},
}
_IPA_SILENCE = set("^$_.,;:!?—–-…\"'()")
_IPA_STRESS = {"ˈ", "ˌ"}
_IPA_JOINERS = {"ː", "ˑ", "\u0329", "\u0361", "\u032f", "\u0303"}  # length marks and combining diacritics


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


def map_mrpa(label: str) -> str:
    """Map a festival ``mrpa`` phone label (British diphone voices) to the shared set (``spn`` if unknown)."""
    return _MRPA.get(label.strip().lower(), "spn")


def _phtrans_records(path: Path) -> list[tuple[str, str, str, str]]:
    """espeak-ng's compiled MBROLA translation table: ``[(english, next_phoneme, mbrola1, mbrola2)]``.

    The file is one control int32 then records of six little-endian int32 (name,
    next phoneme, MBROLA name, second MBROLA name, percent, control); names are up to
    four characters packed into an int.
    """
    import struct

    raw = path.read_bytes()
    ints = struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])

    def name(v: int) -> str:
        return v.to_bytes(4, "little", signed=True).rstrip(b"\0").decode("latin-1") if v else ""

    return [tuple(name(v) for v in ints[1 + 6 * k : 5 + 6 * k]) for k in range((len(ints) - 1) // 6) if ints[1 + 6 * k]]


def mbrola_phone_map(phtrans: str | Path | None) -> dict[str, str]:
    """MBROLA symbol -> shared phone for one espeak-ng voice, from its translation table.

    espeak-ng turns English phonemes into the MBROLA voice's own inventory with
    ``mbrola_ph/<table>_phtrans`` (e.g. English ``eI`` -> German ``e:``).  A symbol that
    is itself an espeak English phoneme and that the table does not rename keeps that
    phoneme (what it sounds like); any other symbol takes the most common label of the
    English phonemes the table maps onto it (as first part); what remains goes through a
    small fallback table.  Foreign-accented voices therefore get approximate labels (one
    German ``a:`` serves English ``A:``, ``A`` and ``V``) with exact timings.
    """
    from collections import Counter

    records = _phtrans_records(Path(phtrans)) if phtrans is not None and Path(phtrans).is_file() else []
    renamed = {eng for eng, nxt, _, _ in records if not nxt}
    votes: dict[str, Counter] = {}
    for eng, nxt, m1, _ in records:
        label = map_espeak(eng)
        if m1 and label not in ("spn", "sil"):
            votes.setdefault(m1, Counter())[label] += 1 if nxt else 2  # unconditional rules weigh more
    out: dict[str, str] = {}
    for sym in set(votes) | set(_MBROLA_FALLBACK):
        if sym in _MBROLA_FORCE:
            out[sym] = _MBROLA_FORCE[sym]
        elif sym in _ESPEAK and sym not in renamed:
            out[sym] = _ESPEAK[sym]
        elif sym in votes:
            out[sym] = votes[sym].most_common(1)[0][0]
        else:
            out[sym] = _MBROLA_FALLBACK[sym]
    return out


def map_mbrola(label: str, table: dict[str, str]) -> str:
    """Map one MBROLA symbol with a :func:`mbrola_phone_map` table (``spn`` if unknown)."""
    if label in table:
        return table[label]
    return _ESPEAK.get(label) or _MBROLA_FALLBACK.get(label, "spn")


def ipa_phones(tokens: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Group IPA characters with durations into phones: ``[(char, seconds)]`` -> ``[(phone, seconds)]``.

    Length marks and combining diacritics join the character before them, stress marks
    give their time to the phone after them, word spaces to the phone before them;
    diphthongs and affricates (``aɪ``, ``tʃ``, ...) become one phone.  Boundary and
    punctuation symbols become ``sil``.  Phones are in the shared set (``spn`` if unknown).
    """
    groups: list[list] = []  # [symbol, seconds]
    carry = 0.0
    joinable = False  # may the next character form one phone with the last group?
    for ch, dur in tokens:
        if ch in _IPA_STRESS:
            carry += dur
            joinable = False
        elif ch.isspace():
            if groups:
                groups[-1][1] += dur
            else:
                carry += dur
            joinable = False
        elif ch in _IPA_JOINERS and groups and groups[-1][0] != "sil":
            groups[-1][1] += dur
        elif ch in _IPA_SILENCE:
            if groups and groups[-1][0] == "sil":
                groups[-1][1] += dur + carry
            else:
                groups.append(["sil", dur + carry])
            carry, joinable = 0.0, False
        elif joinable and groups[-1][0] + ch in _IPA:
            groups[-1][0] += ch
            groups[-1][1] += dur
            joinable = False
        else:
            groups.append([ch, dur + carry])
            carry, joinable = 0.0, True
    if carry and groups:
        groups[-1][1] += carry
    return [(s if s == "sil" else _IPA.get(s, "spn"), d) for s, d in groups]


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
