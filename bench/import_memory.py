"""Import memory: a valid 150 MB JSONL file through the upload path, peak RSS growth and time, before and after.

    .venv/bin/python bench/import_memory.py [--mb 150] [--kind items|pairs] [--before REV] [--skip-before]

Writes one file of valid lines (items: a prompt and two replies; pairs: TRL prompt/chosen/rejected), then runs
the import in a fresh child process per code tree: this checkout ("after") and, with --before, the commit REV
checked out into a git worktree under /tmp ("before"; default: the commit before streaming imports). Each child
does what that tree's upload view does with an uploaded file (Django has already spooled it to disk):
before, read it whole and decode it (``_read_items``) and import the text; after, copy it in chunks under
MEDIA_ROOT and import it line by line (``import_run``). Peak RSS is sampled every 5 ms during the import,
minus the RSS just before it (C allocations included, unlike tracemalloc). Each tree gets its own bench
database (PostgreSQL, created when missing). Target: growth flat in the file's size (tens of MB, not ~1 GB).
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BEFORE_REV = "e88984b^"  # the last commit that read imports whole
WORDS = ("the a model reply answer question policy safety harm help user assistant request explain careful "
         "data privacy weapon recipe story poem code review budget travel health law history science").split()

CHILD = r"""
import json, sys, time
tree, db, kind, path = sys.argv[1:5]
sys.path[:0] = [tree, tree + "/bench"]
import _common as bench
bench.configure(db)
import inspect
from labeling import services
admin, _ = bench.admin_user()
bench.campaigns_delete_named("bench import memory")
from labeling.models import ExportSnapshot
ExportSnapshot.objects.filter(source="imported", name="bench import memory").delete()
version = bench.published_spec(admin)
campaign = services.campaign_create(user=admin, name="bench import memory", spec_version=version, overlap=3)
streaming = "source" in inspect.signature(services.items_import).parameters

def read_whole():  # the old upload view: b"".join(upload.chunks()) decoded
    from labeling.imports import decode_file
    with open(path, "rb") as f:
        return decode_file(b"".join(iter(lambda: f.read(64 * 1024), b"")), field="file")

def run():
    if streaming:
        from labeling.import_jobs import import_run, upload_spool
        from labeling.models import ImportJob
        with open(path, "rb") as f:
            upload, _ = upload_spool(iter(lambda: f.read(64 * 1024), b""), field="file")
        options = {"format": "jsonl" if kind == "items" else "trl", "name": "bench import memory"}
        out = import_run(kind=ImportJob.ITEMS if kind == "items" else ImportJob.PAIRS, user=admin, upload=upload,
                         options=options, campaign=campaign if kind == "items" else None)
        from labeling.import_jobs import upload_discard
        upload_discard(upload)
    elif kind == "items":
        out = services.items_import(campaign=campaign, text=read_whole(), fmt="jsonl")
    else:
        from labeling.pair_imports import export_snapshot_import
        out = export_snapshot_import(user=admin, text=read_whole(), fmt="trl", name="bench import memory")
    return out.as_dict() if kind == "items" else {"n_pairs": out.n_pairs, "duplicates": out.filters["duplicates"]}

with bench.RssSampler() as rss:
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
bench.campaigns_delete_named("bench import memory")
print(json.dumps({"streaming": streaming, "baseline_mib": rss.baseline / 1024, "peak_mib": rss.peak / 1024,
                  "growth_mib": rss.growth_mib, "seconds": seconds, "result": result}))
"""


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_file(path: Path, megabytes: float, kind: str) -> int:
    """Valid lines until the file reaches the size; returns the number of lines."""
    rng = random.Random(0)
    target, size, n = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while size < target:
            prompt = f"Request {n}: {sentence(rng, 80)}?"
            a, b = f"First reply to {n}. {sentence(rng, 70)}", f"Second reply to {n}. {sentence(rng, 70)}"
            row = ({"prompt": prompt, "responses": [{"text": a, "model": "m0"}, {"text": b, "model": "m1"}],
                    "meta": {"category": "violent_crime" if n % 10 == 0 else ""}} if kind == "items"
                   else {"prompt": prompt, "chosen": a, "rejected": b})
            line = json.dumps(row) + "\n"
            out.write(line)
            size += len(line.encode())
            n += 1
    return n


def worktree(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"specloop-import-before-{sha}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def measure(tree: Path, db: str, kind: str, path: Path) -> dict:
    done = subprocess.run([str(PYTHON), "-c", CHILD, str(tree), db, kind, str(path)], cwd=tree,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the import in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=150.0, help="file size in MB")
    parser.add_argument("--kind", choices=["items", "pairs"], default="items")
    parser.add_argument("--before", default=BEFORE_REV, help="the commit to compare with (a git worktree in /tmp)")
    parser.add_argument("--skip-before", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    import _common as bench  # printing helpers only here; Django runs in the children

    with tempfile.TemporaryDirectory(prefix="specloop-import-memory-") as folder:
        path = Path(folder) / f"{args.kind}.jsonl"
        start = time.perf_counter()
        lines = write_file(path, args.mb, args.kind)
        bench.header("import memory", kind=args.kind, lines=lines, megabytes=round(path.stat().st_size / 1e6, 1),
                     generated_in=f"{time.perf_counter() - start:.1f}s")
        runs = {}
        if not args.skip_before:
            runs["before"] = measure(worktree(args.before), "specloop_bench_import_memory_before", args.kind, path)
        runs["after"] = measure(ROOT, "specloop_bench_import_memory_after", args.kind, path)
    for label, run in runs.items():
        print(f"   {label} ({'line by line' if run['streaming'] else 'whole file in memory'}): {run['result']}")
        bench.figure(f"{label}: peak RSS growth", run["growth_mib"], "MiB", "tens of MiB" if label == "after" else "")
        bench.figure(f"{label}: peak RSS", run["peak_mib"], "MiB")
        bench.figure(f"{label}: import time", run["seconds"], "s", "< 120 s (worker timeout)" if label == "after" else "")
    bench.summary({"bench": "import_memory", "kind": args.kind, "lines": lines, "mb": args.mb, **runs})


if __name__ == "__main__":
    main()
