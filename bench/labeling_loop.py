"""The rater loop over HTTP: GET next-task, POST the judgment, by N concurrent raters against gunicorn.

    .venv/bin/python bench/labeling_loop.py [--raters 20[,50]] [--workers 5] [--threads 1[,4]]
                                            [--seconds 30] [--warmup 5] [--tasks 100000] [--py-spy FILE]

gunicorn serves specloop.wsgi on 127.0.0.1 (DEBUG=0, sync workers, or gthread with --threads > 1)
against this benchmark's own database. Each rater is a client thread with one http.client
keep-alive connection (sync workers close it after every response; gthread workers keep it).
Only loops that start after the warm-up and end before the deadline count. After the runs the
campaign's invariants are checked in SQL.

Targets: at least 190 loops/s with 20 raters on a 2-core machine, next-task p99 under 20 ms.
(For scale: Label Studio managed about 9.5 loops/s on the same kind of machine.)
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import _common as bench

TARGET_LOOPS = 190.0
TARGET_NEXT_P99_MS = 20.0
LABEL_STUDIO_LOOPS = 9.5
NAME = "bench loop"


def payloads(category_keys: list[str], n: int = 1000, seed: int = 3) -> list[bytes]:
    """Valid judgment bodies, encoded once so the client does as little as possible per request."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tag = [rng.choice(category_keys)] if rng.random() < 0.2 else []
        out.append(json.dumps({
            "preference": rng.randint(-2, 2),
            "categories": {"a": tag, "b": []},
            "severity": {"a": rng.randint(0, 3), "b": rng.randint(0, 3)},
            "axes": {"helpful": {"a": rng.randint(0, 4), "b": rng.randint(0, 4)},
                     "harmless": {"a": rng.randint(0, 4), "b": rng.randint(0, 4)},
                     "honest": {"a": rng.randint(0, 4), "b": rng.randint(0, 4)}},
            "seconds": rng.randint(3, 60),
        }).encode())
    return out


class Rater(threading.Thread):
    def __init__(self, *, port: int, token: str, campaign_id: int, bodies: list[bytes], start_at: float,
                 measure_from: float, stop_at: float, index: int, interval: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval  # > 0: open loop, one loop started every `interval` seconds (latency probe)
        self.port, self.campaign_id, self.bodies = port, campaign_id, bodies
        self.start_at, self.measure_from, self.stop_at, self.index = start_at, measure_from, stop_at, index
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.post_headers = {**self.headers, "Content-Type": "application/json"}
        self.next_ms: list[float] = []
        self.judge_ms: list[float] = []
        self.loops = 0
        self.body_index = index * 37
        self.errors: Counter = Counter()
        self.exhausted = False

    def _request(self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
                 headers: dict) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                conn.close()  # a keep-alive connection the server closed while idle: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        next_path = f"/api/v1/campaigns/{self.campaign_id}/next-task/"
        i = self.body_index
        # Paced raters start spread over one interval so the requests do not arrive in bursts.
        scheduled = self.start_at + (self.interval * ((self.index * 0.618) % 1.0) if self.interval else 0.0)
        while True:
            if self.interval or scheduled > time.perf_counter():
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                scheduled += self.interval
            t0 = time.perf_counter()
            if t0 >= self.stop_at:
                break
            measured = t0 >= self.measure_from
            try:
                status, body = self._request(conn, "GET", next_path, None, self.headers)
            except OSError as exc:
                self.errors[f"next {type(exc).__name__}"] += 1
                continue
            t1 = time.perf_counter()
            if measured and t1 <= self.stop_at:
                self.next_ms.append((t1 - t0) * 1000)
            if status == 204:
                self.exhausted = True
                break
            if status != 200:
                self.errors[f"next {status}"] += measured
                continue
            assignment = json.loads(body)["assignment"]
            i += 1
            try:
                status, body = self._request(conn, "POST", f"/api/v1/assignments/{assignment}/judgment/",
                                             self.bodies[i % len(self.bodies)], self.post_headers)
            except OSError as exc:
                self.errors[f"judgment {type(exc).__name__}"] += 1
                continue
            t2 = time.perf_counter()
            if measured and t2 <= self.stop_at:
                self.judge_ms.append((t2 - t1) * 1000)
                if status == 201:
                    self.loops += 1
            if status != 201:
                self.errors[f"judgment {status}"] += measured
        conn.close()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (from /proc; a process that ended counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def server_pids(master: int, database: str) -> dict[str, list[int]]:
    """gunicorn's workers, and the PostgreSQL backends serving the bench database (found by process title)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    backends = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} 127.0.0.1".encode() in title:
                backends.append(int(entry.name))
    return {"gunicorn": workers, "postgres": backends}


class CpuTracker(threading.Thread):
    """CPU used by gunicorn workers and their PostgreSQL backends between start() and stop().

    Sampled per process every 0.25 s, because connections are recycled (CONN_MAX_AGE) and a backend
    that starts or ends inside the window must count for what it used there, not go negative.
    """

    def __init__(self, master: int, database: str) -> None:
        super().__init__(daemon=True)
        self.master, self.database = master, database
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.done = threading.Event()
        for side, pids in server_pids(master, database).items():  # the baseline of what runs already
            for pid in pids:
                self.first[side, pid] = self.last[side, pid] = cpu_seconds([pid])

    def sample(self) -> None:
        for side, pids in server_pids(self.master, self.database).items():
            for pid in pids:
                used = cpu_seconds([pid])
                self.first.setdefault((side, pid), 0.0)  # started inside the window: all of it counts
                if used >= self.last.get((side, pid), 0.0):
                    self.last[side, pid] = used

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.sample()

    def stop(self) -> dict[str, float]:
        self.sample()
        self.done.set()
        self.join()
        totals = {"gunicorn": 0.0, "postgres": 0.0}
        for key, used in self.last.items():
            totals[key[0]] += used - self.first[key]
        return totals


def run_load_threads(*, port: int, tokens: list[str], campaign_id: int, bodies: list[bytes], warmup: float,
                     seconds: float, pace: float = 0.0, window=None) -> dict:
    """Closed loop (each rater starts its next loop at once) or, with ``pace`` loops/s in all, open loop.

    ``window``, when given, is a context manager entered for the measured window (CPU accounting).
    """
    start_at = time.perf_counter() + 0.5
    measure_from, stop_at = start_at + warmup, start_at + warmup + seconds
    interval = len(tokens) / pace if pace else 0.0
    threads = [Rater(port=port, token=t, campaign_id=campaign_id, bodies=bodies, start_at=start_at,
                     measure_from=measure_from, stop_at=stop_at, index=i, interval=interval)
               for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    with window if window is not None else contextlib.nullcontext():
        time.sleep(max(0.0, stop_at - time.perf_counter()))
    for t in threads:
        t.join()
    next_ms = [v for t in threads for v in t.next_ms]
    judge_ms = [v for t in threads for v in t.judge_ms]
    errors = +sum((t.errors for t in threads), Counter())  # unary plus drops the warm-up's zero counts
    loops = sum(t.loops for t in threads)
    return {
        "loops": loops, "loops_per_s": loops / seconds,
        "next_p50_ms": bench.percentile(next_ms, 50), "next_p99_ms": bench.percentile(next_ms, 99),
        "judgment_p50_ms": bench.percentile(judge_ms, 50), "judgment_p99_ms": bench.percentile(judge_ms, 99),
        "errors": dict(errors), "exhausted": any(t.exhausted for t in threads),
    }


def run_load(*, port: int, tokens: list[str], campaign_id: int, bodies: list[bytes], warmup: float,
             seconds: float, master: int, database: str, pace: float = 0.0, spy: list[str] | None = None) -> dict:
    """``run_load_threads`` with the CPU each side (gunicorn, PostgreSQL, this client) spent per loop."""
    used: dict[str, float] = {}

    @contextlib.contextmanager
    def window():
        # CPU spent by each side during the measured window: what a loop costs, whatever else the machine runs.
        tracker = CpuTracker(master, database)
        client_before = time.process_time()
        tracker.start()
        # The profiler samples the measured window only (the warm-up includes each worker's first-request imports).
        profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if spy else None
        yield
        used.update(tracker.stop() | {"client": time.process_time() - client_before})
        if profiler is not None:
            profiler.wait(timeout=120)

    run = run_load_threads(port=port, tokens=tokens, campaign_id=campaign_id, bodies=bodies, warmup=warmup,
                           seconds=seconds, pace=pace, window=window())
    run["cpu_ms_per_loop"] = {side: round(1000 * seconds_used / max(run["loops"], 1), 2)
                              for side, seconds_used in used.items()}
    return run


def invariants(campaign) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM labeling_task WHERE campaign_id = %s AND n_judgments > %s",
                       [campaign.pk, campaign.overlap])
        over = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM labeling_task WHERE campaign_id = %s AND n_judgments + n_open > %s",
                       [campaign.pk, campaign.overlap])
        over_with_open = cursor.fetchone()[0]
        cursor.execute("SELECT COALESCE(sum(n_judgments), 0), COALESCE(sum(n_open), 0) FROM labeling_task "
                       "WHERE campaign_id = %s", [campaign.pk])
        sum_judged, sum_open = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM labeling_judgment WHERE campaign_id = %s", [campaign.pk])
        judgments = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM labeling_assignment WHERE campaign_id = %s AND status = 'open'",
                       [campaign.pk])
        open_assignments = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM (SELECT task_id, rater_id FROM labeling_judgment WHERE campaign_id = %s "
                       "GROUP BY task_id, rater_id HAVING count(*) > 1) twice", [campaign.pk])
        twice = cursor.fetchone()[0]
    checks = {
        "no task with n_judgments > overlap": (over == 0, f"{over} over"),
        "no task with n_judgments + n_open > overlap": (over_with_open == 0, f"{over_with_open} over"),
        "sum(n_judgments) == Judgment rows": (sum_judged == judgments, f"{sum_judged:,} vs {judgments:,}"),
        "sum(n_open) == open assignments": (sum_open == open_assignments, f"{sum_open} vs {open_assignments}"),
        "no rater judged a task twice": (twice == 0, f"{twice} (task, rater) pairs twice"),
    }
    return {"judgments": judgments, "checks": {k: {"ok": ok, "detail": d} for k, (ok, d) in checks.items()}}


def queries_per_request(campaign, token: str, body: bytes) -> dict:
    """The SQL each endpoint runs, counted in-process with the test client (same settings, same database)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    out = {}
    with CaptureQueriesContext(connection) as next_queries:
        response = client.get(f"/api/v1/campaigns/{campaign.pk}/next-task/")
    out["next-task"] = [q["sql"][:110] for q in next_queries.captured_queries]
    if response.status_code == 200:
        with CaptureQueriesContext(connection) as judge_queries:
            client.post(f"/api/v1/assignments/{response.json()['assignment']}/judgment/", body,
                        content_type="application/json")
        out["judgment"] = [q["sql"][:110] for q in judge_queries.captured_queries]
    return out


def py_spy_top(raw_file: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's raw output: (function, % of samples with it on the stack) for the frames below the
    server's own plumbing (< 90%), and (function, % of samples as the innermost frame)."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in raw_file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = []
        for frame in stack.split(";"):
            if frame.startswith("process "):
                continue
            name, _, where = frame.partition(" (")
            path = where.split(":")[0].replace(str(bench.ROOT) + "/", "").split("site-packages/")[-1]
            frames.append(f"{name} ({path})")
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return [], []
    below = [(f, 100 * c / total) for f, c in inclusive.most_common() if 100 * c / total < 90]
    return below[:30], [(f, 100 * c / total) for f, c in own.most_common(15)]


def print_run(run: dict) -> None:
    paced = run["pace"] > 0
    title = (f"latency probe, paced at {run['pace']:.0f} loops/s" if paced else "closed loop (throughput)")
    print(f"\n-- {run['raters']} raters, {run['workers']} {run['worker_class']} workers x {run['threads']} threads: "
          f"{title}  (load {run['load_before']} -> {run['load_after']})")
    bench.figure("loops/s", run["loops_per_s"], "loops/s", "" if paced else f">= {TARGET_LOOPS:.0f} (20 raters)")
    bench.figure("next-task p50", run["next_p50_ms"], "ms")
    bench.figure("next-task p99", run["next_p99_ms"], "ms", f"< {TARGET_NEXT_P99_MS:.0f} ms")
    bench.figure("judgment p50", run["judgment_p50_ms"], "ms")
    bench.figure("judgment p99", run["judgment_p99_ms"], "ms")
    cpu = run["cpu_ms_per_loop"]
    bench.figure("CPU per loop: gunicorn workers", cpu["gunicorn"], "ms")
    bench.figure("CPU per loop: postgres backends", cpu["postgres"], "ms")
    bench.figure("CPU per loop: bench client", cpu["client"], "ms")
    if not paced:
        bench.figure("loops/s if the cores were ours", run["cpu_bound_loops_per_s"], "loops/s")
    bench.figure("errors by status", json.dumps(run["errors"]) if run["errors"] else "none")
    if run["exhausted"]:
        print("   (the campaign ran out of tasks: raise --tasks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", default="20", help="concurrent raters; a comma list runs each (e.g. 20,50)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers")
    parser.add_argument("--threads", default="1", help="gunicorn threads per worker (gthread when > 1); comma list ok")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration of each closed-loop run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--pace", type=float, default=-1.0,
                        help="loops/s of the paced latency probe after each closed-loop run; "
                             "default: half the closed-loop throughput; 0: no probe")
    parser.add_argument("--probe-seconds", type=float, default=15.0)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--py-spy", dest="py_spy", metavar="FILE",
                        help="profile the gunicorn workers (py-spy --gil) during the first run; raw stacks to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the campaign afterwards")
    parser.add_argument("--database", default="specloop_bench_loop")
    args = parser.parse_args()
    rater_counts = [int(x) for x in args.raters.split(",")]
    thread_counts = [int(x) for x in args.threads.split(",")]

    bench.configure(args.database)
    import numpy as np
    from _data import load_items_and_tasks

    from labeling import services

    bench.header("labeling loop over HTTP", tasks=args.tasks, raters=args.raters, workers=args.workers,
                 threads=args.threads, seconds=args.seconds, warmup=args.warmup, database=args.database)
    removed = bench.campaigns_delete_named(NAME)
    if removed:
        print(f"   removed {removed} campaign(s) left by an earlier run")
    admin, _ = bench.admin_user()
    version = bench.published_spec(admin)
    people = bench.raters(max(rater_counts))
    campaign = services.campaign_create(user=admin, name=f"{NAME} {args.tasks} tasks", spec_version=version, overlap=3)
    services.campaign_raters_add(campaign=campaign, usernames=[u.username for u, _ in people])
    with bench.timed("create items + tasks (COPY)"):
        load_items_and_tasks(campaign_id=campaign.pk, n=args.tasks, rng=np.random.default_rng(11))
        bench.vacuum_analyze("labeling_item", "labeling_task", "labeling_assignment", "labeling_judgment")
    bodies = payloads([c["key"] for c in version.document["categories"]])
    queries = queries_per_request(campaign, people[0][1], bodies[0])
    print(f"   SQL per request (plus a SELECT 1 health check on a reused connection): "
          f"next-task {len(queries['next-task'])}, judgment {len(queries.get('judgment', []))}")

    results = []
    try:
        for threads in thread_counts:
            with bench.gunicorn(args.database, workers=args.workers, threads=threads) as (port, server):
                for n_raters in rater_counts:
                    spy = None
                    if args.py_spy and not results:
                        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid),
                               "--subprocesses", "--gil", "--format", "raw", "--rate", "200", "--nonblocking",
                               "--duration", str(int(args.seconds)), "--output", args.py_spy]
                    tokens = [t for _, t in people[:n_raters]]
                    for pace in (0.0, None):
                        if pace is None:  # the latency probe, after the throughput run
                            pace = args.pace if args.pace >= 0 else round(results[-1]["loops_per_s"] / 2, 1)
                            if pace <= 0:
                                break
                        load_before = bench.load_average()
                        run = run_load(port=port, tokens=tokens, campaign_id=campaign.pk, bodies=bodies,
                                       warmup=args.warmup if not pace else 2.0,
                                       seconds=args.seconds if not pace else args.probe_seconds,
                                       master=server.pid, database=args.database, pace=pace, spy=spy)
                        spy = None
                        cpu = run["cpu_ms_per_loop"]
                        run.update(raters=n_raters, workers=args.workers, threads=threads, pace=pace,
                                   worker_class="gthread" if threads > 1 else "sync", load_before=load_before,
                                   load_after=bench.load_average(),
                                   cpu_bound_loops_per_s=round(1000 * (os.cpu_count() or 1) / max(sum(cpu.values()), 1e-9), 1))
                        results.append(run)
                        print_run(run)
        checks = invariants(campaign)
        print(f"\n-- invariants after {checks['judgments']:,} judgments")
        for name, check in checks["checks"].items():
            print(f"   {'ok  ' if check['ok'] else 'FAIL'} {name}  ({check['detail']})")
        print(f"\n   targets: >= {TARGET_LOOPS:.0f} loops/s with 20 raters on 2 cores (closed loop), next-task p99 < "
              f"{TARGET_NEXT_P99_MS:.0f} ms; Label Studio: ~{LABEL_STUDIO_LOOPS} loops/s on the same kind of machine")
        print("   (closed loop: latency = raters / throughput (Little's law), so p99 is read from the paced probe)")
        for run in results:
            if run["raters"] == 20:
                ok = run["loops_per_s"] >= TARGET_LOOPS if not run["pace"] else (run["next_p99_ms"] or 1e9) < TARGET_NEXT_P99_MS
                what = f"{run['loops_per_s']:.1f} loops/s" if not run["pace"] else \
                    f"next-task p99 {run['next_p99_ms']:.1f} ms at {run['pace']:.0f} loops/s"
                print(f"   20 raters, {run['worker_class']} x{run['threads']}: {what} -> {'MET' if ok else 'MISSED'}")
        if args.py_spy and Path(args.py_spy).exists():
            print("\n-- py-spy --gil (first run after warm-up, all workers; Python holding the GIL): % of samples on the stack")
            inclusive, innermost = py_spy_top(Path(args.py_spy))
            for frame, share in inclusive:
                print(f"   {share:5.1f}%  {frame[:120]}")
            print("   innermost frames (where the CPU goes):")
            for frame, share in innermost:
                print(f"   {share:5.1f}%  {frame[:120]}")
        bench.summary({
            "bench": "labeling_loop", "tasks": args.tasks, "runs": [
                {k: (round(v, 2) if isinstance(v, float) else v) for k, v in run.items()} for run in results],
            "sql_per_request": {k: len(v) for k, v in queries.items()},
            "invariants_ok": all(c["ok"] for c in checks["checks"].values()),
            "targets": {"loops_per_s_20_raters": TARGET_LOOPS, "next_p99_ms": TARGET_NEXT_P99_MS},
        })
    finally:
        if not args.keep:
            bench.campaign_delete(campaign.pk)


if __name__ == "__main__":
    sys.exit(main())
