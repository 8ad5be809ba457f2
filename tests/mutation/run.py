"""Mutation study: does the fast suite notice when a line of the core is wrong?

Applies each one-line mutation of ``tests/mutation/mutations.toml`` in turn to a *copy* of the project (a
``git archive`` of a commit, ``HEAD`` by default, or ``--worktree`` for the files as they are now), runs the
fast suite against it and reports which mutations were killed (the suite failed) and which survived. The
project's own files are never touched: each mutation is undone in the copy (also on Ctrl-C), and the copy is
deleted at the end.

    .venv/bin/python tests/mutation/run.py                    # every mutation, against HEAD
    .venv/bin/python tests/mutation/run.py --only 1,5 -v      # a few, with pytest's tail for each
    .venv/bin/python tests/mutation/run.py --list             # the mutations, numbered
    .venv/bin/python tests/mutation/run.py --dry-run          # each applies once; test files run first

The suite is ``python -m pytest -m "not slow" -x -q -n 2`` (``--workers`` changes ``-n``); a mutation that
makes it run past ``--timeout`` seconds counts as killed (a hang is noticed). Before the mutations, the
unmutated copy must pass the same suite (``--no-baseline`` skips that check).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[2]
MUTATIONS = Path(__file__).with_name("mutations.toml")
COPIED = ("sim", "tests", "experiments", "topologies", "docs", "results", "benchmarks")  # with --worktree
TESTPATHS = ["tests", "sim"]  # the suite; given explicitly when mirror files go first
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def say(text: str, stream: TextIO = sys.stdout) -> None:
    """A line of the study's output, at once (the study runs for long)."""
    stream.write(text + "\n")
    stream.flush()


@dataclass(frozen=True)
class Mutation:
    number: int
    area: str
    file: str
    old: str
    new: str
    what: str


def load(path: Path = MUTATIONS) -> list[Mutation]:
    """The mutations in ``path``, numbered from 1."""
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["mutation"]
    return [
        Mutation(i, e["area"], e["file"], e["old"], e["new"], e["what"]) for i, e in enumerate(entries, 1)
    ]


def make_copy(where: Path, ref: str | None) -> None:
    """The project at commit ``ref`` (``git archive``), or its current files when ``ref`` is None."""
    if ref is not None:
        tar = subprocess.run(
            ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
        )
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            archive.extractall(where, filter="data")
        return
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in ROOT.glob("*"):
        if path.is_file():
            shutil.copy2(path, where / path.name)


def check(mutations: list[Mutation], tree: Path) -> None:
    """Every ``old`` occurs exactly once in its file and stays on one line."""
    for m in mutations:
        text = (tree / m.file).read_text(encoding="utf-8")
        count = text.count(m.old)
        if count != 1 or "\n" in m.old or "\n" in m.new:
            sys.exit(
                f"mutation {m.number} ({m.file}): `{m.old}` occurs {count} times (must be once, on one line)"
            )


def mirrors(tree: Path, file: str) -> list[str]:
    """The test files mirroring ``file``, found in the tests folder of its package and those above it:
    ``sim/a/b.py`` -> ``tests/a/test_b*.py``; a module of a subpackage also by the subpackage's name
    (``sim/model/faults/injector.py`` -> ``tests/model/test_fault*.py``)."""
    path = Path(file)
    stems = [path.stem] + ([path.parent.name] if len(path.parts) > 3 else [])
    folders = [(tree / "tests").joinpath(*path.parts[1:i]) for i in range(len(path.parts) - 1, 0, -1)]
    found = [
        test
        for folder in folders
        for stem in stems
        for test in sorted(folder.glob(f"test_{stem.rstrip('s')}*.py"))  # faults: test_fault_inputs.py, ...
    ]
    return [str(p.relative_to(tree)) for p in dict.fromkeys(found)]


def run_suite(
    tree: Path, workers: int, timeout: float, extra: list[str], first: Sequence[str] = ()
) -> tuple[str, float, str]:
    """Run the fast suite in ``tree``: ("passed" | "failed" | "timeout", seconds, output tail).

    ``first``: test files to start with (the whole suite runs either way; pytest drops the repeats)."""
    argv = [sys.executable, "-m", "pytest", "-m", "not slow", "-x", "-q", "-n", str(workers)]
    argv += ["-p", "no:cacheprovider", *extra]
    if first:
        argv += [*first, *TESTPATHS]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = "passed" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        status = "timeout"
    except BaseException:  # Ctrl-C: stop the suite (its whole process group) before undoing the mutation
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return status, time.monotonic() - started, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="commit to copy (default HEAD)")
    parser.add_argument(
        "--worktree", action="store_true", help="copy the files as they are instead of a commit"
    )
    parser.add_argument("--only", default="", help="comma-separated mutation numbers")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (-n)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per suite run")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated copy")
    parser.add_argument("--json", type=Path, help="also write the results as JSON lines to this file")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check every mutation against the files as they are and list the test files run first; no suite",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest's last lines for each")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    mutations = load()
    if args.only:
        wanted = {int(n) for n in args.only.split(",")}
        mutations = [m for m in mutations if m.number in wanted]
    if args.list:
        for m in mutations:
            say(f"{m.number:3d}  {m.area:18s} {m.file:32s} {m.what}")
        return 0
    if args.dry_run:
        check(mutations, ROOT)
        for m in mutations:
            first = " ".join(mirrors(ROOT, m.file)) or "(the whole suite)"
            say(f"{m.number:3d}  {m.file:32s} first: {first}")
        say(f"{len(mutations)} mutations apply to the files as they are")
        return 0
    tree = Path(tempfile.mkdtemp(prefix="sim-mutation-"))
    results: list[dict[str, object]] = []
    log = args.json.open("w") if args.json else None
    try:
        make_copy(tree, None if args.worktree else args.ref)
        check(mutations, tree)
        if not args.no_baseline:
            status, seconds, out = run_suite(tree, args.workers, args.timeout, args.pytest_args)
            say(f"baseline: {status} in {seconds:.0f} s")
            if status != "passed":
                say(out[-3000:])
                return 1
        for m in mutations:
            path = tree / m.file
            original = path.read_text(encoding="utf-8")
            try:
                path.write_text(original.replace(m.old, m.new), encoding="utf-8")
                first = mirrors(tree, m.file)  # likely to fail soonest; the rest of the suite follows
                status, seconds, out = run_suite(tree, args.workers, args.timeout, args.pytest_args, first)
            finally:
                path.write_text(original, encoding="utf-8")
            killed = status != "passed"
            hit = FAILED.search(out)
            by = hit.group(1) if hit else ("timeout" if status == "timeout" else "")
            row = {"number": m.number, "area": m.area, "file": m.file, "what": m.what}
            row |= {"killed": killed, "by": by, "seconds": round(seconds)}
            results.append(row)
            if log:
                log.write(json.dumps(row) + "\n")
                log.flush()
            verdict = "killed  " if killed else "SURVIVED"
            say(f"{m.number:3d} {verdict} {seconds:5.0f} s  {m.what}  {by}")
            if args.verbose:
                say("\n".join(out.strip().splitlines()[-5:]))
    except KeyboardInterrupt:
        say("interrupted; the copy is removed, the project was never touched", sys.stderr)
        return 130
    finally:
        if log:
            log.close()
        shutil.rmtree(tree, ignore_errors=True)
    total = sum(bool(r["killed"]) for r in results)
    say(f"\n{total} of {len(results)} killed ({100 * total / max(len(results), 1):.0f} %)")
    say("\n| # | area | mutation | killed by |\n|---|---|---|---|")
    for r in results:
        by = f"`{r['by']}`" if r["killed"] else "**survived**"
        say(f"| {r['number']} | {r['area']} | {r['what']} (`{r['file']}`) | {by} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
