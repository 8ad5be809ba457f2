"""``sim list patterns`` shows plug-ins with where they come from; a plug-in's errors are one line naming the
scenario key (and, for a failure in its code, its own frames), exit 2."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.patterns import PATTERNS

# the plug-in and helpers of the library's tests (tests are not a package: loaded by path)
_spec = importlib.util.spec_from_file_location(
    "plugin_tests", Path(__file__).parents[1] / "patterns/test_plugins.py"
)
assert _spec is not None and _spec.loader is not None
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)
ECHO, installed, write = _tests.ECHO, _tests.installed, _tests.write


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    write(tmp_path, "patterns/echo.py", ECHO)
    return write(
        tmp_path, "echo.toml", 'pattern = "patterns/echo.py:Echo"\nduration = "1s"\n[echo]\nfanout = 2\n'
    )


def listed(out: str) -> list[tuple[str, str, str]]:
    """``sim list patterns``'s lines as (name, origin, description): columns end at two spaces."""
    rows = []
    for line in out.splitlines()[1:]:
        name, rest = line.strip().split(maxsplit=1)
        origin, _, doc = rest.partition("  ")
        rows.append((name, origin, doc.strip()))
    return rows


def test_list_patterns_says_where_each_comes_from(
    capsys: pytest.CaptureFixture[str], scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "list", "patterns", "--scenario", str(scenario))
    assert code == 0
    assert out.splitlines()[0] == "patterns:"
    doc = "Point-to-point under another name, recording how many messages it was asked to copy."
    rows = listed(out)
    assert rows[0] == ("event_driven", "built-in", rows[0][2])
    n = len(PATTERNS)
    assert [r[:2] for r in rows[:n]] == [(name, "built-in") for name in sorted(PATTERNS)]
    assert rows[n:] == [
        ("echo", "entry point of echo-dist 1.2", doc),
        ("echo", f"file {tmp_path / 'patterns' / 'echo.py'}", doc),
    ]
    code, out, _ = run(capsys, "list", "patterns")  # without a scenario: no file plug-in to show
    assert [r[1] for r in listed(out)] == ["built-in"] * n + ["entry point of echo-dist 1.2"]


def test_a_plugin_scenario_runs_from_the_command_line(
    capsys: pytest.CaptureFixture[str], scenario: Path
) -> None:
    code, out, err = run(capsys, "simulate", str(scenario), "--check")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{scenario.parent / 'patterns' / 'echo.py'}:Echo on line, seed 0")
    assert "echo_marks_mean" in out
    assert "check: every at_most_once promise held" in out


@pytest.mark.parametrize(
    ("setting", "first_line"),
    [
        ("pattern=patterns/nope.py:Echo", "sim: error: pattern = '{cwd}/patterns/nope.py:Echo': expected a "),
        ("pattern=gossip", "sim: error: pattern = 'gossip': expected a built-in pattern (event_driven, "),
        ("echo.fanout=0", "sim: error: echo.fanout = 0: expected a whole number >= 1"),
    ],
)
def test_errors_are_one_line_naming_the_key(
    capsys: pytest.CaptureFixture[str],
    scenario: Path,
    setting: str,
    first_line: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(scenario.parent)  # --set takes a path from the working directory
    code, out, err = run(capsys, "simulate", str(scenario), "--set", setting)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(first_line.format(cwd=scenario.parent))


def test_a_class_missing_a_method_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "half.py", textwrap.dedent(ECHO).replace("def install(", "def setup("))
    path = write(tmp_path, "s.toml", 'pattern = "half.py:Echo"\n')
    code, _, err = run(capsys, "simulate", str(path))
    assert code == 2
    assert err == (
        f"sim: error: pattern = '{tmp_path}/half.py:Echo': expected a class with the pattern protocol: name, "
        "measures, operation, from_options, install (Echo has no install)\n"
    )


def test_an_exception_in_the_plugin_prints_its_frames(
    capsys: pytest.CaptureFixture[str], scenario: Path
) -> None:
    code, out, err = run(capsys, "simulate", str(scenario), "--set", "echo.fail=run")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    path = scenario.parent / "patterns" / "echo.py"
    assert lines[0].startswith(f"sim: error: pattern = '{path}:Echo': expected a pattern whose code runs")
    assert "(it raised ZeroDivisionError: division by zero at echo.py:" in lines[0]
    assert lines[1].startswith(f'  File "{path}", line ') and lines[1].endswith(", in _later")
    assert lines[2] == "    self.explode()"
    assert lines[3].endswith(", in explode")
    assert lines[4] == "    return 1 / 0"
    assert len(lines) == 5  # the plug-in's frames only, not the core's
    assert "Traceback" not in err
