"""Named random streams derived from one seed, with batched draws.

Every component draws from its own stream, named by purpose and owner (``"link:a->b"``,
``"workload:h0"``, ``"service:broker"``). A stream's seed is derived from the run seed and a stable
hash of its name, so adding a node never shifts another component's draws, and the same seed gives
every pattern the same workload. Draws come from numpy in batches: a scalar numpy call costs about a
microsecond, a draw from a batch a few tens of nanoseconds.

>>> streams = RngStreams(42)
>>> a = streams.stream("link:a->b").random()
>>> a == RngStreams(42).stream("link:a->b").random()
True
>>> a == RngStreams(42).stream("link:b->a").random()
False
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator
from itertools import islice

import numpy as np

__all__ = ["BATCH", "FIRST_BATCH", "HASHED_DRAWS", "RngStreams", "Stream", "stable_hash"]

BATCH = 4096
FIRST_BATCH = 64
HASHED_DRAWS = 64
_TWO_M53 = 2.0**-53
_TAU = 2 * math.pi
_COUNTER = struct.Struct("<BQ").pack
_WORDS = struct.Struct("<8Q").unpack
_BUFFERS = ("_unif", "_exp", "_norm")


def stable_hash(name: str) -> int:
    """A 64-bit hash of ``name`` that is the same in every process and Python version."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


class Stream:
    """One named stream of random numbers.

    Scalar draws (``random``, ``exponential``, ``normal``) come from per-kind buffers. The first
    ``HASHED_DRAWS`` draws of each kind come from a counter-based generator (BLAKE2b keyed with the
    run seed, over the stream name, the kind and a counter; eight draws per hash), which costs about a
    microsecond to start, so the thousands of links of a large graph that carry a few messages each
    stay cheap. After that a numpy ``PCG64`` generator, seeded from the same name, refills buffers
    that double in size up to ``BATCH`` draws, so a busy stream amortizes numpy's call overhead. Both
    parts are pure functions of (seed, name), so every run with the same seed draws the same numbers.
    """

    __slots__ = ("_exp", "_generators", "_hasher", "_n", "_norm", "_unif", "_used", "name", "seed")

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.seed = seed
        self._hasher = hashlib.blake2b(name.encode(), digest_size=64, key=seed.to_bytes(16, "little"))
        self._generators: list[np.random.Generator | None] = [None, None, None, None]
        self._unif: Iterator[float] = iter(())
        self._exp: Iterator[float] = iter(())
        self._norm: Iterator[float] = iter(())
        self._used = [0, 0, 0]
        self._n = [FIRST_BATCH // 2] * 3

    @property
    def generator(self) -> np.random.Generator:
        """The stream's numpy generator for vector draws (created on first use; independent of the
        generators behind the scalar draws)."""
        return self._numpy(3)

    def _numpy(self, kind: int) -> np.random.Generator:
        gen = self._generators[kind]
        if gen is None:  # one generator per kind, so the kinds never shift each other
            h = stable_hash(self.name)
            seq = np.random.SeedSequence(self.seed, spawn_key=(h & 0xFFFFFFFF, h >> 32, kind))
            gen = self._generators[kind] = np.random.Generator(np.random.PCG64(seq))
        return gen

    def _hashed(self, kind: int) -> list[float]:
        """Eight uniforms in (0, 1) from the counter-based generator."""
        counter = self._used[kind]
        self._used[kind] = counter + 8
        h = self._hasher.copy()
        h.update(_COUNTER(kind, counter))
        return [((x >> 11) + 0.5) * _TWO_M53 for x in _WORDS(h.digest())]

    def _refill(self, kind: int) -> list[float]:
        if self._used[kind] < HASHED_DRAWS:
            u = self._hashed(kind)
            if kind == 0:
                return u
            if kind == 1:
                return [-math.log(x) for x in u]
            out: list[float] = []
            for a, b in zip(u[::2], u[1::2], strict=True):  # Box–Muller
                r = math.sqrt(-2.0 * math.log(a))
                out += (r * math.cos(_TAU * b), r * math.sin(_TAU * b))
            return out
        self._n[kind] = n = min(2 * self._n[kind], BATCH)
        gen = self._numpy(kind)
        if kind == 0:
            return gen.random(n).tolist()  # type: ignore[no-any-return]
        if kind == 1:
            return gen.standard_exponential(n).tolist()  # type: ignore[no-any-return]
        return gen.standard_normal(n).tolist()  # type: ignore[no-any-return]

    def _draws(self, kind: int, n: int) -> tuple[list[float], int]:
        """The next draws of ``kind`` that the scalar buffers and the counter-based part hold, at most ``n``,
        and how many more the numpy generator must give."""
        buffer = _BUFFERS[kind]
        head = list(islice(getattr(self, buffer), n))
        while len(head) < n and self._used[kind] < HASHED_DRAWS:
            head += self._refill(kind)
        if len(head) > n:
            setattr(self, buffer, iter(head[n:]))
            del head[n:]
        return head, n - len(head)

    def _more(self, kind: int, k: int) -> np.ndarray:
        gen = self._numpy(kind)
        return (
            gen.random(k)
            if kind == 0
            else gen.standard_exponential(k)
            if kind == 1
            else gen.standard_normal(k)
        )

    def _take(self, kind: int, n: int) -> np.ndarray:
        """The next ``n`` draws of ``kind`` as an array: exactly what ``n`` scalar calls would return, in
        order (numpy's generators fill arrays sequentially, so one array of ``n`` continues the sequence)."""
        head, k = self._draws(kind, n)
        if not k:
            return np.array(head, dtype=np.float64)
        more = self._more(kind, k)
        return np.concatenate((np.array(head, dtype=np.float64), more)) if head else more

    def _take_list(self, kind: int, n: int) -> list[float]:
        head, k = self._draws(kind, n)
        if k:
            head += self._more(kind, k).tolist()
        return head

    def uniform_array(self, n: int) -> np.ndarray:
        """The next ``n`` uniform draws as an array, equal to ``[self.random() for _ in range(n)]``."""
        return self._take(0, n)

    def exponential_array(self, n: int, mean: float = 1.0) -> np.ndarray:
        """The next ``n`` exponential draws as an array, equal to ``self.exponentials(n, mean)``."""
        return self._take(1, n) * mean

    def uniforms(self, n: int) -> list[float]:
        """The next ``n`` uniform draws, equal to ``[self.random() for _ in range(n)]``."""
        return self._take_list(0, n)

    def exponentials(self, n: int, mean: float = 1.0) -> list[float]:
        """The next ``n`` exponential draws, equal to ``[self.exponential(mean) for _ in range(n)]``."""
        return [x * mean for x in self._take_list(1, n)]

    def random(self) -> float:
        """A uniform draw in [0, 1)."""
        try:
            return next(self._unif)
        except StopIteration:
            self._unif = iter(self._refill(0))
            return next(self._unif)

    def exponential(self, mean: float = 1.0) -> float:
        """An exponential draw with the given mean."""
        try:
            return next(self._exp) * mean
        except StopIteration:
            self._exp = iter(self._refill(1))
            return next(self._exp) * mean

    def normal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """A normal draw."""
        try:
            return mu + sigma * next(self._norm)
        except StopIteration:
            self._norm = iter(self._refill(2))
            return mu + sigma * next(self._norm)

    def index(self, n: int) -> int:
        """A uniform integer in ``range(n)``."""
        return int(self.random() * n)


class RngStreams:
    """The run's random streams, all derived from ``seed``.

    Parameters
    ----------
    seed : int
        The run seed (stored with every result).
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        if not 0 <= self.seed < 2**128:
            raise ValueError(f"seed must be in [0, 2**128), got {seed}")
        self._streams: dict[str, Stream] = {}

    def stream(self, name: str) -> Stream:
        """The stream called ``name``, created on first use."""
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = Stream(name, self.seed)
        return s

    def __contains__(self, name: str) -> bool:
        return name in self._streams

    def names(self) -> list[str]:
        """Names of the streams used so far."""
        return sorted(self._streams)
