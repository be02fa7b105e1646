# syntax=docker/dockerfile:1
# The modelpilot images, one per component, each holding only its distributions and what they
# import (issue 14, item 5): the product is the core at the root, operator/ (modelpilot-operator)
# and one distribution per service under services/, as MLServer ships its runtimes
# (services/router modelpilot-router, services/modelserver modelpilot-modelserver,
# services/driftjob modelpilot-driftjob, and services/httpserver modelpilot-httpserver, the server
# frame the router and the model server share); dev/ is development-only and never copied. Each
# image installs
#   router        modelpilot-router + modelpilot-httpserver   (no MLflow, scipy, pandas, sklearn)
#   model-server  modelpilot-modelserver + modelpilot-httpserver   (MLflow's skinny client, sklearn)
#   drift         modelpilot-driftjob
#   operator      modelpilot-operator
#   modelpilot    modelpilot[cli] + the operator + every service: the general image, with the full
#                 MLflow (the chart's optional registry runs `mlflow server` from it)
# with the core they depend on, and no other service's code. Multi-stage: the build stages have
# pip and the build backend; each runtime image has only its virtual environment, runs as an
# unprivileged user, and works with a read-only root filesystem (everything writable is under
# /tmp, which the chart mounts as an emptyDir).
#   docker build -t ghcr.io/modelpilot/modelpilot:0.1.0 .
#   docker build --target router -t ghcr.io/modelpilot/router:0.1.0 .
# `make images` builds all five.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Each image's dependency list alone, in a stage of its own: an image's install layer below is
# keyed by its own list's bytes, so an edit of the code, or of another image's dependencies,
# reuses it (hack/images/requirements.py reads the distributions' pyproject.toml files).
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
COPY operator/pyproject.toml ./operator/
COPY services/httpserver/pyproject.toml ./services/httpserver/
COPY services/router/pyproject.toml ./services/router/
COPY services/modelserver/pyproject.toml ./services/modelserver/
COPY services/driftjob/pyproject.toml ./services/driftjob/
COPY hack/images/requirements.py /tmp/
RUN mkdir /requirements \
    && python3 /tmp/requirements.py . modelpilot-router > /requirements/router.txt \
    && python3 /tmp/requirements.py . modelpilot-modelserver > /requirements/model-server.txt \
    && python3 /tmp/requirements.py . modelpilot-driftjob > /requirements/drift.txt \
    && python3 /tmp/requirements.py . modelpilot-operator > /requirements/operator.txt \
    && python3 /tmp/requirements.py . 'modelpilot[cli]' modelpilot-operator \
         modelpilot-router modelpilot-modelserver modelpilot-driftjob > /requirements/modelpilot.txt

# The product wheels (the core, the operator, each service and the shared frame), built once for
# every image.
FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# python3, not python: Debian's own python3 package (the base `make images` builds with debootstrap
# when no registry answers) has no `python` command; python:3.11-slim has both. The venvs have both.
RUN python3 -m venv /opt/build
COPY pyproject.toml README.md ./
COPY src ./src
COPY operator ./operator
COPY services ./services
# The optional build secret `ca-certificates` is the builder's trust store, for networks whose
# HTTPS proxy re-signs PyPI's certificates (make images passes the host's); it is mounted for the
# pip steps only and never lands in a layer.
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels . ./operator \
         ./services/httpserver ./services/router ./services/modelserver ./services/driftjob

# One virtual environment per image: its requirements (a cached layer), then the product wheels it
# needs (and no other) without their dependencies (already there), then a check that every requirement is met and
# that its entry point imports. The dependencies' own test suites (pandas, scipy, numpy,
# pyarrow...) are never imported at run time; removing them shrinks the image. The compiled
# bytecode stays: a read-only root cannot write it, and every pod start would compile again.
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/modelpilot

FROM venv AS venv-router
COPY --from=requirements /requirements/router.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
RUN /opt/modelpilot/bin/pip install --no-deps /tmp/wheels/modelpilot-0*.whl \
      /tmp/wheels/modelpilot_httpserver-*.whl /tmp/wheels/modelpilot_router-*.whl \
    && /opt/modelpilot/bin/pip check \
    && find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/python -c "import modelpilot.router.__main__, modelpilot.router.app"

FROM venv AS venv-model-server
COPY --from=requirements /requirements/model-server.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
RUN /opt/modelpilot/bin/pip install --no-deps /tmp/wheels/modelpilot-0*.whl \
      /tmp/wheels/modelpilot_httpserver-*.whl /tmp/wheels/modelpilot_modelserver-*.whl \
    && /opt/modelpilot/bin/pip check \
    && find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/python -c "import modelpilot.modelserver.__main__, modelpilot.modelserver.app, mlflow.pyfunc, sklearn"

FROM venv AS venv-drift
COPY --from=requirements /requirements/drift.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
RUN /opt/modelpilot/bin/pip install --no-deps /tmp/wheels/modelpilot-0*.whl \
      /tmp/wheels/modelpilot_driftjob-*.whl \
    && /opt/modelpilot/bin/pip check \
    && find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/modelpilot drift run --help >/dev/null

FROM venv AS venv-operator
COPY --from=requirements /requirements/operator.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
RUN /opt/modelpilot/bin/pip install --no-deps /tmp/wheels/modelpilot-0*.whl /tmp/wheels/modelpilot_operator-*.whl \
    && /opt/modelpilot/bin/pip check \
    && find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/python -c "import modelpilot.operator.main" \
    && /opt/modelpilot/bin/modelpilot operator run --help >/dev/null

FROM venv AS venv-modelpilot
COPY --from=requirements /requirements/modelpilot.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && /opt/modelpilot/bin/pip install --requirement /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
RUN /opt/modelpilot/bin/pip install --no-deps /tmp/wheels/*.whl \
    && /opt/modelpilot/bin/pip check \
    && find /opt/modelpilot/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/modelpilot/bin/python -c "import pandas, scipy.stats, sklearn, pyarrow, mlflow.pyfunc, modelpilot.cli.main"

# What every image shares: the unprivileged user and the environment.
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/modelpilot/modelpilot"
# A fixed numeric uid/gid, so that runAsNonRoot can verify it and volumes can be shared by fsGroup.
RUN groupadd --system --gid 10001 modelpilot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelpilot
ENV PATH=/opt/modelpilot/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /tmp

FROM runtime AS operator
LABEL org.opencontainers.image.title="modelpilot-operator" \
      org.opencontainers.image.description="modelpilot's Kubernetes operator"
COPY --from=venv-operator /opt/modelpilot /opt/modelpilot
ENTRYPOINT ["modelpilot", "operator", "run"]

FROM runtime AS model-server
LABEL org.opencontainers.image.title="modelpilot-model-server" \
      org.opencontainers.image.description="modelpilot's model server (Open Inference Protocol v2)"
COPY --from=venv-model-server /opt/modelpilot /opt/modelpilot
EXPOSE 8080
ENTRYPOINT ["python", "-m", "modelpilot.modelserver"]

FROM runtime AS router
LABEL org.opencontainers.image.title="modelpilot-router" \
      org.opencontainers.image.description="modelpilot's router (traffic split, rewards)"
COPY --from=venv-router /opt/modelpilot /opt/modelpilot
EXPOSE 8080
ENTRYPOINT ["python", "-m", "modelpilot.router"]

FROM runtime AS drift
LABEL org.opencontainers.image.title="modelpilot-drift" \
      org.opencontainers.image.description="modelpilot's drift job"
COPY --from=venv-drift /opt/modelpilot /opt/modelpilot
ENTRYPOINT ["modelpilot", "drift", "run"]

# The default target: the general image (`modelpilot ...`; the chart runs `mlflow server` from it).
FROM runtime AS modelpilot
LABEL org.opencontainers.image.title="modelpilot" \
      org.opencontainers.image.description="Kubernetes-native MLOps: the CLI, operator, model server, router, drift job"
COPY --from=venv-modelpilot /opt/modelpilot /opt/modelpilot
ENTRYPOINT ["modelpilot"]
CMD ["--help"]
