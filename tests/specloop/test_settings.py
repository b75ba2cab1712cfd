"""Settings come from the environment; production settings refuse a missing key and pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k9!Qz7#rT2$wLp5@vXn8&yBm4^cHs6*eJd3%gFa1(uKo0)iRt-Wq8zLm2Vb",
    "ALLOWED_HOSTS": "specloop.example.org",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/specloop",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}
# What a deployment sets; the test process's own values (and the browser tests' async switch) stay out.
ENV_KEYS = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_nothing_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_a_missing_secret_key_is_a_start_up_error_when_debug_is_off():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_an_unreadable_debug_value_is_refused():
    result = manage("check", env={**PRODUCTION, "DEBUG": "maybe"})
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


def test_the_embedded_default_is_sqlite_and_eager_celery(tmp_path):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='specloop.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG, len(s.SECRET_KEY) >= 50)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**clean, "SPECLOOP_VAR_DIR": str(tmp_path)}, timeout=60)
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", "True", "True"], result.stderr
    # The development key is random and kept beside the database, never a fixed default.
    assert (tmp_path / "dev-secret-key").exists()


def test_database_and_redis_urls_switch_to_postgresql_and_a_real_broker():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='specloop.settings'; django.setup();"
        "from django.conf import settings as s; from specloop.celery import app;"
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_TASK_ALWAYS_EAGER, app.conf.broker_url)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**clean, **PRODUCTION}, timeout=60)
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "specloop", "False", "redis://127.0.0.1:6379/15"
    ], result.stderr


@pytest.mark.django_db
def test_the_health_endpoint_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
