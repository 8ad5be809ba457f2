"""Request/reply: the round trip is path + service + path, directly or via a broker; timeouts fire at the
rate the loss predicts and retries recover them; a client retries a call exactly ``max_attempts - 1`` times
before its callback fires with a timeout; without a reliable guarantee it never retries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

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


def test_request_reply_round_trip_is_path_plus_service_plus_path() -> None:
    sc = Scenario(
        pattern="request_reply",
        duration="5s",
        seed=9,
        topology={"name": "line", "params": {"n": 4}},
        links={"latency": "2ms"},
        nodes={"service": "5ms"},
        workload={"producers": 1, "consumers": 1, "rate": "10/s", "arrivals": "constant"},
    )
    s = simulate(sc).summary
    # evenly spaced requests never queue: 3 hops there, 5 ms of service, 3 hops back, and the client's
    # own 5 ms service time for the reply
    assert s["rtt_mean"] == pytest.approx(0.006 + 0.005 + 0.006 + 0.005)
    assert s["rtt_p99"] == pytest.approx(s["rtt_mean"])
    assert s["answered"] == s["requests"] and s["timeouts"] == 0


def test_request_reply_timeouts_fire_and_retries_recover() -> None:
    base = Scenario(
        pattern="request_reply",
        duration="20s",
        seed=10,
        topology={"name": "line", "params": {"n": 2}},
        links={"latency": "1ms", "loss": 0.3},
        workload={"producers": 1, "consumers": 1, "rate": "20/s"},
        request_reply={"timeout": "50ms"},
    )
    once = simulate(base).summary
    answer_p = 0.7 * 0.7
    low, high = stats.binom.interval(0.99, int(once["requests"]), 1 - answer_p)
    assert low <= once["timeouts"] <= high
    retried = simulate(
        base.with_updates({"delivery.guarantee": "at_least_once", "delivery.max_attempts": 10})
    )
    assert retried.summary["timeouts"] < once["timeouts"] / 20
    assert retried.summary["retries"] > 0


def test_request_reply_via_broker() -> None:
    sc = Scenario(
        pattern="request_reply",
        duration="5s",
        seed=11,
        topology={"name": "star", "params": {"n": 4}},
        links={"latency": "1ms"},
        workload={"producers": 2, "consumers": 2, "rate": "10/s"},
        broker={"node": "hub"},
        request_reply={"via_broker": True},
    )
    s = simulate(sc).summary
    assert s["answered"] == s["requests"] > 0
    assert s["rtt_mean"] == pytest.approx(0.004)  # client -> broker -> server -> broker -> client
