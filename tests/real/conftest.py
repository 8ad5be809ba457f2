"""Real brokers for the tests: one server per module, on a free loopback port in a temporary folder.

A module asks for ``rabbitmq``, ``mosquitto`` or ``nats``; the server starts once (RabbitMQ takes seconds)
and is stopped by the fixture's finalizer however the module ends. A test is skipped, saying why, only when
the server or its client library is not installed here, or the server does not start.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.real.servers import Server, ServerUnavailable, start

CLIENTS = {"rabbitmq": "aio_pika", "mosquitto": "paho.mqtt", "nats": "nats"}


def _server(broker: str, folder: Path) -> Iterator[Server]:
    module = CLIENTS[broker]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"the {broker} client ({module}) is not installed: pip install -e '.[real]'")
    try:
        server = start(broker, folder, startup_timeout=60)
    except ServerUnavailable as exc:
        pytest.skip(f"{broker} cannot start here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server("rabbitmq", tmp_path_factory.mktemp("rabbitmq"))


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server("mosquitto", tmp_path_factory.mktemp("mosquitto"))


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server("nats", tmp_path_factory.mktemp("nats"))
