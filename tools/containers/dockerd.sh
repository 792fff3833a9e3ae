# Sourced by tools/containers/run.sh: a private Docker engine that never touches another one.
#
# Everything it owns lives under one temp folder (data, exec state, pid file, socket); every
# docker and docker-compose call goes through DOCKER_HOST; it is stopped by its own PID.
# Its default bridge is off (two private engines on one machine would both claim docker0);
# compose makes its own network, and builds use the host's network.

start_private_dockerd() {
    local home=$1
    mkdir -p "$home/data" "$home/exec"
    dockerd --data-root "$home/data" --exec-root "$home/exec" --pidfile "$home/dockerd.pid" \
        --host "unix://$home/docker.sock" --bridge none >"$home/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    export DOCKER_HOST="unix://$home/docker.sock"
    local waited=0
    until docker version >/dev/null 2>&1; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null || ((waited >= 60)); then
            echo "dockerd did not start; its log:" >&2
            tail -n 30 "$home/dockerd.log" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

stop_private_dockerd() {
    [[ -n ${DOCKERD_PID:-} ]] || return 0
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        local waited=0
        while kill -0 "$DOCKERD_PID" 2>/dev/null && ((waited < 30)); do
            sleep 1
            waited=$((waited + 1))
        done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
    fi
    DOCKERD_PID=
}
