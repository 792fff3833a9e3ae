"""The shop's workloads: services/workloads.toml, or the file the WORKLOADS_FILE setting names (how a
test runs a stack with one more service)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

from runtime.descriptors import load_service
from runtime.policy import Grants, grants_of
from runtime.settings import ServerSettings
from runtime.workloads import Registry, load

FILE = pathlib.Path(__file__).with_name("workloads.toml")


def registry(environ: Mapping[str, str] | None = None) -> Registry:
    environ = os.environ if environ is None else environ
    return load(pathlib.Path(environ.get("WORKLOADS_FILE") or FILE))


def server_settings(name: str, environ: Mapping[str, str] | None = None) -> ServerSettings:
    """The settings every service has (GRPC_PORT, TLS, the store, ...), its default port from its entry."""
    workload = registry(environ)[name]
    return ServerSettings.from_env(workload.name, workload.port, environ)


def scope_grants(environ: Mapping[str, str] | None = None) -> Grants:
    """The scopes every service of the registry declares, and which roles may be granted each: what
    the authorization server (accounts) grants and registers clients with."""
    return grants_of(load_service(workload.grpc) for workload in registry(environ).services)
