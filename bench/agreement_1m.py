"""Agreement over 1M judgments: time labeling.selectors.campaign_agreement on a realistic campaign.

    .venv/bin/python bench/agreement_1m.py [--judgments 1000000] [--raters 60] [--repeat 3] [--profile] [--keep]

Loads ~333k tasks with three judgments each (60 raters, realistic noise, categories on ~20% of
replies, severity and the three rubric axes) with COPY into its own database, then times the
selector best of --repeat, and the split: agreement.load_arrays (SQL → numpy) vs agreement_compute.
Target: under 2 s for 1M judgments.
"""

import argparse
import cProfile
import io
import pstats
import sys
import time

import _common as bench

TARGET_SECONDS = 2.0
NAME = "bench agreement"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000, help="judgments to create (3 per task)")
    parser.add_argument("--raters", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra run and print the hot spots")
    parser.add_argument("--keep", action="store_true", help="keep the campaign (and reuse it next time)")
    parser.add_argument("--database", default="specloop_bench_agreement")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    bench.configure(args.database)
    import numpy as np
    from _data import load_items_and_tasks, load_judgments

    from labeling import agreement, selectors, services
    from labeling.models import Campaign

    n_tasks = -(-args.judgments // 3)
    name = f"{NAME} {n_tasks} tasks {args.raters} raters seed {args.seed}"
    bench.header("agreement over judgments", judgments=n_tasks * 3, tasks=n_tasks, raters=args.raters,
                 database=args.database)
    admin, _ = bench.admin_user()
    version = bench.published_spec(admin)
    doc = version.document
    campaign = Campaign.objects.filter(name=name).first() if args.keep else None
    setup: dict[str, float] = {}
    if campaign is None:
        removed = bench.campaigns_delete_named(NAME)
        if removed:
            print(f"   removed {removed} campaign(s) left by an earlier run")
        campaign = services.campaign_create(user=admin, name=name, spec_version=version, overlap=3)
        rater_ids = [u.pk for u, _ in bench.raters(args.raters)]
        services.campaign_raters_add(campaign=campaign, usernames=[f"bench_rater{i:03d}" for i in range(args.raters)])
        rng = np.random.default_rng(args.seed)
        with bench.timed("create items + tasks (COPY)", setup):
            _, first_task = load_items_and_tasks(campaign_id=campaign.pk, n=n_tasks, rng=rng, prompt_words=(4, 12),
                                                 reply_words=(6, 20), n_judgments=3)
        with bench.timed("create judgments (COPY)", setup):
            load_judgments(campaign_id=campaign.pk, first_task=first_task, n_tasks=n_tasks, rater_ids=rater_ids,
                           category_keys=[c["key"] for c in doc["categories"]],
                           axis_keys=[a["key"] for a in doc["rubric"]["axes"]],
                           n_severity=len(doc["rubric"]["severity_scale"]), rng=rng)
        with bench.timed("vacuum analyze", setup):
            bench.vacuum_analyze("labeling_item", "labeling_task", "labeling_assignment", "labeling_judgment")
    else:
        print(f"   reusing campaign {campaign.pk} ({name})")

    try:
        axes = {a["key"]: len(a["scale"]) for a in doc["rubric"]["axes"]}
        categories = [c["key"] for c in doc["categories"]]
        full, load, compute = [], [], []
        result = None
        from django.core.cache import caches

        cache = caches[selectors.AGREEMENT_CACHE]
        for _ in range(args.repeat):
            cache.clear()  # time the computation, not the per-process cache of a known judgment state
            start = time.perf_counter()
            result = selectors.campaign_agreement(campaign=campaign)
            full.append(time.perf_counter() - start)
        cached = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            selectors.campaign_agreement(campaign=campaign)
            cached.append(time.perf_counter() - start)
        for _ in range(args.repeat):
            start = time.perf_counter()
            arrays = agreement.load_arrays(campaign.pk, list(axes))
            load.append(time.perf_counter() - start)
            start = time.perf_counter()
            agreement.agreement_compute(arrays, axes=axes, categories=categories,
                                        severity_levels=len(doc["rubric"]["severity_scale"]))
            compute.append(time.perf_counter() - start)
            del arrays

        print()
        print(f"   alphas: preference {result['preference']['alpha']}  direction {result['preference_direction']['alpha']}"
              f"  severity {result['severity']['alpha']}  helpful {result['axes']['helpful']['alpha']}")
        tagged = sum(c["n_tagged"] for c in result["categories"].values())
        print(f"   judgments {result['n_judgments']:,}  tasks {result['n_tasks']:,}  raters {len(result['raters'])}"
              f"  category tags {tagged:,} ({tagged / (2 * result['n_judgments']):.1%} of replies)")
        bench.figure("campaign_agreement (best)", min(full), "s", f"< {TARGET_SECONDS} s")
        bench.figure("  again, same judgments (cached, best)", min(cached), "s")
        bench.figure("  load_arrays (best)", min(load), "s")
        bench.figure("  agreement_compute (best)", min(compute), "s")
        bench.figure("campaign_agreement (all runs)", " ".join(f"{t:.2f}" for t in full), "s")
        verdict = "MET" if min(full) < TARGET_SECONDS else "MISSED"
        print(f"   target {verdict}: {min(full):.2f} s vs < {TARGET_SECONDS} s  (load now {bench.load_average()})")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            selectors.campaign_agreement(campaign=campaign)
            profiler.disable()
            for sort in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(22)
                print(f"\n-- cProfile, sorted by {sort} --")
                print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))

        bench.summary({
            "bench": "agreement_1m", "judgments": result["n_judgments"], "tasks": result["n_tasks"],
            "raters": len(result["raters"]), "best_s": round(min(full), 3), "load_arrays_s": round(min(load), 3),
            "agreement_compute_s": round(min(compute), 3), "runs_s": [round(t, 3) for t in full],
            "target_s": TARGET_SECONDS, "met": min(full) < TARGET_SECONDS,
            "setup_s": {k: round(v, 1) for k, v in setup.items()},
        })
    finally:
        if not args.keep:
            bench.campaign_delete(campaign.pk)


if __name__ == "__main__":
    sys.exit(main())
