# syntax=docker/dockerfile:1
# Build stage: resolve and build wheels with compilers available.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --upgrade pip && pip install .

# Runtime stage: only the virtualenv, the migrations and the app; no compilers.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin gatehouse
WORKDIR /srv
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEHOUSE_ENV=production \
    GATEHOUSE_DATA_DIR=/srv/data
RUN mkdir -p /srv/data && chown gatehouse /srv/data
USER gatehouse
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# Migrate, then serve (`gatehouse serve` runs uvicorn without proxy headers:
# X-Forwarded-For is judged by the app itself, GATEHOUSE_TRUSTED_PROXIES). Its
# access log never shows query strings: the app filters them out.
# Production stops with every configuration problem listed (exit code 2) without
# a strong GATEHOUSE_SECRET_KEY, a PostgreSQL GATEHOUSE_DATABASE_URL and
# GATEHOUSE_ISSUER.
CMD ["gatehouse", "serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]
