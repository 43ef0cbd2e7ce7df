"""
Rendezvous of the job's hosts and a watchdog that fails the job when a peer dies.

Star topology, no ssh: the leader (algo-1) listens on a TCP port; every other host connects,
says who it is and which DGL server port it picked; the leader answers with the cluster layout
(every host's address as seen on the wire, every server port, a torch master port). After
that each connection carries heartbeats in both directions until the host says ``done`` or
``fail``. A host that never arrives, stops answering, or drops its connection without saying
``done`` fails the whole job with that host named, within a bounded time:

- arrival: ``GSENTRY_RDZV_TIMEOUT`` seconds (default 600) for everyone to connect;
- liveness: ``GSENTRY_PEER_TIMEOUT`` seconds (default 60) without a heartbeat.

Messages are JSON lines. A one-host job skips the network entirely (same code path otherwise).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gsentry.errors import EntryError, PeerError

if TYPE_CHECKING:
    from gsentry.contract import ContainerEnv

log = logging.getLogger(__name__)

DEFAULT_RDZV_PORT = 31877
DEFAULT_ARRIVAL_TIMEOUT = 600.0
DEFAULT_PEER_TIMEOUT = 60.0
HEARTBEAT_SECONDS = 2.0
# A host that starts before the leader listens retries this often: hosts start within a second of
# each other, so a long pause here would be most of a short job's wait.
CONNECT_RETRY_SECONDS = 0.25
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterSettings:
    """Rendezvous port and the time-outs of the host meeting (arrival, peer silence, heartbeat)."""

    port: int = DEFAULT_RDZV_PORT
    arrival_timeout: float = DEFAULT_ARRIVAL_TIMEOUT
    peer_timeout: float = DEFAULT_PEER_TIMEOUT
    heartbeat: float = HEARTBEAT_SECONDS
    # Test hook and escape hatch: host name -> address, when names do not resolve (e.g. on one machine).
    addresses: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        env = os.environ if env is None else env

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError as err:
                raise EntryError(f"{name} must be a number of seconds, got {raw!r}.") from err
            if value <= 0:
                raise EntryError(f"{name} must be positive, got {raw!r}.")
            return value

        addresses = json.loads(env["GSENTRY_HOST_ADDRESSES"]) if env.get("GSENTRY_HOST_ADDRESSES") else {}
        return cls(
            port=int(env.get("GSENTRY_RDZV_PORT") or DEFAULT_RDZV_PORT),
            arrival_timeout=number("GSENTRY_RDZV_TIMEOUT", DEFAULT_ARRIVAL_TIMEOUT),
            peer_timeout=number("GSENTRY_PEER_TIMEOUT", DEFAULT_PEER_TIMEOUT),
            heartbeat=number("GSENTRY_HEARTBEAT", HEARTBEAT_SECONDS),
            addresses=addresses,
        )


@dataclass(frozen=True)
class ClusterLayout:
    """What every host agrees on after the rendezvous (identical on all hosts)."""

    hosts: tuple[str, ...]
    addresses: tuple[str, ...]  # one reachable IP per host, in host order
    server_ports: tuple[int, ...]  # DGL server port of each host
    master_port: int  # torch.distributed master port on the leader

    @property
    def master_addr(self) -> str:
        return self.addresses[0]

    def ip_config_text(self) -> str:
        """DGL's ip_config: one ``<ip> <port>`` line per host, in partition order."""
        return "".join(f"{ip} {port}\n" for ip, port in zip(self.addresses, self.server_ports))

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "addresses": list(self.addresses),
            "server_ports": list(self.server_ports),
            "master_port": self.master_port,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterLayout:
        return cls(
            tuple(data["hosts"]),
            tuple(data["addresses"]),
            tuple(int(p) for p in data["server_ports"]),
            int(data["master_port"]),
        )


def free_port(host: str = "", count: int = 1) -> int:
    """
    Return a port the OS says is free (and, for ``count`` > 1, the ``count - 1`` after it too).

    GraphStorm's launcher starts its search at fixed ports (1234, DGL's 30050) and races other
    jobs on the same machine; asking the OS for an ephemeral port does not.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if count == 1 or all(_port_is_free(host, port + i) for i in range(1, count)):
            return port
    raise EntryError(f"could not find {count} consecutive free port(s)")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


class _Peer:
    """One TCP connection to another host, with a reader thread."""

    def __init__(self, host: str, sock: socket.socket, settings: ClusterSettings, inbox: queue.Queue[dict[str, Any]]):
        self.host = host
        self.sock = sock
        self.settings = settings
        self.inbox = inbox
        self.lock = threading.Lock()
        self.finished = False
        self.error: PeerError | None = None
        self._buffer = b""
        self.reader: threading.Thread | None = None

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.lock:
            with contextlib.suppress(OSError):  # the reader reports the lost connection
                self.sock.sendall(data)

    def read_message(self, timeout: float) -> dict[str, Any] | None:
        """One message, or None on EOF; raises socket.timeout."""
        self.sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def start_reader(self) -> None:
        self.reader = threading.Thread(target=self._read_loop, name=f"peer-{self.host}", daemon=True)
        self.reader.start()

    def _read_loop(self) -> None:
        while True:
            try:
                message = self.read_message(self.settings.peer_timeout)
            except TimeoutError:
                self.error = PeerError(
                    self.host, f"sent nothing for {self.settings.peer_timeout:.0f} s (host died or network lost)"
                )
                return
            except (OSError, ValueError) as err:
                if not self.finished:
                    self.error = PeerError(self.host, f"connection lost ({err})")
                return
            if message is None:
                if not self.finished:
                    self.error = PeerError(self.host, "connection closed before the host finished (host died)")
                return
            kind = message.get("type")
            if kind == "hb":
                continue
            if kind == "done":
                self.finished = True
                return
            if kind == "fail":
                origin = message.get("host", self.host)
                self.error = PeerError(origin, f"failed: {message.get('reason', 'unknown error')}")
                return
            self.inbox.put(message)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class Cluster:
    """This host's membership in the job: the layout, barriers and the peer watchdog."""

    def __init__(self, env: ContainerEnv, settings: ClusterSettings | None = None):
        self.env = env
        self.settings = settings or ClusterSettings.from_env()
        self.layout: ClusterLayout | None = None
        self.peers: dict[str, _Peer] = {}
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._hb_thread: threading.Thread | None = None

    # --- rendezvous ------------------------------------------------------------------------
    def rendezvous(self, server_port_count: int = 1) -> ClusterLayout:
        """Meet every host; return the layout all hosts share."""
        if self.env.num_hosts == 1:
            self.layout = ClusterLayout(
                self.env.hosts, (LOOPBACK,), (free_port(LOOPBACK, server_port_count),), free_port(LOOPBACK)
            )
            return self.layout
        if self.env.is_leader:
            self.layout = self._lead(server_port_count)
        else:
            self.layout = self._join(server_port_count)
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._hb_thread.start()
        log.info("cluster ready: %s", self.layout.to_json())
        return self.layout

    def _lead(self, server_port_count: int) -> ClusterLayout:
        expected = [h for h in self.env.hosts if h != self.env.current_host]
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("", self.settings.port))
        except OSError as err:
            raise EntryError(f"leader cannot listen on rendezvous port {self.settings.port}: {err}") from err
        listener.listen(len(expected) + 4)
        log.info("leader %s waiting for %s on port %d", self.env.current_host, expected, self.settings.port)
        deadline = time.monotonic() + self.settings.arrival_timeout
        hellos: dict[str, dict[str, Any]] = {}
        my_address = ""
        try:
            while len(hellos) < len(expected):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = [h for h in expected if h not in hellos]
                    self._broadcast_fail(f"host(s) {', '.join(missing)} never arrived")
                    raise PeerError(", ".join(missing), f"never arrived within {self.settings.arrival_timeout:.0f} s")
                listener.settimeout(remaining)
                try:
                    conn, (peer_ip, _) = listener.accept()
                except TimeoutError:
                    continue
                peer = _Peer("?", conn, self.settings, self._inbox)
                try:
                    hello = peer.read_message(timeout=30)
                except (OSError, ValueError):
                    conn.close()
                    continue
                host = (hello or {}).get("host")
                if not hello or hello.get("type") != "hello" or host not in expected or host in hellos:
                    log.warning("rejecting rendezvous connection from %s: %s", peer_ip, hello)
                    conn.close()
                    continue
                peer.host = host
                hello["address"] = peer_ip
                hellos[host] = hello
                self.peers[host] = peer
                my_address = my_address or conn.getsockname()[0]
                log.info("host %s arrived from %s", host, peer_ip)
        finally:
            listener.close()
        addresses, ports = [], []
        for host in self.env.hosts:
            if host == self.env.current_host:
                addresses.append(my_address)
                ports.append(free_port("", server_port_count))
            else:
                addresses.append(hellos[host]["address"])
                ports.append(int(hellos[host]["server_port"]))
        layout = ClusterLayout(self.env.hosts, tuple(addresses), tuple(ports), free_port(""))
        for peer in self.peers.values():
            peer.send({"type": "cluster", "layout": layout.to_json()})
            peer.start_reader()
        return layout

    def _join(self, server_port_count: int) -> ClusterLayout:
        leader = self.env.leader
        address = self.settings.addresses.get(leader, leader)
        deadline = time.monotonic() + self.settings.arrival_timeout
        last_error: Exception | None = None
        sock = None
        while time.monotonic() < deadline:
            try:
                sock = socket.create_connection((address, self.settings.port), timeout=5)
                break
            except OSError as err:  # not up yet, or its name does not resolve yet
                last_error = err
                time.sleep(CONNECT_RETRY_SECONDS)
        if sock is None:
            raise PeerError(
                leader,
                f"never accepted the rendezvous within {self.settings.arrival_timeout:.0f} s "
                f"(port {self.settings.port}; last error: {last_error})",
            )
        peer = _Peer(leader, sock, self.settings, self._inbox)
        self.peers[leader] = peer
        peer.send({"type": "hello", "host": self.env.current_host, "server_port": free_port("", server_port_count)})
        try:
            # The leader answers once every host has arrived; it gives up at its own deadline.
            message = peer.read_message(timeout=self.settings.arrival_timeout + 30)
        except (OSError, ValueError) as err:
            raise PeerError(leader, f"rendezvous failed: {err}") from err
        if message is None:
            raise PeerError(leader, "closed the rendezvous connection")
        if message.get("type") == "fail":
            raise PeerError(message.get("host", leader), f"failed: {message.get('reason')}")
        layout = ClusterLayout.from_json(message["layout"])
        peer.start_reader()
        return layout

    def launch_layout(self, server_port_count: int = 1) -> ClusterLayout:
        """
        Return the layout to start GraphStorm with.

        On one host the ports are chosen now, right before GraphStorm binds them, so that the
        minutes spent downloading do not leave another job time to take them.
        """
        if self.env.num_hosts == 1 or self.layout is None:
            return self.rendezvous(server_port_count)
        return self.layout

    # --- barrier ---------------------------------------------------------------------------
    def barrier(self, name: str) -> None:
        """Wait until every host reached ``name`` (e.g. after downloading its partition)."""
        self.gather(name, None)

    def gather(self, name: str, data: Any) -> list[Any] | None:
        """
        Return a barrier that also hands every host's ``data`` (JSON) to the leader.

        The leader gets the list in host order (its own first when it is ``algo-1``) once every
        host arrived, then releases them; the other hosts get None.
        """
        if not self.peers:
            return [data]
        if self.env.is_leader:
            received: dict[str, Any] = {self.env.current_host: data}
            waiting = set(self.peers)
            while waiting:
                message = self._next_message(name)
                if message.get("type") == "barrier" and message.get("name") == name:
                    host = str(message.get("host"))
                    waiting.discard(host)
                    received[host] = message.get("data")
            for peer in self.peers.values():
                peer.send({"type": "release", "name": name})
            return [received.get(host) for host in self.env.hosts]
        self.peers[self.env.leader].send({"type": "barrier", "name": name, "host": self.env.current_host, "data": data})
        while True:
            message = self._next_message(name)
            if message.get("type") == "release" and message.get("name") == name:
                return None

    def _next_message(self, waiting_for: str) -> dict[str, Any]:
        while True:
            error = self.failure()
            if error is not None:
                raise error
            try:
                return self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue

    # --- watchdog --------------------------------------------------------------------------
    def failure(self) -> PeerError | None:
        """Return the first peer failure seen so far, if any (cheap; call it in a polling loop)."""
        for peer in self.peers.values():
            if peer.error is not None:
                return peer.error
        return None

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat):
            for peer in list(self.peers.values()):
                peer.send({"type": "hb"})

    def report_failure(self, reason: str) -> None:
        """Tell every peer at once that this host failed, before it cleans up (:meth:`finish` hangs up later)."""
        for peer in self.peers.values():
            peer.send({"type": "fail", "host": self.env.current_host, "reason": reason})

    def finish(self, error: BaseException | None = None) -> None:
        """Tell every peer this host is done (or failed, with the reason) and hang up."""
        self._stop.set()
        reason = None
        if error is not None:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        for host, peer in self.peers.items():
            if reason is None:
                peer.send({"type": "done", "host": self.env.current_host})
            elif isinstance(error, PeerError) and error.host == host:
                pass  # it already knows
            else:
                origin = error.host if isinstance(error, PeerError) else self.env.current_host
                why = error.reason if isinstance(error, PeerError) else reason
                peer.send({"type": "fail", "host": origin, "reason": why})
            peer.finished = True
            peer.close()

    def _broadcast_fail(self, reason: str) -> None:
        for peer in self.peers.values():
            peer.send({"type": "fail", "host": self.env.current_host, "reason": reason})
            peer.close()
