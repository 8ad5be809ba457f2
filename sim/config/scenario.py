"""The validated description of one run.

Build it in Python (``Scenario(pattern="point_to_point", duration="10s", ...)``), from a dict, or from
TOML (:meth:`Scenario.from_toml`). Every value is checked before a run starts; a bad one raises
:class:`sim.core.errors.SimError` naming the field, the value and what is allowed. Durations, rates, sizes
and bandwidths accept unit strings ("5ms", "200/s", "1KB", "1Gbps"); validated fields hold plain
floats in seconds, per second and bytes. Distribution tables are kept as given (checked, then built
by :mod:`sim.run.build`). Every key is documented in ``docs/config.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from sim.config.faults import FaultSettings, NemesisSettings
from sim.config.sections import (
    BrokerSettings,
    DeliverySettings,
    LinkSettings,
    NetworkSettings,
    NodeSettings,
    TopologySettings,
    WorkloadSettings,
    _bool,
    _duration,
    _Model,
)
from sim.core.errors import SimError, failure
from sim.core.units import parse_count
from sim.patterns import PATTERNS
from sim.patterns.registry import PluginError, absolute, pattern_class

__all__ = [
    "BrokerSettings",
    "DeliverySettings",
    "FaultSettings",
    "LinkSettings",
    "NemesisSettings",
    "NetworkSettings",
    "NodeSettings",
    "Scenario",
    "TopologySettings",
    "WorkloadSettings",
]


MAX_TIME = 1e7
"""The longest ``duration`` and ``drain``, in seconds. Simulated time is a float: beyond 10^7 s its resolution
gets coarser than 2 ns, and microsecond latencies would be rounded (at 10^9 s, to 0.1 µs)."""


class Scenario(_Model):
    """One run: pattern, timing, seed, topology, links, nodes, workload and delivery guarantee.

    Examples
    --------
    >>> s = Scenario(duration="2s", warmup="500ms", links={"loss": 0.01})
    >>> s.duration, s.warmup, s.links.loss
    (2.0, 0.5, 0.01)
    >>> s.with_updates({"links.loss": 0.05}).links.loss
    0.05
    """

    pattern: str = "point_to_point"
    duration: float = 10.0
    warmup: float = 0.0
    drain: float = 60.0
    seed: int = 0
    trace: bool = False
    topology: TopologySettings = Field(default_factory=TopologySettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    nodes: NodeSettings = Field(default_factory=NodeSettings)
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    faults: list[FaultSettings] = Field(default_factory=list)
    nemesis: list[NemesisSettings] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Pattern tables (``[queue]``, ``[request_reply]`` ...), keyed by pattern name; each validated by its
    pattern. Written at the top level in TOML and in :meth:`to_dict`."""

    _dur = _duration("duration")
    _warm = _duration("warmup")
    _drain = _duration("drain")
    _trace = _bool("trace")

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise SimError("pattern", v, "one of " + ", ".join(sorted(PATTERNS)) + ", or 'file.py:Class'")
        pattern_class(v)  # a built-in, a plug-in file (made absolute before) or an installed entry point
        return v

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, v: Any) -> Any:
        seed = parse_count(v, "seed", minimum=0)
        if seed >= 2**63:
            raise SimError("seed", v, "a whole number in [0, 2**63)")
        return seed

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            options = data.pop("options", None) or {}
            if not isinstance(options, Mapping):
                raise SimError("options", options, "a table of pattern tables, e.g. {queue = {...}}")
            options = dict(options)
            if "pattern" in data:  # a plug-in file's path, made absolute (the working directory's)
                data["pattern"] = absolute(data["pattern"])
            for name in _table_names(data.get("pattern", "point_to_point")):
                if name in data:
                    options[name] = data.pop(name)
            data["options"] = options
        return data

    @model_validator(mode="after")
    def _pattern_options(self) -> Scenario:
        tables = _table_names(self.pattern)
        for name, table in self.options.items():
            if name not in tables:
                raise SimError(name, table, "a table named after a pattern: " + ", ".join(sorted(tables)))
            if not isinstance(table, Mapping):
                raise SimError(name, table, "a table of settings")
            owner = pattern_class(self.pattern) if name not in PATTERNS else PATTERNS[name]
            try:
                owner.from_options(table)
            except SimError as exc:
                raise exc.at(name) from None
            except Exception as exc:  # a plug-in's own validation failed in its code
                raise _plugin_table(self.pattern, name, table, exc) from exc
        return self

    @model_validator(mode="after")
    def _times(self) -> Scenario:
        if self.duration <= 0:
            raise SimError("duration", self.duration, "a duration > 0")
        for name in ("duration", "drain"):
            if getattr(self, name) > MAX_TIME:
                raise SimError(name, getattr(self, name), f"a duration <= {MAX_TIME:g} s (about 115 days)")
        if self.warmup >= self.duration:
            raise SimError("warmup", self.warmup, f"a duration shorter than duration ({self.duration:g} s)")
        for i, f in enumerate(self.faults):
            if f.at >= self.duration:
                raise SimError(
                    f"faults[{i}].at", f.at, f"a time before the end of the run ({self.duration:g} s)"
                )
        return self

    # -- construction ----------------------------------------------------------------------------
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _sim_error(exc) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Validate a plain mapping (as parsed from TOML or JSON)."""
        if not isinstance(data, Mapping):
            raise SimError("scenario", data, "a table of settings")
        return cls(**dict(data))

    @classmethod
    def from_toml(cls, path: str | Path) -> Scenario:
        """Read and validate a TOML scenario file (a plug-in's ``file.py:Class`` is relative to it)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (some editors write one) is fine
        except FileNotFoundError:
            raise SimError("scenario file", str(path), "an existing TOML file") from None
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 1]
            raise SimError(
                "scenario file", str(path), f"a UTF-8 text file (byte {exc.start} is {bad!r})"
            ) from None
        except OSError as exc:
            raise SimError("scenario file", str(path), f"a readable file ({exc.strerror})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SimError("scenario file", str(path), f"valid TOML ({exc})") from None
        if "pattern" in data:  # a plug-in file's path is relative to the scenario file
            data["pattern"] = absolute(data["pattern"], path.absolute().parent)
        broker = data.get("broker")
        if isinstance(broker, dict) and isinstance(broker.get("profile"), str):  # relative to this file too
            broker["profile"] = str(path.absolute().parent / Path(broker["profile"]).expanduser())
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, suitable for JSON and hashing (``inf`` as a float); pattern tables at top level."""
        data = self.model_dump(mode="python", by_alias=True)
        for name in ("faults", "nemesis"):  # unset parameters of a fault stay unset
            data[name] = [{k: v for k, v in entry.items() if v is not None} for entry in data[name]]
        data.update(data.pop("options"))
        return data

    def with_updates(self, updates: Mapping[str, Any]) -> Scenario:
        """A new scenario with dotted keys replaced (``{"links.loss": 0.05}``).

        A new ``pattern`` takes its own table; the table of a plug-in it replaces is dropped (it cannot be
        validated without its plug-in), unless the updates set it.
        """
        data = self.to_dict()
        pattern = absolute(updates.get("pattern", self.pattern))
        tables = _table_names(pattern) if isinstance(pattern, str) else set(PATTERNS)
        if pattern != self.pattern and self.pattern not in PATTERNS:
            mine = pattern_class(self.pattern).name
            if mine not in tables and not any(k.split(".")[0] == mine for k in updates):
                data.pop(mine, None)
        for key, value in updates.items():
            _set_dotted(data, key, value, tables)
        return Scenario.from_dict(data)


def _table_names(pattern: str) -> set[str]:
    """The pattern tables a scenario with ``pattern`` may hold: every built-in's, and its plug-in's."""
    if pattern in PATTERNS or not isinstance(pattern, str):
        return set(PATTERNS)
    try:
        return {*PATTERNS, pattern_class(pattern).name}
    except SimError:
        return set(PATTERNS)  # the pattern's own validator says what is wrong with it


def _plugin_table(pattern: str, name: str, table: Any, exc: Exception) -> PluginError:
    from sim.patterns.registry import plugin_failure

    error = plugin_failure(pattern, exc)
    frames = error.frames if error is not None else []
    return PluginError(name, table, f"a table its plug-in accepts (from_options {failure(exc)})", frames)


def _set_dotted(data: dict[str, Any], key: str, value: Any, tables: set[str]) -> None:
    open_tables = {"params", *tables}  # tables whose keys their owner (the topology, a pattern) checks
    parts = key.split(".")
    where: dict[str, Any] = data
    for i, part in enumerate(parts[:-1]):
        sub = where.get(part)
        if sub is None and i == 0 and part in tables:
            sub = where[part] = {}
        if not isinstance(sub, dict):
            raise SimError(key, value, f"a known setting ('{'.'.join(parts[: i + 1])}' is not a table)")
        where = sub
    last = parts[-1]
    if last not in where and not (len(parts) > 1 and parts[-2] in open_tables) and last not in tables:
        known = ", ".join(sorted(where))
        raise SimError(key, value, f"a known setting; '{'.'.join(parts[:-1]) or 'top level'}' has {known}")
    where[last] = value


_TYPE_NAMES = {
    "string_type": "a string",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "a list",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
}
"""Pydantic's type errors, said in the words of docs/config.md."""

_TYPE_TAGS = {"bool", "int", "float", "str", "list", "dict", "none", "function-after", "function-before"}


def _sim_error(exc: ValidationError) -> SimError:
    err = exc.errors()[0]
    loc: list[str] = []
    for part in err["loc"]:  # faults.0.at -> faults[0].at; union branches (bool, literal[...]) dropped
        if isinstance(part, str) and (part in _TYPE_TAGS or "[" in part):
            continue
        if isinstance(part, int) and loc:
            loc[-1] += f"[{part}]"
        else:
            loc.append(str(part))
    field = ".".join(loc) or "scenario"
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, SimError):
        # the validator names the field relative to its model; put the model's path in front
        head = loc[:-1] if loc and inner.field.split(".")[0] == loc[-1].split("[")[0] else loc
        return inner.at(".".join(head))
    kind = err["type"]
    if kind == "extra_forbidden":
        return SimError(field, err["input"], "a known key (see docs/config.md); this one is not")
    if kind == "literal_error":
        return SimError(field, err["input"], (err.get("ctx") or {}).get("expected", "a listed value"))
    if kind == "missing":
        return SimError(field, None, "a value (required)")
    if kind in _TYPE_NAMES:
        return SimError(field, err.get("input"), _TYPE_NAMES[kind])
    return SimError(field, err.get("input"), err["msg"].removeprefix("Value error, ").lower())
