"""Item import: 100k JSONL lines (two replies each) into a fresh campaign, through the import service.

    .venv/bin/python bench/import_100k.py [--lines 100000] [--replies 2] [--database specloop_bench_import]

Prints lines/s for the first import and for re-importing the same file (all duplicates, nothing written),
and the time to reject the file when its last line is bad (atomic: nothing saved).
Target: 100k lines well under a minute on a 2-core machine.
"""

import argparse
import json
import time

import _common as bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--replies", type=int, default=2)
    parser.add_argument("--database", default="specloop_bench_import")
    args = parser.parse_args()
    bench.configure(args.database)

    from labeling import services
    from labeling.models import Item, Task
    from specloop.errors import ValidationFailed

    admin, _ = bench.admin_user()
    version = bench.published_spec(admin)
    bench.campaigns_delete_named("bench import")
    campaign = services.campaign_create(user=admin, name="bench import", spec_version=version, overlap=3)
    text = "\n".join(
        json.dumps({"prompt": f"Question {i}: how would you answer this request about topic {i % 97}?",
                    "responses": [{"text": f"Reply {r} to question {i}. " * 8, "model": f"m{r}"} for r in range(args.replies)],
                    "meta": {"category": "violent_crime" if i % 10 == 0 else ""}})
        for i in range(args.lines)
    )
    bench.header("item import", lines=args.lines, replies=args.replies, megabytes=round(len(text) / 1e6, 1))
    figures = {}
    start = time.perf_counter()
    result = services.items_import(campaign=campaign, text=text, fmt="jsonl")
    first = time.perf_counter() - start
    assert result.created_items == args.lines, result
    bench.figure("first import", first, "s", "well under 60 s")
    bench.figure("lines/s", args.lines / first, "lines/s")
    bench.figure("tasks created", Task.objects.filter(campaign=campaign).count())
    start = time.perf_counter()
    again = services.items_import(campaign=campaign, text=text, fmt="jsonl")
    repeat = time.perf_counter() - start
    assert again.duplicates == args.lines and again.created_items == 0
    bench.figure("re-import (all duplicates)", repeat, "s")
    bad = text + '\n{"prompt": "last line", "responses": ["only one"]}'
    start = time.perf_counter()
    try:
        services.items_import(campaign=campaign, text=bad, fmt="jsonl")
    except ValidationFailed as error:
        rejected = time.perf_counter() - start
        bench.figure("bad last line rejected", rejected, "s")
        bench.figure("  reported line", error.detail["line"])
    assert Item.objects.filter(campaign=campaign).count() == args.lines  # nothing half-written
    figures.update(first_import_s=round(first, 2), lines_per_s=round(args.lines / first),
                   reimport_s=round(repeat, 2), reject_s=round(rejected, 2))
    bench.campaign_delete(campaign.pk)
    bench.summary({"benchmark": "import_100k", "lines": args.lines, **figures})


if __name__ == "__main__":
    main()
