"""Static checks of docker-compose.yml that `docker-compose config` does not make.

    python -m tools.check_compose

Every build context has a Dockerfile, every bind-mounted path of the repository exists,
only the public ports are published and only on 127.0.0.1, and every long-running service has
a health check or is a known one-shot job. Exits 1 and names each problem.
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
    return found


def main() -> int:
    found = problems(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
    for problem in found:
        print(f"docker-compose.yml: {problem}", file=sys.stderr)
    print("docker-compose.yml: static checks passed" if not found else f"{len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
