"""The documentation's examples work, read from the markdown itself (README.md and docs/*.md).

- **Commands**: every line of a fenced ``console``, ``sh``, ``bash`` or ``shell`` block is a command and
  runs (``sim ...`` with the ``sim`` next to the running Python, ``python ...`` with that Python). A block
  that uses ``$ `` prompts — in any fenced block, ``text`` included — is a transcript: the prompted lines
  run, and the lines under each are its shown output, compared with what the command printed (``...``
  matches anything; runs of whitespace compare equal). A command without shown output must exit 0, print
  something and no traceback; with shown output it must print that, and exit 2 if it shows ``sim: error:``
  (0 or 1 otherwise, e.g. ``--check`` finding violations).
- **Python**: the ``python`` blocks of a page run in order in one namespace, as one reader would paste them;
  ``>>>`` blocks are doctests, so their shown output is compared.
- **Scenarios**: every whole scenario (a ``toml`` block with ``pattern =``) in docs/config.md validates and
  runs (shortened to a second); one that the text before it says is a file of ``experiments/scenarios/``
  is that file's scenario, key for key.

Each block (each page's Python) runs in its own temporary folder holding a copy of ``experiments/``,
``topologies/`` and ``results/``, so cases share nothing and each passes alone; a path under ``/tmp/`` in a
command is moved into that folder. A command or block that cannot run here is listed in ``SKIPPED`` below
with the reason; anything else that cannot run fails the test.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.config.scenario import Scenario
from sim.run.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
DOCS = [p for p in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))) if p.is_file()]
SHELL_BLOCKS = {"console", "sh", "bash", "shell"}
FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
PLACEHOLDER = re.compile(r"(?<![\w.-])[A-Z][A-Z0-9_]{2,}(?!\w)|(?<!\.)\.\.\.(?!\.)|…|<[\w-]+>")
WHOLE_SCENARIO = re.compile(r"^[ \t]*pattern[ \t]*=", re.M)
NAMED_FILE = re.compile(r"`(experiments/scenarios/[\w.-]+\.toml)`")
COPIED = ("experiments", "topologies", "results")  # what documented commands read, copied per case
TIMEOUT = 180  # seconds per command; documented commands take a few
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# What is not run, and why: (page, a piece of the command or block that identifies it) -> reason.
SKIPPED = {
    ("README.md", "make test"): "runs this very suite",
    ("README.md", "make demo"): "the quick flagship sweep (about 1.5 min of CPU on two cores); "
    "tests/experiments runs the same script at toy size",
    ("docs/patterns.md", "PATTERNS: dict[str, type[Pattern]] = {"): "a fragment of sim/patterns/__init__.py "
    "(the registry line to add), not a program",
    ("docs/reports.md", 'pd.read_parquet("results/broker_crash/runs.parquet")'): "reads the results of the "
    "full broker_crash sweep, which are not committed (minutes of CPU to make)",
}


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)  # output shown under a `$ ` prompt, if any
    transcript: bool = False


@dataclass
class Case:
    where: str  # page:line
    page: str
    commands: list[Command] = field(default_factory=list)
    python: list[tuple[int, str]] = field(default_factory=list)  # (line, source) of a page's blocks


def _blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, body, line number of the body's first line) of every fenced block in ``path``."""
    text = path.read_text(encoding="utf-8")
    return [
        (m.group(1).lower(), m.group(2), text.count("\n", 0, m.start(2)) + 1) for m in FENCE.finditer(text)
    ]


def _logical_lines(body: str) -> list[str]:
    """The block's lines with ``\\`` continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in body.splitlines():
        line = pending + raw.strip() if pending else raw.rstrip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        out.append(line)
    if pending:
        out.append(pending.rstrip())
    return out


def _commands(lang: str, body: str) -> list[Command]:
    lines = _logical_lines(body)
    if any(line.startswith("$ ") for line in lines):  # a transcript: prompts, then what they printed
        commands: list[Command] = []
        for line in lines:
            if line.startswith("$ "):
                commands.append(Command(line[2:].strip(), transcript=True))
            elif commands:
                commands[-1].shown.append(line)
        for c in commands:
            while c.shown and not c.shown[-1].strip():
                c.shown.pop()
        return commands
    if lang not in SHELL_BLOCKS:
        return []  # text: shapes, placeholders and outputs, not commands
    return [Command(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#")]


def _cases() -> tuple[list[Case], list[tuple[str, str]]]:
    """Every block of commands and every page's Python; and what is skipped, with the reason."""
    cases: list[Case] = []
    skipped: list[tuple[str, str]] = []
    for path in DOCS:
        page = str(path.relative_to(ROOT))
        python = Case(f"{page}:python", page)
        for lang, body, first in _blocks(path):
            reason = next((why for (p, piece), why in SKIPPED.items() if p == page and piece in body), None)
            if lang == "python":
                if reason is None:
                    python.python.append((first, body))
                else:
                    skipped.append((f"{page}:{first}", reason))
                continue
            commands = _commands(lang, body)
            kept = []
            for c in commands:
                why = next((w for (p, piece), w in SKIPPED.items() if p == page and piece in c.line), None)
                if why is None:
                    kept.append(c)
                else:
                    skipped.append((f"{page}:{first} `{c.line}`", why))
            if kept:
                cases.append(Case(f"{page}:{first}", page, kept))
        if python.python:
            cases.append(python)
    return cases, skipped


def _sim() -> list[str]:
    exe = Path(sys.executable).with_name("sim")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sim.cli.main"]


def _workspace(tmp_path: Path) -> Path:
    """A private copy of what the documented commands read."""
    work = tmp_path / "project"
    work.mkdir()
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def _argv(line: str, tmp_path: Path) -> list[str]:
    """The command's argv: ``sim`` and ``python`` resolved, paths under /tmp/ moved into ``tmp_path``."""
    argv = shlex.split(line, comments=True)
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if value.startswith("/tmp/"):
            value = str(tmp_path / "tmp" / value.removeprefix("/tmp/"))
        out.append(f"{key}{eq}{value}")
    if out[0] == "sim":
        return [*_sim(), *out[1:]]
    if out[0] in ("python", "python3"):
        return [sys.executable, *out[1:]]
    pytest.fail(f"`{line}`: not a sim or python command; run it here or add it to SKIPPED with a reason")


def _run_command(where: str, c: Command, work: Path, tmp_path: Path) -> None:
    if PLACEHOLDER.search(c.line):
        pytest.fail(f"{where}: `{c.line}` has a placeholder: show it in a text block, or add it to SKIPPED")
    done = subprocess.run(
        _argv(c.line, tmp_path), cwd=work, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    said = f"{where}: `{c.line}` exited {done.returncode}\n--- stdout\n{done.stdout[-1500:]}\n--- stderr\n"
    said += done.stderr[-1500:]
    assert "Traceback (most recent call last)" not in done.stderr, said
    if not c.shown:
        assert done.returncode == 0, said
        assert done.stdout.strip() or done.stderr.strip(), f"{where}: `{c.line}` printed nothing"
        return
    if any(line.startswith("sim: error:") for line in c.shown):
        assert done.returncode == 2, said
    else:
        assert done.returncode == 0, said
    want = "\n".join(c.shown) + "\n"
    outputs = (done.stdout, done.stderr, done.stdout + done.stderr)
    assert any(CHECKER.check_output(want, got, FLAGS) for got in outputs), (
        f"{where}: `{c.line}` printed something else than shown:\n--- shown\n{want}\n" + said
    )


def _run_python(case: Case, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    module = types.ModuleType("docs_page")  # a real module, so that dataclasses and pickling find it
    module.__file__ = str(work / "tests" / "docs_page.py")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=FLAGS)
    for first, body in case.python:
        where = f"{case.page}:{first}"
        if ">>>" in body:
            test = parser.get_doctest(body, namespace, where, case.page, first - 1)
            report: list[str] = []
            failed = runner.run(test, out=report.append, clear_globs=False).failed
            namespace.update(test.globs)
            assert not failed, f"{where}: shown output differs\n" + "".join(report)[-3000:]
        else:
            exec(compile(body, where, "exec"), namespace)


def _scenarios() -> list[tuple[str, str, str]]:
    """(where, TOML, the scenario file the text before it says it is, or "") of every whole scenario."""
    path = ROOT / "docs" / "config.md"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group(1).lower() == "toml" and WHOLE_SCENARIO.search(m.group(2)):
            before = text[max(0, m.start() - 400) : m.start()].split("```")[-1]
            named = NAMED_FILE.search(before)
            where = f"docs/config.md:{text.count(chr(10), 0, m.start(2)) + 1}"
            out.append((where, m.group(2), named.group(1) if named else ""))
    return out


CASES, SKIPS = _cases()
SCENARIOS = _scenarios()


def test_the_docs_show_commands_python_and_scenarios() -> None:
    assert any(c.commands for c in CASES), "no commands found in console/sh/bash blocks of the docs"
    assert any(c.python for c in CASES), "no python blocks found in the docs"
    assert any(cmd.shown for c in CASES for cmd in c.commands), "no transcript with shown output found"
    assert SCENARIOS, "no whole scenario (a toml block with `pattern =`) found in docs/config.md"
    # every entry of SKIPPED still names something in the docs (no stale excuses)
    used = {piece for (page, piece) in SKIPPED if piece in (ROOT / page).read_text(encoding="utf-8")}
    assert used == {piece for _, piece in SKIPPED}, set(p for _, p in SKIPPED) - used


def test_every_skip_still_matches_a_documented_block() -> None:
    used = {why for _, why in SKIPS}
    stale = [key for key, why in SKIPPED.items() if why not in used]
    assert not stale, f"SKIPPED entries that match no documented block any more: {stale}"


@pytest.mark.parametrize("case", CASES, ids=[c.where for c in CASES])
def test_documented_example_runs(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    if case.python:
        _run_python(case, work, monkeypatch)
    for c in case.commands:
        _run_command(case.where, c, work, tmp_path)


@pytest.mark.parametrize(("where", "text", "named"), SCENARIOS, ids=[w for w, _, _ in SCENARIOS])
def test_documented_scenario_is_what_it_says_and_runs(where: str, text: str, named: str) -> None:
    scenario = Scenario.from_dict(tomllib.loads(text))
    if named:  # "This is `experiments/scenarios/x.toml` with every key written out": the same scenario
        shown = {k: v for k, v in scenario.to_dict().items() if v != {}}
        stored = {k: v for k, v in Scenario.from_toml(ROOT / named).to_dict().items() if v != {}}
        assert shown == stored, f"{where} differs from {named}: " + str(
            {
                k: (shown.get(k), stored.get(k))
                for k in shown.keys() | stored.keys()
                if shown.get(k) != stored.get(k)
            }
        )
    result = simulate(scenario.with_updates({"duration": "1s", "warmup": 0, "drain": "1s"}))
    assert result.summary["delivered"] > 0, where


def test_a_transcript_is_parsed_into_commands_and_their_output() -> None:
    body = "$ sim list \\\n   --json\n{\n  ...\n}\n\n$ sim simulate x.toml --set a=1\nsim: error: a = 1\n"
    commands = _commands("text", body)
    assert [(c.line, c.shown) for c in commands] == [
        ("sim list --json", ["{", "  ...", "}"]),
        ("sim simulate x.toml --set a=1", ["sim: error: a = 1"]),
    ]
    assert _commands("text", "sim report FOLDER\n") == []  # a text block without prompts shows, not runs
    assert [c.line for c in _commands("console", "sim list  # the names\n\n# a note\nsim run x.py\n")] == [
        "sim list  # the names",
        "sim run x.py",
    ]


def test_shown_output_is_compared(tmp_path: Path) -> None:
    # the comparison is the one the cases use: a different output or exit status fails
    work = _workspace(tmp_path)
    good = Command(
        "sim simulate experiments/scenarios/point_to_point.toml --set links.loss=1.5", transcript=True
    )
    good.shown = ["sim: error: links.loss = 1.5: expected a probability in [0, 1]"]
    _run_command("here", good, work, tmp_path)
    bad = Command(good.line, [good.shown[0].replace("1.5", "2.5", 1)], transcript=True)
    with pytest.raises(AssertionError, match="printed something else than shown"):
        _run_command("here", bad, work, tmp_path)
    with pytest.raises(AssertionError, match="exited 2"):
        _run_command("here", Command(good.line), work, tmp_path)  # no output shown: must exit 0


def test_paths_under_tmp_are_moved_into_the_case_folder(tmp_path: Path) -> None:
    argv = _argv("sim run x.py --out /tmp/sim-docs/a --json=/tmp/b.json", tmp_path)
    assert argv[-3:] == ["--out", str(tmp_path / "tmp" / "sim-docs" / "a"), f"--json={tmp_path}/tmp/b.json"]
    assert os.path.commonpath([argv[-2], str(tmp_path)]) == str(tmp_path)
