"""What a user sees when vcconv meets broken and hostile inputs, through the real CLI.

Sections (all by default; ``--only`` picks some):

* ``fuzz``: every case of ``tests/test_fuzz.py`` (seeded) through ``vcconv convert``
  and ``vcconv vocode`` (one subprocess per case), and ``batch``, ``data prepare`` and
  ``eval`` (one subprocess each over all cases; the row shows that file's line of the
  report).  Prints ``case | command | exit code | what the user sees`` and a tally
  (tracebacks, exit codes outside 0/1/2, temp files left, existing outputs touched).
* ``escape``: a pairs CSV whose outputs try to leave its folder (absolute path, ``..``,
  symbolic link, ``~``): the lines ``vcconv batch --pairs`` prints, and what was written.
* ``checkpoint``: a ``last.pt`` whose pickle calls ``os.system``: what ``convert``,
  ``export``, ``train --init-from``, ``vocode`` and ``repr embed`` print, and whether it ran.
* ``concurrency``: two ``vcconv batch --pairs`` processes started together on the same
  20 jobs and output folder: their summaries, and a check of every output.

Usage: ``python bench/fuzz_table.py [--only fuzz,escape] [--jobs 2] [--keep DIR]``.
Uses a tiny random model and Griffin-Lim (the paths under test are the same for any model).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_fuzz import ALL_CASES, DEV_NULL, NPY_CASES, SENTINEL, _tone, write_case  # noqa: E402

FAST = ["--vocoder", "griffinlim:2", "--threads", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}


def vcconv(args, cwd: Path, timeout: int = 300) -> tuple[int, str, str]:
    p = subprocess.run([sys.executable, "-m", "vcconv", *map(str, args)], cwd=cwd, env=ENV,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def seen(stdout: str, stderr: str) -> str:
    """The lines a user reads first: stderr, else the last stdout line; one cell."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()][-1:]
    text = " / ".join(lines)
    return text if len(text) <= 400 else text[:397] + "..."


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def setup(root: Path) -> None:
    import soundfile as sf
    import torch

    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    torch.manual_seed(0)
    cfg = RunConfig(model_kind="adain", model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                               "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    save_safetensors(build_model("adain", cfg.model), cfg, root / "tiny.safetensors")
    sf.write(str(root / "good.wav"), _tone(freq=180), 16000)
    sf.write(str(root / "ref.wav"), _tone(freq=400), 16000)


# ----------------------------------------------------------------------- fuzz


def fuzz(root: Path, jobs: int) -> None:
    for c in ALL_CASES:
        write_case(c, root / "cases")
    (root / "npy").mkdir()
    for name, make, _ in NPY_CASES:
        make(root / "npy" / f"{name}.npy")
    (root / "out").mkdir()

    single = []  # (case, command, argv, output)
    for c in ALL_CASES:
        src = f"cases/{c.name}.wav"
        single.append((c.name, "convert", ["convert", src, "-t", "ref.wav", "-o", f"out/convert_{c.name}.wav",
                                           "--model", "tiny.safetensors", "--force", *FAST],
                       root / "out" / f"convert_{c.name}.wav"))
        single.append((c.name, "vocode", ["vocode", src, "-o", f"out/vocode_{c.name}.wav", "--force", *FAST],
                       root / "out" / f"vocode_{c.name}.wav"))
    for name, _, _ in NPY_CASES:
        single.append((name, "vocode", ["vocode", f"npy/{name}.npy", "-o", f"out/vocode_{name}.wav", "--force", *FAST],
                       root / "out" / f"vocode_{name}.wav"))
    for *_, out in single:
        out.write_bytes(SENTINEL)  # --force over an existing file: a failed run must leave it alone

    rows, problems = [], []
    t0 = time.time()

    def one(item):
        name, cmd, argv, out = item
        code, so, se = vcconv(argv, root)
        return name, cmd, argv, out, code, so, se

    with ThreadPoolExecutor(jobs) as ex:
        results = list(ex.map(one, single))
    for name, cmd, argv, out, code, so, se in results:
        rows.append((name, f"vcconv {' '.join(argv[:2])} ...", code, seen(so, se)))
        if "Traceback" in se or code not in (0, 2):
            problems.append(f"{name} {cmd}: exit {code}")
        if code != 0 and out.read_bytes() != SENTINEL:
            problems.append(f"{name} {cmd}: existing output touched")

    # batch: every case in one folder with a good file
    (root / "batch_in").mkdir()
    for c in ALL_CASES:
        write_case(c, root / "batch_in")
    shutil.copy(root / "good.wav", root / "batch_in" / "good.wav")
    code, so, se = vcconv(["batch", "batch_in", "-t", "ref.wav", "-o", "batch_out", "--model", "tiny.safetensors",
                           *FAST], root)
    if "Traceback" in se or code not in (0, 1, 2):
        problems.append(f"batch: exit {code}")
    failures = {}
    if (root / "batch_out" / "failures.tsv").is_file():
        failures = dict(ln.split("\t", 1) for ln in (root / "batch_out" / "failures.tsv").read_text().splitlines()[1:])
    for c in ALL_CASES:
        path = f"batch_in/{c.name}.wav"
        what = (f"failed {path}: {failures[path]}" if path in failures
                else f"converted -> batch_out/{c.name}.wav" if (root / "batch_out" / f"{c.name}.wav").is_file()
                else "(not reported)")
        rows.append((c.name, "vcconv batch batch_in ...", code, what))
        if what == "(not reported)":
            problems.append(f"{c.name} batch: not reported")

    # data prepare: every case in one speaker's folder
    for spk, f0 in (("alice", 180), ("bob", 300), ("carol", 420)):
        (root / "corpus" / spk).mkdir(parents=True)
        for k in range(3):
            import soundfile as sf

            sf.write(str(root / "corpus" / spk / f"{spk}{k}.wav"), _tone(freq=f0 + 10 * k), 16000)
    for c in ALL_CASES:
        write_case(c, root / "corpus" / "alice")
    code, so, se = vcconv(["data", "prepare", "corpus", "-o", "prep/manifest.tsv", "--test-speakers", "carol",
                           "--no-cache"], root)
    if "Traceback" in se or code not in (0, 2):
        problems.append(f"data prepare: exit {code}")
    report, listed = {}, ""
    if (root / "prep" / "manifest_report.tsv").is_file():
        for ln in (root / "prep" / "manifest_report.tsv").read_text().splitlines()[1:]:
            path, _, _, problem = ln.split("\t", 3)
            report[os.path.relpath(path, root)] = problem
        listed = (root / "prep" / "manifest.tsv").read_text().replace(str(root.resolve()) + "/", "")
    for c in ALL_CASES:
        path = f"corpus/alice/{c.name}.wav"
        what = (f"skipped {path}: {report[path]}" if path in report
                else "in the manifest" if path in listed
                else "ignored (not a regular file)" if c is DEV_NULL else "(not reported)")
        rows.append((c.name, "vcconv data prepare corpus ...", code, what))
        if what == "(not reported)":
            problems.append(f"{c.name} data prepare: not reported")

    # eval: every case as the output of a pair
    with open(root / "eval_pairs.csv", "w") as f:
        f.write("source,target,output\n" + "".join(f"good.wav,ref.wav,cases/{c.name}.wav\n" for c in ALL_CASES))
    code, so, se = vcconv(["eval", "eval_pairs.csv", "--no-asr", "--no-quality", "--device", "cpu", "--force"], root)
    if "Traceback" in se or code not in (0, 2):
        problems.append(f"eval: exit {code}")
    scored = {}
    if (root / "eval_pairs_eval.csv").is_file():
        scored = {Path(r["output"]).stem: r for r in csv.DictReader(open(root / "eval_pairs_eval.csv"))}
    for c in ALL_CASES:
        r = scored.get(c.name)
        what = ("(not reported)" if r is None else f"row error: {r['error']}" if r.get("error")
                else f"scored (cos to target {float(r['cos_to_target']):.2f})")
        rows.append((c.name, "vcconv eval eval_pairs.csv ...", code, what))
        if r is None:
            problems.append(f"{c.name} eval: not reported")

    left = [str(p.relative_to(root)) for p in root.rglob("*") if ".part" in p.name or p.name.endswith(".claim")]
    problems += [f"temp file left: {p}" for p in left]

    order = {c.name: i for i, c in enumerate(ALL_CASES)} | {n: len(ALL_CASES) + i for i, (n, _, _) in enumerate(NPY_CASES)}
    cmd_order = ["convert", "vocode", "batch", "data", "eval"]
    rows.sort(key=lambda r: (order[r[0]], cmd_order.index(r[1].split()[1])))
    print("| case | command | exit code | what the user sees |")
    print("|---|---|---|---|")
    for name, cmd, code, what in rows:
        print(f"| {name} | `{cmd}` | {code} | {cell(what)} |")
    n_err = sum(1 for r in rows if r[2] == 2)
    print(f"\n{len(rows)} rows: {len(ALL_CASES)} files + {len(NPY_CASES)} .npy, {len(single) + 3} vcconv processes "
          f"in {time.time() - t0:.0f} s; {n_err} one-line refusals (exit 2); "
          f"problems: {len(problems)}" + (": " + "; ".join(problems) if problems else " (no traceback, no exit "
                                          "code outside 0/1/2, no temp file left, no existing output touched)"))


# --------------------------------------------------------------------- escape


def escape(root: Path) -> None:
    job, outside = root / "job", root / "outside"
    job.mkdir()
    outside.mkdir()
    shutil.copy(root / "good.wav", job / "a.wav")
    shutil.copy(root / "ref.wav", job / "r.wav")
    shutil.copy(root / "ref.wav", outside / "victim.wav")
    (job / "link").symlink_to(outside, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    rows = ["out/fine.wav", f"{outside}/victim.wav", "/etc/x.wav", "../outside/victim.wav", "../../../../../tmp/x.wav",
            "sub/../../outside/new.wav", "link/victim.wav", "link/../escaped.wav", "~/x.wav", "out/.x.abc.part.wav"]
    (job / "pairs.csv").write_text("source,target,output\n" + "".join(f"a.wav,r.wav,{r}\n" for r in rows))
    print("pairs.csv (in job/, next to a.wav and r.wav; job/link -> outside/):\n")
    print("```\n" + (job / "pairs.csv").read_text().replace(str(root) + "/", "") + "```")
    code, so, se = vcconv(["batch", "--pairs", "job/pairs.csv", "--model", "tiny.safetensors", *FAST], root)
    print(f"\n$ vcconv batch --pairs job/pairs.csv ...   (exit {code})\n```")
    print("\n".join(ln.replace(str(root) + "/", "") for ln in so.splitlines() if ln.startswith(("failed", " ", "1", "9"))
                    or "failed" in ln or "converted" in ln))
    print("```")
    after = {p.name: p.read_bytes() for p in outside.iterdir()}
    print(f"outside/ unchanged: {after == before}; /etc/x.wav exists: {Path('/etc/x.wav').exists()}; "
          f"~/x.wav exists: {Path('~/x.wav').expanduser().exists()}; escaped.wav exists: {(root / 'escaped.wav').exists()}")
    print(f"wav files under job/: {sorted(str(p.relative_to(job)) for p in job.rglob('*.wav'))}")


# ----------------------------------------------------------------- checkpoint


_EVIL = r"""
import json, os, sys, torch
sys.path.insert(0, sys.argv[3])
from vcconv.config import RunConfig
from vcconv.models import build_model
class Shell:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
tiny = {"channels": 16, "content_dim": 4, "speaker_dim": 8, "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1}
cfg = RunConfig(model_kind="adain", model=tiny)
os.makedirs(sys.argv[1], exist_ok=True)
torch.save({"model": build_model("adain", tiny).state_dict(), "config": json.dumps(cfg.to_dict()), "step": Shell()},
           os.path.join(sys.argv[1], "last.pt"))
"""


def checkpoint(root: Path) -> None:
    subprocess.run([sys.executable, "-c", _EVIL, str(root / "evil"), str(root / "PWNED"), str(REPO)], check=True,
                   env=ENV)
    commands = [
        ["convert", "good.wav", "-t", "ref.wav", "-o", "o.wav", "--model", "evil", *FAST],
        ["export", "evil", "-o", "x.safetensors"],
        ["train", "--data", "manifest.tsv", "--out", "t", "--init-from", "evil"],
        ["vocode", "good.wav", "-o", "v.wav", "--vocoder", "evil"],
        ["repr", "embed", "evil", "good.wav", "-o", "e.npz"],
    ]
    print("evil/last.pt: a training state whose pickle calls os.system('touch PWNED') when unpickled.\n")
    for argv in commands:
        code, so, se = vcconv(argv, root)
        print(f"$ vcconv {' '.join(argv)}\n```\n{se.strip()}\n```\nexit {code}\n")
    print(f"PWNED exists (the code ran): {(root / 'PWNED').exists()}")


# ---------------------------------------------------------------- concurrency


def concurrency(root: Path, n: int = 20) -> None:
    import numpy as np
    import soundfile as sf

    d = root / "conc"
    (d / "src").mkdir(parents=True)
    for i in range(n):
        sf.write(str(d / "src" / f"s{i:02d}.wav"), _tone(duration=0.5, freq=150 + 20 * i), 16000)
    shutil.copy(root / "ref.wav", d / "ref.wav")
    (d / "pairs.csv").write_text("source,target,output\n"
                                 + "".join(f"src/s{i:02d}.wav,ref.wav,out/o{i:02d}.wav\n" for i in range(n)))
    argv = [sys.executable, "-m", "vcconv", "batch", "--pairs", "pairs.csv", "--model", str(root / "tiny.safetensors"),
            "--vocoder", "griffinlim:4", "--threads", "1"]
    t0 = time.time()
    procs = [subprocess.Popen(argv, cwd=d, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    print(f"two `vcconv batch --pairs pairs.csv` processes started together on {n} jobs, one output folder "
          f"({time.time() - t0:.1f} s):\n")
    counts = []
    for k, (p, (so, se)) in enumerate(zip(procs, outs)):
        table = [ln for ln in so.splitlines() if "│" in ln or "┃" in ln or "claimed" in ln or "another batch" in ln]
        print(f"process {k + 1} (exit {p.returncode}):\n```\n" + "\n".join(table) + "\n```")
        row = [ln for ln in so.splitlines() if ln.startswith("│")][-1].split("│")
        counts.append((int(row[1]), int(row[2]), int(row[3])))
        if "Traceback" in se:
            print(se)
    files = sorted((d / "out").iterdir())
    complete = all(sf.info(str(f)).frames > 0 and np.isfinite(sf.read(str(f))[0]).all() for f in files
                   if f.suffix == ".wav")
    print(f"\nconverted {counts[0][0]} + {counts[1][0]} = {counts[0][0] + counts[1][0]} (jobs: {n}); "
          f"failed {counts[0][2] + counts[1][2]}; files in out/: {len(files)} "
          f"({sum(f.suffix == '.wav' for f in files)} .wav, "
          f"{sum('.part' in f.name or f.name.endswith('.claim') for f in files)} temp/claim); "
          f"every output a complete WAV: {complete}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="fuzz,escape,checkpoint,concurrency")
    ap.add_argument("--jobs", type=int, default=2, help="vcconv processes at a time (fuzz section)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="vcconv_fuzz_"))
    root.mkdir(parents=True, exist_ok=True)
    setup(root)
    sections = {"fuzz": lambda: fuzz(root, args.jobs), "escape": lambda: escape(root),
                "checkpoint": lambda: checkpoint(root), "concurrency": lambda: concurrency(root)}
    for name in args.only.split(","):
        print(f"\n## {name}\n", flush=True)
        sections[name]()
        sys.stdout.flush()
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
