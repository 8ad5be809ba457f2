"""Start and stop a real broker on a free loopback port, in a folder of its own (never the system service).

Each :class:`Server` owns its processes (started in a new session, so one signal reaches the whole group),
its configuration file and its data directory, all under the folder it is given. RabbitMQ also gets its
own ``epmd`` on its own port, its own node name, Erlang cookie (``HOME``) and Mnesia directory, so it runs
as any user beside any other RabbitMQ. ``kill`` (SIGKILL), ``pause`` (SIGSTOP), ``resume`` (SIGCONT) and
``restart`` (same port, same data), and ``bounce`` (both) are the faults of docs/calibrate.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sim.core.errors import SimError

__all__ = ["BROKERS", "Server", "ServerUnavailable", "free_port", "running", "start"]

BROKERS = ("rabbitmq", "mosquitto", "nats")
"""The brokers this package can start and measure."""

_RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script itself: /usr/sbin's wrapper switches user


class ServerUnavailable(RuntimeError):
    """A broker cannot be started here (not installed, or it did not answer in time); the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


@dataclass
class Server:
    """One broker process (and its helpers) listening on ``127.0.0.1:port``; ``url`` is what clients use."""

    broker: str
    folder: Path
    port: int
    startup_timeout: float = 60.0
    extra_ports: dict[str, int] = field(default_factory=dict)
    version: str = "unknown"
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = {"rabbitmq": "amqp", "mosquitto": "mqtt", "nats": "nats"}[self.broker]
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The broker's own process id (the last one started)."""
        return self._procs[-1].pid

    def pids(self) -> list[int]:
        """The process ids of the broker's processes still running (their children are theirs too)."""
        return [proc.pid for proc in self._procs if proc.poll() is None]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Server:
        """Write the configuration, start the processes and wait until the port answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.restart()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every process this server started (SIGTERM, then SIGKILL after ``timeout``)."""
        for proc in reversed(self._procs):
            self._signal(proc, signal.SIGCONT)  # a paused broker cannot act on SIGTERM
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(5)
        self._procs.clear()

    def kill(self) -> None:
        """SIGKILL the broker's process group (its helpers such as ``epmd`` stay up), and wait until its
        port no longer answers (:class:`ServerUnavailable` after 10 s): the group's last process may
        outlive the leader by a moment, and a :meth:`restart` that found it still listening would report the
        broker back at once."""
        proc = self._procs.pop()
        self._signal(proc, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _answers(self.port):
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"{self.broker} still answers on port {self.port} 10 s after SIGKILL")
            time.sleep(0.01)

    def restart(self) -> None:
        """Start the broker again on the same port with the same data (after :meth:`kill`)."""
        argv, env = getattr(self, f"_{self.broker}")()  # RabbitMQ's epmd is still up: only the broker starts
        self._start_one(argv, env)

    def bounce(self) -> None:
        """:meth:`kill`, then :meth:`restart` at once (a crash and the supervisor's restart)."""
        self.kill()
        self.restart()

    def pause(self) -> None:
        """SIGSTOP the broker: alive, holding its connections, doing nothing."""
        self._signal(self._procs[-1], signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the broker."""
        self._signal(self._procs[-1], signal.SIGCONT)

    def _start_one(self, argv: list[str], env: dict[str, str]) -> None:
        with (self.folder / "server.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.folder,
            )
        self._procs.append(proc)
        deadline = time.monotonic() + self.startup_timeout
        while not _answers(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "server.log").read_text(errors="replace")[-300:].strip()
                raise ServerUnavailable(f"{self.broker} did not start on port {self.port}: {tail}")
            time.sleep(0.05)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    # -- one method per broker: (argv, environment) ----------------------------------------------
    def _base_env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
        return {k: os.environ[k] for k in keep if k in os.environ} | {"HOME": str(self.folder)}

    def _rabbitmq(self) -> tuple[list[str], dict[str, str]]:
        if not Path(_RABBITMQ).exists() or shutil.which("epmd") is None:
            raise ServerUnavailable("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        f = self.folder
        epmd = self.extra_ports.setdefault("epmd", free_port())
        dist = self.extra_ports.setdefault("dist", free_port())
        (f / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
            "log.console = true\nlog.file = false\n"
        )
        (f / "enabled_plugins").write_text("[].\n")
        env = self._base_env() | {
            "ERL_EPMD_PORT": str(epmd),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": f"sim{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(f / "rabbitmq-env.conf"),  # absent: not the system's
            "RABBITMQ_PID_FILE": str(f / "rabbitmq.pid"),
        }
        if not self._procs:  # the node's own epmd, stopped with the server (never a shared daemon)
            self._procs.append(
                subprocess.Popen(
                    ["epmd", "-port", str(epmd), "-address", "127.0.0.1"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        return [_RABBITMQ], env

    def _mosquitto(self) -> tuple[list[str], dict[str, str]]:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if exe is None:
            raise ServerUnavailable("mosquitto is not installed (apt-get install mosquitto)")
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {data}/\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            "set_tcp_nodelay true\n"
        )
        if os.geteuid() == 0:  # as root, mosquitto would switch to the 'mosquitto' user and lose the folder
            with conf.open("a") as fh:
                fh.write("user root\n")
        return [exe, "-c", str(conf)], self._base_env()

    def _nats(self) -> tuple[list[str], dict[str, str]]:
        exe = shutil.which("nats-server") or (
            "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
        )
        if exe is None:
            raise ServerUnavailable("nats-server is not installed (apt-get install nats-server)")
        store = self.folder / "jetstream"
        argv = [exe, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store), "-m", "0"]
        return argv, self._base_env()


_VERSION_ARGV = {
    "rabbitmq": ["dpkg-query", "-W", "-f", "rabbitmq-server ${Version}", "rabbitmq-server"],
    "mosquitto": ["dpkg-query", "-W", "-f", "mosquitto ${Version}", "mosquitto"],
    "nats": ["dpkg-query", "-W", "-f", "nats-server ${Version}", "nats-server"],
}


def start(broker: str, folder: Path, *, port: int | None = None, startup_timeout: float = 60.0) -> Server:
    """Start ``broker`` (one of :data:`BROKERS`) in ``folder`` on ``port`` (default: a free one)."""
    if broker not in BROKERS:
        raise SimError("broker", broker, "one of " + ", ".join(BROKERS))
    server = Server(broker, Path(folder), port or free_port(), startup_timeout)
    server.version = _version(_VERSION_ARGV[broker])
    return server.start()


@contextlib.contextmanager
def running(broker: str, folder: Path, **kwargs: float) -> Iterator[Server]:
    """A started :class:`Server`, stopped at the end of the block however it ends."""
    server = start(broker, folder, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
