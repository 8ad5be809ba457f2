"""Message-flow views of one traced run: a space-time diagram (``flow.html``) and a Perfetto trace
(``trace.json``).

``flow.html`` is one self-contained page (inline script and style, no network access): one lane per node,
time left to right, an arrow per transmission over a link (send → arrival), data kinds and control traffic in
their own colours (control dashed), a red cross where a transmission was dropped (with the reason), retries
numbered and linked to their first attempt, duplicates ringed, fault windows shaded on the lanes they hit.
Hovering an arrow shows its details; clicking it highlights every transmission of its message (retries,
redeliveries, duplicates, fan-out copies) and the control messages that answer them. The wheel zooms the
time axis, dragging pans it, a double click resets it. The page states its counts in the ``data-*``
attributes of ``#flow`` (``lanes``, ``arrows``, ``drops``, ``faults``) and, once drawn, ``data-drawn``.

``trace.json`` is the Chrome trace-event format that the Perfetto UI (ui.perfetto.dev) and
``chrome://tracing`` open: one process for the run, a thread (track) per node plus one for faults, a
zero-length complete event (``X``) at each send and arrival, joined by a flow (``s`` → ``f``, one id per
transmission over a link), drops as instant events (``i``), fault windows as complete events; times in
microseconds.

Filters (all optional; together they must all hold):

- ``window=(start, end)`` (s): transmissions that are under way at some time in it (sent before its end,
  arriving after its start), drops and fault windows in it; the diagram spans the window;
- ``nodes``: transmissions from or to these nodes and drops at them; the other ends of those transmissions
  get lanes too;
- ``obligations`` (ledger rows): every transmission carrying one of them (the publish that carries several
  included) and the control messages inferred to answer those.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.core.errors import SimError
from sim.sweep.store import atomic_write

if TYPE_CHECKING:
    from sim.run.simulate import RunResult

__all__ = ["ARROW_LIMIT", "KIND_COLORS", "FlowView", "flow_view", "write_view", "write_views"]

ARROW_LIMIT = 20_000
"""Most arrows :func:`write_views` draws; narrow a larger run with a window, nodes or obligations."""

KIND_COLORS = {
    "data": "#1f77b4",
    "request": "#9467bd",
    "reply": "#17becf",
    "event": "#ff7f0e",
    "control": "#7f7f7f",
}
_KINDS = tuple(KIND_COLORS)
_RETRY, _DUPLICATE, _LOST, _DROPPED, _OPEN = 1, 2, 4, 8, 16  # arrow flags


@dataclass
class FlowView:
    """What the views draw, after the filters: lanes, arrows, drops and fault windows (plain data).

    Attributes
    ----------
    lanes : list of str
        Node ids, one lane each, top to bottom.
    arrows : list of list
        One per transmission over a link: ``[sent, arrived, from lane, to lane, kind index, flags, tx, msg_id,
        row, attempt, retry_of, duplicate_of, reason, answers, op]``; ``arrived`` is where a lost
        transmission is drawn to (its arrival is unknown: the link's median flight time).
    drops : list of list
        ``[time, lane, reason, msg_id, tx]`` for drops not already drawn at the end of an arrow.
    faults : list of list
        ``[start, end, action, target, lanes]`` (``lanes`` empty: the whole network).
    window, nodes, obligations
        The filters it was made with.
    """

    lanes: list[str]
    arrows: list[list[Any]]
    drops: list[list[Any]]
    faults: list[list[Any]]
    window: tuple[float, float] | None = None
    nodes: list[str] | None = None
    obligations: list[int] | None = None

    def counts(self) -> dict[str, int]:
        """``lanes``, ``arrows``, ``drops`` (every drop, at an arrow's end or not) and ``faults``."""
        ended = sum(1 for a in self.arrows if a[5] & (_LOST | _DROPPED))
        return {
            "lanes": len(self.lanes),
            "arrows": len(self.arrows),
            "drops": len(self.drops) + ended,
            "faults": len(self.faults),
        }


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def flow_view(
    result: RunResult,
    *,
    window: tuple[float, float] | None = None,
    nodes: Collection[str] | None = None,
    obligations: Collection[int] | None = None,
) -> FlowView:
    """The lanes, arrows, drops and fault windows of a traced run after the filters (see the module's text).

    Raises
    ------
    SimError
        If the run was not traced, or a filter is malformed (an empty window, an unknown node).
    """
    from sim.model.faults.injector import fault_spans  # here: it imports the network model

    table = result.trace_frame()
    if window is not None:
        start, end = float(window[0]), float(window[1])
        if not (math.isfinite(start) and math.isfinite(end) and start < end):
            raise SimError("window", f"{window[0]}:{window[1]}", "START:END in seconds with START < END")
    events = table["event"].to_numpy(dtype=object)
    node = table["node"].to_numpy(dtype=object)
    peer = table["peer"].to_numpy(dtype=object)
    known = set(node[events != "fault"].tolist()) | set(peer[events == "hop"].tolist())
    if nodes is not None:
        nodes = set(nodes)
        missing = sorted(nodes - known)
        if missing:
            raise SimError(
                "nodes",
                ",".join(missing),
                "nodes the trace passes through: " + ",".join(sorted(known, key=_natural)),
            )
    t = table["time"].to_numpy(dtype=float)
    t_end = table["end_time"].to_numpy(dtype=float)
    is_hop = events == "hop"
    ends = table["end"].to_numpy(dtype=object)
    lost = ends == "lost"
    under_way = is_hop & (ends == "")
    # where to draw a transmission whose arrival is unknown (lost on its link): its link's median flight
    flight = t_end - t
    ok = is_hop & np.isfinite(flight)
    links: dict[tuple[str, str], list[float]] = {}
    for u, v, f in zip(node[ok].tolist(), peer[ok].tolist(), flight[ok].tolist(), strict=True):
        links.setdefault((u, v), []).append(f)
    typical = float(np.median(flight[ok])) if ok.any() else 1e-3
    median = {k: float(np.median(v)) for k, v in links.items()}
    drawn_end = t_end.copy()
    for i in np.flatnonzero(is_hop & ~np.isfinite(t_end)).tolist():
        drawn_end[i] = result.end_time if under_way[i] else t[i] + median.get((node[i], peer[i]), typical)

    keep = events != "fault"
    if window is not None:
        keep &= np.where(is_hop, (t <= end) & (drawn_end >= start), (t >= start) & (t <= end))
    if nodes is not None:
        at = np.isin(node, list(nodes))
        keep &= np.where(is_hop, at | np.isin(peer, list(nodes)), at)
    if obligations is not None:
        wanted = {int(o) for o in obligations}
        n_rows = len(result.columns["msg_id"])
        bad = sorted(o for o in wanted if not 0 <= o < n_rows)
        if bad:
            raise SimError("obligations", ",".join(map(str, bad)), f"ledger rows 0 .. {n_rows - 1}")
        msg_ids = result.columns["msg_id"]
        carriers = set(msg_ids[sorted(wanted)].tolist())  # messages carrying a wanted row
        rows = table["row"].to_numpy()
        msg = table["msg_id"].to_numpy()
        keep &= np.isin(rows, list(wanted)) | ((rows < 0) & np.isin(msg, list(carriers)))
    keep_idx = np.flatnonzero(keep)

    lanes_set: set[str] = set()
    for i in keep_idx.tolist():
        lanes_set.add(node[i])
        if is_hop[i]:
            lanes_set.add(peer[i])
    if nodes is not None:
        lanes_set |= set(nodes)
    lanes = sorted(lanes_set, key=_natural)
    lane = {n: k for k, n in enumerate(lanes)}

    kinds = table["kind"].to_numpy(dtype=object)
    reason = table["reason"].to_numpy(dtype=object)
    cols = {
        name: table[name].to_numpy()
        for name in ("tx", "msg_id", "row", "attempt", "retry_of", "duplicate_of", "answers", "op")
    }
    # a drop that ends a drawn arrow (a hop dropped at its far node, or lost on its link) is that arrow's
    # cross, not a drop of its own: the same transmission at the same time
    crossed = {
        (int(cols["tx"][i]), float(t_end[i]) if ends[i] == "drop" else float(t[i]))
        for i in keep_idx.tolist()
        if is_hop[i] and (ends[i] == "drop" or lost[i])
    }
    arrows: list[list[Any]] = []
    drops: list[list[Any]] = []
    for i in keep_idx.tolist():
        if is_hop[i]:
            flags = (
                (_RETRY if cols["retry_of"][i] >= 0 else 0)
                | (_DUPLICATE if cols["duplicate_of"][i] >= 0 and ends[i] == "arrive" else 0)
                | (_LOST if lost[i] else 0)
                | (_DROPPED if ends[i] == "drop" else 0)
                | (_OPEN if under_way[i] else 0)
            )
            arrows.append(
                [
                    round(float(t[i]), 12),
                    round(float(drawn_end[i]), 12),
                    lane[node[i]],
                    lane[peer[i]],
                    _KINDS.index(kinds[i]) if kinds[i] in _KINDS else 0,
                    flags,
                    int(cols["tx"][i]),
                    int(cols["msg_id"][i]),
                    int(cols["row"][i]),
                    int(cols["attempt"][i]),
                    int(cols["retry_of"][i]),
                    int(cols["duplicate_of"][i]),
                    str(reason[i]),
                    int(cols["answers"][i]),
                    int(cols["op"][i]),
                ]
            )
        elif events[i] == "drop" and (int(cols["tx"][i]), float(t[i])) not in crossed:
            drops.append(
                [
                    round(float(t[i]), 12),
                    lane[node[i]],
                    str(reason[i]),
                    int(cols["msg_id"][i]),
                    int(cols["tx"][i]),
                ]
            )

    faults: list[list[Any]] = []
    for f_start, f_end, action, target in fault_spans(result.fault_log, result.end_time):
        if window is not None and (f_end < start or f_start > end):
            continue
        hit = sorted({lane[n] for part in target.split(",") for n in part.split("->") if n in lane})
        if hit or target == "network" or action == "partition":
            faults.append(
                [f_start, f_end, action, target, [] if target == "network" or action == "partition" else hit]
            )
    return FlowView(
        lanes,
        arrows,
        drops,
        faults,
        window=None if window is None else (start, end),
        nodes=None if nodes is None else sorted(nodes, key=_natural),
        obligations=None if obligations is None else sorted(wanted),
    )


def write_views(
    result: RunResult,
    out: Path,
    *,
    window: tuple[float, float] | None = None,
    nodes: Collection[str] | None = None,
    obligations: Collection[int] | None = None,
    limit: int = ARROW_LIMIT,
) -> list[Path]:
    """Write ``out/flow.html`` and ``out/trace.json`` for a traced run (filters: see the module's text).

    Returns
    -------
    list of Path
        The two files written (atomically).

    Raises
    ------
    SimError
        If the run was not traced, a filter is malformed, or more than ``limit`` arrows remain (narrow the
        run with ``window``, ``nodes`` or ``obligations``).
    """
    view = flow_view(result, window=window, nodes=nodes, obligations=obligations)
    return write_view(result, view, Path(out), limit=limit)


def write_view(result: RunResult, view: FlowView, out: Path, *, limit: int = ARROW_LIMIT) -> list[Path]:
    """Write ``out/flow.html`` and ``out/trace.json`` of ``view`` (made by :func:`flow_view` from ``result``);
    see :func:`write_views`."""
    if len(view.arrows) > limit:
        filters: dict[str, Any] = {
            "window": view.window,
            "nodes": view.nodes,
            "obligations": view.obligations,
        }
        name = next((k for k, v in filters.items() if v is None), "window")  # the first not used yet
        raise SimError(
            "--" + name,
            filters[name],
            f"a filter that leaves at most {limit} arrows (this one leaves {len(view.arrows)}): "
            "--window START:END (s), --nodes a,b or --obligations 1,2 (ledger rows)",
        )
    html_path, json_path = out / "flow.html", out / "trace.json"
    atomic_write(html_path, _html(result, view))
    atomic_write(json_path, json.dumps(_trace_events(result, view), separators=(",", ":"), allow_nan=False))
    return [html_path, json_path]


# -- trace.json ----------------------------------------------------------------------------------------------


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def _trace_events(result: RunResult, view: FlowView) -> dict[str, Any]:
    """The Chrome trace-event JSON object of ``view``."""
    sc = result.scenario
    pid = 1
    events: list[dict[str, Any]] = [
        {
            "ph": "M",
            "name": "process_name",
            "pid": pid,
            "tid": 0,
            "args": {"name": f"sim {sc.pattern} seed {sc.seed}"},
        },
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": 0, "args": {"name": "faults"}},
        {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": 0}},
    ]
    for k, name in enumerate(view.lanes):
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": k + 1, "args": {"name": name}})
        events.append(
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": k + 1, "args": {"sort_index": k + 1}}
        )
    for flow_id, a in enumerate(view.arrows, start=1):
        sent, arrived, src, dst, kind, flags, tx, msg, row, attempt, retry_of, dup_of, reason, answers, op = a
        label = f"{_KINDS[kind]} {msg}"
        args = {
            "msg_id": msg,
            "tx": tx,
            "from": view.lanes[src],
            "to": view.lanes[dst],
            "row": row,
            "op": op,
            "attempt": attempt,
            "retry_of": retry_of,
            "duplicate_of": dup_of,
        }
        if answers >= 0:
            args["answers"] = answers
        if flags & (_LOST | _DROPPED):
            args["dropped"] = reason
        ts = _us(sent)
        events.append(
            {
                "ph": "X",
                "cat": "msg",
                "name": f"send {label}",
                "pid": pid,
                "tid": src + 1,
                "ts": ts,
                "dur": 0,
                "args": args,
            }
        )
        if flags & (_LOST | _OPEN):
            continue  # no arrival: no flow
        te = _us(arrived)
        events.append(
            {
                "ph": "X",
                "cat": "msg",
                "name": f"recv {label}",
                "pid": pid,
                "tid": dst + 1,
                "ts": te,
                "dur": 0,
                "args": args,
            }
        )
        events.append(
            {
                "ph": "s",
                "cat": "msg",
                "name": label,
                "id": flow_id,
                "pid": pid,
                "tid": src + 1,
                "ts": ts,
                "bp": "e",
            }
        )
        events.append(
            {
                "ph": "f",
                "cat": "msg",
                "name": label,
                "id": flow_id,
                "pid": pid,
                "tid": dst + 1,
                "ts": te,
                "bp": "e",
            }
        )
    for t, lane, reason, msg, tx in view.drops:
        events.append(
            {
                "ph": "i",
                "s": "t",
                "cat": "drop",
                "name": f"drop {msg}: {reason}",
                "pid": pid,
                "tid": lane + 1,
                "ts": _us(t),
                "args": {"msg_id": msg, "tx": tx, "reason": reason},
            }
        )
    for start, end, action, target, _ in view.faults:
        events.append(
            {
                "ph": "X",
                "cat": "fault",
                "name": f"{action} {target}",
                "pid": pid,
                "tid": 0,
                "ts": _us(start),
                "dur": _us(end - start),
                "args": {"action": action, "target": target},
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "pattern": sc.pattern,
            "guarantee": sc.delivery.guarantee,
            "seed": str(sc.seed),
            "duration_s": str(sc.duration),
        },
    }


# -- flow.html -----------------------------------------------------------------------------------------------


def _html(result: RunResult, view: FlowView) -> str:
    sc = result.scenario
    window, nodes, obligations = view.window, view.nodes, view.obligations
    t0, t1 = (float(window[0]), float(window[1])) if window is not None else (0.0, float(result.end_time))
    if window is None and view.arrows:
        t1 = max(t1, max(a[1] for a in view.arrows))
    conditions = [
        ("pattern", str(sc.pattern)),
        ("guarantee", str(sc.delivery.guarantee)),
        ("seed", str(sc.seed)),
        ("topology", str(sc.topology.name)),
        ("duration", f"{sc.duration:g} s (run ended at {result.end_time:g} s)"),
        ("window", f"{t0:g} s to {t1:g} s" if window is not None else "whole run"),
    ]
    if nodes is not None:
        conditions.append(("nodes", ",".join(nodes)))
    if obligations is not None:
        conditions.append(("obligations", ",".join(map(str, obligations))))
    data = {
        "lanes": view.lanes,
        "arrows": view.arrows,
        "drops": view.drops,
        "faults": view.faults,
        "kinds": list(_KINDS),
        "colors": KIND_COLORS,
        "span": [t0, t1],
    }
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    header = "".join(f"<span><b>{escape(k)}</b> {escape(v)}</span>" for k, v in conditions)
    dash = "border-top-style:dashed;"
    legend = "".join(
        f'<span><i style="border-color:{c};{dash if k == "control" else ""}"></i>{k}</span>'
        for k, c in KIND_COLORS.items()
    )
    counts = " ".join(f'data-{k}="{v}"' for k, v in view.counts().items())
    title = escape(f"Message flow: {sc.pattern}, seed {sc.seed}")
    return _PAGE.format(
        title=title,
        header=header,
        legend=legend,
        counts=counts,
        payload=payload,
        style=_STYLE,
        script=_SCRIPT,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}</style></head>
<body>
<header><h1>{title}</h1><p class="conditions">{header}</p>
<p class="legend">{legend}<span><i class="retry"></i>retry (attempt n)</span>
<span><i class="dup"></i>duplicate arrival</span><span><i class="drop">&#x2715;</i>drop (reason)</span>
<span><i class="fault"></i>fault window</span></p>
<p class="help">Hover an arrow for details; click it to highlight its message (retries, duplicates, copies and
the acknowledgements answering them), Esc to clear. Wheel: zoom time; drag: pan; double click: whole span.</p>
</header>
<main id="flow" {counts}>
<div id="lanes"></div><canvas id="canvas"></canvas><canvas id="overlay"></canvas><div id="tip" hidden></div>
</main>
<section id="details"></section>
<script type="application/json" id="flow-data">{payload}</script>
<script>{script}</script>
</body></html>
"""

_STYLE = """
body{font:13px system-ui,sans-serif;margin:0;color:#222}
header{padding:8px 12px;border-bottom:1px solid #ddd}
h1{font-size:16px;margin:0 0 4px}
.conditions span,.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:22px;height:0;border-top:2px solid;vertical-align:middle;
 margin-right:4px}
.legend i.retry{border-top:2px dotted #1f77b4}
.legend i.dup{width:8px;height:8px;border:2px solid #d62728;border-radius:50%}
.legend i.drop{border:none;color:#d62728;font-style:normal;width:auto}
.legend i.fault{height:10px;border:none;background:rgba(214,39,40,.15)}
.help{color:#666;margin:4px 0 0}
main{position:relative}
#lanes{position:absolute;left:0;top:0;bottom:0;width:110px}
.lane-label{position:absolute;left:6px;width:100px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
 font-weight:600;transform:translateY(-50%)}
canvas{position:absolute;left:110px;top:0;cursor:crosshair}
#overlay{pointer-events:none}
#tip{position:absolute;pointer-events:none;background:#fff;border:1px solid #999;padding:4px 6px;
 box-shadow:0 1px 4px rgba(0,0,0,.2);white-space:pre;font:12px ui-monospace,monospace;z-index:2}
#details{padding:6px 12px;font:12px ui-monospace,monospace;white-space:pre}
"""

_SCRIPT = r"""
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("flow-data").textContent);
  const main = document.getElementById("flow"), canvas = document.getElementById("canvas");
  const tip = document.getElementById("tip"), lanesDiv = document.getElementById("lanes");
  const details = document.getElementById("details"), ctx = canvas.getContext("2d");
  const overlay = document.getElementById("overlay"), over = overlay.getContext("2d");
  const RETRY = 1, DUP = 2, LOST = 4, DROPPED = 8, OPEN = 16, PAD = 40, AXIS = 28;
  let view = [D.span[0], D.span[1] > D.span[0] ? D.span[1] : D.span[0] + 1e-3];
  let W = 0, H = 0, selected = null, hover = -1, drag = null;
  const laneY = (k) => PAD / 2 + (k + 0.5) * ((H - AXIS - PAD / 2) / Math.max(1, D.lanes.length));
  const X = (t) => (t - view[0]) / (view[1] - view[0]) * (W - PAD) + PAD / 2;
  const T = (x) => view[0] + (x - PAD / 2) / (W - PAD) * (view[1] - view[0]);
  const unit = () => (view[1] - view[0] < 2 ? ["ms", 1e3] : ["s", 1]);
  function layout() {
    main.style.height = Math.max(window.innerHeight - 150, 260, D.lanes.length * 18 + 60) + "px";
    const r = main.getBoundingClientRect();
    W = Math.max(200, r.width - 110); H = Math.max(200, r.height);
    const dpr = window.devicePixelRatio || 1;
    for (const [c, g] of [[canvas, ctx], [overlay, over]]) {
      c.width = W * dpr; c.height = H * dpr;
      c.style.width = W + "px"; c.style.height = H + "px";
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    lanesDiv.textContent = "";
    D.lanes.forEach((name, k) => {
      const d = document.createElement("div");
      d.className = "lane-label"; d.textContent = name; d.title = name; d.style.top = laneY(k) + "px";
      lanesDiv.appendChild(d);
    });
  }
  function related(a) {
    if (!selected) return true;
    return a[7] === selected.msg || (a[13] >= 0 && selected.txs.has(a[13]));
  }
  function ticks() {
    const span = view[1] - view[0], [u, f] = unit();
    const raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    const out = [];
    for (let t = Math.ceil(view[0] / step) * step; t <= view[1] + 1e-12; t += step) out.push(t);
    return [out, u, f, step];
  }
  function draw() {
    ctx.clearRect(0, 0, W, H);
    const bottom = H - AXIS;
    ctx.fillStyle = "rgba(214,39,40,0.12)"; ctx.font = "11px system-ui";
    D.faults.forEach(([s, e, action, target, hit], n) => {
      if (e < view[0] || s > view[1]) return;
      const x0 = Math.max(X(s), 0), x1 = Math.min(X(e), W);
      const band = (bottom - PAD / 2) / Math.max(1, D.lanes.length);
      const rows = hit.length ? hit : D.lanes.map((_, k) => k);
      for (const k of rows) ctx.fillRect(x0, laneY(k) - band / 2, Math.max(1, x1 - x0), band);
      const label = action + " " + (target.length > 30 ? target.slice(0, 29) + "\u2026" : target);
      ctx.fillStyle = "#a33"; ctx.fillText(label, x0 + 2, laneY(rows[0]) - band / 2 + 11 + (n % 3) * 11);
      ctx.fillStyle = "rgba(214,39,40,0.12)";
    });
    ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1; ctx.setLineDash([]);
    D.lanes.forEach((_, k) => {
      ctx.beginPath(); ctx.moveTo(0, laneY(k)); ctx.lineTo(W, laneY(k)); ctx.stroke();
    });
    const [ts, u, f] = ticks();
    ctx.fillStyle = "#444"; ctx.strokeStyle = "#999";
    ctx.beginPath(); ctx.moveTo(0, bottom); ctx.lineTo(W, bottom); ctx.stroke();
    for (const t of ts) {
      const x = X(t); ctx.beginPath(); ctx.moveTo(x, bottom); ctx.lineTo(x, bottom + 4); ctx.stroke();
      ctx.fillText(+(t * f).toPrecision(6) + "", x - 10, bottom + 15);
    }
    ctx.fillText("time (" + u + ")", W - 70, bottom + 26);
    // arrows are batched into one path per style (kind, dash, highlighted or dimmed): one stroke each
    const groups = new Map(), heads = new Map(), crosses = [], rings = [], labels = [];
    const group = (m, key) => {  // a few hundred subpaths a path: huge ones stroke slowly
      let g = m.get(key);
      if (!g) { g = []; m.set(key, g); }
      if (!g.length || g[g.length - 1].n >= 256) g.push(Object.assign(new Path2D(), { n: 0 }));
      const last = g[g.length - 1]; last.n++; return last;
    };
    let drawn = 0;
    for (let i = 0; i < D.arrows.length; i++) {
      const a = D.arrows[i];
      if (a[1] < view[0] || a[0] > view[1]) continue;
      drawn++;
      const on = related(a) ? 1 : 0, x0 = X(a[0]), x1 = X(a[1]), y0 = laneY(a[2]), y1 = laneY(a[3]);
      const lost = a[5] & LOST, dash = D.kinds[a[4]] === "control" ? 2 : (a[5] & RETRY ? 1 : 0);
      const xe = lost ? x0 + (x1 - x0) * 0.6 : x1, ye = lost ? y0 + (y1 - y0) * 0.6 : y1;
      const g = group(groups, a[4] + "," + dash + "," + on);
      g.moveTo(x0, y0); g.lineTo(xe, ye);
      if (lost || a[5] & DROPPED) crosses.push([xe, ye, a[12], on]);
      else if (!(a[5] & OPEN)) head(group(heads, a[4] + "," + on), x0, y0, x1, y1);
      if (a[5] & DUP) rings.push([x1, y1, on]);
      if (a[9] > 1 && (a[5] & RETRY)) labels.push([x0, y0, a[4], a[9], on]);
    }
    const DASHES = [[], [2, 2], [5, 3]], few = drawn <= 400;
    for (const [key, paths] of groups) {
      const [k, dash, on] = key.split(",").map(Number);
      ctx.globalAlpha = on ? 1 : 0.12; ctx.strokeStyle = D.colors[D.kinds[k]];
      ctx.lineWidth = selected && on ? 2 : 1.2; ctx.setLineDash(DASHES[dash]);
      for (const g of paths) ctx.stroke(g);
    }
    ctx.setLineDash([]);
    for (const [key, paths] of heads) {
      const [k, on] = key.split(",").map(Number);
      ctx.globalAlpha = on ? 1 : 0.12; ctx.fillStyle = D.colors[D.kinds[k]];
      for (const g of paths) ctx.fill(g);
    }
    for (const [x, y, on] of rings) {
      ctx.globalAlpha = on ? 1 : 0.12; ctx.strokeStyle = "#d62728"; ctx.lineWidth = 1.2;
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 7); ctx.stroke();
    }
    if (few || selected) {
      for (const [x, y, k, n, on] of labels) {
        if (!on) continue;
        ctx.globalAlpha = 1; ctx.fillStyle = D.colors[D.kinds[k]]; ctx.fillText("#" + n, x + 2, y - 3);
      }
    }
    for (const [x, y, reason, on] of crosses) {
      ctx.globalAlpha = on ? 1 : 0.12; cross(x, y, few || (selected && on) ? reason : "");
    }
    for (const [t, k, reason, msg] of D.drops) {
      if (t < view[0] || t > view[1]) continue;
      const on = !selected || selected.msg === msg;
      ctx.globalAlpha = on ? 1 : 0.12;
      cross(X(t), laneY(k), few || (selected && on) ? reason : "");
    }
    ctx.globalAlpha = 1;
    main.dataset.drawn = String(drawn);
    main.dataset.view = view[0] + ":" + view[1];
    emphasize();
  }
  function emphasize() {  // the hovered arrow, on the overlay (no redraw of the diagram)
    over.clearRect(0, 0, W, H);
    if (hover < 0) return;
    const a = D.arrows[hover], x0 = X(a[0]), y0 = laneY(a[2]);
    let x1 = X(a[1]), y1 = laneY(a[3]);
    if (a[5] & LOST) { x1 = x0 + (x1 - x0) * 0.6; y1 = y0 + (y1 - y0) * 0.6; }
    over.strokeStyle = "#000"; over.lineWidth = 3;
    over.beginPath(); over.moveTo(x0, y0); over.lineTo(x1, y1); over.stroke();
  }
  function head(path, x0, y0, x1, y1) {
    const ang = Math.atan2(y1 - y0, x1 - x0), s = 7;
    path.moveTo(x1, y1);
    path.lineTo(x1 - s * Math.cos(ang - 0.4), y1 - s * Math.sin(ang - 0.4));
    path.lineTo(x1 - s * Math.cos(ang + 0.4), y1 - s * Math.sin(ang + 0.4));
    path.closePath();
  }
  function cross(x, y, reason) {
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2; ctx.setLineDash([]);
    ctx.beginPath(); ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4);
    ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); ctx.stroke();
    if (reason) { ctx.fillStyle = "#d62728"; ctx.fillText(reason, x + 5, y + 12); }
  }
  function nearest(mx, my) {
    let best = -1, bd = 36;
    for (let i = 0; i < D.arrows.length; i++) {
      const a = D.arrows[i];
      if (a[1] < view[0] || a[0] > view[1]) continue;
      const x0 = X(a[0]), y0 = laneY(a[2]);
      let x1 = X(a[1]), y1 = laneY(a[3]);
      if (a[5] & LOST) { x1 = x0 + (x1 - x0) * 0.6; y1 = y0 + (y1 - y0) * 0.6; }
      const dx = x1 - x0, dy = y1 - y0, L = dx * dx + dy * dy;
      const s = L ? Math.max(0, Math.min(1, ((mx - x0) * dx + (my - y0) * dy) / L)) : 0;
      const ex = x0 + s * dx - mx, ey = y0 + s * dy - my, d = ex * ex + ey * ey;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  const ms = (t) => (t * 1e3).toFixed(3) + " ms";
  function describe(a) {
    const lines = [D.kinds[a[4]] + " message " + a[7] + ", transmission " + a[6],
      D.lanes[a[2]] + " -> " + D.lanes[a[3]], "sent " + ms(a[0])];
    if (a[5] & LOST) lines.push("lost on the link (" + a[12] + ")");
    else if (a[5] & OPEN) lines.push("still under way when the run ended");
    else lines.push((a[5] & DROPPED ? "dropped on arrival (" + a[12] + ") " : "arrived ") + ms(a[1])
      + ", flight " + ms(a[1] - a[0]));
    if (a[8] >= 0) lines.push("obligation row " + a[8] + ", operation " + a[14]);
    lines.push("attempt " + a[9] + (a[10] >= 0 ? ", retry of transmission " + a[10] : ""));
    if (a[11] >= 0) lines.push(a[11] === a[6] ? "duplicated by its link (arrived twice)"
      : "duplicate of transmission " + a[11]);
    if (a[13] >= 0) lines.push("answers transmission " + a[13] + " (inferred)");
    return lines.join("\n");
  }
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    if (drag) {
      const dt = (drag.x - mx) / (W - PAD) * (drag.view[1] - drag.view[0]);
      view = [drag.view[0] + dt, drag.view[1] + dt]; draw(); return;
    }
    const i = nearest(mx, my);
    if (i !== hover) { hover = i; emphasize(); }
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = describe(D.arrows[i]); tip.hidden = false;
    tip.style.left = (mx + 125) + "px"; tip.style.top = (my + 12) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; hover = -1; drag = null; emphasize(); });
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX - canvas.getBoundingClientRect().left, view: view.slice() };
  });
  canvas.addEventListener("mouseup", (e) => {
    const r = canvas.getBoundingClientRect(), mx = e.clientX - r.left;
    const moved = drag && Math.abs(mx - drag.x) > 3; drag = null;
    if (moved) return;
    select(hover);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect(), t = T(e.clientX - r.left), k = e.deltaY > 0 ? 1.25 : 0.8;
    view = [t - (t - view[0]) * k, t + (view[1] - t) * k]; draw();
  }, { passive: false });
  const whole = () => [D.span[0], D.span[1] > D.span[0] ? D.span[1] : D.span[0] + 1e-3];
  canvas.addEventListener("dblclick", () => { view = whole(); draw(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") select(-1); });
  function select(i) {
    if (i < 0) { selected = null; details.textContent = ""; draw(); return; }
    const msg = D.arrows[i][7], txs = new Set();
    const mine = D.arrows.filter((a) => a[7] === msg);
    mine.forEach((a) => txs.add(a[6]));
    selected = { msg: msg, txs: txs };
    const lines = ["message " + msg + ": " + mine.length + " link transmissions in " + txs.size
      + " transmissions"];
    mine.forEach((a) => lines.push("  " + describe(a).split("\n").join("; ")));
    details.textContent = lines.join("\n");
    main.dataset.selected = String(msg);
    draw();
  }
  window.addEventListener("resize", () => { layout(); draw(); });
  layout(); draw();
  main.dataset.ready = "1";
})();
"""
