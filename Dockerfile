# GitLab Data Registry: `data-registry serve` (gunicorn) by default; `worker` and `db upgrade` as args.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.txt ./
COPY app ./app
# The wheel (the one tests/e2e/test_install.py builds and checks), then that wheel with the server's extras at
# the pins the suite runs (requirements.txt); nothing is installed from the source tree itself.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && wheel=$(echo /dist/gitlab_data_registry-*.whl) \
 && pip install --no-cache-dir --prefix=/install -r requirements.txt "${wheel}[server,postgresql]"

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 registry \
 && useradd --system --uid 10001 --gid registry --home-dir /var/lib/data-registry --no-create-home registry \
 && mkdir -p /var/lib/data-registry && chown registry:registry /var/lib/data-registry
COPY --from=build /install /usr/local
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REGISTRY_STORAGE_URL=file:///var/lib/data-registry
USER 10001:10001
WORKDIR /var/lib/data-registry
EXPOSE 8080
ENTRYPOINT ["data-registry"]
CMD ["serve", "--bind=0.0.0.0:8080"]
