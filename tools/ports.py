"""Free port numbers, for programs that cannot be told to bind port 0 and report it back
(Cassandra, whose cluster nodes must share their ports; Jaeger, whose config names each port)."""

from __future__ import annotations

import contextlib
import socket


def bindable(host: str, port: int, *, reuse_address: bool = False) -> bool:
    """Whether `port` can be bound on `host` right now (with SO_REUSEADDR, as Go's listeners bind,
    a port whose old connections linger in TIME_WAIT counts as free)."""
    with socket.socket() as probe:
        if reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return True
        except OSError:
            return False


def free_ports(count: int = 1, hosts: tuple[str, ...] = ("127.0.0.1",)) -> list[int]:
    """`count` different port numbers, each free on every one of `hosts` right now."""
    for _ in range(100):
        with contextlib.ExitStack() as held:  # all held at once while chosen, so no two are the same
            sockets = [held.enter_context(socket.socket()) for _ in range(count)]
            for sock in sockets:
                sock.bind((hosts[0], 0))
            ports = [sock.getsockname()[1] for sock in sockets]
        if all(bindable(host, port) for host in hosts[1:] for port in ports):
            return ports
    raise RuntimeError(f"no {count} ports free on all of {hosts}")
