"""Named random streams: reproducible, independent of each other, and statistically sound."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sim.core.rng import BATCH, FIRST_BATCH, HASHED_DRAWS, RngStreams, Stream, stable_hash

ROOT = Path(__file__).resolve().parents[2]
Z = 5.0  # tolerance in standard errors


def take(stream: Stream, kind: str, n: int) -> list[float]:
    draw = getattr(stream, kind)
    return [draw() for _ in range(n)]


def mixed(stream: Stream, n: int) -> list[tuple[float, float, float]]:
    return [(stream.random(), stream.exponential(), stream.normal()) for _ in range(n)]


# -- reproducibility ------------------------------------------------------------------------------


def test_the_switch_to_numpy_batches_is_where_the_docs_say() -> None:
    assert HASHED_DRAWS % 8 == 0  # eight draws per hash
    assert FIRST_BATCH <= BATCH
    # draw HASHED_DRAWS + 1 is the first value of the numpy generator's first batch
    s = RngStreams(3).stream("link:a->b")
    first = take(s, "random", HASHED_DRAWS + 1)
    h = stable_hash("link:a->b")  # uniforms come from their own generator: spawn key (hash, kind 0)
    seq = np.random.SeedSequence(3, spawn_key=(h & 0xFFFFFFFF, h >> 32, 0))
    batch = np.random.Generator(np.random.PCG64(seq)).random(FIRST_BATCH)
    assert first[HASHED_DRAWS] == batch[0]
    assert batch[0] not in first[:HASHED_DRAWS]


def test_known_values_do_not_change_across_versions() -> None:
    # computed once; a change means every stored result stops being reproducible
    s = RngStreams(42).stream("link:a->b")
    draws = take(s, "random", HASHED_DRAWS + 1)
    assert draws[0] == 0.7961849641582333  # counter-based (BLAKE2b) part
    assert draws[HASHED_DRAWS] == 0.5820313532643456  # numpy PCG64 part


@pytest.mark.parametrize("kind", ["random", "exponential", "normal"])
def test_same_seed_and_name_give_the_same_sequence(kind: str) -> None:
    n = 10_000  # far past HASHED_DRAWS and through several batch doublings up to BATCH
    a = take(RngStreams(11).stream("workload:h0"), kind, n)
    b = take(RngStreams(11).stream("workload:h0"), kind, n)
    assert a == b
    assert len(set(a)) == n  # no repeats: the buffers are not recycled


def test_same_seed_and_name_give_the_same_mixed_sequence() -> None:
    assert mixed(RngStreams(5).stream("s"), 5000) == mixed(RngStreams(5).stream("s"), 5000)


def test_the_same_object_is_returned_for_a_name() -> None:
    streams = RngStreams(1)
    s = streams.stream("a")
    assert streams.stream("a") is s
    assert (s.name, s.seed) == ("a", 1)
    assert "a" in streams
    assert "b" not in streams
    streams.stream("c")
    streams.stream("b")
    assert streams.names() == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["random", "exponential", "normal"])
def test_different_names_or_seeds_give_different_sequences(kind: str) -> None:
    n = 2000
    base = take(RngStreams(7).stream("link:a->b"), kind, n)
    for other in (
        take(RngStreams(7).stream("link:b->a"), kind, n),
        take(RngStreams(7).stream("link:a->b "), kind, n),
        take(RngStreams(8).stream("link:a->b"), kind, n),
        take(RngStreams(2**64 + 7).stream("link:a->b"), kind, n),
    ):
        # both the hashed part and the numpy part differ, element by element
        assert not set(base[:HASHED_DRAWS]) & set(other[:HASHED_DRAWS])
        assert sum(x == y for x, y in zip(base[HASHED_DRAWS:], other[HASHED_DRAWS:], strict=True)) == 0
        assert abs(np.corrcoef(base, other)[0, 1]) < Z / math.sqrt(n)


def test_kinds_within_a_stream_differ() -> None:
    s = RngStreams(7).stream("x")
    u = take(s, "random", 100)
    e = take(s, "exponential", 100)
    assert [-math.log(x) for x in u[:8]] != pytest.approx(e[:8])
    assert not set(u) & set(e)


def test_other_streams_never_shift_a_stream() -> None:
    n = 10_000
    alone = mixed(RngStreams(99).stream("link:a->b"), n)

    streams = RngStreams(99)
    for i in range(50):  # streams created before, with draws of every kind
        take(streams.stream(f"node:{i}"), "normal", i)
    target = streams.stream("link:a->b")
    others = [streams.stream("workload:h0"), streams.stream("link:b->a")]
    got = []
    for i in range(n):
        got.append((target.random(), target.exponential(), target.normal()))
        for o in others:
            o.random()
            o.exponential()
        if i % 1000 == 0:  # a node added mid-run, drawing in vectors and scalars
            new = streams.stream(f"late:{i}")
            new.generator.random(100)
            take(new, "exponential", 200)
    assert got == alone


def test_run_order_of_stream_creation_does_not_matter() -> None:
    a = RngStreams(4)
    b = RngStreams(4)
    names = [f"n{i}" for i in range(20)]
    for name in names:
        a.stream(name)
    for name in reversed(names):
        b.stream(name)
    for name in names:
        assert take(a.stream(name), "random", 100) == take(b.stream(name), "random", 100)


# -- stable_hash ----------------------------------------------------------------------------------


def test_stable_hash_known_value() -> None:
    assert stable_hash("link:a->b") == 12892599390672968977
    assert stable_hash("link:a->b") != stable_hash("link:b->a")
    hashes = {stable_hash(f"node:{i}") for i in range(10_000)}
    assert len(hashes) == 10_000
    assert all(0 <= h < 2**64 for h in hashes)


def test_stable_hash_and_draws_ignore_pythonhashseed() -> None:
    code = (
        "from sim.core.rng import RngStreams, stable_hash\n"
        "s = RngStreams(42).stream('link:a->b')\n"
        "print(stable_hash('link:a->b'), hash('link:a->b'), [s.random() for _ in range(65)][64])\n"
    )
    outputs = []
    for hashseed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        outputs.append(done.stdout.split())
    (h1, builtin1, draw1), (h2, builtin2, draw2) = outputs
    assert builtin1 != builtin2  # the subprocesses really did hash differently
    assert h1 == h2 == "12892599390672968977"
    assert float(draw1) == float(draw2) == 0.5820313532643456


# -- statistics -----------------------------------------------------------------------------------


def test_uniform_moments_and_range() -> None:
    n = 100_000
    u = np.array(take(RngStreams(1).stream("u"), "random", n))
    assert u.min() > 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) <= Z * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) <= Z * math.sqrt(1 / 180 / n)  # Var[(U - 1/2)^2] = 1/80 - 1/144


def test_hashed_uniforms_are_strictly_inside_the_unit_interval() -> None:
    streams = RngStreams(0)
    for i in range(500):
        u = take(streams.stream(f"s{i}"), "random", HASHED_DRAWS)
        assert min(u) > 0.0 and max(u) < 1.0


def test_exponential_moments_and_scaling() -> None:
    n = 100_000
    e = np.array(take(RngStreams(2).stream("e"), "exponential", n))
    assert e.min() > 0.0
    assert abs(e.mean() - 1.0) <= Z / math.sqrt(n)
    assert abs(e.var() - 1.0) <= Z * math.sqrt(8 / n)  # Var[(E - 1)^2] = 9 - 1
    s, t = RngStreams(2).stream("e"), RngStreams(2).stream("e")
    for x in range(200):
        assert s.exponential(2.5) == pytest.approx(2.5 * t.exponential(), rel=1e-15), x


def test_normal_moments_and_scaling() -> None:
    n = 100_000
    z = np.array(take(RngStreams(3).stream("z"), "normal", n))
    assert abs(z.mean()) <= Z / math.sqrt(n)
    assert abs(z.var() - 1.0) <= Z * math.sqrt(2 / n)
    s, t = RngStreams(3).stream("z"), RngStreams(3).stream("z")
    for x in range(200):
        assert s.normal(10.0, 0.5) == pytest.approx(10.0 + 0.5 * t.normal(), rel=1e-15), x


@pytest.mark.parametrize(
    ("kind", "cdf"), [("random", "uniform"), ("exponential", "expon"), ("normal", "norm")]
)
def test_kolmogorov_smirnov_one_stream(kind: str, cdf: str) -> None:
    x = take(RngStreams(17).stream("ks"), kind, 20_000)
    assert stats.kstest(x, cdf).pvalue > 0.001


@pytest.mark.parametrize(
    ("kind", "cdf"), [("random", "uniform"), ("exponential", "expon"), ("normal", "norm")]
)
def test_kolmogorov_smirnov_first_draw_across_streams(kind: str, cdf: str) -> None:
    # the hashed part alone: the first draw of 20,000 streams (a big graph's links) is i.i.d. too
    streams = RngStreams(17)
    x = [getattr(streams.stream(f"link:{i}"), kind)() for i in range(20_000)]
    assert stats.kstest(x, cdf).pvalue > 0.001


def test_successive_draws_are_uncorrelated() -> None:
    n = 20_000
    u = np.array(take(RngStreams(5).stream("c"), "random", n))
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) <= Z / math.sqrt(n)


def test_index_is_uniform_over_range() -> None:
    s = RngStreams(6).stream("idx")
    k = 7
    draws = [s.index(k) for _ in range(14_000)]
    assert set(draws) == set(range(k))
    assert all(type(d) is int for d in draws)
    assert stats.chisquare(np.bincount(draws, minlength=k)).pvalue > 0.001


# -- the numpy generator and seeds ----------------------------------------------------------------


def test_generator_property() -> None:
    s = RngStreams(8).stream("vec")
    g = s.generator
    assert isinstance(g, np.random.Generator)
    assert isinstance(g.bit_generator, np.random.PCG64)
    assert s.generator is g
    a = g.random(5)
    assert np.array_equal(a, RngStreams(8).stream("vec").generator.random(5))
    assert not np.array_equal(a, RngStreams(8).stream("vec2").generator.random(5))
    assert not np.array_equal(a, RngStreams(9).stream("vec").generator.random(5))


@pytest.mark.parametrize("seed", [-1, -(2**70), 2**128])
def test_bad_seed(seed: int) -> None:
    with pytest.raises(ValueError, match="seed must be in"):
        RngStreams(seed)


@pytest.mark.parametrize("seed", [0, 1, 2**64, 2**128 - 1])
def test_edge_seeds_work(seed: int) -> None:
    s = RngStreams(seed).stream("x")
    assert RngStreams(seed).seed == seed
    x = take(s, "random", HASHED_DRAWS + 10)
    assert all(0.0 <= v < 1.0 for v in x)


def test_kinds_do_not_shift_each_other_past_the_hashed_draws() -> None:
    # how many normals a stream drew must not change its uniforms (a link's loss draws stay put
    # when its latency distribution changes)
    a = RngStreams(9).stream("link:x->y")
    first = take(a, "random", 100)
    take(a, "normal", 200)
    later = take(a, "random", 200)
    b = take(RngStreams(9).stream("link:x->y"), "random", 300)
    assert first + later == b


@pytest.mark.parametrize("kind", ["random", "exponential", "normal"])
@pytest.mark.parametrize("before, n", [(0, 5), (3, 61), (60, 10), (64, 1), (100, 3000), (0, 9000)])
def test_vector_draws_continue_the_scalar_sequence(kind: str, before: int, n: int) -> None:
    # a vector of n draws is exactly the next n scalar draws, wherever the stream stands
    scalar = take(RngStreams(5).stream("link:a->b"), kind, before + n + 20)
    s = RngStreams(5).stream("link:a->b")
    head = take(s, kind, before)
    vector = {"random": s.uniforms, "exponential": s.exponentials}.get(kind)
    middle = vector(n) if vector else s._take(2, n).tolist()
    assert head + middle + take(s, kind, 20) == scalar


def test_exponential_vector_scales_by_the_mean() -> None:
    a = RngStreams(9).stream("x").exponentials(100, 0.25)
    b = RngStreams(9).stream("x")
    assert a == [b.exponential(0.25) for _ in range(100)]
