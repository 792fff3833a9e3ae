#!/usr/bin/python3
"""Starts Cassandra 5.0 in the foreground on this container's address (the stand-in's entrypoint)."""

import json
import os
import pathlib
import shlex
import socket

HOME = pathlib.Path("/opt/cassandra")
DATA = pathlib.Path("/var/lib/cassandra")
CONF = pathlib.Path("/tmp/cassandra-conf")


def main() -> None:
    address = socket.gethostbyname(socket.gethostname())
    config = {
        "cluster_name": "shop", "num_tokens": 16,
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner", "endpoint_snitch": "SimpleSnitch",
        "commitlog_sync": "periodic", "commitlog_sync_period": "10000ms",
        **{key: str(DATA / folder) for key, folder in (
            ("commitlog_directory", "commitlog"), ("saved_caches_directory", "saved_caches"),
            ("hints_directory", "hints"), ("cdc_raw_directory", "cdc_raw"))},
        "data_file_directories": [str(DATA / "data")],
        "listen_address": address, "rpc_address": "0.0.0.0", "broadcast_rpc_address": address,
        "start_native_transport": True, "native_transport_port": 9042,
        "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                           "parameters": [{"seeds": address}]}],
    }
    CONF.mkdir(exist_ok=True)
    (CONF / "cassandra.yaml").write_text(json.dumps(config, indent=1))  # JSON is valid YAML
    heap = os.environ.get("MAX_HEAP_SIZE", "512M")
    options = [line.strip() for line in (HOME / "jvm17-server.options").read_text().splitlines()
               if line.strip().startswith("-")]
    command = ["java", f"-Xms{heap}", f"-Xmx{heap}", *options,
               *(["-Xmn" + os.environ["HEAP_NEWSIZE"]] if os.environ.get("HEAP_NEWSIZE") else []),
               *shlex.split(os.environ.get("JVM_EXTRA_OPTS", "")),
               "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
               f"-Dcassandra.config=file://{CONF / 'cassandra.yaml'}", f"-Dcassandra.storagedir={DATA}",
               f"-Dlogback.configurationFile={HOME / 'logback.xml'}", f"-Dcassandra.logdir={DATA / 'logs'}",
               "-cp", f"{CONF}:{HOME / 'lib'}/*", "org.apache.cassandra.service.CassandraDaemon"]
    os.execvp("java", command)


if __name__ == "__main__":
    main()
