"""Nothing per message outlives its completion: after a run settles, the only Message objects alive are the
ones still in flight or held by a broker (a delivery whose ack was lost waits for its redelivery), and the
ledger holds one compact row per obligation."""

from __future__ import annotations

import gc

import pytest

from sim import Scenario
from sim.core.context import SimContext
from sim.core.message import Message
from sim.core.scheduling import queued
from sim.run.build import build
from sim.run.simulate import run_world


def live_messages() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Message)


@pytest.mark.parametrize("pattern", ["point_to_point", "queue", "pubsub"])
def test_no_message_outlives_a_settled_run(pattern: str) -> None:
    before = live_messages()
    ctx = SimContext.from_seed(3)
    scenario = Scenario(
        pattern=pattern,
        duration="2s",
        drain="30s",
        topology={"name": "barabasi_albert", "params": {"n": 200, "m": 2}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.02},
        workload={"producers": 5, "consumers": 5, "rate": 200},
        delivery={"guarantee": "at_least_once", "ack_timeout": "50ms"},
        broker={"node": "n1", "ack_timeout": "1s"},
    )
    world = build(ctx, scenario)
    run_world(ctx, world)
    ledger = ctx.ledger
    assert ctx.quiet() and len(ledger) > 1000 and ledger.delivered_count == len(ledger)
    in_flight = sum(1 for _, event in queued(ctx.env) if type(event) is Message)
    held = sum(len(q.ready) + len(q.unacked) for b in world.brokers.values() for q in b.queues.values())
    # pending sends, settled broker entries, timers and events all let go of their messages
    assert live_messages() - before == in_flight + held
    assert in_flight + held <= 0.01 * len(ledger)
    # the ledger's columns are typed arrays: 8 bytes or less per value, no Python object per row
    assert all(col.itemsize <= 8 for col in (ledger.msg_id, ledger.created_at, ledger.delivered_at))
