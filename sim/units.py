"""Parse durations, rates, sizes and bandwidths written the way people write them.

Plain numbers are taken as the base unit: seconds, bytes, per second, bytes per second.

>>> parse_duration("250us"), parse_duration("5ms"), parse_duration(2)
(0.00025, 0.005, 2.0)
>>> parse_rate("1000/s"), parse_rate("60/min")
(1000.0, 1.0)
>>> parse_size("1KB"), parse_size("4MiB")
(1000.0, 4194304.0)
>>> parse_bandwidth("1Gbps"), parse_bandwidth("125MB/s")
(125000000.0, 125000000.0)
"""

from __future__ import annotations

import math
import re

from sim.errors import SimError

__all__ = [
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
_SIZE_UNITS = {
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 1024.0,
    "mib": 1024.0**2,
    "gib": 1024.0**3,
    "tib": 1024.0**4,
}
_BIT_RATES = {"bps": 1 / 8, "kbps": 1e3 / 8, "mbps": 1e6 / 8, "gbps": 1e9 / 8, "tbps": 1e12 / 8}
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
    """Bytes from ``1024``, ``"1KB"`` (1000), ``"1KiB"`` (1024), ``"4MiB"``, ``"1GB"``."""
    allowed = 'a size >= 0 in bytes such as 1024, "1KB", "64KiB", "4MiB"'
    x = _number(value)
    if x is None and isinstance(value, str):
        parts = _split(value)
        if parts is not None:
            unit = parts[1].lower() or "b"
            if unit in _SIZE_UNITS:
                x = parts[0] * _SIZE_UNITS[unit]
    if x is None or math.isinf(x):
        raise SimError(field, value, allowed)
    return _check(field, value, x, allowed)


def parse_bandwidth(value: object, field: str = "bandwidth") -> float:
    """Bytes per second from ``"1Gbps"``, ``"100Mbps"``, ``"125MB/s"``, ``"1GiB/s"``, a number, or ``"inf"``.

    ``inf`` (the default for links) means no serialization delay.
    """
    allowed = 'a bandwidth > 0 such as "1Gbps", "100Mbps", "125MB/s", bytes per second, or "inf"'
    x = _number(value)
    if x is None and isinstance(value, str):
        text = value.strip()
        if text.lower() in _INFINITE:
            return math.inf
        parts = _split(text)
        if parts is not None:
            unit = parts[1].lower()
            if parts[1].endswith("Bps"):  # capital B: bytes per second ("125MBps")
                unit = unit[:-3] + "b/s"
            if unit in _BIT_RATES:
                x = parts[0] * _BIT_RATES[unit]
            elif unit.endswith("/s") and unit[:-2] in _SIZE_UNITS:
                x = parts[0] * _SIZE_UNITS[unit[:-2]]
            elif unit == "":
                x = parts[0]
    if x is None:
        raise SimError(field, value, allowed)
    return _check(field, value, x, allowed, zero_ok=False)


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
