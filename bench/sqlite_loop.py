"""The rater loop on the embedded default: SQLite, served by `manage.py runserver` as `make demo` serves it.

    .venv/bin/python bench/sqlite_loop.py [--raters 20] [--seconds 20] [--warmup 3] [--tasks 2000]
                                          [--root CHECKOUT]

A fresh SQLite database under var/bench/sqlite-loop/, a campaign of --tasks pairs (overlap 3), and
--raters client threads in a closed loop (GET next-task, POST the judgment) against runserver (threaded,
no reloader). Prints loops/s, latencies and the answers by status; any 5xx is a failure. Afterwards the
campaign's invariants are checked: no task past its overlap, every counted judgment stored, no rater
twice on a task. --root serves another checkout (e.g. a git worktree of an older commit) for a
before/after figure; the data is made through that checkout's own services.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout to serve")
    args = parser.parse_args()
    root = args.root.resolve()
    # One folder per served checkout (this one, or the worktree named by --root), made afresh each run.
    var = HERE.parent / "var" / "bench" / ("sqlite-loop" if root == HERE.parent else f"sqlite-loop-{root.name}")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "specloop.settings", "SPECLOOP_VAR_DIR": str(var),
                "MEDIA_ROOT": str(var / "media"), "DEBUG": "1", "LOG_LEVEL": "WARNING"})
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(HERE))
    import _common as bench  # puts this checkout on sys.path; the served one goes first

    import warnings

    warnings.filterwarnings("ignore", message="No directory at")
    import django

    # The served checkout's packages, not this one's (when --root names another).
    sys.path[:] = [str(root)] + [p for p in sys.path if p not in (str(root), str(bench.ROOT))]
    os.chdir(root)  # the current folder goes on sys.path too
    django.setup()
    from django.core.management import call_command

    from labeling import services
    from labeling_loop import invariants, payloads, run_load_threads

    bench.header("rater loop on SQLite + runserver (the embedded default)", raters=args.raters,
                 seconds=args.seconds, tasks=args.tasks, root=str(root))
    call_command("migrate", verbosity=0, interactive=False)
    admin, _ = bench.admin_user()
    version = bench.published_spec(admin)
    campaign = services.campaign_create(user=admin, name="bench sqlite loop", spec_version=version, overlap=3)
    lines = "\n".join(json.dumps({"prompt": f"bench prompt {i}", "responses": [f"reply {i}.a", f"reply {i}.b"]})
                      for i in range(args.tasks))
    services.items_import(campaign=campaign, text=lines, fmt="jsonl")
    raters = bench.raters(args.raters)
    tokens = [token for _, token in raters]
    services.campaign_raters_add(campaign=campaign, usernames=[user.username for user, _ in raters])
    keys = [c["key"] for c in version.document["categories"]]

    port = bench.free_port()
    log_path = var / "runserver.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        bench.wait_until_healthy(port, server, log_path, name="runserver")
        run = run_load_threads(port=port, tokens=tokens, campaign_id=campaign.pk, bodies=payloads(keys),
                               warmup=args.warmup, seconds=args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=15)
    fives = {k: v for k, v in run["errors"].items() if k.split()[-1].startswith("5")}
    bench.figure("loops/s", run["loops_per_s"], "loops/s")
    bench.figure("next-task p50", run["next_p50_ms"], "ms")
    bench.figure("next-task p99", run["next_p99_ms"], "ms")
    bench.figure("judgment p50", run["judgment_p50_ms"], "ms")
    bench.figure("judgment p99", run["judgment_p99_ms"], "ms")
    bench.figure("answers other than 200/201", json.dumps(run["errors"]) if run["errors"] else "none")
    checked = invariants(campaign)
    for name, check in checked["checks"].items():
        bench.figure(name, "ok" if check["ok"] else "FAILED", check["detail"])
    bench.summary({"bench": "sqlite_loop", "raters": args.raters, **run, "invariants": checked})
    if fives or not all(c["ok"] for c in checked["checks"].values()):
        raise SystemExit(f"5xx answers {fives} or a broken invariant: see above")


if __name__ == "__main__":
    main()
