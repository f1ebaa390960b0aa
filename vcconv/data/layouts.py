"""Find the utterances of a corpus on disk, whatever its layout.

Supported layouts (``detect_layout`` names them):

``vctk092``   ``ROOT/wav48_silence_trimmed/p225/p225_001_mic1.flac``, text ``ROOT/txt/p225/p225_001.txt``
``vctk080``   ``ROOT/wav48/p225/p225_001.wav``, text ``ROOT/txt/p225/p225_001.txt``
``libritts``  ``ROOT[/SUBSET]/SPEAKER/CHAPTER/SPEAKER_CHAPTER_xxx_yyy.wav`` with
              ``.normalized.txt`` (else ``.original.txt``) beside
``synth``     a corpus from ``vcconv data synth``: ``ROOT/voices.json``,
              ``ROOT/<speaker>/<utt>.wav`` with ``.txt`` and ``.phones`` beside
``folders``   one folder per speaker: ``ROOT/SPEAKER/**/*.{wav,flac,ogg,mp3,...}``,
              optional same-stem ``.txt`` and ``.phones`` beside

Scanning only lists files; it does not open audio (see :mod:`vcconv.data.prepare`).
Every :class:`~vcconv.data.manifest.Utterance` gets an absolute ``path``, the
text when there is a transcript, ``phones`` when an alignment file exists, and
an ``utt_id`` that is unique in the corpus and safe as a file name.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from vcconv.audio import AUDIO_EXTENSIONS
from vcconv.data.manifest import Utterance
from vcconv.errors import DataError

log = logging.getLogger(__name__)

LAYOUTS = ("vctk092", "vctk080", "libritts", "synth", "folders")
LIBRITTS_SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
VCTK_MICS = ("mic1", "mic2")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LIBRITTS_NAME = re.compile(r"^(\d+)_(\d+)_[\w-]+$")


# ------------------------------------------------------------------ detection


def detect_layout(root: str | Path) -> str:
    """Name the layout of the corpus at ``root`` (one of :data:`LAYOUTS`).

    Raises :class:`DataError` when ``root`` is not a folder or holds nothing usable.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: corpus folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, expected a corpus folder (one folder per speaker, VCTK or LibriTTS)")
    if (root / "voices.json").is_file():
        return "synth"
    if (root / "wav48_silence_trimmed").is_dir():
        return "vctk092"
    if (root / "wav48").is_dir():
        return "vctk080"
    if _libritts_subsets(root):
        return "libritts"
    speakers = _speaker_dirs(root)
    for d in speakers:  # a parent of the corpus would pass as one huge "speaker"
        if (d / "voices.json").is_file() or (d / "wav48_silence_trimmed").is_dir() or (d / "wav48").is_dir() or (
            _libritts_subsets(d)
        ):
            raise DataError(f"{root}: holds a corpus in a sub-folder; point at {d} instead")
    if any(_first(_audio_files(d)) is not None for d in speakers):
        return "folders"
    loose = [p for p in root.iterdir() if _is_audio(p)]
    if loose:
        raise DataError(
            f"{root}: {len(loose)} audio file(s) lie directly in the folder; "
            "put each speaker's files in a sub-folder named after the speaker (ROOT/SPEAKER/*.wav)"
        )
    raise DataError(
        f"{root}: no usable corpus found; expected VCTK (wav48_silence_trimmed/ or wav48/ with txt/), "
        "LibriTTS (SUBSET/SPEAKER/CHAPTER/*.wav), a 'vcconv data synth' corpus (voices.json) "
        f"or one folder per speaker holding audio files ({', '.join(AUDIO_EXTENSIONS)})"
    )


def scan_corpus(root: str | Path, layout: str | None = None, *, mic: str = "mic1") -> list[Utterance]:
    """List the utterances of the corpus at ``root``, sorted by speaker then utt_id.

    Args:
        layout: one of :data:`LAYOUTS`; detected when ``None``.
        mic: VCTK 0.92 only: ``"mic1"`` (default) or ``"mic2"``.
    Returns:
        Utterances with absolute ``path``, ``text`` ("" when there is no transcript),
        ``phones`` ("" when there is no alignment) and ``duration`` 0 (filled by prepare).
    """
    root = Path(root)
    layout = layout or detect_layout(root)
    scanners: dict[str, Callable[[Path], list[Utterance]]] = {
        "vctk092": lambda r: scan_vctk092(r, mic=mic),
        "vctk080": scan_vctk080,
        "libritts": scan_libritts,
        "synth": scan_synth,
        "folders": scan_folders,
    }
    if layout not in scanners:
        raise DataError(f"unknown corpus layout '{layout}' (use one of: {', '.join(LAYOUTS)})")
    rows = scanners[layout](root)
    if not rows:
        raise DataError(f"{root}: no audio files found for layout '{layout}'")
    rows = _unique_ids(rows, root)
    rows.sort(key=lambda u: (u.speaker, u.utt_id))
    return rows


# ------------------------------------------------------------------ scanners


def scan_vctk092(root: str | Path, mic: str = "mic1") -> list[Utterance]:
    """VCTK 0.92: ``wav48_silence_trimmed/SPK/SPK_NNN_micK.flac`` (one mic), ``txt/SPK/SPK_NNN.txt``."""
    if mic not in VCTK_MICS:
        raise DataError(f"unknown VCTK microphone '{mic}' (use mic1 or mic2)")
    root = Path(root)
    rows = []
    suffix = f"_{mic}"
    for spk_dir in _speaker_dirs(root / "wav48_silence_trimmed"):
        for f in sorted(spk_dir.iterdir()):
            if not _is_audio(f) or not f.stem.endswith(suffix):
                continue
            utt = f.stem[: -len(suffix)]
            rows.append(_utt(utt, spk_dir.name, f, text=root / "txt" / spk_dir.name / f"{utt}.txt"))
    return rows


def scan_vctk080(root: str | Path) -> list[Utterance]:
    """VCTK 0.80: ``wav48/SPK/SPK_NNN.wav``, ``txt/SPK/SPK_NNN.txt``."""
    root = Path(root)
    rows = []
    for spk_dir in _speaker_dirs(root / "wav48"):
        for f in sorted(spk_dir.iterdir()):
            if _is_audio(f):
                rows.append(_utt(f.stem, spk_dir.name, f, text=root / "txt" / spk_dir.name / f"{f.stem}.txt"))
    return rows


def scan_libritts(root: str | Path) -> list[Utterance]:
    """LibriTTS: ``[SUBSET/]SPEAKER/CHAPTER/SPEAKER_CHAPTER_xxx_yyy.wav``, ``.normalized.txt`` beside.

    ``root`` may be the LibriTTS folder (all subsets found in it are used) or one subset.
    """
    rows = []
    for subset in _libritts_subsets(Path(root)):
        for spk_dir in _speaker_dirs(subset):
            for chapter in _speaker_dirs(spk_dir):
                for f in sorted(chapter.iterdir()):
                    if not _is_audio(f):
                        continue
                    text = f.with_name(f"{f.stem}.normalized.txt")
                    if not text.is_file():
                        text = f.with_name(f"{f.stem}.original.txt")
                    rows.append(_utt(f.stem, spk_dir.name, f, text=text))
    return rows


def scan_synth(root: str | Path) -> list[Utterance]:
    """A ``vcconv data synth`` corpus: speakers from ``voices.json``, ``.txt``/``.phones`` beside each wav."""
    root = Path(root)
    try:
        meta = json.loads((root / "voices.json").read_text())
        names = [v["name"] for v in meta.get("voices", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"{root / 'voices.json'}: not a valid synth corpus description ({err})") from None
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:  # a corpus still being generated
        log.warning("%s: %d voice(s) in voices.json have no folder yet: %s", root, len(missing), ", ".join(missing))
    rows = []
    for name in names:
        spk_dir = root / name
        if name in missing:
            continue
        for f in sorted(spk_dir.iterdir()):
            if _is_audio(f):
                rows.append(_utt(f.stem, name, f, text=f.with_suffix(".txt"), phones=f.with_suffix(".phones")))
    return rows


def scan_folders(root: str | Path) -> list[Utterance]:
    """One folder per speaker: ``ROOT/SPEAKER/**/*.<audio>``, same-stem ``.txt``/``.phones`` beside."""
    rows = []
    for spk_dir in _speaker_dirs(Path(root)):
        for f in _audio_files(spk_dir):
            rows.append(_utt(f.stem, spk_dir.name, f, text=f.with_suffix(".txt"), phones=f.with_suffix(".phones")))
    return rows


# ------------------------------------------------------------------ helpers


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def _speaker_dirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted (hidden ones such as ``.cache`` are skipped)."""
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _audio_files(folder: Path) -> Iterator[Path]:
    """Audio files anywhere under ``folder`` (sorted walk; hidden files and folders skipped)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if _is_audio(p):
                yield p


def _first(it: Iterator[Path]) -> Path | None:
    return next(it, None)


def _looks_like_libritts_subset(folder: Path, probe: int = 3) -> bool:
    """True when a few SPEAKER/CHAPTER folders under ``folder`` hold SPEAKER_CHAPTER_*.wav files."""
    checked = 0
    for spk in _speaker_dirs(folder):
        if not spk.name.isdigit():
            continue
        for chapter in _speaker_dirs(spk):
            if not chapter.name.isdigit():
                continue
            for f in chapter.iterdir():
                m = _LIBRITTS_NAME.match(f.stem)
                if _is_audio(f) and m and m.group(1) == spk.name and m.group(2) == chapter.name:
                    return True
            checked += 1
            if checked >= probe:
                return False
    return False


def _libritts_subsets(root: Path) -> list[Path]:
    """The LibriTTS subset folders at ``root``: ``root`` itself, or its subset children."""
    if not root.is_dir():
        return []
    if _looks_like_libritts_subset(root):
        return [root]
    subsets = [
        d for d in _speaker_dirs(root) if d.name in LIBRITTS_SUBSETS or d.name.startswith(("train-", "dev-", "test-"))
    ]
    return [d for d in subsets if _looks_like_libritts_subset(d)]


def _read_text(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split())


def _utt(utt_id: str, speaker: str, audio: Path, *, text: Path | None = None, phones: Path | None = None) -> Utterance:
    return Utterance(
        utt_id=utt_id,
        speaker=speaker,
        path=os.path.abspath(audio),
        text=_read_text(text),
        phones=os.path.abspath(phones) if phones is not None and phones.is_file() else "",
    )


def _unique_ids(rows: list[Utterance], root: Path) -> list[Utterance]:
    """Make ``utt_id`` unique and file-name safe (it names the feature-cache file).

    Colliding ids get the speaker as prefix, then the path below the speaker
    folder, then a counter, so ``alice/001.wav`` and ``bob/001.wav`` become
    ``alice_001`` and ``bob_001`` while already-unique ids are kept as they are.
    """
    for r in rows:
        r.utt_id = _safe(r.utt_id)
    counts = Counter(r.utt_id for r in rows)
    for r in rows:
        if counts[r.utt_id] > 1 and not r.utt_id.startswith(f"{_safe(r.speaker)}_"):
            r.utt_id = _safe(f"{r.speaker}_{r.utt_id}")
    counts = Counter(r.utt_id for r in rows)
    for r in rows:
        if counts[r.utt_id] > 1:
            try:
                rel = Path(r.path).relative_to(os.path.abspath(root)).with_suffix("")
                r.utt_id = _safe("_".join(rel.parts))
            except ValueError:
                pass
    taken: set[str] = set()
    for r in sorted(rows, key=lambda u: u.path):  # last resort (x.wav beside x.flac): a counter
        cand, k = r.utt_id, 1
        while cand in taken:
            k += 1
            cand = f"{r.utt_id}_{k}"
        taken.add(cand)
        r.utt_id = cand
    return rows


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "utt"
