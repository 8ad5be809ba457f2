"""Publish/subscribe: one obligation per subscriber; one transmission to the broker, one per subscriber."""

from __future__ import annotations

import numpy as np

from sim import Scenario, simulate


def test_pubsub_creates_k_obligations_and_one_plus_k_transmissions_on_a_star() -> None:
    k = 4
    sc = Scenario(
        pattern="pubsub",
        duration="5s",
        seed=4,
        topology={"name": "star", "params": {"n": k + 1}},
        workload={"producers": 1, "consumers": k, "rate": "20/s"},
        broker={"node": "hub"},
    )
    result = simulate(sc)
    cols = result.columns
    per_message = np.unique(cols["msg_id"], return_counts=True)[1]
    assert set(per_message.tolist()) == {k}
    assert sorted(set(cols["dst"].tolist())) == sorted(f"h{i}" for i in range(1, k + 1))
    s = result.summary
    publishes = s["offered"] / k
    assert s["data_transmissions"] == publishes * (1 + k)
    assert s["delivered"] == s["offered"]
