"""A small authoritative DNS server on 127.0.0.1 (UDP, port 0) whose answers a test can change.

gRPC's c-ares resolver asks it when a target names it: `dns://127.0.0.1:<port>/catalog:50052`.
That is how a test scales a service out "behind its DNS name" the way Kubernetes or Compose do,
without touching the machine's resolver:

    with DnsServer({"catalog": ["127.0.0.1"]}) as dns:
        ...
        dns.records["catalog"] = ["127.0.0.1", "127.0.0.2"]   # a replica was added

Answers A queries for known names (TTL 0); every other question gets an empty NOERROR answer,
or NXDOMAIN for unknown names. RFC 1035 wire format, no compression beyond pointing at the question.
"""

from __future__ import annotations

import socket
import struct
import threading

_A, _IN = 1, 1


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    return ".".join(labels), offset + 1


class DnsServer:
    def __init__(self, records: dict[str, list[str]]):
        self.records = {name.lower(): list(addresses) for name, addresses in records.items()}
        self.queries = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)

    def target(self, name: str, port: int) -> str:
        """A gRPC target that resolves `name` through this server."""
        return f"dns://127.0.0.1:{self.port}/{name}:{port}"

    def _answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, _flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        name, offset = _read_name(query, 12)
        qtype, _qclass = struct.unpack("!HH", query[offset:offset + 4])
        question = query[12:offset + 4]
        addresses = self.records.get(name)
        answers = [] if qtype != _A or addresses is None else addresses
        rcode = 3 if addresses is None else 0  # NXDOMAIN for names we do not know
        header = struct.pack("!HHHHHH", ident, 0x8400 | rcode, 1, len(answers), 0, 0)  # response, authoritative
        records = b"".join(struct.pack("!HHHIH", 0xC00C, _A, _IN, 0, 4) + socket.inet_aton(a) for a in answers)
        return header + question + records

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            reply = self._answer(query)
            if reply is not None:
                self._sock.sendto(reply, client)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
