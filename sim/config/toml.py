"""Write a scenario as TOML that :meth:`sim.config.scenario.Scenario.from_toml` reads back equal.

Scenarios hold few kinds of values (strings, booleans, whole numbers, floats with ``inf``, lists and
tables), so the writer is a small one rather than a dependency. Floats are written with ``repr``, which
reads back as the same double; ``inf`` and ``nan`` as TOML's ``inf`` and ``nan``.

Examples
--------
>>> from sim.config.scenario import Scenario
>>> s = Scenario(duration="2s", links={"loss": 0.01}, faults=[{"at": 1, "action": "crash", "target": "h0"}])
>>> print(scenario_toml(s))
duration = 2.0
<BLANKLINE>
[links]
loss = 0.01
<BLANKLINE>
[[faults]]
at = 1.0
action = "crash"
target = "h0"
<BLANKLINE>
>>> Scenario.from_dict(loads(scenario_toml(s))) == s
True
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from sim.config.scenario import Scenario
from sim.core.errors import SimError

__all__ = ["dumps", "loads", "scenario_toml"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def loads(text: str) -> dict[str, Any]:
    """TOML text as plain values (``tomllib.loads``), for symmetry with :func:`dumps`."""
    return tomllib.loads(text)


def scenario_toml(scenario: Scenario, *, full: bool = False) -> str:
    """``scenario`` as TOML text; only the settings that differ from the defaults unless ``full``.

    ``Scenario.from_dict(loads(scenario_toml(s))) == s`` for every scenario whose values TOML can hold
    (every scenario read from TOML; a ``None`` inside a list cannot be written and raises ``SimError``).
    """
    data = scenario.to_dict()
    if not full:
        data = _differences(data, Scenario().to_dict())
    return dumps(data)


def _differences(data: dict[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the settings equal to ``default``'s; sections keep only what differs (a setting
    left out reads back as its default, so the scenario is the same)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in default:  # a pattern table, written as given
            out[key] = value
        elif isinstance(value, dict) and isinstance(default[key], dict):
            inner = {k: v for k, v in value.items() if k not in default[key] or not _same(v, default[key][k])}
            if inner:
                out[key] = inner
        elif not _same(value, default[key]):
            out[key] = value
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def dumps(data: Mapping[str, Any]) -> str:
    """A table of plain values as TOML: scalars and lists first, then sub-tables and arrays of tables.

    ``None`` values of a table are left out (TOML has no null: an unset setting reads back as unset).
    """
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], path: list[str], data: Mapping[str, Any], *, array: bool = False) -> None:
    if path:
        header = ".".join(_key(p) for p in path)
        lines += ["", f"[[{header}]]" if array else f"[{header}]"]
    nested: list[tuple[str, Any]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping) or _tables(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, '.'.join([*path, key]))}")
    for key, value in nested:
        if isinstance(value, Mapping):
            _table(lines, [*path, key], value)
        else:
            for item in value:
                _table(lines, [*path, key], item, array=True)


def _tables(value: Any) -> bool:
    """A non-empty list of tables: written as ``[[name]]`` entries."""
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    return key if _BARE.match(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = [(k, v) for k, v in value.items() if v is not None]
        inner = ", ".join(f"{_key(k)} = {_value(v, f'{where}.{k}')}" for k, v in items)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, Sequence):
        if any(v is None for v in value):
            raise SimError(where, list(value), "a list without empty values (TOML has no null)")
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise SimError(where, value, "a string, number, boolean, list or table (what TOML can hold)")
