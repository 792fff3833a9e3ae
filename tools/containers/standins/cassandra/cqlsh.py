#!/usr/bin/python3
"""`cqlsh -e "DESCRIBE KEYSPACES"` for the Cassandra stand-in: a native protocol v3 client
(the oldest version Cassandra 5.0 still speaks, and the simplest frame layout).

Sends STARTUP, then SELECT keyspace_name FROM system_schema.keyspaces, and prints the names.
Exit 0 only when Cassandra answered the query.
"""

import socket
import struct
import sys

QUERY = b"SELECT keyspace_name FROM system_schema.keyspaces"


def frame(opcode: int, body: bytes) -> bytes:
    return struct.pack(">BBhBi", 3, 0, 0, opcode, len(body)) + body


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    header = sock.recv(9, socket.MSG_WAITALL)
    if len(header) < 9:
        raise ConnectionError("connection closed")
    _v, _f, _s, opcode, length = struct.unpack(">BBhBi", header)
    body = sock.recv(length, socket.MSG_WAITALL) if length else b""
    return opcode, body


def string(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def keyspaces(rows: bytes) -> list[str]:
    """Parses a Rows result of one varchar column."""
    offset = 4  # result kind
    flags, columns = struct.unpack_from(">ii", rows, offset)
    offset += 8
    if flags & 1:  # global table spec: keyspace and table names
        for _ in range(2):
            offset += 2 + struct.unpack_from(">H", rows, offset)[0]
    for _ in range(columns):
        offset += 2 + struct.unpack_from(">H", rows, offset)[0] + 2  # column name, type id
    (count,) = struct.unpack_from(">i", rows, offset)
    offset += 4
    names = []
    for _ in range(count):
        (size,) = struct.unpack_from(">i", rows, offset)
        names.append(rows[offset + 4:offset + 4 + size].decode())
        offset += 4 + size
    return names


def main() -> int:
    host = sys.argv[sys.argv.index("--host") + 1] if "--host" in sys.argv else "127.0.0.1"
    try:
        with socket.create_connection((host, 9042), timeout=5) as sock:
            sock.sendall(frame(0x01, struct.pack(">H", 1) + string(b"CQL_VERSION") + string(b"3.0.0")))
            if read_frame(sock)[0] != 0x02:
                raise ConnectionError("no READY after STARTUP")
            sock.sendall(frame(0x07, struct.pack(">i", len(QUERY)) + QUERY + struct.pack(">HB", 1, 0)))
            opcode, body = read_frame(sock)
    except OSError as error:
        print(f"cqlsh: {error}", file=sys.stderr)
        return 1
    if opcode != 0x08:
        print(f"cqlsh: query failed: {body[6:].decode(errors='replace')}", file=sys.stderr)
        return 1
    print("  ".join(keyspaces(body)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
