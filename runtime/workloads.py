"""The workloads of a system, declared once in a registry file and read by everything that has to
know them: the dev stack (`make up`), the test stack, the dev PKI, and the checks that hold
compose, Kubernetes, Prometheus and the release workflow to it.

    [[service]]
    name = "catalog"                         # process, certificate identity, compose service, Deployment
    grpc = "shop.catalog.v1.CatalogService"  # the gRPC service it serves (its proto says the rest)
    port = 50052                             # its default GRPC_PORT
    metrics_port = 9102                      # its default METRICS_PORT
    calls = ["accounts"]                     # services it calls, declared before it: each one's
                                             # address reaches it as <NAME>_TARGET
    module = "services.catalog"              # optional: `python -m <module>` (default services.<name>)

Services start in the order they are declared. Besides them every system has two identities of
its own: the edge (the public door) and the operator (people with a client certificate).
"""

from __future__ import annotations

import pathlib
import re
import tomllib
from dataclasses import dataclass

from runtime.settings import ConfigError

EDGE, OPERATOR = "edge", "operator"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_GRPC_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.[A-Z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Workload:
    """One service of the registry."""

    name: str
    grpc: str
    port: int
    metrics_port: int
    calls: tuple[str, ...] = ()
    module: str = ""

    @property
    def target_variable(self) -> str:
        """The setting through which its callers learn where it is (ACCOUNTS_TARGET)."""
        return f"{setting_prefix(self.name)}_TARGET"


def setting_prefix(name: str) -> str:
    """How settings about a workload begin: "order-history" -> ORDER_HISTORY (_PORT, _TARGET, ...)."""
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class Registry:
    services: tuple[Workload, ...]

    def __getitem__(self, name: str) -> Workload:
        for workload in self.services:
            if workload.name == name:
                return workload
        raise KeyError(f"no workload {name!r} in the registry")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.services)

    @property
    def identities(self) -> tuple[str, ...]:
        """Every workload identity a certificate is issued to: the services, the edge, the operator."""
        return (*self.names, EDGE, OPERATOR)

    def callers_of(self, name: str) -> tuple[str, ...]:
        """The services that call `name` (the edge calls every one)."""
        return tuple(w.name for w in self.services if name in w.calls)


class RegistryError(ConfigError):
    """The registry file is malformed: which entry, and why (a service then stops at start, saying so)."""


def load(path: pathlib.Path) -> Registry:
    """The registry in `path`, checked: unique names and ports, calls to services declared before."""
    try:
        entries = tomllib.loads(pathlib.Path(path).read_text())["service"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as error:
        raise RegistryError(f"{path}: {error}") from None
    services: list[Workload] = []
    for entry in entries:
        workload = _workload(path, entry)
        taken = {w.name for w in services} | {EDGE, OPERATOR}
        if workload.name in taken:
            raise RegistryError(f"{path}: {workload.name}: the name is taken")
        ports = {p for w in services for p in (w.port, w.metrics_port)}
        if {workload.port, workload.metrics_port} & ports or workload.port == workload.metrics_port:
            raise RegistryError(f"{path}: {workload.name}: a port another one has")
        unknown = [callee for callee in workload.calls if callee not in {w.name for w in services}]
        if unknown:
            raise RegistryError(f"{path}: {workload.name}: calls {', '.join(unknown)}, not declared before it")
        services.append(workload)
    return Registry(tuple(services))


def _workload(path: pathlib.Path, entry: dict) -> Workload:
    name = entry.get("name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"{path}: name {name!r}: lower-case letters, digits and '-', starting with a letter")
    extra = set(entry) - {"name", "grpc", "port", "metrics_port", "calls", "module"}
    if extra:
        raise RegistryError(f"{path}: {name}: unknown keys {', '.join(sorted(extra))}")
    grpc, calls = entry.get("grpc", ""), entry.get("calls", [])
    if not isinstance(grpc, str) or not _GRPC_NAME.match(grpc):
        raise RegistryError(f"{path}: {name}: grpc must be a full service name such as pkg.v1.NameService")
    port, metrics_port = entry.get("port"), entry.get("metrics_port")
    if not all(isinstance(p, int) and 0 < p < 65536 for p in (port, metrics_port)):
        raise RegistryError(f"{path}: {name}: port and metrics_port must be TCP ports")
    assert isinstance(port, int) and isinstance(metrics_port, int)
    if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
        raise RegistryError(f"{path}: {name}: calls must be a list of service names")
    return Workload(name=name, grpc=grpc, port=port, metrics_port=metrics_port, calls=tuple(calls),
                    module=entry.get("module") or f"services.{name}")
