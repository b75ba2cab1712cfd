"""Export snapshots (SPEC section 4): a campaign's consensus as preference pairs, written once, kept forever.

Two paths write the same bytes. ``pair_rows`` here is the plain one (SQLite, and the reference the tests
hold the other to): one row per task with every judgment's values, each pair built as a dict. On
PostgreSQL, ``pairs_write`` reads the campaign in task-id ranges (``postgresql``): a range's judgments as
packed binary records in one aggregate query, the consensus of all its tasks at once with numpy
(``consensus``), then the texts of its exported pairs only, chosen before rejected, JSON-escaped by one
orjson call; each line is joined from pieces formatted once per distinct value. A second connection on
the same snapshot reads texts while the first reads judgments, and a thread hashes and writes, so
PostgreSQL, numpy and the disk overlap. Memory is bounded by the size of a range, not of the export;
downloads stream the file.
"""

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from threading import Thread
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.db import connection

from ..dialogue import reply_is_empty
from .postgresql import postgresql_chunks

AGGREGATIONS = ("majority", "mean", "reliability_weighted")


@dataclass(frozen=True)
class ExportFilters:
    aggregation: str = "majority"
    min_agreement: float = 0.0  # per-task share of judgments agreeing with the consensus direction
    min_judgments: int = 1
    categories: tuple[str, ...] = ()  # keep pairs where either reply carries one of these (majority-tagged)
    harmful_threshold: float = 2.0  # a reply is harmful when its mean severity index reaches this

    def as_dict(self) -> dict[str, Any]:
        return {"aggregation": self.aggregation, "min_agreement": self.min_agreement,
                "min_judgments": self.min_judgments, "categories": list(self.categories),
                "harmful_threshold": self.harmful_threshold}


@dataclass(frozen=True)
class ExportContext:
    """What every line needs besides the campaign's rows."""

    campaign_id: int
    campaign_name: str
    spec_label: str
    filters: ExportFilters
    rater_weights: dict[int, float]  # reliability_weighted only; a rater not listed weighs 0.5
    axis_keys: tuple[str, ...]


def _majority_tags(tag_lists: list[list[str]], n: int) -> list[str]:
    counts: dict[str, int] = {}
    for tags in tag_lists:
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(tag for tag, c in counts.items() if c * 2 > n)


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def aggregate_preference(prefs: list[int], weights: list[float], aggregation: str) -> float:
    """The task's consensus preference (canonical, negative = x better); 0 means a tie."""
    if aggregation == "mean":
        return sum(prefs) / len(prefs)
    if aggregation == "reliability_weighted":
        total = sum(weights)
        return sum(p * w for p, w in zip(prefs, weights)) / total if total else sum(prefs) / len(prefs)
    directions = [int(np.sign(p)) for p in prefs]
    counts = {d: directions.count(d) for d in (-1, 0, 1)}
    top = max(counts.values())
    winners = [d for d, c in counts.items() if c == top]
    if len(winners) > 1 or winners[0] == 0:
        return 0.0
    chosen = [p for p, d in zip(prefs, directions) if d == winners[0]]
    return sum(chosen) / len(chosen)


def pairs_write(ctx: ExportContext, relative_path: str, counters: dict[str, int]) -> tuple[int, str, int]:
    """Write the campaign's pairs to MEDIA_ROOT/relative_path; returns (pairs, sha256, bytes).

    ``counters`` gets the ties ("ties"), the tasks the filters left out ("filtered") and the pairs left
    out for an empty reply ("empty").
    """
    counters.setdefault("empty", 0)
    if connection.vendor == "postgresql":
        return write_chunks(postgresql_chunks(ctx, counters), relative_path)
    return write_snapshot(pair_rows(ctx, counters), relative_path)


# --- the plain path: one row per task, a dict per pair ----------------------------------------------


def _rows_sql() -> str:
    """One row per task: the item's texts and every judgment's values as parallel arrays (any order)."""
    if connection.vendor == "sqlite":
        return """
            SELECT t.id, i.prompt, json_extract(i.responses, '$[' || t.x_index || '].text'),
                   json_extract(i.responses, '$[' || t.y_index || '].text'), json_group_array(j.id),
                   json_group_array(j.preference_xy), json_group_array(j.rater_id),
                   json_group_array(j.severity_x), json_group_array(j.severity_y),
                   json_group_array(json(j.categories_x)), json_group_array(json(j.categories_y)),
                   json_group_array(json(j.axes_xy)),
                   a.preference_xy, a.severity_x, a.severity_y, a.categories_x, a.categories_y
            FROM labeling_task t
            JOIN labeling_item i ON i.id = t.item_id
            JOIN labeling_judgment j ON j.task_id = t.id
            LEFT JOIN labeling_adjudication a ON a.task_id = t.id
            WHERE t.campaign_id = %s AND t.is_gold = 0
            GROUP BY t.id ORDER BY t.id"""
    return """
        SELECT t.id, i.prompt, i.responses -> t.x_index ->> 'text', i.responses -> t.y_index ->> 'text',
               array_agg(j.id), array_agg(j.preference_xy), array_agg(j.rater_id), array_agg(j.severity_x),
               array_agg(j.severity_y), jsonb_agg(j.categories_x), jsonb_agg(j.categories_y), jsonb_agg(j.axes_xy),
               a.preference_xy, a.severity_x, a.severity_y, a.categories_x, a.categories_y
        FROM labeling_task t
        JOIN labeling_item i ON i.id = t.item_id
        JOIN labeling_judgment j ON j.task_id = t.id
        LEFT JOIN labeling_adjudication a ON a.task_id = t.id
        WHERE t.campaign_id = %s AND NOT t.is_gold
        GROUP BY t.id, i.id, a.id ORDER BY t.id"""


def _decode(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def pair_rows(ctx: ExportContext, counters: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Each exported pair, in task order; ``counters`` gets the ties, filtered-out tasks and empty replies.

    A pair the filters keep is still left out when either reply is empty: it teaches nothing about
    what to say, only that saying nothing loses (or wins).
    """
    filters = ctx.filters
    counters.setdefault("empty", 0)
    with connection.chunked_cursor() as cursor:
        cursor.execute(_rows_sql(), [ctx.campaign_id])
        while rows := cursor.fetchmany(2000):
            for row in rows:
                task_id, prompt, x_text, y_text, ids, *per_judgment = row[:12]
                adj_pref, adj_sev_x, adj_sev_y, adj_cats_x, adj_cats_y = row[12:]
                # Judgment order fixes the order of the weighted sums' float additions: by judgment id.
                ids = _decode(ids)
                order = sorted(range(len(ids)), key=ids.__getitem__)
                prefs, raters, sev_x, sev_y, cats_x, cats_y, axes = ([v[i] for i in order] for v in map(_decode, per_judgment))
                n = len(prefs)
                if n < filters.min_judgments:
                    counters["filtered"] += 1
                    continue
                adjudicated = adj_pref is not None
                if adjudicated:
                    value = float(adj_pref)
                    tags_x, tags_y = sorted(_decode(adj_cats_x) or []), sorted(_decode(adj_cats_y) or [])
                    mean_sev_x, mean_sev_y = float(adj_sev_x), float(adj_sev_y)
                else:
                    weights = [ctx.rater_weights.get(r, 0.5) for r in raters]
                    value = aggregate_preference(prefs, weights, filters.aggregation)
                    tags_x, tags_y = _majority_tags(cats_x, n), _majority_tags(cats_y, n)
                    mean_sev_x, mean_sev_y = _mean(sev_x), _mean(sev_y)
                direction = int(np.sign(round(value, 9)))
                agreement = sum(1 for p in prefs if int(np.sign(p)) == direction) / n
                if direction == 0:
                    counters["ties"] += 1
                    continue
                if agreement < filters.min_agreement and not adjudicated:
                    counters["filtered"] += 1
                    continue
                if filters.categories and not (set(filters.categories) & (set(tags_x) | set(tags_y))):
                    counters["filtered"] += 1
                    continue
                if reply_is_empty(x_text) or reply_is_empty(y_text):
                    counters["empty"] += 1
                    continue
                x_first = direction < 0  # x better
                chosen, rejected = (x_text, y_text) if x_first else (y_text, x_text)
                sev_c, sev_r = (mean_sev_x, mean_sev_y) if x_first else (mean_sev_y, mean_sev_x)
                tags_c, tags_r = (tags_x, tags_y) if x_first else (tags_y, tags_x)
                axis_out = {}
                for key in ctx.axis_keys:
                    xs = [a.get(key, {}).get("x") for a in axes]
                    ys = [a.get(key, {}).get("y") for a in axes]
                    mx, my = _mean(xs), _mean(ys)
                    axis_out[key] = {"chosen": mx if x_first else my, "rejected": my if x_first else mx}
                yield {
                    "id": f"{ctx.campaign_id}-{task_id}",
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "margin": round(abs(value), 4),
                    "n_judgments": n,
                    "agreement": round(agreement, 4),
                    "categories": {"chosen": tags_c, "rejected": tags_r},
                    "severity": {"chosen": sev_c, "rejected": sev_r},
                    "axes": axis_out,
                    "harmful": {
                        "chosen": sev_c is not None and sev_c >= filters.harmful_threshold,
                        "rejected": sev_r is not None and sev_r >= filters.harmful_threshold,
                    },
                    "spec_version": ctx.spec_label,
                    "campaign": ctx.campaign_name,
                    # On every row, so loaders that infer a schema from the first rows see the column.
                    "adjudicated": adjudicated,
                }


def write_snapshot(rows: Iterable[dict[str, Any]], relative_path: str) -> tuple[int, str, int]:
    """Write dicts as JSON lines to MEDIA_ROOT/relative_path while hashing; returns (rows, sha256, bytes)."""

    def chunks() -> Iterator[tuple[int, bytes]]:
        batch: list[bytes] = []
        for row in rows:
            batch.append(orjson.dumps(row) + b"\n")
            if len(batch) >= 1000:
                yield len(batch), b"".join(batch)
                batch.clear()
        yield len(batch), b"".join(batch)

    return write_chunks(chunks(), relative_path)


_FLUSH_BYTES = 16 << 20  # the writer syncs every 16 MiB, so the disk works along and the final fsync is short


def write_chunks(chunks: Iterable[tuple[int, bytes]], relative_path: str) -> tuple[int, str, int]:
    """Write (lines, bytes) chunks to MEDIA_ROOT/relative_path; returns (lines, sha256, bytes).

    A thread hashes and writes (both release the GIL) while the next chunk is made. The file appears
    under its name only once complete and on disk.
    """
    path = Path(settings.MEDIA_ROOT) / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    digest = hashlib.sha256()
    inbox: Queue[bytes | None] = Queue(maxsize=2)  # chunks made but not yet written: memory stays bounded
    failed: list[BaseException] = []

    def write(out) -> None:
        unflushed = 0
        while (chunk := inbox.get()) is not None:
            if failed:
                continue  # keep taking chunks so the producer never blocks on a dead writer
            try:
                digest.update(chunk)
                out.write(chunk)
                unflushed += len(chunk)
                if unflushed >= _FLUSH_BYTES:
                    out.flush()
                    os.fdatasync(out.fileno())
                    unflushed = 0
            except BaseException as exc:  # noqa: BLE001 - handed to the producer below
                failed.append(exc)

    n = size = 0
    try:
        with open(tmp, "wb") as out:
            writer = Thread(target=write, args=(out,), name="export-writer", daemon=True)
            writer.start()
            try:
                for lines, chunk in chunks:
                    if failed:
                        break
                    n += lines
                    size += len(chunk)
                    inbox.put(chunk)
            finally:
                inbox.put(None)
                writer.join()
            if failed:
                raise failed[0]
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n, digest.hexdigest(), size
