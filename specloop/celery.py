"""The Celery application. Queues: ``default`` for light work, ``gpu`` for training."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "specloop.settings")

app = Celery("specloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
