#!/usr/bin/env bash
# The full stack in real containers, from a fresh Debian machine (run as root):  make containers
#
#   1. installs Docker's engine (and its matching CLI, which run.sh puts first on PATH: a machine may
#      come with a newer docker client elsewhere), docker-compose 1.29 and debootstrap from Debian
#   2. starts a private dockerd under a temp folder (never another engine), stopped by its PID at exit
#   3. loads or builds local stand-ins for the public base images (standins.sh)
#   4. builds the project's image from the Dockerfile, brings the compose stack up
#      (docker-compose.yml + compose.local.yml), runs the smoke and chaos checks (smoke.py)
#   5. docker-compose down -v, checks that nothing is left, stops the engine
# The result, with build times and image sizes, is written to $SHOP_CONTAINERS_CACHE/result.json
# (default .cache/containers/); the exit code is 1 when any check failed.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
HERE=tools/containers
CACHE=${SHOP_CONTAINERS_CACHE:-$REPO/.cache/containers}
RESULT=$CACHE/result.json
# Debian's docker CLI matches its engine (a newer CLI elsewhere on PATH would want BuildKit's buildx).
export PATH=/usr/sbin:/usr/bin:$PATH DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
source "$HERE/dockerd.sh"
source "$HERE/standins.sh"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$1" "$(now)"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

started=$(now)
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mvn >/dev/null || need+=(maven)   # Cassandra for the stand-in comes from Maven Central
command -v make >/dev/null || need+=(make)
if ((${#need[@]})); then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
make install >/dev/null
mkdir -p "$CACHE"
rm -f "$RESULT"

WORK=$(mktemp -d /tmp/shop-containers.XXXXXX)
export EDGE_PUBLISHED_PORT=$(free_port) PROMETHEUS_PUBLISHED_PORT=$(free_port) JAEGER_PUBLISHED_PORT=$(free_port)
COMPOSE=(docker-compose -p shopsmoke -f docker-compose.yml -f "$HERE/compose.local.yml")
export SHOP_COMPOSE="${COMPOSE[*]}"
# The smoke's walk-through gets its tokens with the legacy password grant, which compose leaves off.
export OAUTH_PASSWORD_GRANT=on

teardown() {
    local code=$?
    if [[ -n ${DOCKERD_PID:-} ]]; then
        if ((code != 0)); then
            "${COMPOSE[@]}" ps >"$CACHE/failed-ps.txt" 2>&1 || true
            "${COMPOSE[@]}" logs --no-color --tail 200 >"$CACHE/failed-logs.txt" 2>&1 || true
            echo "container logs: $CACHE/failed-logs.txt" >&2
        fi
        "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
        stop_private_dockerd
    fi
    # Whatever the engine left mounted under its folder goes before the folder does.
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
    exit "$code"
}
trap teardown EXIT

echo "== private dockerd under $WORK/engine"
start_private_dockerd "$WORK/engine"

t=$(now)
ensure_standins "$CACHE" "$REPO" "$WORK/standins"
rm -rf "$WORK/standins"   # build contexts, no longer needed
standins_seconds=$(since "$t")

echo "== docker build (the project's image)"
t=$(now)
docker build --network host -q -t shop-local/shop:latest . >/dev/null
build_fresh=$(since "$t")
t=$(now)
docker build --network host -q -t shop-local/shop:latest . >/dev/null
build_cached=$(since "$t")
image_bytes=$(docker image inspect -f '{{.Size}}' shop-local/shop:latest)
base_bytes=$(docker image inspect -f '{{.Size}}' python:3.11-slim)
standin_sizes=$(docker image ls --format '"{{.Repository}}:{{.Tag}}": "{{.Size}}",' | grep -v -e shop-local/shop -e '<none>' | tr -d '\n')

echo "== docker-compose up (waits for each health check in order)"
t=$(now)
"${COMPOSE[@]}" up -d --no-build
up_seconds=$(since "$t")

echo "== smoke and chaos checks"
smoke=0
.venv/bin/python -m tools.containers.smoke --result "$WORK/checks.json" || smoke=$?

echo "== docker-compose down -v"
"${COMPOSE[@]}" down -v --remove-orphans
left=$(docker ps -aq | wc -l)/$(docker volume ls -q | wc -l)
stop_private_dockerd

python3 - "$WORK/checks.json" "$RESULT" <<PY
import json, sys
result = json.load(open(sys.argv[1])) if __import__("os").path.exists(sys.argv[1]) else {"checks": []}
containers, volumes = map(int, "$left".split("/"))
result["checks"].append({"name": "down -v leaves no container and no volume", "ok": containers == volumes == 0,
                         "detail": {"containers": containers, "volumes": volumes}})
result.update({
    "standins": {"from": "$STANDINS_FROM", "seconds": $standins_seconds},
    "image": {"name": "shop-local/shop:latest", "bytes": $image_bytes, "mb": round($image_bytes / 1e6, 1),
              # what the Dockerfile adds to python:3.11-slim (the stand-in base is larger than the official one)
              "over_base_mb": round(($image_bytes - $base_bytes) / 1e6, 1),
              "build_fresh_seconds": $build_fresh, "build_cached_seconds": $build_cached},
    "standin_sizes": {${standin_sizes%,}},
    "up_seconds": $up_seconds,
    "total_seconds": round(__import__("time").time() - $started, 1),
})
json.dump(result, open(sys.argv[2], "w"), indent=2)
failed = [c["name"] for c in result["checks"] if not c["ok"]]
print(f"containers: {len(result['checks']) - len(failed)} of {len(result['checks'])} checks passed in {result['total_seconds']}s;"
      f" image {result['image']['mb']} MB ({result['image']['over_base_mb']} MB over its base),"
      f" built in {result['image']['build_fresh_seconds']}s"
      f" (again {result['image']['build_cached_seconds']}s); result: {sys.argv[2]}")
sys.exit(1 if failed or $smoke else 0)
PY
