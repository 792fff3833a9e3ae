# One image for every service and the edge; the compose file (or the Kubernetes manifest) picks
# the module to run. Two stages: the first installs the pinned runtime dependencies into a
# virtual environment, the second gets that environment and the code, without pip, compilers
# or caches, and runs as a non-root user.
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-runtime.lock \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH PYTHONPATH=/app:/app/gen
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin shop
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY proto ./proto
COPY gen ./gen
COPY runtime ./runtime
COPY services ./services
COPY edge ./edge
COPY observability ./observability
COPY web ./web
USER 10001

# Each service reports its state over grpc.health; the compose file and Kubernetes run the probes.
CMD ["python", "-m", "services.accounts"]
