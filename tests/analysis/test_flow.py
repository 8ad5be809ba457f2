"""Message-flow views: the trace frame of a tiny run checked by hand, the filters, trace.json against the
trace-event format, and ``sim trace``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from sim.analysis.flow import ARROW_LIMIT, flow_view, write_views
from sim.cli import trace as trace_cli
from sim.cli.main import main
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.model.faults.injector import fault_spans, fault_windows
from sim.run.simulate import RunResult, simulate
from sim.run.trace import COLUMNS

# n0 - n1 - n2, 1 ms a link, one message n0 -> n2 at 63.428 ms, at-least-once with a 10 ms ack timeout.
# n2 is cut off one way from 60 to 75 ms: the message reaches it, its ack cannot leave (dropped at n2:
# partition); the retry at 73.4 ms arrives again (a duplicate) and its ack, sent after the heal, gets home.
TINY = {
    "pattern": "point_to_point",
    "duration": "0.1s",
    "warmup": 0,
    "seed": 1,
    "trace": True,
    "topology": {"name": "line", "params": {"n": 3}},
    "links": {"latency": "1ms"},
    "workload": {"rate": "10/s", "arrivals": "constant"},
    "delivery": {"guarantee": "at_least_once", "ack_timeout": "10ms"},
    "faults": [{"at": "60ms", "action": "partition", "groups": [["n2"]], "one_way": True, "for": "15ms"}],
}


@pytest.fixture(scope="module")
def tiny() -> RunResult:
    return simulate(Scenario(**TINY))


def test_the_frame_of_a_tiny_run_checked_by_hand(tiny: RunResult) -> None:
    frame = tiny.trace_frame()
    assert list(frame.columns) == [
        "time", "event", "msg_id", "node", "peer", "detail", "end_time", "end", "reason", "kind", "tx",
        "origin", "row", "op", "attempt", "retry_of", "duplicate_of", "answers",
    ]  # fmt: skip
    t0 = frame["time"].iloc[1]  # the message's intended send time, 63.428 ms
    assert round(t0, 6) == 0.063428
    got = [
        (round(r.time - t0, 6), r.event, r.msg_id, r.node, r.peer, r.end, r.reason, r.kind, r.tx, r.origin,
         r.row, r.op, r.attempt, r.retry_of, r.duplicate_of, r.answers)
        for r in frame.itertuples()
    ]  # fmt: skip
    # fmt: off
    assert got == [
        (-0.003428, "fault", 0, "network", "", "", "", "", -1, "", -1, -1, 0, -1, -1, -1),
        (0.0, "hop", 1, "n0", "n1", "forward", "", "data", 0, "n0", 0, 1, 1, -1, -1, -1),
        (0.001, "hop", 1, "n1", "n2", "arrive", "", "data", 0, "n0", 0, 1, 1, -1, -1, -1),
        (0.002, "arrive", 1, "n2", "", "", "", "data", 0, "n0", 0, 1, 1, -1, -1, -1),
        # the ack cannot leave n2: dropped there, no hop; it answers transmission 0
        (0.002, "drop", -1, "n2", "", "", "partition", "control", 1, "n2", 0, 1, 1, -1, -1, 0),
        # the retry: attempt 2 of transmission 0, and a duplicate of it at n2
        (0.01, "hop", 1, "n0", "n1", "forward", "", "data", 2, "n0", 0, 1, 2, 0, 0, -1),
        (0.011, "hop", 1, "n1", "n2", "arrive", "", "data", 2, "n0", 0, 1, 2, 0, 0, -1),
        (0.011572, "fault", 0, "network", "", "", "", "", -1, "", -1, -1, 0, -1, -1, -1),
        (0.012, "arrive", 1, "n2", "", "", "", "data", 2, "n0", 0, 1, 2, 0, 0, -1),
        (0.012, "hop", -2, "n2", "n1", "forward", "", "control", 3, "n2", 0, 1, 1, -1, -1, 2),
        (0.013, "hop", -2, "n1", "n0", "arrive", "", "control", 3, "n2", 0, 1, 1, -1, -1, 2),
        (0.014, "arrive", -2, "n0", "", "", "", "control", 3, "n2", 0, 1, 1, -1, -1, 2),
    ]
    # fmt: on
    hops = frame[frame["event"] == "hop"]
    assert (hops["end_time"] - hops["time"]).round(9).tolist() == [0.001] * 6  # every hop takes its 1 ms
    assert frame.loc[frame["event"] != "hop", "end_time"].isna().all()
    # what the ledger says agrees: 2 attempts, 4 data link transmissions, 1 duplicate, 2 control
    row = tiny.ledger.iloc[0]
    assert (row.attempts, row.transmissions, row.duplicates, row["control"]) == (2, 4, 1, 2)
    assert int(hops[hops["kind"] == "data"].shape[0]) == row.transmissions
    assert frame["event"].dtype == "category" and isinstance(frame, pd.DataFrame)


def test_a_lost_hop_ends_on_its_link_and_a_refused_send_is_a_transmission_of_no_hop() -> None:
    lossy = simulate(
        Scenario(
            **{**TINY, "faults": [], "links": {"latency": "1ms", "loss": 0.3}, "seed": 3, "duration": "0.3s"}
        )
    )
    frame = lossy.trace_frame()
    lost = frame[frame["end"] == "lost"]
    assert len(lost) > 0 and lost["end_time"].isna().all() and (lost["reason"] == "loss").all()
    drops = frame[(frame["event"] == "drop") & (frame["reason"] == "loss")]
    # each loss drop belongs to the hop it ends: same time, node, transmission
    pairs = set(zip(lost["time"], lost["node"], lost["tx"], strict=True))
    assert set(zip(drops["time"], drops["node"], drops["tx"], strict=True)) == pairs
    # attempts counted from the trace are the ledger's
    data = frame[(frame["kind"] == "data") & (frame["event"] != "fault")]
    tried = data.groupby("row")["attempt"].max()
    assert tried.to_dict() == dict(enumerate(lossy.columns["attempts"].tolist()))

    crashed = simulate(
        Scenario(**{**TINY, "faults": [{"at": "60ms", "action": "crash", "target": "n2", "for": "10ms"}]})
    )
    frame = crashed.trace_frame()
    first = frame[(frame["msg_id"] == 1)].iloc[0]
    # no route while n2 is down: the send is dropped at n0 and is attempt 1; the retry is attempt 2
    assert (first.event, first.node, first.reason, first.tx, first.attempt) == (
        "drop",
        "n0",
        "node_down",
        0,
        1,
    )
    retry = frame[(frame["msg_id"] == 1) & (frame["event"] == "hop")]
    assert retry["attempt"].tolist() == [2, 2] and retry["retry_of"].tolist() == [0, 0]


def test_a_broker_delivery_is_a_new_transmission_and_a_fan_out_copy_takes_its_subscriber_row() -> None:
    pubsub = simulate(
        Scenario(
            pattern="pubsub",
            duration="0.05s",
            warmup=0,
            trace=True,
            topology={"name": "line", "params": {"n": 4}},
            links={"latency": "1ms"},
            broker={"node": "n1"},
            workload={"producers": ["n0"], "consumers": ["n2", "n3"], "rate": "40/s", "arrivals": "constant"},
        )
    )
    frame = pubsub.trace_frame()
    ledger = pubsub.ledger
    msg = int(ledger["msg_id"].iloc[0])
    mine = frame[(frame["msg_id"] == msg) & (frame["event"] == "arrive")]
    # the publish reaches the broker; a copy reaches each subscriber, the one to n3 through n2
    assert mine["node"].tolist() == ["n1", "n2", "n3"]
    publish, *copies = mine.itertuples()
    assert (publish.origin, publish.row) == ("n0", -1)  # carries both subscribers' rows
    rows = {r.node: r.row for r in copies}
    assert all(r.origin == "n1" and r.attempt == 1 for r in copies)
    assert {n: ledger["dst"].iloc[r] for n, r in rows.items()} == {"n2": "n2", "n3": "n3"}
    transit = frame[(frame["msg_id"] == msg) & (frame["event"] == "hop") & (frame["node"] == "n2")]
    assert transit["tx"].tolist() == [copies[1].tx]  # the copy for n3 goes on from n2


def test_a_publish_retry_under_way_while_the_broker_delivers_is_not_the_delivery_going_on() -> None:
    # 10 ms links, publisher confirms time out after 5 ms: each publish retry is still on its link when the
    # broker (no service time) hands the previous copy on to the consumer
    run = simulate(
        Scenario(
            pattern="queue",
            duration="0.1s",
            warmup=0,
            trace=True,
            topology={"name": "line", "params": {"n": 3}},
            links={"latency": "10ms"},
            broker={"node": "n1"},
            workload={"producers": ["n0"], "consumers": ["n2"], "rate": "10/s", "arrivals": "constant"},
            delivery={"guarantee": "at_least_once", "ack_timeout": "5ms", "backoff": 1},
        )
    )
    frame = run.trace_frame()
    data = frame[(frame["event"] == "hop") & (frame["kind"] == "data")]
    publishes, deliveries = data[data["node"] == "n0"], data[data["node"] == "n1"]
    tries = int(run.columns["attempts"][0])
    assert len(publishes) == len(deliveries) == tries == 5
    assert (publishes["end"] == "arrive").all() and (deliveries["end"] == "arrive").all()
    assert (deliveries["origin"] == "n1").all() and publishes["attempt"].tolist() == [1, 2, 3, 4, 5]
    # the broker delivers each copy it took: its 2nd to 5th deliveries count as its attempts, duplicates at n2
    first = deliveries["tx"].iloc[0]
    assert deliveries["retry_of"].tolist() == deliveries["duplicate_of"].tolist() == [-1] + [first] * 4
    # each publisher confirm answers its own publish, each consumer ack its own delivery
    acks = frame[(frame["kind"] == "control") & (frame["event"] == "hop") & (frame["answers"] >= 0)]
    assert sorted(acks["answers"]) == sorted([*publishes["tx"], *deliveries["tx"]])


def test_a_run_without_messages_gives_an_empty_frame_of_the_same_columns(tmp_path: Path) -> None:
    quiet = simulate(Scenario(duration="0.01s", trace=True, workload={"rate": "1/s", "arrivals": "constant"}))
    frame = quiet.trace_frame()
    assert len(frame) == 0 and list(frame.columns) == list(COLUMNS)
    assert frame["tx"].dtype == "int64" and frame["time"].dtype == "float64"
    assert flow_view(quiet).counts() == {"lanes": 0, "arrows": 0, "drops": 0, "faults": 0}
    assert all(p.exists() for p in write_views(quiet, tmp_path))


def test_trace_frame_needs_a_traced_run() -> None:
    plain = simulate(Scenario(**{**TINY, "trace": False}))
    with pytest.raises(SimError, match=r"trace = False: expected true .*--set trace=true"):
        plain.trace_frame()


def test_filters(tiny: RunResult) -> None:
    whole = flow_view(tiny)
    assert whole.lanes == ["n0", "n1", "n2"]
    assert whole.counts() == {"lanes": 3, "arrows": 6, "drops": 1, "faults": 1}
    assert whole.faults == [[0.06, 0.075, "partition", "network", []]]
    t0 = tiny.columns["created_at"][0]
    # a window: what is under way in it (the retry's first hop only)
    early = flow_view(tiny, window=(t0 + 0.0095, t0 + 0.0105))
    assert [a[6] for a in early.arrows] == [2] and early.window == (t0 + 0.0095, t0 + 0.0105)
    # sent before the window and arriving in it or after: under way in it
    assert [(a[6], a[2], a[3]) for a in flow_view(tiny, window=(t0 + 0.0103, t0 + 0.0106)).arrows] == [
        (2, 0, 1)
    ]
    # nodes: from or to n0; n1 gets a lane as the other end
    near = flow_view(tiny, nodes=["n0"])
    assert near.lanes == ["n0", "n1"] and len(near.arrows) == 3 and near.drops == []
    # obligations: row 0 is everything here (acks answer it)
    assert len(flow_view(tiny, obligations=[0]).arrows) == 6
    with pytest.raises(SimError, match="obligations = '3'"):
        flow_view(tiny, obligations=[3])
    with pytest.raises(SimError, match="nodes = 'zz'"):
        flow_view(tiny, nodes=["zz"])
    with pytest.raises(SimError, match="window"):
        flow_view(tiny, window=(0.2, 0.1))


def _trace_json(path: Path) -> dict:
    data = json.loads(path.read_text())
    assert set(data) >= {"traceEvents", "displayTimeUnit"}
    return data


def test_trace_json_is_valid_trace_event_format(tiny: RunResult, tmp_path: Path) -> None:
    html, trace = write_views(tiny, tmp_path)
    assert (html.name, trace.name) == ("flow.html", "trace.json")
    events = _trace_json(trace)["traceEvents"]
    for e in events:
        assert (
            e["ph"] in {"M", "X", "s", "f", "i"} and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        )
        if e["ph"] != "M":
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0 and e["name"]
        if e["ph"] == "X":
            assert e["dur"] >= 0
    # nodes are tracks: one thread_name per lane plus the fault track
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {0: "faults", 1: "n0", 2: "n1", 3: "n2"}
    # every arrival is a flow: one "s" and one "f" per id, each on a slice of its own track at its time
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert len(starts) == len(ends) == 6 and set(starts) == set(ends)
    slices = {(e["tid"], e["ts"], e["cat"]) for e in events if e["ph"] == "X"}
    for fid, s in starts.items():
        f = ends[fid]
        assert f["ts"] > s["ts"] and f["bp"] == s["bp"] == "e"
        assert (s["tid"], s["ts"], s["cat"]) in slices and (f["tid"], f["ts"], f["cat"]) in slices
    pairs = sorted((names[starts[i]["tid"]], names[ends[i]["tid"]]) for i in starts)
    assert pairs == [("n0", "n1"), ("n0", "n1"), ("n1", "n0"), ("n1", "n2"), ("n1", "n2"), ("n2", "n1")]
    assert round(min(s["ts"] for s in starts.values())) == 63428  # microseconds
    (drop,) = [e for e in events if e["ph"] == "i"]
    assert (names[drop["tid"]], drop["args"]["reason"]) == ("n2", "partition")
    (fault,) = [e for e in events if e.get("cat") == "fault"]
    assert (fault["ts"], fault["dur"], fault["name"]) == (60000.0, 15000.0, "partition network")


def test_the_page_states_its_conditions_and_counts(tiny: RunResult, tmp_path: Path) -> None:
    html, _ = write_views(tiny, tmp_path, nodes=["n0"])
    page = html.read_text()
    assert 'data-lanes="2" data-arrows="3" data-drops="0" data-faults="1"' in page
    for text in ("point_to_point", "at_least_once", "<b>seed</b> 1", "<b>nodes</b> n0", "whole run"):
        assert text in page
    assert "http://" not in page and "https://" not in page and "<script src" not in page  # self-contained


def test_a_large_view_is_refused_unless_narrowed(tiny: RunResult, tmp_path: Path) -> None:
    with pytest.raises(SimError, match=r"--window = None: expected a filter that leaves at most 5 arrows"):
        write_views(tiny, tmp_path, limit=5)
    assert not (tmp_path / "flow.html").exists()
    write_views(tiny, tmp_path, nodes=["n2"], limit=5)  # n2's 4 arrows
    assert trace_cli.ARROW_LIMIT == ARROW_LIMIT


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'pattern = "point_to_point"\nduration = "0.1s"\nwarmup = 0\nseed = 1\n'
        '[topology]\nname = "line"\nparams = { n = 3 }\n[links]\nlatency = "1ms"\n'
        '[workload]\nrate = "10/s"\narrivals = "constant"\n'
        '[delivery]\nguarantee = "at_least_once"\nack_timeout = "10ms"\n'
        '[[faults]]\nat = "60ms"\naction = "partition"\ngroups = [["n2"]]\none_way = true\nfor = "15ms"\n'
    )
    return path


def test_sim_trace_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _scenario_file(tmp_path)
    out = tmp_path / "views"
    assert main(["trace", str(scenario), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        str(out / "flow.html"),
        str(out / "trace.json"),
        "3 lanes, 6 arrows, 1 drops, 1 fault windows",
    ]
    assert main(["trace", str(scenario), "--out", str(out), "--window", "70ms:80ms", "--nodes", "n2"]) == 0
    # under way then, from or to n2: the retry's last hop and the ack's first
    assert capsys.readouterr().out.splitlines()[-1] == "2 lanes, 2 arrows, 0 drops, 1 fault windows"
    assert main(["trace", str(scenario), "--out", str(out), "--set", "delivery.guarantee=at_most_once"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 lanes, 2 arrows, 0 drops, 1 fault windows"
    for argv, message in (
        (["--limit", "4"], "sim: error: --window = None: expected a filter that leaves at most 4 arrows"),
        (["--window", "5"], "sim: error: --window = '5': expected START:END"),
        (["--obligations", "x"], "sim: error: --obligations = 'x': expected ledger rows"),
        (["--nodes", ","], "sim: error: --nodes = ',': expected node ids"),
    ):
        assert main(["trace", str(scenario), "--out", str(out), *argv]) == 2
        assert capsys.readouterr().err.startswith(message), argv


def test_parse_window_takes_units() -> None:
    assert trace_cli.parse_window("200ms:0.3") == (0.2, 0.3)
    assert trace_cli.parse_window(None) is None
    assert math.isclose(trace_cli.parse_window("1s:2s")[1], 2.0)  # type: ignore[index]


@pytest.mark.parametrize("name", ["point_to_point", "queue", "pubsub", "request_reply", "event_driven"])
def test_every_pattern_chains_its_hops_into_transmissions_the_ledger_agrees_with(name: str) -> None:
    root = Path(__file__).resolve().parents[2]
    scenario = Scenario.from_toml(root / "experiments" / "scenarios" / f"{name}.toml").with_updates(
        {
            "trace": True,
            "duration": "0.3s",
            "warmup": 0,
            "links.loss": 0.03,
            "delivery.guarantee": "at_least_once",
        }
    )
    run = simulate(scenario)
    frame = run.trace_frame()
    hops = frame[frame["event"] == "hop"]
    # every data transmission over a link is one arrow, and the ledger counted each
    assert int((hops["kind"] != "control").sum()) == int(run.columns["transmissions"].sum()) > 0
    # a transmission starts where it was sent (a hop, or the drop of a send that never left), not on arrival
    starts = frame[frame["tx"] >= 0].groupby("tx").head(1)
    assert set(starts["event"]) <= {"hop", "drop"} and (starts["node"] == starts["origin"]).all()
    # a hop that went on is followed, in its transmission, by a hop from its far node when it arrived there
    following = set(zip(hops["tx"], hops["node"], hops["time"], strict=True))
    went_on = hops[hops["end"] == "forward"]
    assert len(went_on) > 0  # every one of these topologies has paths of several links
    assert all(
        (tx, peer, end) in following
        for tx, peer, end in zip(went_on["tx"], went_on["peer"], went_on["end_time"], strict=True)
    )
    # data arrivals each end a hop of their transmission at that node (or are a duplicating link's twin)
    arrivals = frame[(frame["event"] == "arrive") & (frame["kind"] != "control")]
    ended = hops[(hops["end"] == "arrive") & (hops["kind"] != "control")]
    assert set(zip(arrivals["tx"], arrivals["node"], strict=True)) == set(
        zip(ended["tx"], ended["peer"], strict=True)
    )
    if name == "point_to_point":  # each data transmission goes from its row's sender to its row's recipient
        rows = arrivals["row"].to_numpy()
        assert (arrivals["origin"].astype(str).to_numpy() == run.columns["src"][rows]).all()
        assert (arrivals["node"].astype(str).to_numpy() == run.columns["dst"][rows]).all()


def test_a_drop_that_ends_an_arrow_is_counted_and_drawn_once(tmp_path: Path) -> None:
    # n2 down from 50 to 70 ms: most sends are refused at n0 (drops of no hop), but a hop already on its way
    # to n2 when it crashes is dropped there, at the end of its arrow
    run = simulate(
        Scenario(
            **{
                **TINY,
                "workload": {"rate": "1000/s"},
                "delivery": {"guarantee": "at_most_once"},
                "faults": [{"at": "50ms", "action": "crash", "target": "n2", "for": "20ms"}],
            }
        )
    )
    frame = run.trace_frame()
    view = flow_view(run)
    ended = [a for a in view.arrows if a[5] & 8]  # dropped at its far node
    assert ended and all(a[12] == "node_down" for a in ended)
    n_drops = int((frame["event"] == "drop").sum())
    assert view.counts()["drops"] == n_drops == len(view.drops) + len(ended)
    assert not {(d[4], d[0]) for d in view.drops} & {(a[6], a[1]) for a in ended}
    # trace.json: each drop once, as an instant event or as the "dropped" of its transmission's send
    _, trace = write_views(run, tmp_path)
    events = _trace_json(trace)["traceEvents"]
    instants = [e for e in events if e["ph"] == "i"]
    sends = [e for e in events if e["name"].startswith("send ") and "dropped" in e.get("args", {})]
    assert len(instants) + len(sends) == n_drops


@pytest.mark.parametrize("link", ["n1-n2", "n0-n1"])
def test_a_duplicating_link_s_second_arrival_is_a_duplicate_of_its_transmission(link: str) -> None:
    run = simulate(
        Scenario(
            **{
                **TINY,
                "duration": "0.2s",
                "workload": {"rate": "200/s"},
                "delivery": {"guarantee": "at_most_once"},
                "faults": [
                    {"at": "50ms", "action": "duplicate", "target": link, "probability": 0.5, "for": "100ms"}
                ],
            }
        )
    )
    broken = [v.obligation for v in run.check() if v.rule == "no_duplicates"]
    assert broken  # the link duplicated some
    frame = run.trace_frame()
    arrivals = frame[(frame["event"] == "arrive") & (frame["kind"] == "data")]
    flagged = arrivals[arrivals["duplicate_of"] >= 0]
    # each broken obligation's second arrival is flagged, a duplicate of its own transmission; and only those
    assert sorted(flagged["row"].tolist()) == sorted(broken)
    assert (flagged["duplicate_of"] == flagged["tx"]).all()
    # the diagram rings the arrow that brought each of them
    rings = [a for a in flow_view(run).arrows if a[5] & 2]
    assert sorted(a[8] for a in rings) == sorted(broken) and all(a[11] == a[6] for a in rings)


def test_fault_windows_come_from_the_injector_s_fault_spans() -> None:
    log = [(0.1, "crash", "h0", ""), (0.2, "latency", "a->b", "add=0.1"), (0.3, "recover", "h0", "")]
    log += [(0.4, "latency_end", "a->b", "add=0.1"), (0.5, "partition", "network", "")]
    spans = fault_spans(log, 1.0)
    assert spans == [
        (0.1, 0.3, "crash", "h0"),
        (0.2, 0.4, "latency", "a->b"),
        (0.5, 1.0, "partition", "network"),
    ]
    assert fault_windows(log, 1.0) == [(s, e) for s, e, _, _ in spans]  # its projection
    run = simulate(
        Scenario(
            **{
                **TINY,
                "faults": [
                    {"at": "20ms", "action": "crash", "target": "n1", "for": "10ms"},
                    {"at": "40ms", "action": "latency", "target": "n0-n1", "add": "1ms", "for": "10ms"},
                    {"at": "90ms", "action": "pause", "target": "n2"},
                ],
            }
        )
    )
    view = flow_view(run)
    assert [f[:4] for f in view.faults] == [list(s) for s in fault_spans(run.fault_log, run.end_time)]
    assert [f[:3] for f in view.faults] == [
        [0.02, 0.03, "crash"],
        [0.04, 0.05, "latency"],
        [0.09, run.end_time, "pause"],
    ]
