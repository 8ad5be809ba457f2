"""The public API: ``sim.__all__`` is what docs/api.md documents, ``dir(sim)`` shows it, every name resolves
to where the page says it lives, and ``import sim`` alone loads neither SimPy nor pandas."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

import sim

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ENTRY = re.compile(r"^### `([^`]+)`\n(.*?)(?=^#{2,3} |\Z)", re.M | re.S)


def entries() -> dict[str, str]:
    """Each documented name and the text of its entry."""
    return {m.group(1): m.group(2) for m in ENTRY.finditer(PAGE.read_text(encoding="utf-8"))}


def test_the_page_documents_exactly_the_public_names() -> None:
    documented = list(entries())
    assert len(documented) == len(set(documented)), "a name is documented twice"
    assert set(documented) == set(sim.__all__)


def test_dir_shows_the_public_api() -> None:
    assert dir(sim) == sorted(sim.__all__)
    for name in sim.__all__:  # resolving names imports subpackages; dir still shows only the API
        getattr(sim, name)
    assert dir(sim) == sorted(sim.__all__)


@pytest.mark.parametrize("name", sim.__all__)
def test_each_entry_says_where_the_name_lives_and_shows_it_in_use(name: str) -> None:
    text = entries()[name]
    where = re.search(r"Lives in\s+`([\w.]+)`", text)
    assert where, f"{name}: no 'Lives in `module`'"
    assert getattr(import_module(where.group(1)), name) is getattr(sim, name)
    example = re.search(r"```python\n(.*?)```", text, re.S)
    assert example and ">>>" in example.group(1), f"{name}: no example"
    assert re.search(rf"\b{re.escape(name)}\b", example.group(1)), f"{name}: the example does not use it"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'simulation'"):
        sim.simulation  # noqa: B018


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_import_sim_alone_loads_neither_simpy_nor_pandas() -> None:
    assert not {"simpy", "pandas", "pydantic", "matplotlib"} & loaded_after("import sim; dir(sim)")
    # the check sees them once a name that needs them is used
    assert {"simpy", "pydantic"} <= loaded_after("import sim; sim.simulate")
