# Sourced by tools/containers/run.sh: local stand-ins for the public base images.
#
# No image registry is reachable here, so the images the project builds FROM, and the ones
# docker-compose.yml runs, are made on this machine and tagged with the public names:
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, imported
#   python:3.11-slim       Debian's Python 3.11 as a venv at /usr/local, plus this machine's CAs
#   cassandra:5.0          Java 17 + Apache Cassandra 5.0 from Maven Central, the jars and JVM options
#                          the tests start it with (tools/cassandra)
#   jaegertracing/jaeger:2.13.0  the Jaeger binary the tests and `make up` run, built from its Go module
#                          (tools/gotools), on debian:bookworm-slim as the official image lays it out
#   prom/prometheus:v2.54.1  Debian's Prometheus package
# Grafana has no offline stand-in; tools/containers/compose.local.yml leaves it out. The images
# are saved under $CACHE and loaded again while their recipe is unchanged.

STANDINS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/standins
STANDIN_TAGS=(debian:bookworm-slim python:3.11-slim cassandra:5.0 jaegertracing/jaeger:2.13.0 prom/prometheus:v2.54.1)

# The machine's own apt source for Debian (deb822 or one-line format), so nothing names a mirror.
debian_mirror() {
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ -f $sources ]]; then
        awk '/^URIs:/ {print $2; exit}' "$sources"
    else
        awk '$1 == "deb" && / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list
    fi
}

standins_key() {
    # Any change to a recipe, to the pinned Cassandra or Jaeger, or to the CAs baked into the Python
    # image, makes new stand-ins.
    (cd "$STANDINS_DIR/.." && find standins standins.sh -type f -print0 | sort -z | xargs -0 cat
     cat ../cassandra/pom.xml ../cassandra/jvm17-server.options ../cassandra/launcher.py ../go/jaeger/go.mod ../go/jaeger/go.sum
     cat /usr/local/share/ca-certificates/*.crt 2>/dev/null) | sha256sum | cut -c1-16
}

build_debian_base() {
    local rootfs=$1/rootfs
    mkdir -p "$1"
    echo "== debootstrap --variant=minbase bookworm (a few minutes, once)"
    debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$1/debootstrap.log" 2>&1 \
        || { tail -n 20 "$1/debootstrap.log" >&2; return 1; }
    # As Debian's official images do: no daemon starts inside a build, no apt caches kept.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90-slim"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
    rm -rf "$rootfs"
}

build_standin() {  # tag, context folder
    echo "== stand-in $1"
    docker build --network host -q -t "$1" "$2" >/dev/null
}

build_standins() {
    local work=$1 repo=$2
    build_debian_base "$work"

    local python_ctx=$work/python
    cp -r "$STANDINS_DIR/python" "$python_ctx" && mkdir -p "$python_ctx/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$python_ctx/ca-certificates/" 2>/dev/null || true
    build_standin python:3.11-slim "$python_ctx"

    # Cassandra 5.0 from the jars and with the JVM options the test suite starts it with.
    local cassandra_ctx=$work/cassandra lib
    cp -r "$STANDINS_DIR/cassandra" "$cassandra_ctx"
    lib=$(cd "$repo" && .venv/bin/python -c 'from tools.cassandra.launcher import ensure_installed; print(ensure_installed())')
    cp -r "$lib" "$cassandra_ctx/lib" && cp "$repo/tools/cassandra/jvm17-server.options" "$cassandra_ctx/"
    (cd "$repo" && .venv/bin/python -c 'from tools.cassandra.launcher import LOGBACK; print(LOGBACK, end="")') >"$cassandra_ctx/logback.xml"
    build_standin cassandra:5.0 "$cassandra_ctx"

    # Jaeger: the binary `make up` and the tests run.
    local jaeger_ctx=$work/jaeger
    cp -r "$STANDINS_DIR/jaeger" "$jaeger_ctx"
    cp "$(cd "$repo" && .venv/bin/python -m tools.gotools jaeger)" "$jaeger_ctx/jaeger"
    build_standin jaegertracing/jaeger:2.13.0 "$jaeger_ctx"

    build_standin prom/prometheus:v2.54.1 "$STANDINS_DIR/prometheus"
}

# Loads the saved stand-ins, or builds and saves them. Prints what it did.
ensure_standins() {
    local cache=$1 repo=$2 work=$3
    local saved=$cache/standins-$(standins_key).tar
    if [[ -f $saved ]]; then
        echo "== loading stand-in images from $saved"
        docker load -q -i "$saved" >/dev/null
        STANDINS_FROM=cache
        return
    fi
    build_standins "$work" "$repo"
    mkdir -p "$cache"
    rm -f "$cache"/standins-*.tar
    docker save -o "$saved.partial" "${STANDIN_TAGS[@]}" && mv "$saved.partial" "$saved"
    STANDINS_FROM=built
}
