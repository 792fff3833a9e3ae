#!/usr/bin/python3
"""Starts Cassandra 2.1 in the foreground on this container's address (the stand-in's entrypoint)."""

import json
import os
import pathlib
import socket

HOME = pathlib.Path("/opt/cassandra")
DATA = pathlib.Path("/var/lib/cassandra")
CONF = pathlib.Path("/tmp/cassandra-conf")


def main() -> None:
    address = socket.gethostbyname(socket.gethostname())
    config = json.loads((HOME / "cassandra.json").read_text())
    config.update({
        "cluster_name": "shop", "num_tokens": 16,
        "data_file_directories": [str(DATA / "data")], "commitlog_directory": str(DATA / "commitlog"),
        "saved_caches_directory": str(DATA / "saved_caches"),
        "listen_address": address, "rpc_address": "0.0.0.0", "broadcast_rpc_address": address,
        "start_rpc": False, "start_native_transport": True, "native_transport_port": 9042,
        "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                           "parameters": [{"seeds": address}]}],
    })
    CONF.mkdir(exist_ok=True)
    (CONF / "cassandra.yaml").write_text(json.dumps(config, indent=1))  # JSON is valid YAML
    logs = DATA / "logs"
    (CONF / "logback.xml").write_text((HOME / "conf/logback.xml").read_text()
                                      .replace("${cassandra.logdir}", str(logs)))
    heap = os.environ.get("MAX_HEAP_SIZE", "512M")
    command = ["java", f"-Xms{heap}", f"-Xmx{heap}", "-Xss512k", "-XX:+UseG1GC",
               *(HOME / "jvm-opens.txt").read_text().split(),
               "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
               f"-Dcassandra.config=file://{CONF / 'cassandra.yaml'}", f"-Dlogback.configurationFile={CONF / 'logback.xml'}",
               f"-Dcassandra.logdir={logs}", "-Dcassandra.jmx.local.port=7199",
               "-cp", f"{CONF}:{HOME / 'lib'}/*", "org.apache.cassandra.service.CassandraDaemon"]
    if os.environ.get("HEAP_NEWSIZE"):
        command.insert(3, f"-Xmn{os.environ['HEAP_NEWSIZE']}")
    os.execvp("java", command)


if __name__ == "__main__":
    main()
