"""``sim measure`` (load a real broker, record every message) and ``sim calibrate`` (fit a broker profile).

See docs/calibrate.md. The clients are the ``[real]`` extra; they are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.core.errors import SimError

__all__ = ["add_parsers", "parse_fault"]


def parse_fault(text: str) -> tuple[float, str]:
    """``AT:ACTION`` (``2s:kill``, ``2.5:restart``) as (seconds, action)."""
    from sim.core.units import parse_duration
    from sim.real.measure import FAULT_ACTIONS

    at, sep, action = text.rpartition(":")
    allowed = "AT:ACTION with ACTION one of " + ", ".join(FAULT_ACTIONS) + " (e.g. 2s:kill)"
    if not sep or action not in FAULT_ACTIONS:
        raise SimError("--fault", text, allowed)
    try:
        return parse_duration(at.strip()), action
    except (SimError, ValueError, TypeError):
        raise SimError("--fault", text, allowed) from None


def _spec(args: argparse.Namespace, url: str) -> Any:
    from sim.core.units import parse_duration, parse_rate, parse_size
    from sim.real.load import PATTERNS, LoadSpec

    return LoadSpec(
        broker=args.broker,
        url=url,
        rate=parse_rate(args.rate, "--rate"),
        size=int(parse_size(args.size, "--size")),
        duration=parse_duration(args.duration, "--duration"),
        arrivals=args.arrivals,
        pattern=args.pattern or PATTERNS.get(args.broker, ("queue",))[0],
        confirms=args.confirms,
        durable=args.durable,
        manual_ack=args.manual_ack,
        prefetch=args.prefetch,
        qos=args.qos,
        subscribers=args.subscribers,
        train=args.train,
        seed=args.seed,
    )


def _cmd_measure(args: argparse.Namespace) -> int:
    from sim.real.load import Measurement
    from sim.real.measure import measure
    from sim.real.servers import ServerUnavailable, running

    faults = [parse_fault(f) for f in args.fault or ()]
    if (args.url is None) == (not args.start):
        raise SimError("--url", args.url, "a broker's URL, or --start (not both)")
    if faults and not args.start:
        raise SimError(
            "--fault", args.fault[0], "faults only with --start (sim must own the broker's process)"
        )
    out = Path(args.out)
    result: Measurement
    if args.start:
        with tempfile.TemporaryDirectory(prefix=f"sim-{args.broker}-") as folder:
            try:
                with running(args.broker, Path(folder)) as server, _through_proxy(args, server.url) as url:
                    spec = _spec(args, url)
                    result = measure(spec, version=server.version, server=server, faults=faults)
            except ServerUnavailable as exc:
                raise SimError("--start", args.broker, f"a broker that starts here ({exc})") from None
    else:
        with _through_proxy(args, args.url) as url:
            result = measure(_spec(args, url), version=args.version)
    result.write(out)
    _print_summary(result, out)
    return 0


@contextlib.contextmanager
def _through_proxy(args: argparse.Namespace, url: str) -> Iterator[str]:
    """``url``, or with ``--latency`` the URL of a :class:`~sim.real.proxy.LatencyProxy` in front of it."""
    from urllib.parse import urlparse

    from sim.core.units import parse_duration
    from sim.real.proxy import LatencyProxy

    if args.latency is None:
        yield url
        return
    delay = parse_duration(args.latency, "--latency")
    target = urlparse(url)
    if target.hostname not in ("127.0.0.1", "localhost") or target.port is None:
        raise SimError(
            "--latency", args.latency, "a broker URL on 127.0.0.1 with its port (the proxy is local)"
        )
    with LatencyProxy(target.port, delay) as proxy:
        yield proxy.url(target.scheme)


def _print_summary(result: Any, out: Path) -> None:
    f = result.open_loop()
    lat = f["latency_s"].dropna()
    s = result.spec
    print(  # noqa: T201  (a command's own output)
        f"{s.broker} {s.pattern}: {len(f)} messages at {s.rate:g}/s ({s.arrivals}), "
        f"{int((f['deliveries'] > 0).sum())} delivered, p50 {lat.median() * 1e3:.3f} ms, "
        f"p99 {lat.quantile(0.99) * 1e3:.3f} ms -> {out}"
    )


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from sim.real.fit import calibrate
    from sim.real.load import read

    measurements = [read(p) for p in args.measurement]
    profile = calibrate(measurements, sources=[str(p) for p in args.measurement])
    profile.write(Path(args.out))
    print(profile.describe())  # noqa: T201  (a command's own output)
    print(f"-> {args.out}")  # noqa: T201  (a command's own output)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``sim measure`` and ``sim calibrate`` on the ``sim`` command's subparsers."""
    from sim.real.servers import BROKERS

    p = sub.add_parser("measure", help="load a real broker open-loop and record every message (Parquet)")
    p.add_argument("broker", choices=BROKERS)
    p.add_argument("--url", help="the broker's URL (amqp://..., mqtt://..., nats://...)")
    p.add_argument(
        "--start", action="store_true", help="start the broker on a free loopback port for the run"
    )
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="where the measurement goes")
    p.add_argument("--rate", default="100/s", help="offered messages per second (producerRate)")
    p.add_argument("--size", default="1KiB", help="message size (messageSize), at least 16 bytes")
    p.add_argument("--duration", default="5s", help="how long to publish (testDurationMinutes)")
    p.add_argument("--arrivals", choices=["poisson", "constant"], default="poisson")
    p.add_argument(
        "--pattern",
        choices=["queue", "pubsub", "request_reply"],
        help="rabbitmq: queue (default), pubsub or request_reply; mosquitto: pubsub; nats: queue (a stream)",
    )
    p.add_argument(
        "--subscribers", type=int, default=1, help="pubsub: subscriptions (consumerPerSubscription)"
    )
    p.add_argument("--confirms", action="store_true", help="publisher confirms (AMQP, NATS JetStream acks)")
    p.add_argument("--durable", action="store_true", help="durable queues and persistent messages")
    p.add_argument("--manual-ack", action="store_true", help="consumers ack each delivery")
    p.add_argument("--prefetch", type=int, default=0, help="consumers' prefetch (0: unlimited)")
    p.add_argument("--qos", type=int, default=0, choices=[0, 1, 2], help="MQTT quality of service")
    p.add_argument(
        "--train", type=int, default=0, help="messages sent back to back after the run (for fitting)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the Poisson schedule")
    p.add_argument(
        "--fault", action="append", metavar="AT:ACTION", help="with --start: kill, restart, pause, resume"
    )
    p.add_argument("--latency", help="one-way delay added by a local TCP proxy in front of the broker (5ms)")
    p.add_argument("--version", default="unknown", help="the broker's version, recorded with a --url run")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("calibrate", help="fit a broker profile (TOML) from low-load measurements")
    p.add_argument("measurement", nargs="+", help="Parquet files written by sim measure (with --train)")
    p.add_argument("--out", required=True, metavar="PROFILE.toml")
    p.set_defaults(func=_cmd_calibrate)
