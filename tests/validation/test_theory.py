"""Every validation case at test-suite size: the closed form lies inside the simulation's 99 % interval,
and the interval is narrow enough to mean something (``make validate`` runs the full size, 2 %)."""

from __future__ import annotations

import pytest

from sim.analysis.validation import CASES, Case, evaluate


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_theory_inside_the_interval(case: Case) -> None:
    for outcome in evaluate(case, quick=True):
        assert outcome.inside, outcome
        assert outcome.relative_half_width <= case.quick_precision, outcome


def test_intervals_can_fail() -> None:
    # a wrong closed form must fall outside: end-to-end delivery over 3 lossy hops taken as 2 hops
    case = next(c for c in CASES if c.name == "loss")
    wrong = Case(
        case.name,
        case.model,
        case.scenario,
        {"delivery_ratio": 0.9**2},
        case.estimates,
        replications=case.replications,
        quick_size=case.quick_size,
    )
    (outcome,) = evaluate(wrong, quick=True)
    assert not outcome.inside
