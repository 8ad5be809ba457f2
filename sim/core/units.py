"""Parse durations, rates, sizes and bandwidths written the way people write them.

Plain numbers are taken as the base unit: seconds, bytes, per second, bytes per second.

>>> parse_duration("250us"), parse_duration("5ms"), parse_duration(2)
(0.00025, 0.005, 2.0)
>>> parse_rate("1000/s"), parse_rate("60/min")
(1000.0, 1.0)
>>> parse_size("1KB"), parse_size("4MiB")
(1000.0, 4194304.0)
>>> parse_bandwidth("1Gbps"), parse_bandwidth("10Mb/s"), parse_bandwidth("125MB/s")
(125000000.0, 1250000.0, 125000000.0)

Sizes and bandwidths are case-sensitive where case carries meaning: ``b`` is a bit and ``B`` a byte, ``M``,
``G`` and ``T`` are upper case (``m`` would be milli), kilo is ``k`` or ``K``. A spelling that could be read
two ways (``"10mb/s"``, ``"10MBps"``) or a size in bits (``"1Kb"``) is refused with the accepted list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from sim.core.errors import SimError

__all__ = [
    "metric_unit",
    "parse_bandwidth",
    "parse_count",
    "parse_duration",
    "parse_probability",
    "parse_rate",
    "parse_size",
]

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "m": 60.0,
    "h": 3600.0,
}
_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BINARY = {"Ki": 1024.0, "Mi": 1024.0**2, "Gi": 1024.0**3, "Ti": 1024.0**4}
_SIZE_UNITS: dict[str, float] = {f"{p}B": f for p, f in (_DECIMAL | _BINARY).items()}
"""Byte units, case-sensitive: ``B``, ``kB``/``KB``, ``MB``, ``GB``, ``TB``, ``KiB`` ... ``TiB``."""
_BIT_RATES: dict[str, float] = {}
"""Bits per second, as bytes per second: ``bps``/``b/s``/``bit/s`` with a decimal or binary prefix."""
for _p, _f in _DECIMAL.items():
    _BIT_RATES.update({f"{_p}bps": _f / 8, f"{_p}b/s": _f / 8, f"{_p}bit/s": _f / 8})
for _p, _f in _BINARY.items():
    _BIT_RATES[f"{_p}bit/s"] = _f / 8
_BYTE_RATES = {f"{unit}/s": f for unit, f in _SIZE_UNITS.items()}
_SIZE_ALLOWED = (
    "a size >= 0 in bytes: a number, or with a unit B, kB or KB, MB, GB, TB (powers of 1000), KiB, MiB, "
    'GiB, TiB (powers of 1024), case-sensitive (b is a bit, not a size unit); e.g. 1024, "1KB", "64KiB"'
)
_BANDWIDTH_ALLOWED = (
    "a bandwidth > 0: bits per second kbps, Mbps, Gbps, Tbps, or kb/s, Mb/s, Gb/s or kbit/s, Mbit/s, "
    "Gbit/s; bytes per second kB/s or KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s; a number of bytes per second; "
    'or "inf"; case-sensitive (b bits, B bytes; M, G, T upper case)'
)
_INFINITE = {"inf", "infinite", "unlimited", "none"}


def _split(text: str) -> tuple[float, str] | None:
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-zµ/]*)", text.strip())
    if m is None:
        return None
    return float(m.group(1)), m.group(2)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _check(field: str, value: object, x: float, allowed: str, *, zero_ok: bool = True) -> float:
    if math.isnan(x) or x < 0 or (x == 0 and not zero_ok):
        raise SimError(field, value, allowed)
    return x


def parse_duration(value: object, field: str = "duration", *, allow_inf: bool = False) -> float:
    """Seconds from ``2``, ``"2s"``, ``"5ms"``, ``"250us"``, ``"10ns"``, ``"1min"``, ``"1h"``."""
    allowed = 'a duration >= 0 such as 2, "2s", "5ms", "250us"' + (' or "inf"' if allow_inf else "")
    x = _number(value)
    if x is None and isinstance(value, str):
        if allow_inf and value.strip().lower() in _INFINITE:
            return math.inf
        parts = _split(value)
        if parts is not None and parts[1] in _DURATION_UNITS | {"": 1.0}:
            x = parts[0] * _DURATION_UNITS.get(parts[1], 1.0)
    if x is None or (math.isinf(x) and not allow_inf):
        raise SimError(field, value, allowed)
    return _check(field, value, x, allowed)


def parse_rate(value: object, field: str = "rate") -> float:
    """Events per second from ``200``, ``"200/s"``, ``"5/ms"``, ``"60/min"``, ``"3600/h"``."""
    allowed = 'a rate > 0 such as 200, "200/s", "5/ms", "60/min"'
    x = _number(value)
    if x is None and isinstance(value, str):
        text = value.strip()
        if "/" in text:
            count, _, per = text.partition("/")
            per = per.strip()
            parts = _split(count)
            unit = _DURATION_UNITS.get(per) if per else None
            if per and (per[0].isdigit() or per[0] == "."):  # "1000/2s"
                span = _split(per)
                unit = span[0] * _DURATION_UNITS[span[1]] if span and span[1] in _DURATION_UNITS else None
            if parts is not None and parts[1] == "" and unit:
                x = parts[0] / unit
        else:
            parts = _split(text)
            if parts is not None and parts[1] in ("", "hz", "Hz"):
                x = parts[0]
    if x is None or math.isinf(x):
        raise SimError(field, value, allowed)
    return _check(field, value, x, allowed, zero_ok=False)


def parse_size(value: object, field: str = "size") -> float:
    """Bytes from ``1024``, ``"1KB"`` (1000), ``"1KiB"`` (1024), ``"4MiB"``, ``"1GB"``.

    Units are case-sensitive: ``B`` is a byte; ``"1Kb"`` (a kilobit) and ``"1kb"`` are refused, since a size
    written in bits is almost always a slip.
    """
    x = _number(value)
    if x is None and isinstance(value, str):
        parts = _split(value)
        if parts is not None:
            unit = parts[1] or "B"
            if unit in _SIZE_UNITS:
                x = parts[0] * _SIZE_UNITS[unit]
    if x is None or math.isinf(x):
        raise SimError(field, value, _SIZE_ALLOWED)
    return _check(field, value, x, _SIZE_ALLOWED)


def parse_bandwidth(value: object, field: str = "bandwidth") -> float:
    """Bytes per second from ``"1Gbps"``, ``"10Mb/s"``, ``"100Mbit/s"``, ``"125MB/s"``, ``"1GiB/s"``, a
    number, or ``"inf"``.

    ``b`` means bits and ``B`` bytes (``"10Mb/s"`` is 1.25e6 bytes/s, ``"10MB/s"`` 1e7). Spellings that
    could be read either way are refused: a lower-case ``m``, ``g`` or ``t`` prefix (``"10mb/s"``,
    ``"1gbps"``), ``Bps`` (``"10MBps"``, one letter away from ``"10Mbps"``), upper-case ``BPS``.
    ``inf`` (the default for links) means no serialization delay.
    """
    x = _number(value)
    if x is None and isinstance(value, str):
        text = value.strip()
        if text.lower() in _INFINITE:
            return math.inf
        parts = _split(text)
        if parts is not None:
            unit = parts[1]
            if unit in _BIT_RATES:
                x = parts[0] * _BIT_RATES[unit]
            elif unit in _BYTE_RATES:
                x = parts[0] * _BYTE_RATES[unit]
            elif unit == "":
                x = parts[0]
    if x is None:
        raise SimError(field, value, _BANDWIDTH_ALLOWED)
    return _check(field, value, x, _BANDWIDTH_ALLOWED, zero_ok=False)


def parse_probability(value: object, field: str = "probability") -> float:
    """A probability in [0, 1]."""
    x = _number(value)
    if x is None or not 0.0 <= x <= 1.0:
        raise SimError(field, value, "a probability in [0, 1]")
    return x


def parse_count(value: object, field: str, *, minimum: int = 0, allow_inf: bool = False) -> int | float:
    """A whole number >= ``minimum`` (``math.inf`` too when ``allow_inf``, written ``"inf"``)."""
    allowed = f"a whole number >= {minimum}" + (' or "inf"' if allow_inf else "")
    if allow_inf and (value == math.inf or (isinstance(value, str) and value.strip().lower() in _INFINITE)):
        return math.inf
    number = int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        raise SimError(field, value, allowed)
    return number


_METRIC_UNITS: dict[str, str] = {
    "stable": "1 = stable",
    "throughput": "msg/s",
    "backlog_slope": "msg/s",
    "queue_wait_mean": "s",
    "recovery_time": "s",
    "bytes_per_delivery": "bytes/delivery",
    "op_bytes_per_op": "bytes/op",
    "msgs_per_delivery": "transmissions/delivery",
    "op_duplicates_per_op": "copies/op",
    "duplicates": "copies",
    "deduplicated": "copies",
    "op_duplicates": "copies",
    "retries": "retransmissions",
    "redeliveries": "redeliveries",
    "backlog_max": "msgs",
    "backlog_mean": "msgs",
    "faults": "fault windows",
    "replication_messages": "messages",
    "replication_bytes": "bytes",
    "elections": "elections",
    "unavailable": "s",
}
_METRIC_UNIT_RULES: tuple[tuple[str, str, str], ...] = (
    # (prefix, suffix, unit): the first rule whose prefix and suffix both match
    ("", "_ratio", "ratio"),
    ("", "_share", "ratio"),
    ("", "utilization", "ratio"),
    ("", "utilization_max", "ratio"),
    ("latency_", "", "s"),
    ("op_latency_", "", "s"),
    ("chain_latency_", "", "s"),
    ("rtt_", "", "s"),
    ("commit_latency_", "", "s"),
    ("op_", "msgs_per_op", "transmissions/op"),
    ("", "transmissions", "transmissions"),
    ("op_", "", "ops"),
    ("chains_", "", "chains"),
)
_REQUESTS = ("requests", "answered", "timeouts", "late_replies", "outstanding_max")
"""request_reply's counts, for a caller that does not pass the run's pattern's units (``declared``)."""


def metric_unit(name: str, declared: Mapping[str, str] | None = None) -> str:
    """The unit of a summary figure, for labels: ``s``, ``msg/s``, ``ratio``, ``bytes/delivery``, ...

    Counts name what they count (``obligations``, ``ops``, ``transmissions``, ``copies``).

    Parameters
    ----------
    name : str
        A summary name.
    declared : mapping of str to str, optional
        The units the run's pattern declares for its own figures (``Measure.unit`` by summary name, a
        plug-in's included); they come first, so a pattern's ``calls`` is in calls even where a
        built-in figure of the same name is counted in something else.

    >>> metric_unit("latency_p99"), metric_unit("throughput"), metric_unit("delivery_ratio")
    ('s', 'msg/s', 'ratio')
    >>> metric_unit("lost_timeout"), metric_unit("op_latency_p50"), metric_unit("bytes_per_delivery")
    ('obligations', 's', 'bytes/delivery')
    >>> metric_unit("requests"), metric_unit("requests", {"requests": "quotes"}), metric_unit("sagas")
    ('requests', 'quotes', 'obligations')
    """
    if declared and name in declared:
        return declared[name]
    if name in _METRIC_UNITS:
        return _METRIC_UNITS[name]
    for prefix, suffix, unit in _METRIC_UNIT_RULES:
        if name.startswith(prefix) and name.endswith(suffix):
            return unit
    if name in _REQUESTS:
        return "requests"
    return "obligations"
