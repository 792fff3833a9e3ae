"""Static checks of docker-compose.yml that `docker-compose config` does not make.

    python -m tools.check_compose

Every build context has a Dockerfile, every bind-mounted path exists in the repository,
only the public ports are published, and every long-running service has a health check or
is a known one-shot job. Exits 1 and names each problem.
"""

from __future__ import annotations

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLIC_PORTS = {"8080", "16686", "9090", "3000"}
ONE_SHOT = {"pki", "catalog-seed"}
NO_HEALTHCHECK_NEEDED = {"jaeger", "prometheus", "grafana"}


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
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                found.append(f"{name}: mounts {source}, which does not exist")
        for port in service.get("ports", []):
            published = str(port).split(":")[0]
            if published not in PUBLIC_PORTS:
                found.append(f"{name}: publishes {published}, which is not one of the public ports")
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
