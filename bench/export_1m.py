"""Export snapshots: labeling.services.export_snapshot_create over 1M tasks (3M judgments), and the download.

    .venv/bin/python bench/export_1m.py [--pairs 1000000] [--small 100000] [--aggregation majority]
                                        [--in-transaction] [--profile] [--no-download] [--keep]

For each size (--small, then --pairs; tasks with three judgments each, loaded with COPY) it times
the export and reports pairs/s, the CPU time of the exporting process (all its threads; PostgreSQL's
backends are not counted) and the peak resident memory growth of the process during the export
(the kernel's high-water mark VmHWM, reset just before the export, so C allocations and the shortest
peaks count: peak minus the RSS just before; no sampling thread competes with the export for the GIL).
Each export runs in a fresh child process, so the baseline is not the data generator's already-grown heap.
Memory must not grow with the export's size, so both sizes are printed side by side. Then the file
is downloaded from GET /api/v1/exports/{id}/pairs.jsonl served by gunicorn, read in 1 MiB chunks,
and its sha256 is checked against the recorded one.

Ties (the majority of the three judgments is a tie) are not exported, so pairs < tasks.
Target: over 100k pairs/s, memory flat in the export's size.
"""

import argparse
import cProfile
import gc
import hashlib
import http.client
import io
import json
import pstats
import subprocess
import sys
import time
from pathlib import Path

import _common as bench

TARGET_PAIRS_PER_S = 100_000
NAME = "bench export"


class PeakRss:
    """Peak resident memory during a block: VmHWM after resetting it to the current RSS (writing 5 to
    /proc/self/clear_refs). A 5 ms sampling thread (bench.RssSampler, the fallback where the reset is not
    allowed) takes the GIL from the export's threads 200 times a second and can miss a peak between samples."""

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.sampler = bench.RssSampler()
            self.sampler.__enter__()
            self.baseline = self.sampler.baseline
            return self
        self.sampler = None
        self.baseline = self._status("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        if self.sampler:
            self.sampler.__exit__(*exc)
        self.peak = self.sampler.peak if self.sampler else self._status("VmHWM")

    @staticmethod
    def _status(field: str) -> int:  # KiB
        return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith(field + ":"))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 1024


def build(n_tasks: int, *, admin, version, rater_ids: list[int], seed: int):
    import numpy as np
    from _data import load_items_and_tasks, load_judgments

    from labeling import services

    doc = version.document
    campaign = services.campaign_create(user=admin, name=f"{NAME} {n_tasks} tasks", spec_version=version, overlap=3)
    rng = np.random.default_rng(seed)
    times: dict[str, float] = {}
    with bench.timed(f"[{n_tasks:,}] create items + tasks (COPY)", times):
        _, first_task = load_items_and_tasks(campaign_id=campaign.pk, n=n_tasks, rng=rng, n_judgments=3)
    with bench.timed(f"[{n_tasks:,}] create {3 * n_tasks:,} judgments (COPY)", times):
        load_judgments(campaign_id=campaign.pk, first_task=first_task, n_tasks=n_tasks, rater_ids=rater_ids,
                       category_keys=[c["key"] for c in doc["categories"]],
                       axis_keys=[a["key"] for a in doc["rubric"]["axes"]],
                       n_severity=len(doc["rubric"]["severity_scale"]), rng=rng)
    with bench.timed(f"[{n_tasks:,}] vacuum analyze", times):
        bench.vacuum_analyze("labeling_item", "labeling_task", "labeling_assignment", "labeling_judgment")
    return campaign


def export(campaign, *, admin, filters: dict, in_transaction: bool, profile: bool) -> dict:
    """Runs in a fresh child process (see export_in_child) so the RSS baseline is not the data generator's heap."""
    from django.db import transaction

    from labeling import services

    services.export_filters_parse(filters, set())  # imports and first-call work happen before the baseline
    gc.collect()
    profiler = cProfile.Profile() if profile else None
    with PeakRss() as rss:
        start, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        if in_transaction:
            # Inside the caller's transaction the export reads judgments and texts on that one connection
            # (a second one would not see the transaction's rows), so PostgreSQL works on one core.
            with transaction.atomic():
                snapshot = services.export_snapshot_create(campaign=campaign, user=admin, filters=filters)
        else:
            snapshot = services.export_snapshot_create(campaign=campaign, user=admin, filters=filters)
        if profiler:
            profiler.disable()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = {
        "export": snapshot, "seconds": seconds, "pairs": snapshot.n_pairs, "ties": snapshot.n_ties,
        "excluded": snapshot.filters.get("excluded", 0), "bytes": snapshot.size_bytes,
        "pairs_per_s": snapshot.n_pairs / seconds, "rss_growth_mib": rss.growth_mib,
        "rss_before_mib": rss.baseline / 1024, "process_cpu_s": cpu,
    }
    if profiler:
        for sort in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(sort).print_stats(20)
            print(f"\n-- cProfile of the export, sorted by {sort} --")
            print("\n".join(line for line in text.getvalue().splitlines()[6:] if line.strip()))
    return out


def export_in_child(campaign_id: int, args) -> dict:
    """Run one export in a new interpreter and read its figures back (the last line it prints is JSON)."""
    command = [sys.executable, __file__, "--child-export", str(campaign_id), "--database", args.database,
               "--aggregation", args.aggregation]
    command += ["--in-transaction"] if args.in_transaction else []
    command += ["--profile"] if args.profile else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the export child failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    *printed, last = done.stdout.rstrip().splitlines()
    if printed:
        print("\n".join(printed))
    return json.loads(last)


def child_export(campaign_id: int, args) -> None:
    bench.configure(args.database)
    from labeling.models import Campaign

    admin, _ = bench.admin_user()
    result = export(Campaign.objects.get(pk=campaign_id), admin=admin, filters={"aggregation": args.aggregation},
                    in_transaction=args.in_transaction, profile=args.profile)
    snapshot = result.pop("export")
    print(json.dumps({**result, "export_id": snapshot.pk}))


def download(port: int, token: str, snapshot) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("GET", f"/api/v1/exports/{snapshot.pk}/pairs.jsonl", headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    digest, size, chunks = hashlib.sha256(), 0, 0
    first_byte = None
    while chunk := response.read(1 << 20):
        if first_byte is None:
            first_byte = time.perf_counter() - start
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    seconds = time.perf_counter() - start
    conn.close()
    return {"status": response.status, "seconds": seconds, "first_byte_ms": 1000 * (first_byte or seconds),
            "bytes": size, "mib_per_s": size / (1 << 20) / seconds, "chunks": chunks,
            "sha256_ok": digest.hexdigest() == snapshot.sha256,
            "header_ok": response.getheader("X-Content-SHA256") == snapshot.sha256,
            "size_ok": size == snapshot.size_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000, help="tasks of the big export (3 judgments each)")
    parser.add_argument("--small", type=int, default=100_000, help="tasks of the comparison export; 0: skip it")
    parser.add_argument("--raters", type=int, default=60)
    parser.add_argument("--aggregation", default="majority", choices=["majority", "mean", "reliability_weighted"])
    parser.add_argument("--in-transaction", action="store_true",
                        help="call the service inside transaction.atomic() (one connection reads everything)")
    parser.add_argument("--profile", action="store_true", help="cProfile the smallest export")
    parser.add_argument("--no-download", dest="download", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the campaigns (and reuse them next time)")
    parser.add_argument("--database", default="specloop_bench_export")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--child-export", type=int, help=argparse.SUPPRESS)  # internal: one export, in a child
    args = parser.parse_args()
    if args.child_export:
        return child_export(args.child_export, args)
    sizes = sorted({n for n in (args.small, args.pairs) if n > 0})

    bench.configure(args.database)
    from labeling.models import Campaign, ExportSnapshot

    bench.header("export snapshots", sizes=",".join(f"{n:,}" for n in sizes), aggregation=args.aggregation,
                 in_transaction=args.in_transaction, database=args.database)
    admin, token = bench.admin_user()
    version = bench.published_spec(admin)
    rater_ids = [u.pk for u, _ in bench.raters(args.raters)]
    campaigns = {}
    if args.keep:
        for n in sizes:
            campaigns[n] = Campaign.objects.filter(name=f"{NAME} {n} tasks").first()
    if not all(campaigns.get(n) for n in sizes):
        removed = bench.campaigns_delete_named(NAME)
        if removed:
            print(f"   removed {removed} campaign(s) left by an earlier run")
        campaigns = {n: build(n, admin=admin, version=version, rater_ids=rater_ids, seed=args.seed + n) for n in sizes}
    else:
        print("   reusing campaigns " + ", ".join(str(c.pk) for c in campaigns.values()))

    results = {}
    try:
        for n in sizes:
            if args.profile and n != sizes[0]:
                args.profile = False  # profile the first (smallest) export only
            result = export_in_child(campaigns[n].pk, args)
            result["export"] = ExportSnapshot.objects.get(pk=result["export_id"])
            results[n] = result
            accounted = result["pairs"] + result["ties"] + result["excluded"] == n
            print(f"\n-- export of {n:,} tasks ({args.aggregation}; load {bench.load_average()})")
            bench.figure("pairs written", result["pairs"], "pairs")
            bench.figure("ties (not exported)", result["ties"], "tasks")
            bench.figure("every task accounted for", "yes" if accounted else "NO")
            bench.figure("file size", result["bytes"] / (1 << 20), "MiB")
            bench.figure("export time", result["seconds"], "s")
            bench.figure("pairs/s", result["pairs_per_s"], "pairs/s", f"> {TARGET_PAIRS_PER_S:,}")
            bench.figure("tasks/s", n / result["seconds"], "tasks/s")
            bench.figure("CPU, exporting process", result["process_cpu_s"], "s")  # its threads; not PostgreSQL's
            bench.figure("peak RSS growth", result["rss_growth_mib"], "MiB",
                         f"flat (RSS before {result['rss_before_mib']:.0f} MiB)")
            result["accounted"] = accounted

        if args.download:
            with bench.gunicorn(args.database, workers=1, log_name="gunicorn-export") as (port, _):
                for n in sizes:
                    got = download(port, token, results[n]["export"])
                    results[n]["download"] = got
                    print(f"\n-- download of the {n:,}-task export through gunicorn (1 MiB reads)")
                    bench.figure("status", got["status"])
                    bench.figure("time", got["seconds"], "s")
                    bench.figure("first byte", got["first_byte_ms"], "ms")
                    bench.figure("throughput", got["mib_per_s"], "MiB/s")
                    bench.figure("sha256 equals the recorded one", "yes" if got["sha256_ok"] else "NO")
                    bench.figure("X-Content-SHA256 header matches", "yes" if got["header_ok"] else "NO")
                    bench.figure("size equals size_bytes", "yes" if got["size_ok"] else "NO")

        print()
        big = results[sizes[-1]]
        verdict = "MET" if big["pairs_per_s"] > TARGET_PAIRS_PER_S else "MISSED"
        print(f"   target speed {verdict}: {big['pairs_per_s']:,.0f} pairs/s vs > {TARGET_PAIRS_PER_S:,}")
        if len(sizes) > 1:
            small = results[sizes[0]]
            flat = big["rss_growth_mib"] <= max(2 * small["rss_growth_mib"], small["rss_growth_mib"] + 32)
            print(f"   memory {'flat' if flat else 'NOT flat'}: +{small['rss_growth_mib']:.1f} MiB at {sizes[0]:,} "
                  f"tasks vs +{big['rss_growth_mib']:.1f} MiB at {sizes[-1]:,}")
        bench.summary({
            "bench": "export_1m", "aggregation": args.aggregation, "in_transaction": args.in_transaction,
            "target_pairs_per_s": TARGET_PAIRS_PER_S,
            "runs": [{
                "tasks": n, "pairs": r["pairs"], "ties": r["ties"], "seconds": round(r["seconds"], 2),
                "pairs_per_s": round(r["pairs_per_s"]), "rss_growth_mib": round(r["rss_growth_mib"], 1),
                "mib": round(r["bytes"] / (1 << 20), 1), "accounted": r["accounted"],
                "process_cpu_s": round(r["process_cpu_s"], 2),
                "download": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.get("download", {}).items()},
            } for n, r in results.items()],
        })
    finally:
        if not args.keep:
            for campaign in campaigns.values():
                bench.campaign_delete(campaign.pk)
        else:
            for r in results.values():  # keep the campaigns, not a pile of export files
                snapshot = r["export"]
                from django.conf import settings

                (Path(settings.MEDIA_ROOT) / snapshot.path).unlink(missing_ok=True)
                snapshot.delete()


if __name__ == "__main__":
    sys.exit(main())
