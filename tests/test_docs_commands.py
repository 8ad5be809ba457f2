"""The documentation's examples work: every ``sim`` command shown in README.md and docs/*.md exits 0, and
every whole scenario in docs/config.md validates.

Commands are the lines starting with ``sim `` (optionally after a ``$ `` prompt) in fenced ``console``,
``sh``, ``bash`` or ``shell`` blocks. Lines with placeholders (``FILE``, ``NAME``, ``<name>``, ``...``) are
skipped. Each command runs from the project root with the ``sim`` next to the running Python, so keep the
documented runs small (``--set duration=2s``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
DOCS = [p for p in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))) if p.is_file()]
SHELL_BLOCKS = {"console", "sh", "bash", "shell"}
FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
PLACEHOLDER = re.compile(r"(?<![\w.-])[A-Z][A-Z0-9_]{2,}(?!\w)|\.\.\.|…|<[\w-]+>")
WHOLE_SCENARIO = re.compile(r"^[ \t]*pattern[ \t]*=", re.M)
TIMEOUT = 120  # seconds per command; documented commands take about one


def _blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, body, line number of the body's first line) of every fenced block in ``path``."""
    text = path.read_text(encoding="utf-8")
    return [
        (m.group(1).lower(), m.group(2), text.count("\n", 0, m.start(2)) + 1) for m in FENCE.finditer(text)
    ]


def _commands() -> list[tuple[str, str]]:
    """(where, command line) of every runnable ``sim`` command, first occurrence only."""
    found: dict[str, str] = {}
    for path in DOCS:
        for lang, body, first in _blocks(path):
            if lang not in SHELL_BLOCKS:
                continue
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                start, line = i, lines[i].strip()
                while line.endswith("\\") and i + 1 < len(lines):  # continuation lines
                    i += 1
                    line = line[:-1].rstrip() + " " + lines[i].strip()
                i += 1
                line = line.removeprefix("$ ").strip()
                if line.startswith("sim ") and not PLACEHOLDER.search(line):
                    found.setdefault(line, f"{path.relative_to(ROOT)}:{first + start}")
    return [(where, line) for line, where in found.items()]


def _scenarios() -> list[tuple[str, str]]:
    """(where, TOML text) of every ``toml`` block in docs/config.md that sets ``pattern``."""
    path = ROOT / "docs" / "config.md"
    if not path.is_file():
        return []
    return [
        (f"docs/config.md:{first}", body)
        for lang, body, first in _blocks(path)
        if lang == "toml" and WHOLE_SCENARIO.search(body)
    ]


def _sim() -> list[str]:
    exe = Path(sys.executable).with_name("sim")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sim.cli"]


COMMANDS = _commands()
SCENARIOS = _scenarios()


def test_the_docs_show_commands_and_scenarios() -> None:
    assert COMMANDS, "no `sim ...` lines found in fenced console/sh/bash blocks of README.md or docs/*.md"
    assert SCENARIOS, "no whole scenario (a toml block with `pattern =`) found in docs/config.md"


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_exits_0(where: str, command: str) -> None:
    argv = shlex.split(command, comments=True)
    done = subprocess.run(
        [*_sim(), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{where}: `{command}` exited {done.returncode}\n{done.stderr[-2000:]}", pytrace=False)
    assert done.stdout.strip(), f"{where}: `{command}` printed nothing"


@pytest.mark.parametrize(("where", "text"), SCENARIOS, ids=[w for w, _ in SCENARIOS])
def test_documented_scenario_validates(where: str, text: str) -> None:
    scenario = Scenario.from_dict(tomllib.loads(text))
    assert scenario.pattern == tomllib.loads(text)["pattern"], where
