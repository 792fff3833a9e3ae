"""Static checks of docker-compose.yml that `docker-compose config` does not make.

    python -m tools.check_compose

Every build context has a Dockerfile, every bind-mounted path of the repository exists,
only the public ports are published and only on 127.0.0.1, every long-running service has
a health check or is a known one-shot job, and every OTLP endpoint is the Jaeger of the file,
running our config (mounted read-only) and reachable from the other containers. Exits 1 and
names each problem.
"""

from __future__ import annotations

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLIC_PORTS = {"8080", "16686", "9090", "3000"}
ONE_SHOT = {"pki", "catalog-seed"}
NO_HEALTHCHECK_NEEDED = {"jaeger", "prometheus", "grafana", "promtail"}
_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")
JAEGER_CONFIG = "./observability/jaeger/config.yaml"
# Jaeger's OTLP/gRPC port in that config, unless the jaeger service's environment moves it.
_OTLP_GRPC = re.compile(r"\$\{env:JAEGER_OTLP_GRPC_PORT:-(\d+)\}")


def _published(port) -> tuple[str, str]:
    """(host address, published port) of a ports entry, with ${VAR:-default} read as its default."""
    parts = _VARIABLE.sub(r"\1", str(port)).split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("0.0.0.0", parts[0])


def problems(compose: dict) -> list[str]:
    found = []
    for name, service in compose.get("services", {}).items():
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (context / dockerfile).is_file():
                found.append(f"{name}: build context {context} has no {dockerfile}")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            # Host paths (/var/run/docker.sock) belong to the machine; the repository's own must exist.
            if source.startswith(".") and not (ROOT / source).exists():
                found.append(f"{name}: mounts {source}, which does not exist")
        for port in service.get("ports", []):
            address, published = _published(port)
            if published not in PUBLIC_PORTS:
                found.append(f"{name}: publishes {published}, which is not one of the public ports")
            if address != "127.0.0.1":
                found.append(f"{name}: publishes {published} on {address}, not on 127.0.0.1 only")
        if "healthcheck" not in service and name not in ONE_SHOT | NO_HEALTHCHECK_NEEDED:
            found.append(f"{name}: has no health check")
    return found + jaeger_problems(compose)


def _environment(service: dict) -> dict:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return environment


def jaeger_problems(compose: dict) -> list[str]:
    """The jaeger service runs our config, read-only, listening beyond its own loopback, and every
    OTEL_EXPORTER_OTLP_ENDPOINT in the file is its OTLP/gRPC port."""
    jaeger = compose.get("services", {}).get("jaeger")
    if jaeger is None:
        return ["jaeger: missing (the services export their spans to it)"]
    found = []
    mounts = {str(v).split(":")[0]: str(v).split(":")[1:] for v in jaeger.get("volumes", [])}
    target = mounts.get(JAEGER_CONFIG, [])
    if target[1:] != ["ro"]:
        found.append(f"jaeger: does not mount {JAEGER_CONFIG} read-only")
    elif f"--config=file:{target[0]}" not in jaeger.get("command", []):
        found.append(f"jaeger: is not started with --config=file:{target[0]}")
    environment = _environment(jaeger)
    if environment.get("JAEGER_LISTEN_HOST") != "0.0.0.0":
        found.append("jaeger: JAEGER_LISTEN_HOST is not 0.0.0.0, so no other container reaches its OTLP port")
    default = _OTLP_GRPC.search((ROOT / JAEGER_CONFIG).read_text())
    port = str(environment.get("JAEGER_OTLP_GRPC_PORT") or (default.group(1) if default else ""))
    for name, service in compose.get("services", {}).items():
        endpoint = _environment(service).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint is not None and endpoint != f"http://jaeger:{port}":
            found.append(f"{name}: exports spans to {endpoint}, not to Jaeger's OTLP port http://jaeger:{port}")
    return found


def main() -> int:
    found = problems(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
    for problem in found:
        print(f"docker-compose.yml: {problem}", file=sys.stderr)
    print("docker-compose.yml: static checks passed" if not found else f"{len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
