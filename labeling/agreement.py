"""Inter-rater agreement (SPEC section 3), computed with the ``krippendorff`` package.

Everything is in canonical orientation (x/y), so display order never matters. Judgments are loaded
as flat numpy arrays and turned into value-count matrices (units × values), the form
``krippendorff.alpha(value_counts=...)`` takes: memory grows with units, not raters × units.
"""

from dataclasses import dataclass, field
from typing import Any

import krippendorff
import numpy as np
from django.db import connection

PREFERENCE_DOMAIN = np.arange(-2, 3)  # -2 x much better … 2 y much better
DIRECTION_NAMES = ("x", "tie", "y")


@dataclass
class JudgmentArrays:
    """One entry per judgment (index j), plus category tags as (judgment, side, key) triples."""

    judgment_id: np.ndarray
    task: np.ndarray
    rater: np.ndarray
    preference: np.ndarray  # canonical -2..2
    severity_x: np.ndarray  # float, nan when not given
    severity_y: np.ndarray
    seconds: np.ndarray  # float, nan when not given
    gold: np.ndarray  # canonical gold preference, nan for non-gold tasks
    axes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    tag_judgment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # index into arrays
    tag_side: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # 0 = x, 1 = y
    tag_key: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return len(self.task)


def load_arrays(campaign_id: int, axis_keys: list[str]) -> JudgmentArrays:
    """All judgments of a campaign as arrays: one query for the values, one for the category tags."""
    axis_sql = "".join(
        ", (j.axes_xy -> %s ->> 'x')::float, (j.axes_xy -> %s ->> 'y')::float" for _ in axis_keys
    )
    params: list[Any] = [p for key in axis_keys for p in (key, key)] + [campaign_id]
    if connection.vendor == "sqlite":
        axis_sql = "".join(
            ", CAST(json_extract(j.axes_xy, '$.\"' || %s || '\".x') AS REAL),"
            " CAST(json_extract(j.axes_xy, '$.\"' || %s || '\".y') AS REAL)" for _ in axis_keys
        )
    sql = (
        "SELECT j.id, j.task_id, j.rater_id, j.preference_xy, j.severity_x, j.severity_y, j.seconds, t.gold_preference"
        f"{axis_sql} FROM labeling_judgment j JOIN labeling_task t ON t.id = j.task_id"
        " WHERE j.campaign_id = %s ORDER BY j.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = 8 + 2 * len(axis_keys)
    data = np.array(rows, dtype=np.float64).reshape(len(rows), width) if rows else np.zeros((0, width))
    arrays = JudgmentArrays(
        judgment_id=data[:, 0].astype(np.int64), task=data[:, 1].astype(np.int64), rater=data[:, 2].astype(np.int64),
        preference=data[:, 3].astype(np.int64), severity_x=data[:, 4], severity_y=data[:, 5], seconds=data[:, 6],
        gold=data[:, 7],
        axes={key: (data[:, 8 + 2 * i], data[:, 9 + 2 * i]) for i, key in enumerate(axis_keys)},
    )
    if connection.vendor == "sqlite":
        tag_sql = (
            "SELECT j.id, 0, e.value FROM labeling_judgment j, json_each(j.categories_x) e WHERE j.campaign_id = %s "
            "UNION ALL SELECT j.id, 1, e.value FROM labeling_judgment j, json_each(j.categories_y) e WHERE j.campaign_id = %s"
        )
    else:
        tag_sql = (
            "SELECT j.id, 0, e FROM labeling_judgment j, jsonb_array_elements_text(j.categories_x) e WHERE j.campaign_id = %s "
            "UNION ALL SELECT j.id, 1, e FROM labeling_judgment j, jsonb_array_elements_text(j.categories_y) e WHERE j.campaign_id = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(tag_sql, [campaign_id, campaign_id])
        tags = cursor.fetchall()
    if tags:
        ids = np.fromiter((t[0] for t in tags), dtype=np.int64, count=len(tags))
        arrays.tag_judgment = np.searchsorted(arrays.judgment_id, ids)
        arrays.tag_side = np.fromiter((t[1] for t in tags), dtype=np.int64, count=len(tags))
        arrays.tag_key = np.array([t[2] for t in tags], dtype=object)
    return arrays


# --- alpha -----------------------------------------------------------------------------------------


def value_counts(units: np.ndarray, values: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """(units × values) counts from parallel arrays; missing values (nan) are left out."""
    keep = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(len(values), dtype=bool)
    units, values = units[keep], values[keep]
    if len(units) == 0:
        return np.zeros((0, len(domain)))
    _, unit_index = np.unique(units, return_inverse=True)
    value_index = np.searchsorted(domain, values)
    n_units = unit_index.max() + 1
    counts = np.bincount(unit_index * len(domain) + value_index, minlength=n_units * len(domain))
    return counts.reshape(n_units, len(domain)).astype(np.float64)


def alpha_of(counts: np.ndarray, domain: np.ndarray, level: str) -> dict[str, Any]:
    """Krippendorff's alpha over the units that have at least two values (the pairable ones)."""
    pairable = counts[counts.sum(axis=1) >= 2]
    result: dict[str, Any] = {"alpha": None, "n_units": int(len(pairable)), "n_values": int(pairable.sum())}
    if len(pairable) == 0 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return result  # no pairable units, or every value the same: alpha is undefined
    value = float(krippendorff.alpha(value_counts=pairable, value_domain=domain, level_of_measurement=level))
    result["alpha"] = None if np.isnan(value) else round(value, 6)
    return result


def _direction(preference: np.ndarray) -> np.ndarray:
    return np.sign(preference).astype(np.int64) + 1  # 0 = x better, 1 = tie, 2 = y better


def _per_task_directions(arrays: JudgmentArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(task ids, direction counts per task (T × 3), task index of each judgment)."""
    tasks, index = np.unique(arrays.task, return_inverse=True)
    counts = np.bincount(index * 3 + _direction(arrays.preference), minlength=len(tasks) * 3).reshape(len(tasks), 3)
    return tasks, counts, index


def majority_direction(counts: np.ndarray) -> np.ndarray:
    """Per row: the direction most judgments chose, or -1 when two directions tie for most."""
    top = counts.max(axis=1, keepdims=True)
    winners = counts == top
    out = counts.argmax(axis=1)
    out[(winners.sum(axis=1) > 1) | (top[:, 0] == 0)] = -1
    return out


def rater_table(arrays: JudgmentArrays) -> list[dict[str, Any]]:
    """Per rater: agreement with the leave-one-out consensus, judgments, median seconds, gold accuracy."""
    if len(arrays) == 0:
        return []
    _, counts, index = _per_task_directions(arrays)
    direction = _direction(arrays.preference)
    others = counts[index].copy()
    others[np.arange(len(arrays)), direction] -= 1
    consensus = majority_direction(others)
    scored = consensus >= 0  # another rater judged the task and the others did not tie
    agrees = (consensus == direction) & scored
    gold_mask = ~np.isnan(arrays.gold)
    gold_right = gold_mask & (np.sign(np.nan_to_num(arrays.gold)) == np.sign(arrays.preference))
    raters, rater_index = np.unique(arrays.rater, return_inverse=True)
    n = np.bincount(rater_index)
    n_scored = np.bincount(rater_index, weights=scored)
    n_agree = np.bincount(rater_index, weights=agrees)
    n_gold = np.bincount(rater_index, weights=gold_mask)
    n_gold_right = np.bincount(rater_index, weights=gold_right)
    order = np.lexsort((arrays.seconds, rater_index))  # by rater, then seconds (nan last)
    table = []
    bounds = np.concatenate([[0], np.cumsum(n)])
    for i, rater in enumerate(raters):
        seconds = arrays.seconds[order[bounds[i]:bounds[i + 1]]]
        seconds = seconds[~np.isnan(seconds)]
        table.append({
            "rater": int(rater),
            "n_judgments": int(n[i]),
            "agreement": round(float(n_agree[i] / n_scored[i]), 4) if n_scored[i] else None,
            "n_compared": int(n_scored[i]),
            "median_seconds": round(float(np.median(seconds)), 1) if len(seconds) else None,
            "gold_accuracy": round(float(n_gold_right[i] / n_gold[i]), 4) if n_gold[i] else None,
            "n_gold": int(n_gold[i]),
        })
    return table


def task_disagreement(arrays: JudgmentArrays, *, limit: int = 200) -> list[dict[str, Any]]:
    """Tasks with two or more judgments, most disputed first: share outside the majority, then spread."""
    if len(arrays) == 0:
        return []
    tasks, counts, index = _per_task_directions(arrays)
    total = counts.sum(axis=1)
    share_majority = counts.max(axis=1) / np.maximum(total, 1)
    spread = np.sqrt(np.maximum(
        np.bincount(index, weights=arrays.preference.astype(float) ** 2) / np.maximum(total, 1)
        - (np.bincount(index, weights=arrays.preference.astype(float)) / np.maximum(total, 1)) ** 2, 0))
    candidates = np.flatnonzero((total >= 2) & ((share_majority < 1) | (spread > 0)))
    order = candidates[np.lexsort((-spread[candidates], share_majority[candidates]))][:limit]
    return [
        {"task": int(tasks[i]), "n_judgments": int(total[i]), "agreement": round(float(share_majority[i]), 4),
         "spread": round(float(spread[i]), 4), "directions": dict(zip(DIRECTION_NAMES, map(int, counts[i])))}
        for i in order
    ]


def agreement_compute(
    arrays: JudgmentArrays, *, axes: dict[str, int], categories: list[str], severity_levels: int
) -> dict[str, Any]:
    """Every alpha of SPEC section 3 plus the rater table and the disagreement queue."""
    direction = _direction(arrays.preference).astype(np.float64)
    result: dict[str, Any] = {
        "n_judgments": len(arrays),
        "n_tasks": int(len(np.unique(arrays.task))),
        "preference": alpha_of(value_counts(arrays.task, arrays.preference.astype(np.float64), PREFERENCE_DOMAIN.astype(float)),
                               PREFERENCE_DOMAIN, "ordinal"),
        "preference_direction": alpha_of(value_counts(arrays.task, direction, np.arange(3.0)), np.arange(3), "nominal"),
    }
    reply_units = np.concatenate([arrays.task * 2, arrays.task * 2 + 1])
    severity = np.concatenate([arrays.severity_x, arrays.severity_y])
    domain = np.arange(float(severity_levels))
    result["severity"] = alpha_of(value_counts(reply_units, severity, domain), domain, "ordinal")
    result["axes"] = {}
    for key, size in axes.items():
        x, y = arrays.axes.get(key, (np.full(len(arrays), np.nan), np.full(len(arrays), np.nan)))
        domain = np.arange(float(size))
        result["axes"][key] = alpha_of(value_counts(reply_units, np.concatenate([x, y]), domain), domain, "ordinal")
    # Categories: every judgment rates both replies present/absent for every category.
    _, reply_index = np.unique(reply_units, return_inverse=True)
    n_reply_units = reply_index.max() + 1 if len(reply_index) else 0
    judged = np.bincount(reply_index, minlength=n_reply_units).astype(np.float64)
    tag_units = np.searchsorted(np.unique(reply_units), arrays.task[arrays.tag_judgment] * 2 + arrays.tag_side)
    result["categories"] = {}
    for key in categories:
        mask = arrays.tag_key == key
        present = np.bincount(tag_units[mask], minlength=n_reply_units).astype(np.float64)
        counts = np.stack([judged - present, present], axis=1) if n_reply_units else np.zeros((0, 2))
        stats = alpha_of(counts, np.arange(2), "nominal")
        stats["n_tagged"] = int(mask.sum())
        result["categories"][key] = stats
    result["raters"] = rater_table(arrays)
    result["disagreements"] = task_disagreement(arrays)
    return result
