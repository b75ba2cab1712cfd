"""Writes for pairwise labeling: campaigns, imports, assignment, judgments, skips and adjudication."""

import functools
import io
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import combinations
from pathlib import Path
from typing import IO, Any

from django.conf import settings as django_settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from specloop import roles
from specloop.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from specloop.selectors import users_with_role
from taxonomy.models import SpecVersion

from . import selectors
from .exports import AGGREGATIONS, ExportContext, ExportFilters, pairs_write
from .imports import ParsedItem, iter_items
from .models import Adjudication, Assignment, Campaign, ExportSnapshot, Item, Judgment, Task

# --- campaigns -------------------------------------------------------------------------------------


def _campaign_settings(
    *, overlap: Any, pairing: Any, category_weights: Any, gold_share: Any, timeout: Any, spec_version: SpecVersion
) -> dict[str, Any]:
    errors = []
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= 50:
        errors.append({"field": "overlap", "message": "must be a whole number of raters per task, 1 to 50"})
    if pairing not in (Campaign.ALL_PAIRS, Campaign.ADJACENT):
        errors.append({"field": "pairing", "message": "must be all_pairs or adjacent"})
    weights = category_weights or {}
    keys = {c["key"] for c in spec_version.document["categories"]}
    if not isinstance(weights, dict):
        errors.append({"field": "category_weights", "message": "must map category keys to positive numbers"})
        weights = {}
    for key, value in weights.items():
        if key not in keys:
            errors.append({"field": f"category_weights.{key}", "message": f"{key!r} is not a category of the spec version"})
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            errors.append({"field": f"category_weights.{key}", "message": "must be a positive number"})
    if isinstance(gold_share, bool) or not isinstance(gold_share, (int, float)) or not 0 <= gold_share <= 0.5:
        errors.append({"field": "gold_share", "message": "must be a share between 0 and 0.5"})
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 30 <= timeout <= 7 * 86400:
        errors.append({"field": "assignment_timeout_seconds", "message": "must be between 30 seconds and 7 days"})
    if errors:
        raise ValidationFailed(errors)
    return {"overlap": overlap, "pairing": pairing, "category_weights": {k: float(v) for k, v in weights.items()},
            "gold_share": float(gold_share), "assignment_timeout_seconds": timeout}


@transaction.atomic
def campaign_create(
    *, user, name: str, spec_version: SpecVersion, guidelines: str = "", overlap: Any = 3,
    pairing: Any = Campaign.ALL_PAIRS, category_weights: Any = None, gold_share: Any = 0.0,
    assignment_timeout_seconds: Any = 1800,
) -> Campaign:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.one("name", "a campaign needs a name")
    if spec_version.status != SpecVersion.PUBLISHED:
        raise ValidationFailed.one(
            "version", f"v{spec_version.number} is a draft; campaigns label against a published version"
        )
    settings = _campaign_settings(
        overlap=overlap, pairing=pairing, category_weights=category_weights, gold_share=gold_share,
        timeout=assignment_timeout_seconds, spec_version=spec_version,
    )
    return Campaign.objects.create(
        name=name[:200], spec_version=spec_version, guidelines=guidelines or "", created_by=user, **settings
    )


@transaction.atomic
def campaign_raters_add(*, campaign: Campaign, usernames: list[str]) -> list[str]:
    campaign.raters.add(*users_with_role(usernames=usernames, role=roles.RATER))
    return sorted(campaign.raters.values_list("username", flat=True))


# --- import ---------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created_items: int
    created_tasks: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"created_items": self.created_items, "created_tasks": self.created_tasks, "duplicates": self.duplicates}


def _pairs(n: int, pairing: str) -> list[tuple[int, int]]:
    if pairing == Campaign.ADJACENT:
        return [(i, i + 1) for i in range(n - 1)]
    return list(combinations(range(n), 2))


def _gold(item: ParsedItem) -> int | None:
    gold = item.meta.get("gold_preference")
    if gold is None:
        return None
    if isinstance(gold, bool) or not isinstance(gold, int) or not -2 <= gold <= 2:
        raise ValidationFailed([{"field": f"line {item.line}", "message": "meta.gold_preference must be an integer from -2 to 2"}])
    return gold


IMPORT_BATCH = 2000  # items parsed, checked for duplicates and written at a time: memory stays flat in the file size


@transaction.atomic
def items_import(
    *, campaign: Campaign, fmt: str, text: str | None = None, source: IO[bytes] | None = None,
    keep_empty: bool = False, on_progress: Callable[[float, int], None] | None = None,
) -> ImportResult:
    """Import a whole file or nothing. The same prompt and reply texts are never imported twice.

    The file (``source``, a binary file object; or ``text``) is read line by line and written in batches
    inside one transaction: a bad line anywhere rolls every batch back. Duplicates are found per batch
    against the database, which already holds this import's earlier batches, so only one batch is ever in
    memory. ``on_progress(fraction of the file read, lines read)`` is called after each batch.
    """
    if source is None:
        source = io.BytesIO((text or "").encode())
    size = source.seek(0, io.SEEK_END) or 1
    source.seek(0)
    # One import at a time per campaign; NO KEY UPDATE so labeling (which key-shares the row) goes on.
    Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
    totals = ImportResult(created_items=0, created_tasks=0, duplicates=0)
    batch: list[ParsedItem] = []
    line = 0
    for item in iter_items(source, fmt, keep_empty=keep_empty):
        _gold(item)
        batch.append(item)
        line = item.line
        if len(batch) >= IMPORT_BATCH:
            _items_write(campaign, batch, totals)
            batch.clear()
            if on_progress is not None:
                on_progress(min(1.0, source.tell() / size), line)
    _items_write(campaign, batch, totals)
    if connection.vendor == "postgresql" and totals.created_items >= 1000:
        # Fresh statistics: without them the next-task plan sorts every candidate and rescans
        # assignments per task (measured: 1.7 s per next-task after 300 loops, 13 ms after ANALYZE).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE labeling_task, labeling_item")
    if on_progress is not None:
        on_progress(1.0, line)
    return totals


def _items_write(campaign: Campaign, batch: list[ParsedItem], totals: ImportResult) -> None:
    """Write a batch's new items and their tasks; count the rest (in the campaign already, or repeated here)."""
    fresh: dict[str, ParsedItem] = {}
    for item in batch:
        fresh.setdefault(item.content_hash, item)
    for digest in Item.objects.filter(campaign=campaign, content_hash__in=list(fresh)).values_list(
            "content_hash", flat=True):
        del fresh[digest]
    totals.duplicates += len(batch) - len(fresh)
    if not fresh:
        return
    rows = Item.objects.bulk_create([
        Item(campaign=campaign, prompt=i.prompt, responses=i.responses, meta=i.meta,
             category=str(i.meta.get("category", ""))[:64], content_hash=digest)
        for digest, i in fresh.items()
    ])
    weights = campaign.category_weights
    tasks = []
    for row, parsed_item in zip(rows, fresh.values()):
        gold = _gold(parsed_item)
        weight = weights.get(row.category, 1.0)
        for x, y in _pairs(len(parsed_item.responses), campaign.pairing):
            tasks.append(Task(
                campaign=campaign, item=row, x_index=x, y_index=y, weight=weight,
                is_gold=gold is not None and (x, y) == (0, 1), gold_preference=gold if (x, y) == (0, 1) else None,
            ))
    Task.objects.bulk_create(tasks, batch_size=IMPORT_BATCH)
    totals.created_items += len(rows)
    totals.created_tasks += len(tasks)


# --- assignment -----------------------------------------------------------------------------------


_last_sweep: dict[int, float] = {}


def _expire_stale(campaign: Campaign, now) -> None:
    """Open assignments past their time return their task to the pool (skipping rows others hold).

    Swept at most every LABELING_EXPIRY_SWEEP_SECONDS per campaign and process: timeouts are minutes,
    and the sweep would otherwise cost a query on every next-task.
    """
    interval = getattr(django_settings, "LABELING_EXPIRY_SWEEP_SECONDS", 5)
    clock = time.monotonic()
    if interval and clock - _last_sweep.get(campaign.pk, -interval) < interval:
        return
    _last_sweep[campaign.pk] = clock
    stale = list(
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(campaign=campaign, status=Assignment.OPEN, expires_at__lt=now)
        .values_list("id", "task_id")
    )
    if not stale:
        return
    Assignment.objects.filter(id__in=[a for a, _ in stale]).update(status=Assignment.EXPIRED, finished_at=now)
    for _, task_id in stale:
        Task.objects.filter(id=task_id, n_open__gt=0).update(n_open=F("n_open") - 1)


def _candidates(campaign: Campaign, rater, *, gold: bool):
    seen = Assignment.objects.filter(task=OuterRef("pk"), rater=rater).exclude(status=Assignment.EXPIRED)
    qs = Task.objects.filter(campaign=campaign, is_gold=gold).filter(~Exists(seen))
    if not gold:
        qs = qs.alias(load=F("n_judgments") + F("n_open")).filter(load__lt=campaign.overlap)
        return qs.order_by("n_judgments", "-weight", "id")
    return qs.order_by("id")  # as _CANDIDATE_GOLD does on PostgreSQL


def _candidate(campaign: Campaign, rater, *, gold: bool) -> Task | None:
    if connection.vendor == "postgresql":
        return _candidate_sql(campaign, rater, gold=gold)
    return _candidate_orm(campaign, rater, gold=gold)


# What an assigned task carries: the answer shows its prompt and replies, callers read the item's meta.
_TASK_FIELDS = ("id", "x_index", "y_index", "item__prompt", "item__responses", "item__meta", "item__category")


def _candidate_orm(campaign: Campaign, rater, *, gold: bool) -> Task | None:
    # The item comes along (unlocked) because the answer shows its prompt and replies.
    return (
        _candidates(campaign, rater, gold=gold).select_related("item").only(*_TASK_FIELDS)
        .select_for_update(skip_locked=True, of=("self",)).first()
    )


# The hot path of the rater loop, written once as SQL on PostgreSQL: building these through the ORM
# was most of next-task's CPU. Same rules as ``_candidates``: least judged first, then weight. A test
# runs both paths on the same data and compares every field.
_CANDIDATE_SQL = """
    SELECT t.id, t.campaign_id, t.item_id, t.x_index, t.y_index,
           i.id, i.campaign_id, i.prompt, i.responses, i.meta, i.category
    FROM labeling_task t JOIN labeling_item i ON i.id = t.item_id
    WHERE t.campaign_id = %(campaign)s AND t.is_gold = %(gold)s {load}
      AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                      WHERE a.task_id = t.id AND a.rater_id = %(rater)s AND a.status <> 'expired')
    ORDER BY {order} LIMIT 1
    FOR UPDATE OF t SKIP LOCKED"""
_CANDIDATE_QUEUE = _CANDIDATE_SQL.format(load="AND t.n_judgments + t.n_open < %(overlap)s",
                                         order="t.n_judgments, t.weight DESC, t.id")
_CANDIDATE_GOLD = _CANDIDATE_SQL.format(load="", order="t.id")
_CURRENT_SQL = """
    SELECT a.id, a.task_id, a.campaign_id, a.rater_id, a.swapped, a.status, a.created_at, a.expires_at,
           t.id, t.campaign_id, t.item_id, t.x_index, t.y_index,
           i.id, i.campaign_id, i.prompt, i.responses, i.meta, i.category
    FROM labeling_assignment a JOIN labeling_task t ON t.id = a.task_id JOIN labeling_item i ON i.id = t.item_id
    WHERE a.campaign_id = %s AND a.rater_id = %s AND a.status = 'open' AND a.expires_at >= %s LIMIT 1"""
_TASK_COLUMNS = ("id", "campaign_id", "item_id", "x_index", "y_index")
_ITEM_COLUMNS = ("id", "campaign_id", "prompt", "responses", "meta", "category")
_ASSIGNMENT_COLUMNS = ("id", "task_id", "campaign_id", "rater_id", "swapped", "status", "created_at", "expires_at")


@functools.cache
def _json_flags(model, field_names: tuple[str, ...]) -> tuple[bool, ...]:
    """Which of ``field_names`` are JSON fields; looked up once per column list, not per row."""
    return tuple(model._meta.get_field(name).get_internal_type() == "JSONField" for name in field_names)


def _from_row(model, field_names: tuple[str, ...], values) -> Any:
    """An instance built as the ORM builds one for ``.only(*field_names)``: fields not read are deferred
    (loaded from the database if touched), never left at their model defaults."""
    converted = [
        json.loads(value) if is_json and isinstance(value, (str, bytes)) else value
        for is_json, value in zip(_json_flags(model, field_names), values)
    ]
    return model.from_db(connection.alias, list(field_names), converted)


def _task_from_row(row) -> Task:
    task = _from_row(Task, _TASK_COLUMNS, row[:len(_TASK_COLUMNS)])
    task.item = _from_row(Item, _ITEM_COLUMNS, row[len(_TASK_COLUMNS):])
    return task


def _candidate_sql(campaign: Campaign, rater, *, gold: bool) -> Task | None:
    params = {"campaign": campaign.pk, "gold": gold, "rater": rater.pk, "overlap": campaign.overlap}
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATE_GOLD if gold else _CANDIDATE_QUEUE, params)
        row = cursor.fetchone()
    return _task_from_row(row) if row else None


def _current_open(campaign: Campaign, rater, now) -> Assignment | None:
    """The rater's unexpired open assignment in this campaign, with its task and item."""
    if connection.vendor == "postgresql":
        return _current_open_sql(campaign, rater, now)
    return _current_open_orm(campaign, rater, now)


def _current_open_orm(campaign: Campaign, rater, now) -> Assignment | None:
    return (
        Assignment.objects.filter(campaign=campaign, rater=rater, status=Assignment.OPEN, expires_at__gte=now)
        .select_related("task__item").first()
    )


def _current_open_sql(campaign: Campaign, rater, now) -> Assignment | None:
    with connection.cursor() as cursor:
        cursor.execute(_CURRENT_SQL, [campaign.pk, rater.pk, now])
        row = cursor.fetchone()
    if row is None:
        return None
    assignment = _from_row(Assignment, _ASSIGNMENT_COLUMNS, row[:len(_ASSIGNMENT_COLUMNS)])
    assignment.task = _task_from_row(row[len(_ASSIGNMENT_COLUMNS):])
    return assignment


def next_task_assign(*, campaign: Campaign, rater, rng: random.Random | None = None) -> Assignment | None:
    """The rater's open assignment, or a new one on the least-judged task they have not seen; None when done."""
    rng = rng or random
    now = timezone.now()
    for attempt in range(3):
        try:
            with transaction.atomic():
                current = _current_open(campaign, rater, now)
                if current is not None:
                    return current
                _expire_stale(campaign, now)
                task = None
                if campaign.gold_share and rng.random() < campaign.gold_share:
                    task = _candidate(campaign, rater, gold=True)
                if task is None:
                    task = _candidate(campaign, rater, gold=False)
                if task is None:
                    if attempt < 2 and _candidates(campaign, rater, gold=False).exists():
                        raise _Busy  # the only tasks left are locked by other raters' requests right now
                    return None
                assignment = Assignment(
                    task=task, campaign=campaign, rater=rater, swapped=rng.random() < 0.5, status=Assignment.OPEN,
                    created_at=now, expires_at=now + timedelta(seconds=campaign.assignment_timeout_seconds),
                )
                if connection.vendor != "postgresql":
                    Task.objects.filter(pk=task.pk).update(n_open=F("n_open") + 1)
                    assignment.save(force_insert=True)
                    return assignment
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE labeling_task SET n_open = n_open + 1 WHERE id = %s", [task.pk])
                    cursor.execute(
                        "INSERT INTO labeling_assignment (task_id, campaign_id, rater_id, swapped, status, created_at,"
                        " expires_at, skip_reason) VALUES (%s, %s, %s, %s, 'open', %s, %s, '') RETURNING id",
                        [task.pk, campaign.pk, rater.pk, assignment.swapped, now, assignment.expires_at],
                    )
                    assignment.pk = cursor.fetchone()[0]
                assignment._state.adding = False
                return assignment
        except IntegrityError:
            # The same rater asked twice at once: the other request's assignment wins; read it next round.
            continue
        except _Busy:
            time.sleep(0.005 * (attempt + 1))
            continue
    raise ApplicationError("could not assign a task; try again")


class _Busy(Exception):
    """Tasks remain but every one is locked by a concurrent request for a moment."""


# --- judgments ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def spec_rules(version_id: int) -> dict[str, Any]:
    """What a judgment may contain under a published spec version (immutable, so cached)."""
    version = SpecVersion.objects.get(pk=version_id)
    doc = version.document
    return {
        "categories": frozenset(c["key"] for c in doc["categories"]),
        "n_severity": len(doc["rubric"]["severity_scale"]),
        "axes": {a["key"]: len(a["scale"]) for a in doc["rubric"]["axes"]},
    }


def _index(value: Any, size: int, field: str, errors: list) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        errors.append({"field": field, "message": f"must be an index from 0 to {size - 1}, got {value!r}"})
        return None
    return value


def judgment_validate(data: Any, rules: dict[str, Any]) -> dict[str, Any]:
    """The judgment as displayed (a/b), checked against the spec version; every bad field is named."""
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "send a JSON object")
    errors: list[dict[str, str]] = []
    allowed = {"preference", "categories", "severity", "axes", "rationale", "seconds"}
    for key in sorted(set(data) - allowed):
        errors.append({"field": key, "message": f"unknown field; allowed: {', '.join(sorted(allowed))}"})
    preference = data.get("preference")
    if isinstance(preference, bool) or not isinstance(preference, int) or not -2 <= preference <= 2:
        errors.append({"field": "preference", "message": f"must be an integer from -2 (A much better) to 2 (B much better), got {preference!r}"})
    categories = data.get("categories") or {}
    out_categories = {"a": [], "b": []}
    if not isinstance(categories, dict) or set(categories) - {"a", "b"}:
        errors.append({"field": "categories", "message": 'must be {"a": [keys], "b": [keys]}'})
    else:
        for side in ("a", "b"):
            keys = categories.get(side) or []
            if not isinstance(keys, list):
                errors.append({"field": f"categories.{side}", "message": "must be a list of category keys"})
                continue
            for i, key in enumerate(keys):
                if key not in rules["categories"]:
                    errors.append({"field": f"categories.{side}[{i}]", "message": f"unknown category {key!r} for this spec version"})
            out_categories[side] = sorted({k for k in keys if isinstance(k, str)})
    severity = data.get("severity")
    out_severity = {"a": None, "b": None}
    if severity is not None:
        if not isinstance(severity, dict) or set(severity) - {"a", "b"}:
            errors.append({"field": "severity", "message": 'must be {"a": index, "b": index}'})
        else:
            for side in ("a", "b"):
                if side in severity:
                    out_severity[side] = _index(severity[side], rules["n_severity"], f"severity.{side}", errors)
    axes = data.get("axes") or {}
    out_axes: dict[str, dict[str, int | None]] = {}
    if not isinstance(axes, dict):
        errors.append({"field": "axes", "message": 'must be {"<axis>": {"a": index, "b": index}}'})
    else:
        for key, value in axes.items():
            if key not in rules["axes"]:
                errors.append({"field": f"axes.{key}", "message": f"unknown axis {key!r}; the spec has {', '.join(rules['axes'])}"})
                continue
            if not isinstance(value, dict) or set(value) - {"a", "b"}:
                errors.append({"field": f"axes.{key}", "message": 'must be {"a": index, "b": index}'})
                continue
            out_axes[key] = {side: _index(value[side], rules["axes"][key], f"axes.{key}.{side}", errors) if side in value else None
                             for side in ("a", "b")}
    rationale = data.get("rationale") or ""
    if not isinstance(rationale, str) or len(rationale) > 10_000:
        errors.append({"field": "rationale", "message": "must be text of at most 10000 characters"})
    seconds = data.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86400):
        errors.append({"field": "seconds", "message": "must be a number of seconds between 0 and 86400"})
    if errors:
        raise ValidationFailed(errors)
    return {"preference": preference, "categories": out_categories, "severity": out_severity, "axes": out_axes,
            "rationale": rationale, "seconds": float(seconds) if seconds is not None else None}


def canonical(judged: dict[str, Any], swapped: bool) -> dict[str, Any]:
    """Displayed a/b → canonical x/y. When swapped, A was y: sides flip and the preference changes sign."""
    first, second = ("b", "a") if swapped else ("a", "b")
    return {
        "preference_xy": -judged["preference"] if swapped else judged["preference"],
        "categories_x": judged["categories"][first],
        "categories_y": judged["categories"][second],
        "severity_x": judged["severity"][first],
        "severity_y": judged["severity"][second],
        "axes_xy": {k: {"x": v[first], "y": v[second]} for k, v in judged["axes"].items()},
    }


_OWN_ASSIGNMENT_SQL = """
    SELECT a.id, a.task_id, a.campaign_id, a.rater_id, a.swapped, a.status, a.created_at, a.expires_at,
           c.id, c.spec_version_id, c.overlap, c.gold_share, c.assignment_timeout_seconds
    FROM labeling_assignment a JOIN labeling_campaign c ON c.id = a.campaign_id
    WHERE a.id = %s AND a.rater_id = %s
    FOR UPDATE OF a"""


def _own_assignment(assignment_id: int, rater) -> Assignment:
    """The rater's own assignment, locked (its campaign row is not); anyone else's is a 404."""
    try:
        assignment_id = int(assignment_id)
    except (ValueError, TypeError):
        raise NotFound("No such assignment.") from None
    assignment = (_own_assignment_sql if connection.vendor == "postgresql" else _own_assignment_orm)(assignment_id, rater)
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


def _own_assignment_orm(assignment_id: int, rater) -> Assignment | None:
    return (
        Assignment.objects.select_for_update(of=("self",)).select_related("campaign")
        .filter(pk=assignment_id, rater=rater).first()
    )


# What the judgment and the next assignment read of the campaign; the rest is deferred.
_OWN_CAMPAIGN_COLUMNS = ("id", "spec_version_id", "overlap", "gold_share", "assignment_timeout_seconds")


def _own_assignment_sql(assignment_id: int, rater) -> Assignment | None:
    with connection.cursor() as cursor:
        cursor.execute(_OWN_ASSIGNMENT_SQL, [assignment_id, rater.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    assignment = _from_row(Assignment, _ASSIGNMENT_COLUMNS, row[:len(_ASSIGNMENT_COLUMNS)])
    assignment.campaign = _from_row(Campaign, _OWN_CAMPAIGN_COLUMNS, row[len(_ASSIGNMENT_COLUMNS):])
    return assignment


_JUDGMENT_INSERT_SQL = """
    INSERT INTO labeling_judgment (assignment_id, task_id, campaign_id, rater_id, preference, preference_xy,
        categories, severity, axes, categories_x, categories_y, severity_x, severity_y, axes_xy, rationale, seconds,
        created_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s::jsonb, %s, %s, %s)
    RETURNING id"""


def _count_judgment(*, task_id: int, was_open: bool, overlap: int) -> None:
    """One more judgment on the task; an expired assignment's late judgment only while the task has room."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labeling_task SET n_judgments = n_judgments + 1,"
            " n_open = CASE WHEN %(open)s AND n_open > 0 THEN n_open - 1 ELSE n_open END"
            " WHERE id = %(task)s AND (%(open)s OR is_gold OR n_judgments + n_open < %(overlap)s) RETURNING id",
            {"open": was_open, "task": task_id, "overlap": overlap},
        )
        counted = cursor.fetchone() is not None
    if not counted:
        # Late work would push the task past k.
        raise Conflict("this assignment expired and its task is complete; ask for the next task")


@transaction.atomic
def judgment_submit(*, assignment_id: int, rater, data: Any) -> Judgment:
    assignment = _own_assignment(assignment_id, rater)
    if assignment.status == Assignment.JUDGED:
        raise Conflict("this assignment is already judged; ask for the next task", detail={"assignment": assignment.pk})
    if assignment.status == Assignment.SKIPPED:
        raise Conflict("this assignment was skipped; ask for the next task", detail={"assignment": assignment.pk})
    campaign = assignment.campaign
    judged = judgment_validate(data, spec_rules(campaign.spec_version_id))
    _count_judgment(task_id=assignment.task_id, was_open=assignment.status == Assignment.OPEN, overlap=campaign.overlap)
    now = timezone.now()
    assignment.status = Assignment.JUDGED
    assignment.finished_at = now
    judgment = Judgment(
        assignment=assignment, task_id=assignment.task_id, campaign=campaign, rater=rater,
        preference=judged["preference"], categories=judged["categories"], severity=judged["severity"],
        axes=judged["axes"], rationale=judged["rationale"], seconds=judged["seconds"], created_at=now,
        **canonical(judged, assignment.swapped),
    )
    if connection.vendor != "postgresql":
        assignment.save(update_fields=["status", "finished_at"])
        judgment.save(force_insert=True)
        return judgment
    with connection.cursor() as cursor:
        cursor.execute("UPDATE labeling_assignment SET status = 'judged', finished_at = %s WHERE id = %s",
                       [now, assignment.pk])
        cursor.execute(_JUDGMENT_INSERT_SQL, [
            assignment.pk, assignment.task_id, campaign.pk, rater.pk, judgment.preference, judgment.preference_xy,
            json.dumps(judgment.categories), json.dumps(judgment.severity), json.dumps(judgment.axes),
            json.dumps(judgment.categories_x), json.dumps(judgment.categories_y), judgment.severity_x,
            judgment.severity_y, json.dumps(judgment.axes_xy), judgment.rationale, judgment.seconds, now,
        ])
        judgment.pk = cursor.fetchone()[0]
    judgment._state.adding = False
    return judgment


@transaction.atomic
def assignment_skip(*, assignment_id: int, rater, reason: str = "") -> Assignment:
    assignment = _own_assignment(assignment_id, rater)
    if assignment.status == Assignment.SKIPPED:
        return assignment  # idempotent
    if assignment.status == Assignment.JUDGED:
        raise Conflict("this assignment is already judged and cannot be skipped")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ValidationFailed.one("reason", "must be text of at most 500 characters")
    if assignment.status == Assignment.OPEN:
        Task.objects.filter(pk=assignment.task_id, n_open__gt=0).update(n_open=F("n_open") - 1)
    assignment.status = Assignment.SKIPPED
    assignment.skip_reason = reason
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "finished_at"])
    return assignment


# --- adjudication ---------------------------------------------------------------------------------


@transaction.atomic
def adjudication_save(*, task: Task, user, data: Any) -> Adjudication:
    """A policy/admin decision in canonical terms (x/y); it overrides the consensus in exports."""
    rules = spec_rules(task.campaign.spec_version_id)
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "send a JSON object")
    errors: list[dict[str, str]] = []
    preference = data.get("preference")
    if isinstance(preference, bool) or not isinstance(preference, int) or not -2 <= preference <= 2:
        errors.append({"field": "preference", "message": "must be an integer from -2 (x much better) to 2 (y much better)"})
    out = {}
    for side in ("x", "y"):
        keys = data.get(f"categories_{side}") or []
        if not isinstance(keys, list) or any(k not in rules["categories"] for k in keys):
            errors.append({"field": f"categories_{side}", "message": "must be a list of the spec version's category keys"})
        out[f"categories_{side}"] = sorted(set(keys)) if isinstance(keys, list) else []
        out[f"severity_{side}"] = _index(data.get(f"severity_{side}", 0), rules["n_severity"], f"severity_{side}", errors)
    note = data.get("note") or ""
    if not isinstance(note, str):
        errors.append({"field": "note", "message": "must be text"})
    if errors:
        raise ValidationFailed(errors)
    adjudication, _ = Adjudication.objects.update_or_create(
        task=task, defaults={"preference_xy": preference, "note": note, "decided_by": user, **out}
    )
    return adjudication


# --- exports ---------------------------------------------------------------------------------------


def export_filters_parse(data: Any, category_keys: set[str]) -> ExportFilters:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "send a JSON object of filters")
    errors: list[dict[str, str]] = []
    allowed = {"aggregation", "min_agreement", "min_judgments", "categories", "harmful_threshold"}
    for key in sorted(set(data) - allowed):
        errors.append({"field": key, "message": f"unknown filter; allowed: {', '.join(sorted(allowed))}"})
    aggregation = data.get("aggregation", "majority")
    if aggregation not in AGGREGATIONS:
        errors.append({"field": "aggregation", "message": f"must be one of {', '.join(AGGREGATIONS)}"})
    min_agreement = data.get("min_agreement", 0.0)
    if isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float)) or not 0 <= min_agreement <= 1:
        errors.append({"field": "min_agreement", "message": "must be a share between 0 and 1"})
    min_judgments = data.get("min_judgments", 1)
    if isinstance(min_judgments, bool) or not isinstance(min_judgments, int) or min_judgments < 1:
        errors.append({"field": "min_judgments", "message": "must be a whole number of at least 1"})
    categories = data.get("categories") or []
    if not isinstance(categories, list) or any(c not in category_keys for c in categories):
        errors.append({"field": "categories", "message": "must be a list of the spec version's category keys"})
    threshold = data.get("harmful_threshold", 2.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        errors.append({"field": "harmful_threshold", "message": "must be a severity index (0 or more)"})
    if errors:
        raise ValidationFailed(errors)
    return ExportFilters(aggregation=aggregation, min_agreement=float(min_agreement), min_judgments=min_judgments,
                         categories=tuple(categories), harmful_threshold=float(threshold))


def export_snapshot_create(*, campaign: Campaign, user, filters: Any) -> ExportSnapshot:
    """Write the campaign's consensus pairs to an immutable file and record its count and sha256."""
    version = campaign.spec_version
    doc = version.document
    parsed = export_filters_parse(filters, {c["key"] for c in doc["categories"]})
    weights: dict[int, float] = {}
    if parsed.aggregation == "reliability_weighted":
        for row in selectors.campaign_agreement(campaign=campaign)["raters"]:
            # A rater's weight is their agreement with the others; never zero, so nobody is silenced.
            weights[row["rater"]] = max(0.05, row["agreement"] if row["agreement"] is not None else 0.5)
    counters = {"ties": 0, "filtered": 0, "empty": 0}
    relative = f"exports/campaign-{campaign.pk}/{uuid.uuid4().hex}.jsonl"
    context = ExportContext(
        campaign_id=campaign.pk, campaign_name=campaign.name, spec_label=f"{version.spec.name} v{version.number}",
        filters=parsed, rater_weights=weights, axis_keys=tuple(dict.fromkeys(a["key"] for a in doc["rubric"]["axes"])),
    )
    n, digest, size = pairs_write(context, relative, counters)
    try:
        return ExportSnapshot.objects.create(
            source=ExportSnapshot.CAMPAIGN, campaign=campaign, spec_version=version, name=campaign.name,
            filters={**parsed.as_dict(), "excluded": counters["filtered"], "excluded_empty": counters["empty"]},
            n_pairs=n, n_ties=counters["ties"],
            sha256=digest, path=relative, size_bytes=size, created_by=user,
        )
    except Exception:
        (Path(django_settings.MEDIA_ROOT) / relative).unlink(missing_ok=True)
        raise
