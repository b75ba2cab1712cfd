"""What every benchmark shares: its own PostgreSQL database, Django set up against it, fixtures,
fast bulk loading with COPY, a gunicorn server, RSS sampling and figure printing.

Import this before anything from Django: ``configure()`` sets the environment, creates the bench
database when it is missing, runs ``django.setup()`` and the migrations. Nothing here touches a
database other than the one named.
"""

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
SECRET_KEY = "bench-only-secret-key-not-for-deployment-0123456789abcdef"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def database_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


def bench_env(db_name: str) -> dict[str, str]:
    """Environment for Django in the bench process and in gunicorn: production-like (DEBUG off)."""
    var = ROOT / "var" / "bench" / db_name
    return {
        "DJANGO_SETTINGS_MODULE": "specloop.settings",
        "DATABASE_URL": database_url(db_name),
        "DEBUG": "0",  # also keeps connection.queries from growing during the big runs
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SPECLOOP_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        "REDIS_URL": "",  # Celery runs in-process; nothing in the measured paths enqueues
        "LOG_LEVEL": "WARNING",
    }


def ensure_database(name: str) -> None:
    import psycopg

    if not name.replace("_", "").isalnum():
        raise SystemExit(f"database name {name!r}: letters, digits and underscores only")
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def configure(db_name: str) -> None:
    """Point Django at the bench database (created when missing), set it up and migrate."""
    ensure_database(db_name)
    os.environ.update(bench_env(db_name))
    Path(os.environ["MEDIA_ROOT"]).mkdir(parents=True, exist_ok=True)
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic for benchmarks
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- fixtures ----------------------------------------------------------------------------------------

SPEC_NAME = "bench: SpecLoop example spec"


def admin_user():
    from specloop.services import user_upsert

    user, token, _ = user_upsert(username="bench_admin", role_names=["admin"])
    return user, token


def raters(n: int, prefix: str = "bench_rater"):
    """n rater users (created once, reused); returns [(user, token)]."""
    from specloop.services import user_upsert

    return [user_upsert(username=f"{prefix}{i:03d}", role_names=["rater"])[:2] for i in range(n)]


def published_spec(user):
    """The example spec, published (taxonomy.services.spec_create + spec_publish), made once per database."""
    from taxonomy import services as spec_services
    from taxonomy.models import SpecVersion
    from taxonomy.views import example_document

    version = SpecVersion.objects.filter(spec__name=SPEC_NAME, status=SpecVersion.PUBLISHED).first()
    if version is None:
        draft = spec_services.spec_create(user=user, name=SPEC_NAME, document=example_document())
        version = spec_services.spec_publish(spec=draft.spec, user=user)
    return version


def campaign_delete(campaign_id: int) -> None:
    """Remove one campaign and everything under it with plain SQL (the ORM cascade is far too slow at 3M rows)."""
    from django.conf import settings
    from django.db import connection, transaction

    from labeling.models import ExportSnapshot

    for export in ExportSnapshot.objects.filter(campaign_id=campaign_id):
        (Path(settings.MEDIA_ROOT) / export.path).unlink(missing_ok=True)
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("labeling_exportsnapshot", "labeling_judgment", "labeling_adjudication"):
            where = "campaign_id = %s" if table != "labeling_adjudication" else \
                "task_id IN (SELECT id FROM labeling_task WHERE campaign_id = %s)"
            cursor.execute(f"DELETE FROM {table} WHERE {where}", [campaign_id])
        for table in ("labeling_assignment", "labeling_task", "labeling_item", "labeling_campaign_raters"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign_id])
        cursor.execute("DELETE FROM labeling_campaign WHERE id = %s", [campaign_id])


def campaigns_delete_named(prefix: str) -> int:
    """Left-overs of an interrupted run (same name prefix) go before a new run starts."""
    from labeling.models import Campaign

    ids = list(Campaign.objects.filter(name__startswith=prefix).values_list("id", flat=True))
    for campaign_id in ids:
        campaign_delete(campaign_id)
    return len(ids)


def vacuum_analyze(*tables: str) -> None:
    """Fresh statistics and visibility map after a bulk load, as autovacuum would give a real database."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- bulk loading ------------------------------------------------------------------------------------


def next_ids(table: str, n: int) -> int:
    """Reserve n consecutive ids of ``table`` (the bench owns its database) and return the first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
        (sequence,) = cursor.fetchone()
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        (top,) = cursor.fetchone()
        cursor.execute("SELECT last_value, is_called FROM " + sequence)
        last, called = cursor.fetchone()
        first = max(top, last if called else last - 1) + 1
        cursor.execute("SELECT setval(%s, %s, true)", [sequence, first + n - 1])
    return first


def copy_rows(table: str, columns: list[str], rows) -> int:
    """COPY an iterable of tuples into ``table`` (psycopg's C row writer); returns the row count."""
    from django.db import connection

    n = 0
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        # Like pg_restore: the generated rows are consistent, so skip the per-row foreign-key triggers
        # (session only, needs superuser; the bench database is ours).
        cursor.execute("SET session_replication_role = replica")
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        cursor.execute("SET session_replication_role = DEFAULT")
    return n


def copy_text(table: str, columns: list[str], lines: list[str], batch: int = 20_000) -> int:
    """COPY ready-made text-format lines (tab-separated, newline-terminated, nothing to escape)."""
    from django.db import connection

    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # as in copy_rows
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(lines), batch):
                copy.write("".join(lines[start:start + batch]))
        cursor.execute("SET session_replication_role = DEFAULT")
    return len(lines)


# --- measuring -----------------------------------------------------------------------------------------


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Peak resident memory (C allocations included) sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib())
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        self.baseline = self.peak = rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 1024


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "load": load_average(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def header(title: str, **settings: Any) -> None:
    m = machine()
    print(f"== {title} ==")
    print(f"   {m['date']}  cores={m['cores']}  load(1/5/15m)={m['load']}  python {m['python']}")
    if settings:
        print("   " + "  ".join(f"{k}={v}" for k, v in settings.items()))


def figure(name: str, value: Any, unit: str = "", target: str = "") -> None:
    if isinstance(value, float):
        shown = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        shown = f"{value:,}" if isinstance(value, int) else str(value)
    line = f"   {name:<34} {shown:>14} {unit:<8}"
    if target:
        line += f"  target {target}"
    print(line.rstrip())


def summary(data: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object, for scripts and the README table."""
    data = {"machine": machine(), **data}
    print(json.dumps(data, default=str, separators=(",", ":")))


@contextmanager
def timed(label: str, out: dict[str, float] | None = None, quiet: bool = False):
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if out is not None:
        out[label] = seconds
    if not quiet:
        print(f"   {label:<34} {seconds:>14.2f} s", flush=True)


# --- gunicorn ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(port: int, process: subprocess.Popen, log_path: Path, *, name: str) -> None:
    """Until the server on ``port`` answers /healthz 200; exits naming its log if it stops or takes 60 s."""
    import http.client

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}); see {log_path}:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not answer /healthz in 60 s; see {log_path}")
        time.sleep(0.2)


@contextmanager
def gunicorn(db_name: str, *, workers: int, threads: int = 1, log_name: str = "gunicorn"):
    """specloop.wsgi served on 127.0.0.1 at a free port; yields (port, process). Stopped on exit."""
    port = free_port()
    env = {**os.environ, **bench_env(db_name)}
    log_path = Path(env["SPECLOOP_VAR_DIR"]) / f"{log_name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "gunicorn", "specloop.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--keep-alive", "5", "--backlog", "2048", "--log-level", "warning",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(port, process, log_path, name="gunicorn")
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
