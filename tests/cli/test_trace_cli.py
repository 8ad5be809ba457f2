"""``sim trace SCENARIO --out DIR``: an output folder that cannot be made is refused in one line before the
run (the command's views and filters: tests/analysis/test_flow.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli.main import main
from sim.run import simulate as simulate_module

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "scenarios" / "faults_demo.toml"


def _no_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the scenario was run")


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_an_out_that_cannot_be_a_folder_is_refused_before_the_run(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulate_module, "simulate", _no_run)
    taken = tmp_path / "taken"
    taken.write_text("not a folder\n")
    out = taken if where == "file" else taken / "views"
    assert main(["trace", str(DEMO), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"sim: error: --out = '{out}': expected a folder that can be created ({taken} is not a folder)\n"
    )
    assert taken.read_text() == "not a folder\n"
