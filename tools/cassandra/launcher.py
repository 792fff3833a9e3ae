"""Real Apache Cassandra 5.0 for tests and local runs, from Maven Central: one node, or a cluster
of several nodes on 127.0.0.1, 127.0.0.2, ... (loopback aliases need no setup on Linux).

The version is pinned in tools/cassandra/pom.xml; `mvn dependency:copy-dependencies` fetches the
server jar and its runtime dependencies once into the cache (~/.cache/shop/cassandra-<version>,
see tools/cache.py). Each node starts `org.apache.cassandra.service.CassandraDaemon` on Java 17
with the JVM options Cassandra ships for it (tools/cassandra/jvm17-server.options) and a
cassandra.yaml written here, in its own temp folder with free ports. Only the processes started
here are ever stopped, by PID.

Given a network (harness.network.PrivateNetwork), each node runs on a host of its own there
instead, on Cassandra's usual ports, so a test can cut one node off the network.

The nodes of a cluster share every port number, each on its own address, because the driver
takes one port for the whole cluster. They start as a fresh, empty ring (no bootstrap
streaming, no gossip settling wait), and the cluster counts as up only when every node
coordinates a write at consistency ALL: each one then sees every other one alive.

    python -m tools.cassandra          # one node in the foreground, for manual use
    python -m tools.cassandra 3        # a three-node cluster
    python -m tools.cassandra --fetch  # only fetch the jars (make tools)
"""

from __future__ import annotations

import atexit
import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Protocol

from tools import processes
from tools.cache import building, cache_root
from tools.ports import free_ports

HERE = pathlib.Path(__file__).resolve().parent
POM = HERE / "pom.xml"
JVM_OPTIONS = HERE / "jvm17-server.options"
_PROBE_KEYSPACE = "ring_probe"
# Log lines on stdout (the node's stdout.log here, the container's log in the stand-in image).
LOGBACK = """<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def version() -> str:
    """The Cassandra version pinned in tools/cassandra/pom.xml."""
    found = re.search(r"<cassandra.version>([^<]+)</cassandra.version>", POM.read_text())
    if not found:
        raise RuntimeError(f"{POM} names no <cassandra.version>")
    return found.group(1)


def ensure_installed() -> pathlib.Path:
    """Fetches the pinned Cassandra's jars once; returns the folder holding them."""
    entry = cache_root() / f"cassandra-{version()}"
    with building(entry) as scratch:
        if scratch is not None:
            print(f"fetching Apache Cassandra {version()} with Maven (once; kept in {entry})", file=sys.stderr, flush=True)
            fetched = subprocess.run(["mvn", "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
                                      "-DincludeScope=runtime", f"-DoutputDirectory={scratch / 'lib'}"],
                                     capture_output=True, text=True)
            if fetched.returncode:
                raise RuntimeError(f"Maven could not fetch Cassandra {version()}:\n{fetched.stdout}{fetched.stderr}")
    return entry / "lib"


def jvm_options() -> list[str]:
    """The JVM options every node starts with (comments and blank lines dropped)."""
    return [line.strip() for line in JVM_OPTIONS.read_text().splitlines() if line.strip().startswith("-")]


def java() -> str:
    """A Java 17 runtime: Cassandra 5.0 runs on 11 and 17, not on the newer JDKs a machine may also have."""
    candidates = [shutil.which("java") or "", *sorted(str(p) for p in pathlib.Path("/usr/lib/jvm").glob("*17*/bin/java"))]
    for candidate in candidates:
        if candidate and _java_major(candidate) in (11, 17):
            return candidate
    raise RuntimeError("Cassandra 5.0 needs Java 17 (or 11): install openjdk-17-jre-headless")


def _java_major(binary: str) -> int:
    banner = subprocess.run([binary, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)', banner)
    return int(found.group(1)) if found else 0


class CassandraNode:
    """One Cassandra process on its own loopback address, with its own files under `workdir`."""

    def __init__(self, lib: pathlib.Path, workdir: pathlib.Path, host: str, ports: dict[str, int],
                 seed: str, heap: str, run_on: Callable[[list[str]], list[str]] = lambda argv: argv):
        self.host, self._lib, self._workdir, self._heap = host, lib, workdir, heap
        self._run_on = run_on  # the command that runs argv where this node's address is (its network namespace)
        self._process: subprocess.Popen | None = None
        self._conf = self._write_config(ports, seed)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _write_config(self, ports: dict[str, int], seed: str) -> pathlib.Path:
        work = self._workdir
        config = {
            "cluster_name": "shop-tests",
            "num_tokens": 16,  # fewer token ranges: faster start and faster full scans
            "auto_bootstrap": False,  # a fresh empty ring: nothing to stream, no ring-delay wait
            "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
            "endpoint_snitch": "SimpleSnitch",
            "commitlog_sync": "periodic", "commitlog_sync_period": "10000ms",
            "data_file_directories": [str(work / "data")],
            "commitlog_directory": str(work / "commitlog"),
            "saved_caches_directory": str(work / "saved_caches"),
            "hints_directory": str(work / "hints"),
            "cdc_raw_directory": str(work / "cdc_raw"),
            "auto_snapshot": False,  # a dropped test keyspace needs no snapshot
            # Cassandra's recommended Paxos for lightweight transactions (2 round trips a write, not 4);
            # docker-compose.yml and the Kubernetes manifests set the same.
            "paxos_variant": "v2",
            "listen_address": self.host, "rpc_address": self.host,
            "native_transport_port": ports["native"], "storage_port": ports["storage"],
            "start_native_transport": True,
            "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                               "parameters": [{"seeds": f"{seed}:{ports['storage']}"}]}],
        }
        conf = work / "conf"
        conf.mkdir(parents=True)
        (conf / "cassandra.yaml").write_text(json.dumps(config, indent=1))  # JSON is valid YAML
        (conf / "logback.xml").write_text(LOGBACK)
        return conf

    def _command(self) -> list[str]:
        # No JMX port: nothing here uses nodetool, and a fixed port would clash between clusters.
        return [
            java(), f"-Xms{self._heap}", f"-Xmx{self._heap}", *jvm_options(),
            "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.config=file://{self._conf / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self._workdir}",
            f"-Dlogback.configurationFile={self._conf / 'logback.xml'}",
            f"-Dcassandra.logdir={self._workdir / 'logs'}",
            "-cp", f"{self._conf}:{self._lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def launch(self) -> None:
        """Starts the process (again, on the same files, after a stop)."""
        with open(self._workdir / "stdout.log", "ab") as log:
            self._process = subprocess.Popen(self._run_on(self._command()), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Signals this node's process (by its PID) and waits for it; returns its exit code."""
        return None if self._process is None else processes.stop(self._process, sig, timeout)

    def log_tail(self, lines: int = 40) -> str:
        log = self._workdir / "stdout.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


class Hosts(Protocol):
    """Machines of a test's own for the nodes (harness.network.PrivateNetwork): an address each,
    and the command that runs a program on one of them."""

    addresses: tuple[str, ...]

    def command(self, index: int, argv: list[str]) -> list[str]: ...


class CassandraCluster:
    """`size` nodes on 127.0.0.1 .. 127.0.0.<size>, one ring with the first as its seed; or one node
    on each of `network`'s hosts, on Cassandra's usual ports (nothing else listens there)."""

    def __init__(self, size: int = 3, heap: str = "512M", network: Hosts | None = None):
        self.hosts = network.addresses if network else tuple(f"127.0.0.{i}" for i in range(1, size + 1))
        self._network = network
        self._heap = heap
        self._workdir: pathlib.Path | None = None
        self.nodes: list[CassandraNode] = []
        self.port = 0

    @property
    def contact_point(self) -> str:
        """Every node as "host:port", comma-separated (the form of CASSANDRA_CONTACT_POINTS)."""
        return ",".join(f"{host}:{self.port}" for host in self.hosts)

    def start(self, timeout: float = 180) -> CassandraCluster:
        lib = ensure_installed()
        self._workdir = pathlib.Path(tempfile.mkdtemp(prefix="cassandra-"))
        atexit.register(self.stop)
        ports = {"native": 9042, "storage": 7000} if self._network else \
            dict(zip(("native", "storage"), free_ports(2, self.hosts), strict=True))
        self.port = ports["native"]
        self.nodes = [CassandraNode(lib, self._workdir / host, host, ports, self.hosts[0], self._heap, self._runner(i))
                      for i, host in enumerate(self.hosts)]
        for node in self.nodes:  # all at once: a node that finds the seed not listening yet keeps gossiping
            node.launch()
        self.wait_for_ring(timeout)
        return self

    def _runner(self, index: int) -> Callable[[list[str]], list[str]]:
        network = self._network
        return (lambda argv: network.command(index, argv)) if network else (lambda argv: argv)

    def stop_node(self, index: int, sig: int = signal.SIGTERM) -> int | None:
        """Stops one node (SIGTERM: Cassandra's own drain and shutdown; SIGKILL: a crash)."""
        return self.nodes[index].stop(sig)

    def restart_node(self, index: int, timeout: float = 120) -> None:
        """Starts a stopped node again on its files and waits until the whole ring sees it."""
        if self.nodes[index].running:
            raise RuntimeError(f"Cassandra on {self.nodes[index].host} is running already")
        self.nodes[index].launch()
        self.wait_for_ring(timeout)

    def wait_for_ring(self, timeout: float = 120) -> None:
        """Waits until every node coordinates a write at ALL, so each one sees all the others up."""
        deadline = time.monotonic() + timeout
        while not self._ring_is_up():
            self._check_alive()
            if time.monotonic() > deadline:
                self._fail(f"the {len(self.hosts)} Cassandra nodes did not form one ring within {timeout:.0f}s")
            time.sleep(1)

    def _ring_is_up(self) -> bool:
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy
        from cassandra.query import SimpleStatement

        probe = SimpleStatement(f"INSERT INTO {_PROBE_KEYSPACE}.up (host) VALUES (%s)", consistency_level=ConsistencyLevel.ALL)
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy())
        cluster = Cluster(list(self.hosts), port=self.port, connect_timeout=2,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        try:
            session = cluster.connect()
            hosts = cluster.metadata.all_hosts()
            if len(hosts) < len(self.hosts) or not all(host.is_up for host in hosts):
                return False
            session.execute(f"CREATE KEYSPACE IF NOT EXISTS {_PROBE_KEYSPACE} WITH replication = "
                            f"{{'class': 'SimpleStrategy', 'replication_factor': {len(self.hosts)}}}")
            session.execute(f"CREATE TABLE IF NOT EXISTS {_PROBE_KEYSPACE}.up (host text PRIMARY KEY)")
            # A replica that has not learnt of the table yet drops the write, and the probe would time out.
            if not cluster.control_connection.wait_for_schema_agreement(wait_time=20):
                return False
            for host in hosts:
                session.execute(probe, (host.address,), host=host, timeout=5)
            return True
        except Exception:  # not up yet: NoHostAvailable, Unavailable, WriteTimeout, OperationTimedOut, ...
            return False
        finally:
            cluster.shutdown()

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.pid is not None and not node.running:
                self._fail(f"Cassandra on {node.host} is not running (exit code {node.stop()})")

    def _fail(self, message: str) -> None:
        tails = "\n".join(f"--- {node.host}\n{node.log_tail()}" for node in self.nodes)
        self.stop()
        raise RuntimeError(message + "\n" + tails)

    def stop(self) -> None:
        """Stops every process this object started (by PID) and removes its files. Idempotent."""
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class CassandraServer(CassandraCluster):
    """One single-node Cassandra on 127.0.0.1 with free ports; `contact_point` is "127.0.0.1:PORT"."""

    def __init__(self, heap: str = "768M"):
        super().__init__(1, heap)


def main() -> int:
    if sys.argv[1:] == ["--fetch"]:  # make tools: fetch the jars only
        print(ensure_installed())
        return 0
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    started = time.monotonic()
    with CassandraCluster(size, heap="768M" if size == 1 else "512M") as cluster:
        print(f"CASSANDRA_CONTACT_POINTS={cluster.contact_point} "
              f"(Apache Cassandra {version()}, up in {time.monotonic() - started:.1f}s; Ctrl-C stops it)", flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0
