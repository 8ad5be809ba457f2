"""Tests against real brokers (marker ``real``)."""

from __future__ import annotations

from collections.abc import Callable

from sim.real.predict import Observed


def assert_predicts(
    attempt: Callable[[], tuple[Observed, Observed]],
    *,
    p50: float = 0.5,
    throughput: float = 0.2,
    tries: int = 3,
) -> None:
    """``attempt()`` fits a profile and measures a point: (measured, predicted). Passes at the first attempt
    whose p50 and throughput are within ``p50`` and ``throughput`` (relative) of the measurement; fails,
    naming every attempt's errors, when none of ``tries`` is. A real broker on a machine the suite shares:
    one attempt can meet another process's stall; a model that is off misses every time."""
    errors = []
    for _ in range(tries):
        measured, predicted = attempt()
        e50 = abs(predicted.p50 - measured.p50) / measured.p50
        eth = abs(predicted.throughput - measured.throughput) / measured.throughput
        if e50 < p50 and eth < throughput:
            return
        errors.append(f"p50 {e50:+.0%} (measured {measured.p50 * 1e3:.2f} ms), throughput {eth:+.0%}")
    within = f"p50 {p50:.0%}, throughput {throughput:.0%}"
    raise AssertionError(f"no prediction within {within} in {tries} attempts: {'; '.join(errors)}")
