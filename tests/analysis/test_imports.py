"""Reports and figures read stored results: importing them loads no SimPy and no model, checked in a fresh
interpreter (``sys.modules`` after the import), not only by the import contract."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("simpy", "sim.model", "sim.patterns", "sim.run", "sim.core.context")


def loaded_after(*modules: str) -> list[str]:
    """The modules of ``FORBIDDEN`` (or under them) that a fresh interpreter holds after importing
    ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_reports_and_figures_load_no_simpy_and_no_model() -> None:
    # all three in one interpreter: what each loads alone is part of what the three load together
    assert loaded_after("sim.analysis.report", "sim.analysis.figures", "sim.analysis.findings") == []


def test_the_check_sees_simpy_and_the_model_when_they_are_loaded() -> None:
    loaded = loaded_after("sim.run.simulate")
    assert {"simpy", "sim.core.context", "sim.model.network", "sim.run.simulate"} <= set(loaded)
