# One image for every service and the edge; the compose file picks the module to run.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir -r requirements-runtime.lock

COPY proto ./proto
COPY gen ./gen
COPY runtime ./runtime
COPY services ./services
COPY edge ./edge
COPY observability ./observability
ENV PYTHONPATH=/app:/app/gen

RUN useradd --system --uid 10001 --no-create-home shop
USER shop

# Each service reports its state over grpc.health; the compose file runs the probe.
CMD ["python", "-m", "services.accounts"]
