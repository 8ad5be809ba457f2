"""Distributions: from_spec builds the right sampler; mean and m2 agree with closed forms and samples."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest
from scipy import stats

from sim.core.distributions import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Normal,
    Pareto,
    Uniform,
    from_spec,
)
from sim.core.errors import SimError
from sim.core.rng import RngStreams
from sim.core.units import parse_size

N = 40_000
Z = 5.0  # tolerance in standard errors: a false alarm has probability ~6e-7 per check


def draw(d: Distribution, n: int = N, seed: int = 2024) -> np.ndarray:
    stream = RngStreams(seed).stream("x")
    return np.array([d.sample(stream) for _ in range(n)])


def assert_moments(d: Distribution, x: np.ndarray) -> None:
    """Sample mean and mean square within Z standard errors of ``d.mean`` and ``d.m2``.

    The standard errors are estimated from the sample itself (std of x and of x**2 over sqrt(n)),
    which is sound for the distributions used here because they all have finite fourth moments.
    """
    n = len(x)
    se_mean = x.std(ddof=1) / math.sqrt(n)
    se_m2 = (x**2).std(ddof=1) / math.sqrt(n)
    assert abs(x.mean() - d.mean) <= Z * se_mean, (x.mean(), d.mean, se_mean)
    assert abs((x**2).mean() - d.m2) <= Z * se_m2, ((x**2).mean(), d.m2, se_m2)


# -- from_spec: what each spelling builds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (0.005, Constant(0.005)),
        (2, Constant(2.0)),
        ("5ms", Constant(0.005)),
        ({"dist": "constant", "value": "250us"}, Constant(0.00025)),
        ({"dist": "uniform", "low": "1ms", "high": "3ms"}, Uniform(0.001, 0.003)),
        ({"dist": "uniform", "low": 1, "high": 1}, Uniform(1.0, 1.0)),
        ({"dist": "exponential", "mean": "2ms"}, Exponential(0.002)),
        ({"dist": "exponential", "rate": "500/s"}, Exponential(0.002)),
        ({"dist": "exponential", "rate": 4}, Exponential(0.25)),
        ({"dist": "normal", "mean": "5ms", "std": "1ms"}, Normal(0.005, 0.001)),
        ({"dist": "lognormal", "mean": "10ms", "cv": 0.5}, LogNormal(0.01, 0.5)),
        ({"dist": "pareto", "shape": 3, "scale": "2ms"}, Pareto(3.0, 0.002)),
        ({"dist": "empirical", "samples": ["1ms", 0.002, "3ms"]}, Empirical((0.001, 0.002, 0.003))),
        ({"dist": "empirical", "samples": (1, 2)}, Empirical((1.0, 2.0))),
    ],
)
def test_from_spec_builds(spec: object, expected: Distribution) -> None:
    got = from_spec(spec, "links.latency")
    assert type(got) is type(expected)
    assert got == expected


def test_from_spec_pareto_from_mean_sets_the_scale() -> None:
    d = from_spec({"dist": "pareto", "shape": 3, "mean": "3ms"}, "links.latency")
    assert isinstance(d, Pareto)
    assert d.shape == 3.0
    assert d.scale == pytest.approx(0.002, rel=1e-12)
    assert d.mean == pytest.approx(0.003, rel=1e-12)


def test_from_spec_sizes() -> None:
    assert from_spec("1KB", "workload.size", parse_size) == Constant(1000.0)
    assert from_spec(512, "workload.size", parse_size) == Constant(512.0)
    assert from_spec({"dist": "uniform", "low": "1KB", "high": "4KiB"}, "s", parse_size) == Uniform(
        1000.0, 4096.0
    )
    assert from_spec({"dist": "exponential", "mean": "1MiB"}, "s", parse_size) == Exponential(1024.0**2)
    assert from_spec({"dist": "lognormal", "mean": "1.5KB", "cv": 2}, "s", parse_size) == LogNormal(
        1500.0, 2.0
    )
    assert from_spec({"dist": "pareto", "shape": 2, "mean": "2KB"}, "s", parse_size) == Pareto(2.0, 1000.0)
    emp = from_spec({"dist": "empirical", "samples": ["1KB", 512, "1KiB"]}, "s", parse_size)
    assert emp == Empirical((1000.0, 512.0, 1024.0))
    # a size spelled as a duration is not a size
    with pytest.raises(SimError, match=r"^s\.value = '5ms'"):
        from_spec({"dist": "constant", "value": "5ms"}, "s", parse_size)


# -- closed forms ---------------------------------------------------------------------------------


def test_exact_moments() -> None:
    assert Constant(3.0).mean == 3.0
    assert Constant(3.0).m2 == 9.0
    assert Exponential(2.0).mean == 2.0
    assert Exponential(2.0).m2 == 8.0
    assert Uniform(1.0, 3.0).mean == 2.0
    assert Uniform(1.0, 3.0).m2 == pytest.approx(13 / 3, rel=1e-15)
    assert LogNormal(2.0, 0.5).m2 == pytest.approx(5.0, rel=1e-15)
    assert LogNormal(2.0, 0.5).sigma == pytest.approx(math.sqrt(math.log(1.25)), rel=1e-15)
    assert LogNormal(2.0, 0.5).mu == pytest.approx(math.log(2.0) - math.log(1.25) / 2, rel=1e-15)
    assert Pareto(3.0, 2.0).mean == 3.0
    assert Pareto(3.0, 2.0).m2 == 12.0
    assert Pareto(2.0, 1.0).m2 == math.inf
    assert Pareto(1.5, 1.0).m2 == math.inf
    assert Empirical((1.0, 2.0, 3.0, 4.0)).mean == 2.5
    assert Empirical((1.0, 2.0, 3.0, 4.0)).m2 == 7.5
    # half-normal: E[X] = sqrt(2/pi), E[X^2] = 1
    assert Normal(0.0, 1.0).mean == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)
    assert Normal(0.0, 1.0).m2 == pytest.approx(1.0, rel=1e-12)
    assert Normal(4.0, 0.0).mean == 4.0
    assert Normal(4.0, 0.0).m2 == 16.0


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (1.0, 2.0), (5.0, 1.0), (0.002, 0.003), (3.0, 0.1)])
def test_normal_moments_match_scipy_truncnorm(mu: float, sigma: float) -> None:
    ref = stats.truncnorm(-mu / sigma, np.inf, loc=mu, scale=sigma)
    d = Normal(mu, sigma)
    assert d.mean == pytest.approx(ref.mean(), rel=1e-9)
    assert d.m2 == pytest.approx(ref.var() + ref.mean() ** 2, rel=1e-9)


def test_lognormal_zero_mean_is_always_zero() -> None:
    d = LogNormal(0.0, 1.0)
    assert d.mu == -math.inf
    assert d.mean == 0.0
    assert d.m2 == 0.0
    assert set(draw(d, 100)) == {0.0}


def test_lognormal_zero_cv_is_constant() -> None:
    x = draw(LogNormal(0.004, 0.0), 200)
    assert x == pytest.approx(np.full(200, 0.004), rel=1e-12)


# -- sampling agrees with the formulas ------------------------------------------------------------


@pytest.mark.parametrize(
    "d",
    [
        Uniform(1.0, 3.0),
        Exponential(2.0),
        Normal(1.0, 2.0),
        Normal(0.005, 0.001),
        LogNormal(2.0, 0.5),
        Pareto(6.0, 1.0),
        Empirical((1.0, 2.0, 7.0, 10.0)),
    ],
    ids=repr,
)
def test_sample_moments_match(d: Distribution) -> None:
    assert_moments(d, draw(d))


@pytest.mark.parametrize(
    ("d", "ref"),
    [
        (Uniform(1.0, 3.0), stats.uniform(loc=1.0, scale=2.0)),
        (Exponential(2.0), stats.expon(scale=2.0)),
        (Normal(1.0, 2.0), stats.truncnorm(-0.5, np.inf, loc=1.0, scale=2.0)),
        (LogNormal(2.0, 0.5), stats.lognorm(s=math.sqrt(math.log(1.25)), scale=2.0 / math.sqrt(1.25))),
        (Pareto(3.5, 2.0), stats.pareto(b=3.5, scale=2.0)),
        (Pareto(1.5, 2.0), stats.pareto(b=1.5, scale=2.0)),  # infinite variance: only the CDF can be tested
    ],
    ids=lambda v: repr(v) if hasattr(v, "sample") else "scipy",
)
def test_sample_distribution_matches_scipy(d: Distribution, ref: stats.rv_continuous) -> None:
    # the whole shape, not just two moments; the reference moments agree with the formulas too
    x = draw(d, 20_000, seed=77)
    assert stats.kstest(x, ref.cdf).pvalue > 0.001
    assert d.mean == pytest.approx(ref.mean(), rel=1e-9)
    assert d.m2 == pytest.approx(ref.var() + ref.mean() ** 2, rel=1e-9)


def test_pareto_sample_mean_with_finite_variance() -> None:
    d = from_spec({"dist": "pareto", "shape": 4.5, "mean": 2.0}, "x")
    x = draw(d)
    assert x.min() >= d.scale  # type: ignore[attr-defined]
    assert abs(x.mean() - 2.0) <= Z * x.std(ddof=1) / math.sqrt(len(x))


def test_samples_stay_in_the_support() -> None:
    u = draw(Uniform(1.0, 3.0), 5000)
    assert u.min() >= 1.0 and u.max() < 3.0
    assert draw(Exponential(1.0), 5000).min() > 0.0
    assert draw(LogNormal(1.0, 3.0), 5000).min() > 0.0
    assert set(draw(Empirical((1.0, 2.0, 7.0)), 2000)) == {1.0, 2.0, 7.0}
    assert set(draw(Constant(0.5), 10)) == {0.5}
    assert set(draw(Uniform(2.0, 2.0), 10)) == {2.0}


def test_normal_is_truncated_at_zero() -> None:
    # mu = 0: half the raw draws are negative and must be redrawn
    d = Normal(0.0, 1.0)
    x = draw(d)
    assert x.min() >= 0.0
    assert_moments(d, x)
    assert stats.kstest(x, stats.halfnorm.cdf).pvalue > 0.001


def test_empirical_resamples_uniformly() -> None:
    x = draw(Empirical((1.0, 2.0, 3.0, 4.0)), 20_000)
    counts = np.array([(x == v).sum() for v in (1.0, 2.0, 3.0, 4.0)])
    assert counts.sum() == 20_000
    assert stats.chisquare(counts).pvalue > 0.001


def test_sampling_is_reproducible() -> None:
    d = from_spec({"dist": "lognormal", "mean": "1ms", "cv": 1}, "x")
    assert np.array_equal(draw(d, 500, seed=9), draw(d, 500, seed=9))
    assert not np.array_equal(draw(d, 500, seed=9), draw(d, 500, seed=10))


def test_exponential_rate_and_mean_draw_the_same_numbers() -> None:
    by_rate = from_spec({"dist": "exponential", "rate": "200/s"}, "x")
    by_mean = from_spec({"dist": "exponential", "mean": "5ms"}, "x")
    assert np.array_equal(draw(by_rate, 300), draw(by_mean, 300))


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field", "shown"),
    [
        ({"dist": "gamma", "mean": 1}, "w.dist", "'gamma'"),
        ({"mean": 1}, "w.dist", "None"),
        ({"dist": "Exponential", "mean": 1}, "w.dist", "'Exponential'"),
        ({"dist": "uniform", "low": 1}, "w", "'low': 1"),
        ({"dist": "uniform"}, "w", "'uniform'"),
        ({"dist": "exponential", "mean": 1, "rate": 2}, "w", "'rate': 2"),
        ({"dist": "constant", "value": 1, "extra": 2}, "w", "'extra': 2"),
        ({"dist": "normal", "mean": 1}, "w", "'mean': 1"),
        ({"dist": "pareto", "shape": 2, "scale": 1, "mean": 2}, "w", "'scale': 1"),
        ({"dist": "constant", "value": "-1ms"}, "w.value", "'-1ms'"),
        ({"dist": "exponential", "mean": "-1ms"}, "w.mean", "'-1ms'"),
        ({"dist": "exponential", "mean": -2}, "w.mean", "-2"),
        ({"dist": "exponential", "rate": 0}, "w.rate", "0"),
        ({"dist": "exponential", "rate": "fast"}, "w.rate", "'fast'"),
        ({"dist": "uniform", "low": "5ms", "high": "1ms"}, "w.high", "'1ms'"),
        ({"dist": "uniform", "low": "x", "high": "1ms"}, "w.low", "'x'"),
        ({"dist": "normal", "mean": "-1ms", "std": "1ms"}, "w.mean", "'-1ms'"),
        ({"dist": "normal", "mean": "1ms", "std": -1}, "w.std", "-1"),
        ({"dist": "lognormal", "mean": -1, "cv": 1}, "w.mean", "-1"),
        ({"dist": "lognormal", "mean": 1, "cv": -0.5}, "w.cv", "-0.5"),
        ({"dist": "lognormal", "mean": 1, "cv": "0.5"}, "w.cv", "'0.5'"),
        ({"dist": "lognormal", "mean": 1, "cv": math.nan}, "w.cv", "nan"),
        ({"dist": "lognormal", "mean": 1, "cv": True}, "w.cv", "True"),
        ({"dist": "pareto", "shape": 1, "mean": "1ms"}, "w.shape", "1"),
        ({"dist": "pareto", "shape": 0.5, "mean": "1ms"}, "w.shape", "0.5"),
        ({"dist": "pareto", "shape": 0, "scale": "1ms"}, "w.shape", "0"),
        ({"dist": "pareto", "shape": -2, "scale": "1ms"}, "w.shape", "-2"),
        ({"dist": "pareto", "shape": "3", "scale": "1ms"}, "w.shape", "'3'"),
        ({"dist": "pareto", "shape": 3, "scale": "-1ms"}, "w.scale", "'-1ms'"),
        ({"dist": "pareto", "shape": 3, "mean": None}, "w.mean", "None"),
        ({"dist": "empirical", "samples": []}, "w.samples", "[]"),
        ({"dist": "empirical", "samples": ()}, "w.samples", "()"),
        ({"dist": "empirical", "samples": "1ms,2ms"}, "w.samples", "'1ms,2ms'"),
        ({"dist": "empirical", "samples": b"12"}, "w.samples", "b'12'"),
        ({"dist": "empirical", "samples": 5}, "w.samples", "5"),
        ({"dist": "empirical", "samples": {"a": 1}}, "w.samples", "{'a': 1}"),
        ({"dist": "empirical", "samples": None}, "w.samples", "None"),
        ({"dist": "empirical", "samples": [1, "x", 3]}, "w.samples[1]", "'x'"),
        ({"dist": "empirical", "samples": [1, 2, -3]}, "w.samples[2]", "-3"),
        ("fast", "w", "'fast'"),
        ("-5ms", "w", "'-5ms'"),
        (None, "w", "None"),
        (True, "w", "True"),
        ([1, 2], "w", "[1, 2]"),
    ],
)
def test_from_spec_rejects(spec: object, field: str, shown: str) -> None:
    with pytest.raises(SimError) as info:
        from_spec(spec, "w")
    err = info.value
    assert err.field == field
    assert str(err).startswith(f"{field} = ")
    assert shown in str(err).split(": expected")[0]


def test_from_spec_error_lists_the_allowed_choices() -> None:
    with pytest.raises(SimError) as info:
        from_spec({"dist": "gamma"}, "links.latency")
    assert info.value.allowed == "one of constant, empirical, exponential, lognormal, normal, pareto, uniform"
    with pytest.raises(SimError) as info:
        from_spec({"dist": "pareto", "shape": 2}, "links.latency")
    assert info.value.allowed == "dist = 'pareto' with parameters (scale, shape) or (mean, shape)"


def test_from_spec_size_errors_name_the_field() -> None:
    with pytest.raises(SimError, match=r"^workload\.size\.samples\[0\] = '1XB'"):
        from_spec({"dist": "empirical", "samples": ["1XB"]}, "workload.size", parse_size)
    with pytest.raises(SimError, match=r"^workload\.size\.mean = '-1KB'"):
        from_spec({"dist": "exponential", "mean": "-1KB"}, "workload.size", parse_size)


# -- regressions: bugs found and fixed ------------------------------------------------------------


@pytest.mark.parametrize("shape", [0.5, 1.0])
def test_pareto_with_an_infinite_mean_is_rejected(shape: float) -> None:
    # an infinite mean breaks routing by mean latency and every closed form: refuse it up front
    with pytest.raises(SimError, match=r"^w\.shape = "):
        from_spec({"dist": "pareto", "shape": shape, "scale": "1ms"}, "w")
    assert Pareto(shape, 1.0).mean == math.inf  # built directly, the object still answers honestly


def test_unhashable_dist_is_a_sim_error() -> None:
    spec: Mapping[str, object] = {"dist": ["exponential"], "mean": 1}
    with pytest.raises(SimError, match=r"^w\.dist = "):
        from_spec(spec, "w")
