# One image for every `fraudops` command (serve, ingest, schedule, console, mlflow server).
# Build: docker build -t fraudops:0.1.0 .   (deploy/compose.yaml builds and tags it)
# The base is pinned by its full version; pin its digest too in your registry mirror.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: a virtual environment with the pinned dependencies and fraudops ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/fraudops
WORKDIR /build
# Dependencies first, from constraints.txt: this layer is reused while only src/ changes.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p src/fraudops && touch src/fraudops/__init__.py \
    && /opt/fraudops/bin/pip install -c constraints.txt . \
    && /opt/fraudops/bin/pip uninstall -y fraudops
COPY src ./src
RUN /opt/fraudops/bin/pip install --no-deps -c constraints.txt . \
    && /opt/fraudops/bin/fraudops --help > /dev/null

# --- airflow: Apache Airflow in its own environment, calling the same fraudops (optional) ---
FROM ${PYTHON_IMAGE} AS airflow
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/fraudops fraudops \
    && install -d -o fraudops -g fraudops -m 0700 /var/lib/fraudops/journal
COPY airflow-constraints.txt /tmp/
RUN python -m venv /opt/airflow \
    && /opt/airflow/bin/pip install -r /tmp/airflow-constraints.txt
COPY --from=build /opt/fraudops /opt/fraudops
COPY dags /opt/fraudops-dags
ENV PATH=/opt/airflow/bin:/opt/fraudops/bin:$PATH \
    AIRFLOW_HOME=/var/lib/fraudops/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/fraudops-dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false \
    AIRFLOW_VAR_FRAUDOPS_BIN=/opt/fraudops/bin/fraudops
USER fraudops
WORKDIR /var/lib/fraudops
ENTRYPOINT ["airflow"]
CMD ["standalone"]

# --- runtime: the default image ------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: XGBoost's OpenMP runtime, which the slim base lacks.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/fraudops fraudops \
    && install -d -o fraudops -g fraudops -m 0700 /var/lib/fraudops/journal
COPY --from=build /opt/fraudops /opt/fraudops
# No secret is baked in: tokens, keys and passwords come from the environment at run time.
# NUMBA_CACHE_DIR: site-packages is read-only for the service's user, so the compiled tree walk
# (fraudops.scoring.compiled) is cached in the writable home; mount it to keep the compile
# (a second or two, once per machine) across container restarts.
ENV PATH=/opt/fraudops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FRAUDOPS_HOME=/var/lib/fraudops \
    FRAUDOPS_LOG_FORMAT=json \
    NUMBA_CACHE_DIR=/var/lib/fraudops/numba-cache \
    MLFLOW_DISABLE_TELEMETRY=true \
    OMP_WAIT_POLICY=PASSIVE \
    HEALTHCHECK_URL=http://127.0.0.1:8000/healthz
USER fraudops
WORKDIR /var/lib/fraudops
EXPOSE 8000
# python, not curl (the slim image has none): liveness of `fraudops serve`. Other commands
# set HEALTHCHECK_URL to their own metrics port, or disable the check (deploy/compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["fraudops"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
