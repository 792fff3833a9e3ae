"""Hosts of a test's own: network namespaces on a private bridge, whose links a test can cut.

    with PrivateNetwork(3) as net:
        net.addresses                 # ("10.231.X.11", "10.231.X.12", "10.231.X.13")
        net.command(0, ["java", ...]) # run a program on host 0 (`ip netns exec ...`)
        net.cut(1)                    # host 1 can reach nobody and nobody reaches it; its processes run on
        net.heal(1)

Each host is a network namespace with one veth port (`eth0`) on a bridge. The bridge lives in a
namespace of its own, the switch, so this machine's firewall (Docker's FORWARD policy is DROP,
and bridged frames pass through it) never sees the hosts' traffic; this machine joins the
switch with one more veth pair and address .1, so a process started normally reaches every
host. A cut is a silent drop in both directions (nftables in the host's namespace): packets
vanish as they do behind a failed switch port, nothing is refused, and connections that were
open stay open without answers. The /24 is a free one of 10.231.0.0/16.

Needs root (CAP_NET_ADMIN), `ip` (iproute2) and `nft` (nftables). Everything is named after
this process's PID (`shop-<pid>-...`), removed by stop() (and at exit), and namespaces left by a
process that died are removed by the next start.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import random
import re
import subprocess

_SUPERNET = ipaddress.ip_network("10.231.0.0/16")
_FIRST_HOST = 11  # host i has address .(11 + i); .1 is this machine
_CUT = """table inet shop_cut {
  chain cut_in { type filter hook input priority -300; policy accept; iifname "eth0" drop; }
  chain cut_out { type filter hook output priority -300; policy accept; oifname "eth0" drop; }
}
"""
_OURS = re.compile(r"^shop-(\d+)-")


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans() -> list[str]:
    """Removes the namespaces (and with them their links) of test networks whose process died."""
    listed = _ip("netns", "list", check=False).stdout.split()
    orphans = [name for name in listed if (found := _OURS.match(name)) and not _alive(int(found.group(1)))]
    for name in orphans:
        _ip("netns", "delete", name, check=False)
    return orphans


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.231.0.0/16 that no route or address of this machine overlaps."""
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r.get("dst", "default") != "default"
             and re.match(r"^[\d./]+$", r["dst"])]
    candidates = list(_SUPERNET.subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        if not any(subnet.overlaps(route) for route in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {_SUPERNET}")


class PrivateNetwork:
    """`size` hosts, each a network namespace with one address on a bridge this object creates."""

    def __init__(self, size: int):
        self.size = size
        self._tag = f"shop-{os.getpid()}-{random.randrange(16 ** 4):04x}"
        self._link = f"shv{os.getpid() % 10 ** 7}{random.randrange(16 ** 2):02x}"  # <= 15 characters
        self.namespaces = tuple(f"{self._tag}-h{i}" for i in range(size))
        self._switch = f"{self._tag}-sw"
        self.addresses: tuple[str, ...] = ()
        self.gateway = ""  # this machine's address on the bridge
        self._cut: set[int] = set()
        self._created: list[str] = []

    def start(self) -> PrivateNetwork:
        remove_orphans()
        atexit.register(self.stop)
        subnet = _free_subnet()
        self.gateway = str(subnet.network_address + 1)
        self.addresses = tuple(str(subnet.network_address + _FIRST_HOST + i) for i in range(self.size))
        try:
            self._namespace(self._switch)
            _ip("link", "add", "br0", "type", "bridge", namespace=self._switch)
            _ip("link", "set", "br0", "up", namespace=self._switch)
            _ip("link", "add", self._link, "type", "veth", "peer", "name", "uplink", "netns", self._switch)
            _ip("link", "set", "uplink", "master", "br0", "up", namespace=self._switch)
            _ip("addr", "add", f"{self.gateway}/{subnet.prefixlen}", "dev", self._link)
            _ip("link", "set", self._link, "up")
            for i, (namespace, address) in enumerate(zip(self.namespaces, self.addresses, strict=True)):
                self._namespace(namespace)
                _ip("link", "add", f"port{i}", "type", "veth", "peer", "name", "eth0", "netns", namespace,
                    namespace=self._switch)
                _ip("link", "set", f"port{i}", "master", "br0", "up", namespace=self._switch)
                _ip("addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0", namespace=namespace)
                _ip("link", "set", "eth0", "up", namespace=namespace)
        except BaseException:
            self.stop()
            raise
        return self

    def _namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("link", "set", "lo", "up", namespace=name)

    def command(self, index: int, argv: list[str]) -> list[str]:
        """`argv` run on host `index` (in its namespace; the program keeps its PID: `ip netns exec` execs it)."""
        return ["ip", "netns", "exec", self.namespaces[index], *argv]

    def cut(self, index: int) -> None:
        """Host `index` loses its link both ways, silently; its processes keep running."""
        subprocess.run(self.command(index, ["nft", "-f", "-"]), input=_CUT, text=True, check=True, capture_output=True)
        self._cut.add(index)

    def heal(self, index: int) -> None:
        """Host `index` has its link back."""
        subprocess.run(self.command(index, ["nft", "delete", "table", "inet", "shop_cut"]),
                       check=True, capture_output=True)
        self._cut.discard(index)

    def is_cut(self, index: int) -> bool:
        return index in self._cut

    def stop(self) -> None:
        """Removes every namespace this object made (their veth pairs go with them). Idempotent;
        processes still running in a namespace are the caller's to stop first."""
        for name in reversed(self._created):
            _ip("netns", "delete", name, check=False)
        self._created = []
        _ip("link", "delete", self._link, check=False)  # gone with the switch already, unless it failed half-way
        self._cut.clear()

    def __enter__(self) -> PrivateNetwork:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
