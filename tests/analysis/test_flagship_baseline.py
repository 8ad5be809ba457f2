"""The project's own regression test: the flagship comparison, in quick mode, matches its stored baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.analysis.regression import assert_no_regression

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_compare_patterns_matches_its_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert_no_regression("compare_patterns", engine="processes")
