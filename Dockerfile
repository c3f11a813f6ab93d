# One image for every Sage process: the Dagster code location, webserver and daemon, the agent
# server and the MCP memory server (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    DAGSTER_HOME=/opt/dagster/home SAGE_DATA_DIR=/data

# pg_dump/pg_restore matching the pgvector/pgvector:pg17 server, for backups.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update && apt-get install -y --no-install-recommends postgresql-client-17 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/sage
# Exactly the committed lock, as `make install` does: every pin hashed, nothing resolved. The lock's
# torch is the CPU build (2.13.0+cpu), found on PyTorch's CPU index; anything else is on PyPI.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps --extra-index-url https://download.pytorch.org/whl/cpu \
      -r requirements.lock
COPY pyproject.toml README.md dagster.yaml workspace.yaml ./
COPY sage_platform ./sage_platform
COPY assets ./assets
COPY jobs ./jobs
COPY sensors ./sensors
COPY deploy ./deploy
# The project itself (its sample corpus, chat page and instance config are package data), built by the
# locked setuptools.
RUN pip install --no-deps --no-build-isolation . && pip check \
 && mkdir -p "$DAGSTER_HOME" /data && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

RUN useradd --create-home --uid 10001 sage && chown -R sage /data "$DAGSTER_HOME"
USER sage
EXPOSE 3000 4000 8080 17800
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "sage_platform.definitions"]
