FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# WeasyPrint (PDF course reports) needs Pango, HarfBuzz's subsetter and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
# With the production storage (DEBUG off), which writes the manifest pages are served from; the
# key only lets settings load for this one command.
RUN SECRET_KEY=collectstatic-only-not-used-to-sign-anything-0123456789 DEBUG=0 \
    python manage.py collectstatic --noinput
# var/exports (exports on the local filesystem, when no EXPORT_S3_BUCKET is set) exists in the
# image, owned by the app user. Compose keeps exports in the S3-compatible store instead.
RUN mkdir -p var/exports && useradd --system --uid 1000 ketacare && chown -R ketacare /app
USER ketacare
EXPOSE 8000
CMD ["gunicorn", "ketacare.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
