# One image for every acmegate service: `acmegate run <service> --config /etc/acmegate/acmegate.yaml`.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY . .
RUN uv sync --all-packages --locked --no-dev --no-editable \
 && rm -rf /src/.venv/lib/python3.11/site-packages/pgserver/pginstall

FROM python:3.11-slim
RUN useradd --system --uid 10001 acmegate
COPY --from=build /src/.venv /opt/acmegate
ENV PATH=/opt/acmegate/bin:$PATH ACMEGATE_HEALTH_PORT=8080
USER 10001
EXPOSE 8443 8080
ENTRYPOINT ["acmegate"]
CMD ["run", "frontend", "--config", "/etc/acmegate/acmegate.yaml"]
