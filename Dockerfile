# One image for every acmegate service and for the acmegate command:
#
#   docker build -t acmegate .                (or: podman build -t acmegate .)
#   docker run --rm acmegate run signer --config /etc/acmegate/acmegate.yaml
#
# Only the runtime packages go in: the four services and the CLI, without the development
# extras (embedded PostgreSQL, test kit) and without the tests. docs/deploy.md explains the
# ports, the health check and how to run it.
#
# The Python base image is a build argument; both stages must use the same one, because the
# virtualenv's interpreter is a link to the base image's Python.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
# pip and uv trust the base image's certificate store (where a TLS-intercepting proxy's CA goes);
# the bytecode is compiled now, because the running container's filesystem is read-only; the
# virtualenv is built at /opt/acmegate, where it runs, since its scripts name their interpreter
# by absolute path; uv never downloads a Python of its own.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt UV_SYSTEM_CERTS=1 \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/acmegate
RUN python3 -m pip install --no-cache-dir --root-user-action=ignore "uv==${UV_VERSION}"
WORKDIR /src
# The third-party packages first, in a layer that changes only with uv.lock. uv reads every
# workspace member's pyproject.toml to check the lock, even those it does not install.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/testkit/pyproject.toml libs/testkit/
COPY services/acme-frontend/pyproject.toml services/acme-frontend/
COPY services/attestation/pyproject.toml services/attestation/
COPY services/policy/pyproject.toml services/policy/
COPY services/signer/pyproject.toml services/signer/
COPY cli/pyproject.toml cli/
COPY tests/pyproject.toml tests/
RUN uv sync --locked --no-dev --no-editable --package acmegate-cli --no-install-workspace
COPY libs/common libs/common
COPY services services
COPY cli cli
RUN uv sync --locked --no-dev --no-editable --package acmegate-cli \
 && /opt/acmegate/bin/acmegate --help >/dev/null

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 acmegate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin acmegate
COPY --from=build /opt/acmegate /opt/acmegate
ENV PATH=/opt/acmegate/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ACMEGATE_HEALTH_PORT=8080
# A numeric user, so that Kubernetes can check runAsNonRoot without a passwd lookup.
USER 10001:10001
# ACME (server.port), admin API and dashboard (admin.port), RADIUS endpoint (radius.port),
# CRLs / OCSP / CA certificates (pki.port), /healthz and /readyz (ACMEGATE_HEALTH_PORT).
EXPOSE 8443 9443 8081 8088 8080
# Ready means: the service's database pool and broker connection work (GET /readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/readyz' % os.environ['ACMEGATE_HEALTH_PORT'], timeout=4)"
ENTRYPOINT ["acmegate"]
CMD ["--help"]
