# syntax=docker/dockerfile:1
#
# inlet-bridge: two stages.
#   build:   a virtual environment in /opt/venv with the dependencies, and the project's wheel
#            (its SQL and templates are package data) installed into it.
#   runtime: python:3.11-slim with only /opt/venv, run as an unprivileged user.
#
# Build:  docker build --platform linux/amd64 -t inlet-bridge:0.1.0 .
# Run:    docker run --rm -p 8080:8080 -e DATABASE_URL=postgresql://... inlet-bridge:0.1.0
#         docker run --rm -e DATABASE_URL=postgresql://... inlet-bridge:0.1.0 migrate

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first, read from pyproject.toml: this layer is rebuilt only when they change.
# Every dependency ships binary wheels for CPython 3.11, so the build stage needs no compiler
# either. Only [project] dependencies are installed: not the `embedded` extra (pgserver), so
# the image never starts a PostgreSQL of its own; without DATABASE_URL, `serve` and `migrate`
# stop with one line saying so.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt

COPY inlet_bridge/ inlet_bridge/

# The wheel, installed like any package: the `inlet-bridge` console script in /opt/venv/bin,
# the code, its SQL and templates in site-packages. Bytecode is compiled here because the
# runtime file system is read-only.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && python -m compileall -q /opt/venv/lib


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="inlet-bridge" \
      org.opencontainers.image.description="Hotel bookings from any PMS become Inlet door-access grants." \
      org.opencontainers.image.version="0.1.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8080

RUN groupadd --system --gid 10001 inlet \
    && useradd --system --uid 10001 --gid inlet --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin inlet

# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY --from=build /opt/venv /opt/venv

WORKDIR /tmp
USER 10001:10001
EXPOSE 8080

# /healthz answers while the process is up (readiness, /readyz, is for the orchestrator).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

ENTRYPOINT ["inlet-bridge"]
CMD ["serve"]
