# syntax=docker/dockerfile:1
# The modelpilot image: one Python environment with the package and its entrypoints for the
# operator, the model server, the router and the drift job (and `mlflow server`, which the chart's
# optional registry runs). Multi-stage: the build stage has pip and the build backend; the runtime
# stage has only the virtual environment, runs as an unprivileged user, and works with a read-only
# root filesystem (everything writable is under /tmp, which the chart mounts as an emptyDir).
#
# The last stage (`modelpilot`, the default target) is the general image. The `operator`,
# `model-server`, `router` and `drift` targets are the same layers with a different default command,
# so the images the operator deploys by default exist under their own names without a second build:
#   docker build -t ghcr.io/modelpilot/modelpilot:0.1.0 .
#   docker build --target router -t ghcr.io/modelpilot/router:0.1.0 .
# `make images` builds all five.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The dependency list alone, in a stage of its own: the install layer below is keyed by this
# file's bytes, so an edit of pyproject.toml that leaves the dependencies alone (a marker, a tool
# setting) reuses the installed dependencies. (python -c rather than a heredoc: podman 4.3's
# buildah does not read Dockerfile heredocs.)
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > /requirements.txt

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# python3, not python: Debian's own python3 package (the base `make images` builds with debootstrap
# when no registry answers) has no `python` command; python:3.11-slim has both. The venv has both.
RUN python3 -m venv /opt/modelpilot
COPY --from=requirements /requirements.txt /tmp/requirements.txt
# The optional build secret `ca-certificates` is the builder's trust store, for networks whose
# HTTPS proxy re-signs PyPI's certificates (make images passes the host's); it is mounted for the
# pip step only and never lands in a layer.
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY src ./src
COPY operator ./operator
COPY services ./services
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --no-deps . \
    && /opt/modelpilot/bin/python -c "import modelpilot.errors, modelpilot.cli.main"
# The dependencies' own test suites (pandas, scipy, numpy, pyarrow, matplotlib...: ~120 MB with
# their bytecode) are never imported at run time; the runtime stage copies /opt/modelpilot as it
# is after this step, so removing them here shrinks the image (a separate step keeps the
# dependency layer above cached). The compiled bytecode stays: a read-only root cannot write it,
# and every pod start would compile mlflow, pandas and scipy again.
RUN find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/python -c "import pandas, scipy.stats, sklearn, pyarrow, mlflow.pyfunc"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="modelpilot" \
      org.opencontainers.image.description="Kubernetes-native MLOps: operator, model server, router, drift job" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/modelpilot/modelpilot"
# A fixed numeric uid/gid, so that runAsNonRoot can verify it and volumes can be shared by fsGroup.
RUN groupadd --system --gid 10001 modelpilot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelpilot
COPY --from=build /opt/modelpilot /opt/modelpilot
ENV PATH=/opt/modelpilot/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /tmp

FROM runtime AS operator
ENTRYPOINT ["modelpilot", "operator", "run"]

FROM runtime AS model-server
EXPOSE 8080
ENTRYPOINT ["python", "-m", "modelpilot.modelserver"]

FROM runtime AS router
EXPOSE 8080
ENTRYPOINT ["python", "-m", "modelpilot.router"]

FROM runtime AS drift
ENTRYPOINT ["modelpilot", "drift", "run"]

# The default target: the general image (`modelpilot ...`; the chart runs `mlflow server` from it).
FROM runtime AS modelpilot
ENTRYPOINT ["modelpilot"]
CMD ["--help"]
