"""Unit parsing: every accepted spelling gives the right base-unit value; every bad one a SimError."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.core.errors import SimError
from sim.core.units import (
    parse_bandwidth,
    parse_count,
    parse_duration,
    parse_probability,
    parse_rate,
    parse_size,
)

FINITE = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)


def assert_rejects(parse: Callable[..., object], value: object, field: str, **kw: object) -> SimError:
    """``parse(value, field)`` raises a SimError naming ``field`` and ``value``."""
    with pytest.raises(SimError) as info:
        parse(value, field, **kw)
    err = info.value
    assert err.field == field
    assert err.value is value or err.value == value
    assert field in str(err)
    assert repr(value) in str(err)
    assert str(err).startswith(f"{field} = ")
    return err


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10ns", 1e-8),
        ("250us", 2.5e-4),
        ("250µs", 2.5e-4),
        ("5ms", 0.005),
        ("2s", 2.0),
        ("2sec", 2.0),
        ("1min", 60.0),
        ("3m", 180.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        (" 5 ms ", 0.005),
        ("1e3ms", 1.0),
        (".5s", 0.5),
        ("0", 0.0),
        ("0ms", 0.0),
        ("7", 7.0),
        ("+3s", 3.0),
        (2, 2.0),
        (0, 0.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text: object, seconds: float) -> None:
    got = parse_duration(text)
    assert type(got) is float
    assert got == pytest.approx(seconds, rel=1e-12, abs=0.0)


def test_parse_duration_inf_only_when_allowed() -> None:
    for word in ("inf", "INF", " infinite ", "unlimited", "none"):
        assert parse_duration(word, "timeout", allow_inf=True) == math.inf
        assert_rejects(parse_duration, word, "timeout")
    assert parse_duration(math.inf, "timeout", allow_inf=True) == math.inf
    assert_rejects(parse_duration, math.inf, "timeout")
    err = assert_rejects(parse_duration, "soon", "timeout", allow_inf=True)
    assert '"inf"' in err.allowed
    assert '"inf"' not in assert_rejects(parse_duration, "soon", "timeout").allowed


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -0.001,
        "-5ms",
        math.nan,
        "nan",
        True,
        False,
        None,
        [1],
        {"s": 1},
        "",
        "ms",
        "fast",
        "5 parsecs",
        "5MS",  # duration units are case-sensitive
        "5ms5",
        "5/s",
        "1e400s",  # overflows to inf
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    err = assert_rejects(parse_duration, value, "links.latency")
    assert "duration" in err.allowed


@given(FINITE)
def test_parse_duration_round_trips_milliseconds(x: float) -> None:
    assert parse_duration(f"{x}ms") == pytest.approx(x / 1000, rel=1e-12, abs=1e-300)


@given(FINITE, st.sampled_from([("ns", 1e-9), ("us", 1e-6), ("s", 1.0), ("min", 60.0), ("h", 3600.0)]))
def test_parse_duration_round_trips_every_unit(x: float, unit: tuple[str, float]) -> None:
    suffix, scale = unit
    assert parse_duration(f"{x}{suffix}") == pytest.approx(x * scale, rel=1e-12, abs=1e-300)
    assert parse_duration(x) == x


@given(st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False))
def test_parse_duration_rejects_any_negative(x: float) -> None:
    with pytest.raises(SimError, match=r"^d = "):
        parse_duration(x, "d")
    with pytest.raises(SimError, match=r"^d = "):
        parse_duration(f"{x}ms", "d")


# -- rates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("1000/s", 1000.0),
        ("5/ms", 5000.0),
        ("2/us", 2e6),
        ("60/min", 1.0),
        ("3600/h", 1.0),
        ("1000/2s", 500.0),
        ("30/0.5min", 1.0),
        ("10/100ms", 100.0),
        (" 1000 / s ", 1000.0),
        ("200", 200.0),
        ("200hz", 200.0),
        ("200Hz", 200.0),
        ("2.5e2/s", 250.0),
        (200, 200.0),
        (0.5, 0.5),
    ],
)
def test_parse_rate_accepts(text: object, per_second: float) -> None:
    got = parse_rate(text)
    assert type(got) is float
    assert got == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.0,
        "0",
        "0/s",
        "1000/0s",
        -5,
        "-5/s",
        math.nan,
        math.inf,
        "inf",
        True,
        None,
        [5],
        "",
        "/s",
        "5/",
        "5/fortnight",
        "5ms/s",
        "1000/2",
        "1000/2parsecs",
        "5 per second",
        "1e400/s",
    ],
)
def test_parse_rate_rejects(value: object) -> None:
    err = assert_rejects(parse_rate, value, "workload.rate")
    assert "rate > 0" in err.allowed


@given(POSITIVE)
def test_parse_rate_round_trips(x: float) -> None:
    assert parse_rate(f"{x}/s") == pytest.approx(x, rel=1e-12)
    assert parse_rate(f"{x}/ms") == pytest.approx(x * 1000, rel=1e-12)
    assert parse_rate(f"{x}/min") == pytest.approx(x / 60, rel=1e-12)
    assert parse_rate(x) == x


# -- sizes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("512", 512.0),
        ("512B", 512.0),
        ("1KB", 1000.0),
        ("1kB", 1000.0),
        ("1KiB", 1024.0),
        ("64KiB", 65536.0),
        ("4MiB", 4 * 1024.0**2),
        ("1MB", 1e6),
        ("1GB", 1e9),
        ("1GiB", 1024.0**3),
        ("2TB", 2e12),
        ("1TiB", 1024.0**4),
        ("1.5KB", 1500.0),
        (" 1 KiB ", 1024.0),
        ("0", 0.0),
        (0, 0.0),
        (1024, 1024.0),
        (12.5, 12.5),
    ],
)
def test_parse_size_accepts(text: object, nbytes: float) -> None:
    got = parse_size(text)
    assert type(got) is float
    assert got == nbytes


@pytest.mark.parametrize(
    "value",
    [
        -1,
        "-1KB",
        math.nan,
        math.inf,
        "inf",
        True,
        None,
        [1],
        "",
        "KB",
        "1XB",
        "1KiB/s",
        "1 kilobyte",
        "1e400B",
        # bits are not a size; lower-case m/g/t are not byte prefixes
        "1Kb",
        "1kb",
        "8b",
        "1Mb",
        "1mb",
        "1mB",
        "1gb",
        "1kib",
        "1KIB",
    ],
)
def test_parse_size_rejects(value: object) -> None:
    err = assert_rejects(parse_size, value, "workload.size")
    assert "size >= 0" in err.allowed


def test_parse_size_refusal_lists_the_accepted_units() -> None:
    err = assert_rejects(parse_size, "1Kb", "workload.size")
    for unit in ("B", "kB", "KB", "MB", "GB", "KiB", "MiB", "GiB"):
        assert f" {unit}" in err.allowed
    assert "b is a bit" in err.allowed
    assert "\n" not in str(err)


@given(st.integers(min_value=0, max_value=2**40))
def test_parse_size_round_trips(n: int) -> None:
    assert parse_size(str(n)) == n
    assert parse_size(f"{n}KB") == n * 1000
    assert parse_size(f"{n}KiB") == n * 1024
    assert parse_size(f"{n}MiB") == n * 1024**2


# -- bandwidths ------------------------------------------------------------------------------------


BANDWIDTH_TABLE = [
    # bits per second: a lower-case b
    ("8bps", 1.0),
    ("8b/s", 1.0),
    ("8bit/s", 1.0),
    ("10kbps", 1250.0),
    ("10Kbps", 1250.0),
    ("10kb/s", 1250.0),
    ("10kbit/s", 1250.0),
    ("10Mbps", 1.25e6),
    ("10Mb/s", 1.25e6),
    ("10Mbit/s", 1.25e6),
    ("100Mbps", 12.5e6),
    ("1Gbps", 125e6),
    ("1Gb/s", 125e6),
    ("1Gbit/s", 125e6),
    ("2.5Gbps", 312.5e6),
    ("1Tbps", 125e9),
    ("1Tbit/s", 125e9),
    ("1Kibit/s", 128.0),
    ("1Mibit/s", 1024.0**2 / 8),
    ("1Gibit/s", 1024.0**3 / 8),
    # bytes per second: an upper-case B
    ("1B/s", 1.0),
    ("1kB/s", 1000.0),
    ("1KB/s", 1000.0),
    ("10MB/s", 1e7),
    ("125MB/s", 125e6),
    ("1GB/s", 1e9),
    ("1TB/s", 1e12),
    ("1KiB/s", 1024.0),
    ("1MiB/s", 1024.0**2),
    ("1GiB/s", 1024.0**3),
    ("1TiB/s", 1024.0**4),
    # plain numbers are bytes per second
    ("1000", 1000.0),
    (" 10 Mb/s ", 1.25e6),
    (1000, 1000.0),
    (0.5, 0.5),
]


@pytest.mark.parametrize(("text", "bytes_per_s"), BANDWIDTH_TABLE)
def test_parse_bandwidth_accepts(text: object, bytes_per_s: float) -> None:
    got = parse_bandwidth(text)
    assert type(got) is float
    assert got == pytest.approx(bytes_per_s, rel=1e-12)


def test_bits_and_bytes_differ_by_eight() -> None:
    assert parse_bandwidth("10Mb/s") == 1.25e6  # megabits: the "8x too fast" case
    assert parse_bandwidth("10MB/s") == 1e7
    assert parse_bandwidth("10MB/s") == 8 * parse_bandwidth("10Mb/s")
    assert parse_bandwidth("10Mbps") == parse_bandwidth("10Mbit/s") == parse_bandwidth("10Mb/s")


@pytest.mark.parametrize("value", ["inf", "Infinite", " unlimited ", "none", math.inf])
def test_parse_bandwidth_infinite(value: object) -> None:
    assert parse_bandwidth(value) == math.inf


AMBIGUOUS_BANDWIDTHS = [
    "10mb/s",  # milli-bits? megabytes? refused
    "10mB/s",
    "10mbps",
    "1gbps",
    "1GBPS",
    "10MBps",  # one letter away from 10Mbps
    "10KBps",
    "1GBps",
    "1Bps",
    "1Mbit",  # a size, not a rate
    "1Gbit",
    "1GB",
    "1Mb",
    "1gib/s",
    "1MIB/s",
]


@pytest.mark.parametrize(
    "value",
    [
        *(0, "0", "0Gbps", "0MB/s", -1, "-1Gbps", math.nan, True, None, [1], "", "Gbps", "fast"),
        *AMBIGUOUS_BANDWIDTHS,
    ],
)
def test_parse_bandwidth_rejects(value: object) -> None:
    err = assert_rejects(parse_bandwidth, value, "links.bandwidth")
    assert "bandwidth > 0" in err.allowed


def test_parse_bandwidth_refusal_lists_the_accepted_spellings() -> None:
    err = assert_rejects(parse_bandwidth, "10mb/s", "links.bandwidth")
    for unit in ("Mbps", "Gbps", "Mb/s", "Mbit/s", "MB/s", "KB/s", "GiB/s", '"inf"'):
        assert unit in err.allowed
    assert "\n" not in str(err)


def test_a_scenario_reads_bits_as_bits() -> None:
    from sim.config.scenario import Scenario

    assert Scenario(links={"bandwidth": "10Mb/s"}).links.bandwidth == 1.25e6
    with pytest.raises(SimError, match=r"bandwidth = '10mb/s': expected a bandwidth > 0"):
        Scenario(links={"bandwidth": "10mb/s"})


@given(POSITIVE)
def test_parse_bandwidth_round_trips(x: float) -> None:
    assert parse_bandwidth(f"{x}Mbps") == pytest.approx(x * 125_000, rel=1e-12)
    assert parse_bandwidth(f"{x}MB/s") == pytest.approx(x * 1e6, rel=1e-12)


# -- probabilities and counts ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 0.0, 0.25, 1, 1.0])
def test_parse_probability_accepts(value: float) -> None:
    got = parse_probability(value, "links.loss")
    assert got == value
    assert type(got) is float


@pytest.mark.parametrize("value", [1.5, -0.1, 1.0000001, math.nan, math.inf, True, False, None, "0.5", [0.5]])
def test_parse_probability_rejects(value: object) -> None:
    err = assert_rejects(parse_probability, value, "links.loss")
    assert err.allowed == "a probability in [0, 1]"


def test_parse_probability_message_is_one_readable_line() -> None:
    with pytest.raises(SimError) as info:
        parse_probability(1.5, "links.loss")
    assert str(info.value) == "links.loss = 1.5: expected a probability in [0, 1]"


@given(st.floats(min_value=0.0, max_value=1.0))
def test_parse_probability_identity_on_unit_interval(p: float) -> None:
    assert parse_probability(p) == p


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (3, 3), (3.0, 3), (1e6, 1_000_000)])
def test_parse_count_accepts(value: object, expected: int) -> None:
    got = parse_count(value, "retries")
    assert got == expected
    assert type(got) is int


def test_parse_count_minimum() -> None:
    assert parse_count(1, "servers", minimum=1) == 1
    err = assert_rejects(parse_count, 0, "servers", minimum=1)
    assert err.allowed == "a whole number >= 1"


@pytest.mark.parametrize("value", [math.inf, "inf", " INF ", "unlimited"])
def test_parse_count_inf_only_when_allowed(value: object) -> None:
    assert parse_count(value, "retries", allow_inf=True) == math.inf
    err = assert_rejects(parse_count, value, "retries")
    assert "inf" not in err.allowed
    assert '"inf"' in assert_rejects(parse_count, "lots", "retries", allow_inf=True).allowed


@pytest.mark.parametrize("value", [-1, -3.0, 2.5, -2.5, math.nan, True, False, None, "3", [3], "many"])
def test_parse_count_rejects(value: object) -> None:
    err = assert_rejects(parse_count, value, "retries")
    assert err.allowed == "a whole number >= 0"


def test_parse_count_error_shows_the_value_as_given() -> None:
    with pytest.raises(SimError) as info:
        parse_count(-3.0, "retries")
    assert str(info.value) == "retries = -3.0: expected a whole number >= 0"
    assert info.value.value == -3.0 and type(info.value.value) is float


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_count_integral_floats(n: int) -> None:
    assert parse_count(float(n), "n") == n
    assert parse_count(n, "n", allow_inf=True) == n
