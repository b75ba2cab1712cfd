"""Training jobs run by Celery workers live here."""
