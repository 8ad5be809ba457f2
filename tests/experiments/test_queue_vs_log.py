"""experiments/queue_vs_log.py: its variants show no setting where it does not apply, and a shortened
broker crash gives each setup the losses its guarantees imply (the report's ranking rests on them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.run.simulate import simulate
from sim.sweep.runner import load_experiment

ROOT = Path(__file__).resolve().parents[2]
EXP = load_experiment(ROOT / "experiments" / "queue_vs_log.py")
SETUPS: dict[str, dict[str, Any]] = dict(EXP.grid["setup"])
FAULTS: dict[str, dict[str, Any]] = dict(EXP.grid["fault"])


def _setting(settings: dict[str, Any], dotted: str) -> Any:
    """A dotted setting of a variant, given dotted or nested."""
    if dotted in settings:
        return settings[dotted]
    head, _, rest = dotted.partition(".")
    inner = settings.get(head)
    return inner.get(rest) if isinstance(inner, dict) else None


def test_each_setup_sets_only_what_applies_to_it() -> None:
    for label, settings in SETUPS.items():
        kind, replicas, *_ = label.split("_")
        assert settings["pattern"] == kind
        if kind == "queue":
            assert "log" not in settings
            assert (_setting(settings, "broker.replicas") or 1) == int(replicas[1:])
        else:
            assert _setting(settings, "broker.replicas") is None
            assert settings["log"]["replication_factor"] == int(replicas[1:])
            assert f"p{settings['log']['partitions']}" == label.rsplit("_", 1)[-1]
            acks = settings["log"].get("acks")
            assert acks == {"acks1": 1, "all": "all"}.get(label.split("_")[2])


def test_at_least_once_throughout_and_faults_hit_what_exists() -> None:
    assert EXP.base.delivery.guarantee == "at_least_once"
    assert EXP.base.broker.consumer_ack == "manual"
    crash = FAULTS["broker_crash"]["faults"][0]
    assert crash["target"] == "broker0"  # the queue's broker, and partition 0's preferred leader
    consumers = EXP.base.workload.consumers
    assert isinstance(consumers, list)
    assert FAULTS["consumer_crash"]["faults"][0]["target"] in consumers


def _crashed(setup: str) -> dict[str, float]:
    """The setup under the broker crash, shortened: 5 s with the crash from 4 s to 6 s (recovery after the
    load ends, in the drain), one seed."""
    scenario = EXP.base.with_updates(
        {
            **EXP.settings({"setup": setup, "fault": "broker_crash"}),
            "duration": "4.5s",
            "warmup": "3.5s",
            "drain": "8s",
            "seed": 5,
        }
    )
    return simulate(scenario).summary


@pytest.mark.parametrize("setup", ["queue_r3", "log_r3_all_p3"])
def test_a_replicated_setup_with_a_majority_loses_nothing_to_the_broker_crash(setup: str) -> None:
    summary = _crashed(setup)
    assert summary["op_failed"] == 0
    assert summary["elections"] >= 1  # the crash hit a leader: the no-loss is the replication's doing


def test_acks_1_loses_what_the_followers_had_not_fetched() -> None:
    summary = _crashed("log_r3_acks1_p3")
    assert summary["op_failed"] == summary["op_failed_unreplicated"] > 0
