"""Inter-rater agreement (SPEC section 3): Krippendorff's alpha, with the ``krippendorff`` package's distances.

Everything is in canonical orientation (x/y), so display order never matters. Judgments are loaded
as flat numpy arrays (on PostgreSQL as packed binary records, one query) and turned into value counts
per unit (units × values). Alpha comes from Krippendorff's coincidence matrix, one small matrix
product over the value counts, and the package's own distance function for the level of measurement
(nominal, ordinal, interval), so the numbers are the package's. ``krippendorff.alpha(value_counts=...)``
itself builds a (units × values × values) temporary: at 666k reply units and 39 alphas, most of the time.
"""

import json
from dataclasses import dataclass, field
from functools import cached_property, reduce
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction

# Private names: tests/labeling/test_agreement.py checks them against krippendorff.alpha so that an
# upgrade that moves or changes them fails there, not silently here.
from krippendorff.krippendorff import _distance_metric, _distances

PREFERENCE_DOMAIN = np.arange(-2, 3)  # -2 x much better … 2 y much better
DIRECTION_NAMES = ("x", "tie", "y")


@dataclass
class JudgmentArrays:
    """One entry per judgment (index j), plus the category tags (index g), both in no particular order.

    Nothing computed from them depends on the order: per-unit value counts and per-rater sums are integers.
    """

    judgment_id: np.ndarray  # (J,) int64
    task: np.ndarray  # (J,) int64
    rater: np.ndarray  # (J,) int64
    preference: np.ndarray  # (J,) int64, canonical -2..2
    severity_x: np.ndarray  # (J,) float, nan when not given
    severity_y: np.ndarray
    seconds: np.ndarray  # (J,) float, nan when not given
    gold: np.ndarray  # (J,) canonical gold preference of the task, nan for non-gold tasks
    axes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # key: ((J,) x, (J,) y), nan: none
    tag_task: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (G,) task id
    tag_side: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (G,) 0 = x, 1 = y
    tag_key: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (G,) index into tag_names
    tag_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.task)

    @cached_property
    def units(self) -> tuple[np.ndarray, np.ndarray]:
        """(task ids (T,) increasing, task index of each judgment (J,)): every alpha and table shares it."""
        return dense_index(self.task)

    @cached_property
    def preference_counts(self) -> np.ndarray:
        """(T, 5) judgments of each task per canonical preference -2..2."""
        tasks, unit = self.units
        return np.bincount(unit * 5 + self.preference + 2, minlength=len(tasks) * 5).reshape(len(tasks), 5)

    @cached_property
    def direction_counts(self) -> np.ndarray:
        """(T, 3) judgments of each task preferring x, tying, preferring y (alpha, rater table and queue)."""
        p = self.preference_counts
        return np.stack([p[:, 0] + p[:, 1], p[:, 2], p[:, 3] + p[:, 4]], axis=1)


def dense_index(ids: np.ndarray, *, slack: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` without sorting when the ids are dense enough.

    Task and rater ids of a campaign are mostly consecutive, so a presence table over their range ranks
    them in O(J); ids spread over more than 4 × J + ``slack`` fall back to the sort.
    """
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(ids.min()), int(ids.max())
    if high - low > 4 * len(ids) + slack:
        unique, index = np.unique(ids, return_inverse=True)
        return unique, index.reshape(-1)
    seen = np.zeros(high - low + 1, dtype=bool)  # (range,)
    seen[ids - low] = True
    rank = np.cumsum(seen) - 1  # (range,) index of each present id
    return np.flatnonzero(seen) + low, rank[ids - low]


# --- loading ---------------------------------------------------------------------------------------


def load_arrays(campaign_id: int, axis_keys: list[str]) -> JudgmentArrays:
    """All judgments of a campaign as arrays: packed binary records on PostgreSQL, plain rows elsewhere (SQLite)."""
    if connection.vendor == "postgresql":
        return load_arrays_postgresql(campaign_id, axis_keys)
    return load_arrays_generic(campaign_id, axis_keys)


# One aggregate row carries the whole campaign. Each judgment becomes two fixed-width records of
# big-endian values (the types' binary send functions, concatenated), one of 8-byte values and one of
# 2-byte ones, and string_agg packs them, so numpy reads each as a (J × fields) matrix; nothing per
# judgment crosses into Python. (COPY ... (FORMAT binary) sends a message per judgment, and reading 1M
# of them through psycopg took longer than the query.) NULL has no width: an absent index is -1.
_WIDE = "int8send(j.id) || int8send(j.task_id) || int8send(j.rater_id) || float8send(COALESCE(j.seconds, 'NaN'))"
_SMALL = (
    "int2send(j.preference_xy) || int2send(COALESCE(j.severity_x, -1::int2))"
    " || int2send(COALESCE(j.severity_y, -1::int2))"
)
_SMALL_AXIS = " || int2send(COALESCE((j.axes_xy -> %s ->> %s)::int2, -1::int2))"
# The inner query (kept apart by OFFSET 0) computes the records, which the planner can then hand to
# parallel workers: the JSON extraction is most of the query's time. Category tags ride along: per
# side, the task of every judgment that tagged something and its (few distinct) tag lists as text.
# No ORDER BY: the judgments come in heap order (sorting 1M rows here, or in numpy, only costs time).
_POSTGRESQL_SQL = """
SELECT string_agg(wide, ''::bytea), string_agg(small, ''::bytea),
       string_agg(int8send(task_id), ''::bytea) FILTER (WHERE tagged_x),
       string_agg(categories_x::text, E'\\n') FILTER (WHERE tagged_x),
       string_agg(int8send(task_id), ''::bytea) FILTER (WHERE tagged_y),
       string_agg(categories_y::text, E'\\n') FILTER (WHERE tagged_y)
FROM (SELECT {wide} AS wide, {small} AS small, j.task_id, j.categories_x, j.categories_y,
             j.categories_x <> '[]' AS tagged_x, j.categories_y <> '[]' AS tagged_y
      FROM labeling_judgment j WHERE j.campaign_id = %s OFFSET 0) judgment
"""
_GOLD_SQL = "SELECT id, gold_preference FROM labeling_task WHERE campaign_id = %s AND gold_preference IS NOT NULL"


def load_arrays_postgresql(campaign_id: int, axis_keys: list[str]) -> JudgmentArrays:
    """Judgments and tags in one aggregate query read straight into numpy; gold tasks in a small one."""
    sql = _POSTGRESQL_SQL.format(wide=_WIDE, small=_SMALL + _SMALL_AXIS * (2 * len(axis_keys)))
    params: list[Any] = [p for key in axis_keys for side in "xy" for p in (key, side)] + [campaign_id]
    connection.ensure_connection()
    with transaction.atomic(using=connection.alias):
        # Passing a row to the leader is priced well above the JSON work a worker saves; the default would
        # keep the scan serial. SET LOCAL ends with the transaction; restored below for an outer one.
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('parallel_tuple_cost')")
            tuple_cost = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('parallel_tuple_cost', '0.001', true)")
        # A plain psycopg cursor: Django's (client-side binding) cannot ask for binary results, and text
        # results would send the bytea as hex, twice the size.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, binary=True)
            wide, small, tasks_x, lists_x, tasks_y, lists_y = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('parallel_tuple_cost', %s, true)", [tuple_cost])
            cursor.execute(_GOLD_SQL, [campaign_id])
            gold_rows = cursor.fetchall()
    wide = np.frombuffer(wide or b"", dtype=">i8").reshape(-1, 4)  # (J, 4): id, task, rater, seconds' bits
    small = np.frombuffer(small or b"", dtype=">i2").reshape(len(wide), 3 + 2 * len(axis_keys))  # (J, 3 + 2A)
    ids = np.ascontiguousarray(wide[:, :3].T, dtype=np.int64)  # (3, J): one pass each to native, column-major
    seconds = wide[:, 3].view(">f8").astype(np.float64)  # (J,)
    indexes = np.ascontiguousarray(small.T, dtype=np.float64)  # (3 + 2A, J): preference, severities, axes
    given = indexes[1:]  # severities and axes: -1 was "not given"
    given[given < 0] = np.nan
    arrays = _arrays_from_columns([*ids, *indexes[:3], seconds, *indexes[3:]], axis_keys, _gold_of(ids[1], gold_rows))
    sides = [(tasks_x, lists_x), (tasks_y, lists_y)]
    ((task_x, key_x), (task_y, key_y)), arrays.tag_names = tags_of_sides(sides, ">i8")
    arrays.tag_task = np.concatenate([task_x, task_y])
    arrays.tag_side = np.repeat([0, 1], [len(task_x), len(task_y)])
    arrays.tag_key = np.concatenate([key_x, key_y])
    return arrays


def tags_of_sides(
    sides: list[tuple[bytes | None, str | None]], task_dtype: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Per side, (task of each tag (G,), its index into the names), and the tag names, sorted.

    Each side comes as the packed big-endian task ids (``task_dtype``) of the judgments that tagged
    something and their JSON lists of keys, one a line (JSON text escapes newlines). The lists repeat
    (a spec has a few dozen categories), so each distinct one is parsed once and its judgments are found
    by grouping. A key listed twice counts twice.
    """
    parsed_sides = []
    for packed, lists in sides:
        task = np.frombuffer(packed or b"", dtype=task_dtype).astype(np.int64)  # (N,)
        lines = lists.split("\n") if lists else []
        if len(task) != len(lines):
            raise ValueError(f"{len(task)} tagged judgments but {len(lines)} tag lists")
        distinct = {text: i for i, text in enumerate(dict.fromkeys(lines))}
        list_code = np.fromiter(map(distinct.__getitem__, lines), dtype=np.int64, count=len(lines))  # (N,)
        parsed_sides.append((task, list_code, [json.loads(text) for text in distinct]))
    names = sorted({key for _, _, parsed in parsed_sides for keys in parsed for key in keys})
    index = {name: i for i, name in enumerate(names)}
    out = []
    for task, list_code, parsed in parsed_sides:
        order = np.argsort(list_code, kind="stable")
        bounds = np.searchsorted(list_code[order], np.arange(len(parsed) + 1))
        tasks, keys = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for i, listed in enumerate(parsed):
            group = task[order[bounds[i]:bounds[i + 1]]]
            for key in listed:
                tasks.append(group)
                keys.append(np.full(len(group), index[key], dtype=np.int64))
        out.append((np.concatenate(tasks), np.concatenate(keys)))
    return out, names


def _gold_of(task: np.ndarray, gold_rows: list[tuple[int, int]]) -> np.ndarray:
    """(J,) the gold preference of each judgment's task, nan where the task has none."""
    gold = np.full(len(task), np.nan)
    if gold_rows:
        gold_task, gold_value = np.array(gold_rows, dtype=np.int64).T  # (K,), (K,)
        order = np.argsort(gold_task)
        gold_task, gold_value = gold_task[order], gold_value[order]
        at = np.minimum(np.searchsorted(gold_task, task), len(gold_task) - 1)
        hit = gold_task[at] == task
        gold[hit] = gold_value[at[hit]]
    return gold


def _arrays_from_columns(values: list[np.ndarray], axis_keys: list[str], gold: np.ndarray) -> JudgmentArrays:
    """values (J,) each: id, task, rater, preference, severity x, severity y, seconds, then x and y of each axis."""
    judgment_id, task, rater, preference = (np.asarray(v, dtype=np.int64) for v in values[:4])
    severity_x, severity_y, seconds, *axes = (np.asarray(v, dtype=np.float64) for v in values[4:])
    return JudgmentArrays(
        judgment_id=judgment_id, task=task, rater=rater, preference=preference, severity_x=severity_x,
        severity_y=severity_y, seconds=seconds, gold=gold,
        axes={key: (axes[2 * i], axes[2 * i + 1]) for i, key in enumerate(axis_keys)},
    )


def load_arrays_generic(campaign_id: int, axis_keys: list[str]) -> JudgmentArrays:
    """The same arrays from ordinary row fetches: SQLite (the embedded demo), and a check on the PostgreSQL path."""
    axis_sql = "".join(", (j.axes_xy -> %s ->> 'x')::float, (j.axes_xy -> %s ->> 'y')::float" for _ in axis_keys)
    if connection.vendor == "sqlite":
        axis_sql = "".join(
            ", CAST(json_extract(j.axes_xy, '$.\"' || %s || '\".x') AS REAL),"
            " CAST(json_extract(j.axes_xy, '$.\"' || %s || '\".y') AS REAL)" for _ in axis_keys
        )
    params: list[Any] = [p for key in axis_keys for p in (key, key)] + [campaign_id]
    sql = (
        "SELECT j.id, j.task_id, j.rater_id, j.preference_xy, j.severity_x, j.severity_y, j.seconds, t.gold_preference"
        f"{axis_sql} FROM labeling_judgment j JOIN labeling_task t ON t.id = j.task_id"
        " WHERE j.campaign_id = %s ORDER BY j.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = 8 + 2 * len(axis_keys)
    data = np.array(rows, dtype=np.float64).reshape(len(rows), width) if rows else np.zeros((0, width))  # None → nan
    columns = np.ascontiguousarray(data.T)  # (width, J)
    arrays = _arrays_from_columns([columns[i] for i in (0, 1, 2, 3, 4, 5, 6, *range(8, width))], axis_keys, columns[7])
    if connection.vendor == "sqlite":
        tag_sql = (
            "SELECT j.task_id, 0, e.value FROM labeling_judgment j, json_each(j.categories_x) e WHERE j.campaign_id = %s "
            "UNION ALL SELECT j.task_id, 1, e.value FROM labeling_judgment j, json_each(j.categories_y) e WHERE j.campaign_id = %s"
        )
    else:
        tag_sql = (
            "SELECT j.task_id, 0, e FROM labeling_judgment j, jsonb_array_elements_text(j.categories_x) e WHERE j.campaign_id = %s "
            "UNION ALL SELECT j.task_id, 1, e FROM labeling_judgment j, jsonb_array_elements_text(j.categories_y) e WHERE j.campaign_id = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(tag_sql, [campaign_id, campaign_id])
        tags = cursor.fetchall()
    if tags:
        arrays.tag_names = sorted({t[2] for t in tags})
        code = {name: i for i, name in enumerate(arrays.tag_names)}
        arrays.tag_task = np.array([t[0] for t in tags], dtype=np.int64)
        arrays.tag_side = np.array([t[1] for t in tags], dtype=np.int64)
        arrays.tag_key = np.array([code[t[2]] for t in tags], dtype=np.int64)
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


def row_sums(counts: np.ndarray) -> np.ndarray:
    """(U,) from (U × V): as a product, several times faster than ``sum(axis=1)`` over a short last axis."""
    return counts @ np.ones(counts.shape[1], dtype=counts.dtype)


def coincidences(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix (V × V) of value counts (U × V): Σ_u (c_u c_uᵀ − diag c_u) / (m_u − 1).

    Units with fewer than two values are not pairable and add nothing. As a product this is
    (U × V)ᵀ @ (U × V), where ``krippendorff._coincidences`` materialises (U × V × V).
    """
    m = row_sums(counts)  # (U,) values per unit
    weight = np.divide(1.0, m - 1, out=np.zeros(len(m)), where=m >= 2)  # (U,)
    return (counts * weight[:, None]).T @ counts - np.diag(weight @ counts)


def alpha_from_coincidences(o: np.ndarray, domain: np.ndarray, level: str) -> float | None:
    """1 − observed / expected disagreement, with the package's distance for the level of measurement.

    None when alpha is undefined: no pairable values, or only one value in use.
    """
    n_v = o.sum(axis=0)  # (V,) pairable values of each kind
    if np.count_nonzero(n_v) < 2:
        return None
    expected = (np.outer(n_v, n_v) - np.diag(n_v)) / (n_v.sum() - 1)  # (V, V)
    d = _distances(np.asarray(domain), _distance_metric(level), n_v)  # (V, V)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 1 - float((o * d).sum() / (expected * d).sum())
    return round(value, 6) if np.isfinite(value) else None


def alpha_of(counts: np.ndarray, domain: np.ndarray, level: str) -> dict[str, Any]:
    """Krippendorff's alpha over the units that have at least two values (the pairable ones)."""
    return _alpha_stats([counts], domain, level)


def _alpha_stats(blocks: list[np.ndarray], domain: np.ndarray, level: str) -> dict[str, Any]:
    """alpha, pairable units and their values over value-count blocks of disjoint units (x and y replies).

    Coincidences add up over units, so the x and y replies need not be stacked into one matrix.
    """
    m = [row_sums(block) for block in blocks]  # per block (U,)
    return {
        "alpha": alpha_from_coincidences(sum(coincidences(block) for block in blocks), domain, level),
        "n_units": int(sum(np.count_nonzero(mb >= 2) for mb in m)),
        "n_values": int(sum(mb[mb >= 2].sum() for mb in m)),
    }


def _counts_by_unit(unit: np.ndarray, n_units: int, values: np.ndarray, size: int) -> np.ndarray:
    """(n_units × size) counts of values 0..size-1 per unit; nan (not given) and anything else is left out."""
    given = (values >= 0) & (values < size)  # (J,) False for nan
    code = unit[given] * size + values[given].astype(np.int64)
    return np.bincount(code, minlength=n_units * size).reshape(n_units, size).astype(np.float64)


def category_alphas(
    m: np.ndarray, tag_unit: np.ndarray, tag_side: np.ndarray, tag_key: np.ndarray, n_keys: int
) -> list[dict[str, Any]]:
    """Nominal present/absent alpha of every category at once, from the tags alone.

    Every judgment rates both replies for every category, so a reply unit with m judgments of which p
    tagged the category has value counts (m − p, p). Its coincidences are p(p−1)/(m−1) present-present
    and p(m−p)/(m−1) each way present-absent, and absent-absent is whatever remains of the m values:
    summing over the tags alone gives all categories without a (units × 2) matrix per category.
    m: (T,) judgments per task; tag_unit, tag_side, tag_key: (G,).
    """
    span = max(len(m), 1)  # to number (key, side, task) triples
    pairable = m >= 2  # (T,)
    n_values = 2 * int(m[pairable].sum())  # both replies of every pairable task
    pair, p = np.unique((tag_key * 2 + tag_side) * span + tag_unit, return_counts=True)  # (P,) distinct (key, reply)
    key, task = pair // (2 * span), pair % span
    keep = pairable[task]
    key, p, mk = key[keep], p[keep].astype(np.float64), m[task[keep]].astype(np.float64)
    both = np.bincount(key, weights=p * (p - 1) / (mk - 1), minlength=n_keys)  # (K,) present-present
    mixed = np.bincount(key, weights=p * (mk - p) / (mk - 1), minlength=n_keys)  # (K,) present-absent
    stats = []
    for k in range(n_keys):
        o = np.array([[n_values - both[k] - 2 * mixed[k], mixed[k]], [mixed[k], both[k]]])
        stats.append({"alpha": alpha_from_coincidences(o, np.arange(2), "nominal"),
                      "n_units": 2 * int(np.count_nonzero(pairable)), "n_values": n_values})
    return stats


# --- rater table and disagreement queue ------------------------------------------------------------


def _direction(preference: np.ndarray) -> np.ndarray:
    return np.sign(preference).astype(np.int64) + 1  # 0 = x better, 1 = tie, 2 = y better


def majority_direction(counts: np.ndarray) -> np.ndarray:
    """Per row: the direction most judgments chose, or -1 when two directions tie for most."""
    columns = list(counts.T)  # D × (N,): column by column, as a reduction over a short last axis is slow
    top = reduce(np.maximum, columns)  # (N,)
    out = np.zeros(len(top), dtype=np.int64)
    n_top = np.zeros(len(top), dtype=np.int64)
    for d in reversed(range(len(columns))):  # the lowest direction with the most wins
        is_top = columns[d] == top
        out[is_top] = d
        n_top += is_top
    out[(n_top > 1) | (top == 0)] = -1
    return out


def rater_table(arrays: JudgmentArrays) -> list[dict[str, Any]]:
    """Per rater: agreement with the leave-one-out consensus, judgments, median seconds, gold accuracy."""
    if len(arrays) == 0:
        return []
    counts, (_, index) = arrays.direction_counts, arrays.units
    direction = _direction(arrays.preference)
    # The consensus of the others depends only on the task and the judgment's own direction: (T, 3).
    # (Row u, column d is only read for judgments of u that chose d, so counts[u, d] - 1 >= 0 there.)
    leave_one_out = np.stack([majority_direction(counts - np.eye(3, dtype=counts.dtype)[d]) for d in range(3)], axis=1)
    consensus = leave_one_out[index, direction]  # (J,)
    scored = consensus >= 0  # another rater judged the task and the others did not tie
    agrees = (consensus == direction) & scored
    gold_mask = ~np.isnan(arrays.gold)
    gold_right = gold_mask & (np.sign(np.nan_to_num(arrays.gold)) == np.sign(arrays.preference))
    raters, rater_index = dense_index(arrays.rater)
    n = np.bincount(rater_index)
    n_scored = np.bincount(rater_index, weights=scored)
    n_agree = np.bincount(rater_index, weights=agrees)
    n_gold = np.bincount(rater_index, weights=gold_mask)
    n_gold_right = np.bincount(rater_index, weights=gold_right)
    # Group by rater with a stable sort on the smallest integer type: numpy radix-sorts 8/16-bit keys.
    order = np.argsort(rater_index.astype(np.min_scalar_type(len(raters))), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(n)])
    table = []
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
    counts, (tasks, index) = arrays.direction_counts, arrays.units
    total = row_sums(counts)
    share_majority = reduce(np.maximum, list(counts.T)) / np.maximum(total, 1)
    preference = arrays.preference.astype(float)
    spread = np.sqrt(np.maximum(
        np.bincount(index, weights=preference ** 2) / np.maximum(total, 1)
        - (np.bincount(index, weights=preference) / np.maximum(total, 1)) ** 2, 0))
    candidates = np.flatnonzero((total >= 2) & ((share_majority < 1) | (spread > 0)))
    order = candidates[np.lexsort((-spread[candidates], share_majority[candidates]))][:limit]
    return [
        {"task": int(tasks[i]), "n_judgments": int(total[i]), "agreement": round(float(share_majority[i]), 4),
         "spread": round(float(spread[i]), 4), "directions": dict(zip(DIRECTION_NAMES, map(int, counts[i])))}
        for i in order
    ]


# --- everything ------------------------------------------------------------------------------------


def agreement_compute(
    arrays: JudgmentArrays, *, axes: dict[str, int], categories: list[str], severity_levels: int
) -> dict[str, Any]:
    """Every alpha of SPEC section 3 plus the rater table and the disagreement queue."""
    tasks, unit = arrays.units
    n_tasks = len(tasks)
    result: dict[str, Any] = {
        "n_judgments": len(arrays),
        "n_tasks": n_tasks,
        "preference": alpha_of(arrays.preference_counts.astype(np.float64), PREFERENCE_DOMAIN, "ordinal"),
        "preference_direction": alpha_of(arrays.direction_counts.astype(np.float64), np.arange(3), "nominal"),
    }

    def per_reply(x: np.ndarray, y: np.ndarray, size: int) -> dict[str, Any]:
        # Units are replies (task, side): the x and y replies of a task are different units.
        blocks = [_counts_by_unit(unit, n_tasks, values, size) for values in (x, y)]
        return _alpha_stats(blocks, np.arange(size), "ordinal")

    result["severity"] = per_reply(arrays.severity_x, arrays.severity_y, severity_levels)
    missing = np.full(len(arrays), np.nan)
    result["axes"] = {key: per_reply(*arrays.axes.get(key, (missing, missing)), size) for key, size in axes.items()}
    # Categories by name: the arrays name only the keys some judgment used, in their own order.
    position = {key: i for i, key in enumerate(categories)}
    tag_key = np.array([position.get(name, -1) for name in arrays.tag_names], dtype=np.int64)[arrays.tag_key]  # (G,)
    known = tag_key >= 0  # -1: a key the spec version does not have
    m = np.bincount(unit, minlength=n_tasks)  # (T,) judgments per task
    tag_unit = np.searchsorted(tasks, arrays.tag_task[known])
    stats = category_alphas(m, tag_unit, arrays.tag_side[known], tag_key[known], len(categories))
    n_tagged = np.bincount(tag_key[known], minlength=len(categories))
    result["categories"] = {key: {**s, "n_tagged": int(n)} for key, s, n in zip(categories, stats, n_tagged)}
    result["raters"] = rater_table(arrays)
    result["disagreements"] = task_disagreement(arrays)
    return result
