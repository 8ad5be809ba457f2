"""Request/reply: a client retries a call exactly ``max_attempts - 1`` times before its callback fires
with a timeout; without a reliable guarantee it never retries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import Scenario, simulate


def _unanswerable(guarantee: str, **delivery: Any) -> Scenario:
    """20 requests n0 -> n1 over a link that loses everything: no request ever reaches the server."""
    return Scenario(
        pattern="request_reply",
        duration="1s",
        drain="5s",
        topology={"name": "line", "params": {"n": 2}},
        links={"latency": "1ms", "loss": 1.0},
        workload={"rate": "20/s", "arrivals": "constant", "producers": ["n0"], "consumers": ["n1"]},
        delivery={"guarantee": guarantee, "ack_timeout": "20ms", **delivery},
        request_reply={"timeout": "50ms"},
    )


@pytest.mark.parametrize(("guarantee", "max_attempts"), [("at_least_once", 3), ("effectively_once", 2)])
def test_a_call_is_tried_max_attempts_times_then_times_out(guarantee: str, max_attempts: int) -> None:
    result = simulate(_unanswerable(guarantee, max_attempts=max_attempts))
    s, c = result.summary, result.columns
    requests = c["kind"] == "request"
    assert requests.sum() == s["offered"] == 20
    assert c["attempts"][requests].tolist() == [max_attempts] * 20
    assert s["retries"] == 20 * (max_attempts - 1)
    assert s["timeouts"] == 20
    assert s["lost"] == s["lost_loss"] == 20  # the reason of the last drop, not a bare timeout


def test_at_most_once_never_retries() -> None:
    result = simulate(_unanswerable("at_most_once", max_attempts=5))
    s = result.summary
    assert np.all(result.columns["attempts"] == 1)
    assert s["retries"] == 0 and s["timeouts"] == 20
