"""Client channels between workloads: mTLS, round_robin over DNS, retries from the service config.

One long-lived channel per target and process. grpcio does not survive fork(), so a
channel made before a fork is never reused after it: `ChannelPool` remembers the PID.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor as _d
from google.protobuf import descriptor_pb2

from runtime.credentials import channel_credentials
from runtime.settings import TlsFiles

# The grpc.health service name a server reports SERVING while it takes calls (runtime/server.py).
ROUTING_HEALTH_NAME = "routing"
_SAFE_TO_RETRY = (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT)


def service_config(services: Iterable[_d.ServiceDescriptor], max_attempts: int = 3) -> str:
    """round_robin, and retries on UNAVAILABLE only for methods declared safe to repeat
    (`option idempotency_level = NO_SIDE_EFFECTS | IDEMPOTENT` in the proto)."""
    names = [{"service": s.full_name, "method": m.name} for s in services for m in s.methods
             if m.GetOptions().idempotency_level in _SAFE_TO_RETRY]
    # Only servers that report ROUTING_HEALTH_NAME SERVING get calls: a server that is stopping says so
    # first, and the channel stops picking it before it refuses anything (runtime/server.py).
    config: dict = {"loadBalancingConfig": [{"round_robin": {}}],
                    "healthCheckConfig": {"serviceName": ROUTING_HEALTH_NAME}}
    if names:
        config["methodConfig"] = [{
            "name": names,
            "retryPolicy": {"maxAttempts": max_attempts, "initialBackoff": "0.1s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }]
    return json.dumps(config)


def normalise_target(target: str) -> str:
    """"host:port" becomes "dns:///host:port", so every address of a name gets traffic."""
    return target if "://" in target or target.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) else f"dns:///{target}"


class ChannelPool:
    """mTLS channels by target, created on first use in the current process."""

    def __init__(self, tls: TlsFiles, services_by_target: dict[str, list[_d.ServiceDescriptor]] | None = None):
        self._tls = tls
        self._services = services_by_target or {}
        self._channels: dict[str, grpc.Channel] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, target: str) -> grpc.Channel:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's channels are unusable here
                self._channels, self._pid = {}, os.getpid()
            channel = self._channels.get(target)
            if channel is None:
                options = [("grpc.service_config", service_config(self._services.get(target, []))),
                           ("grpc.enable_retries", 1), ("grpc.keepalive_time_ms", 60_000),
                           # A restarted service is found again within a second, not gRPC's default 2 minutes;
                           # calls wait for it meanwhile (wait_for_ready), so the backoff is what a restart costs.
                           ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1_000),
                           # Servers close connections after a maximum age; the name is then resolved again at
                           # once, so replicas added behind a DNS name get traffic without restarting callers.
                           ("grpc.dns_min_time_between_resolutions_ms", 1_000)]
                if target.startswith(("ipv4:", "ipv6:")):
                    # A list of addresses has no single host name: check the certificate against the first.
                    first = target.split(":", 1)[1].split(",")[0]
                    options.append(("grpc.ssl_target_name_override", first.rsplit(":", 1)[0].strip("[]")))
                channel = grpc.secure_channel(normalise_target(target), channel_credentials(self._tls), options=options)
                self._channels[target] = channel
            return channel

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels = {}
