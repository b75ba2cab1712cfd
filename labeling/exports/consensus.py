"""A task-id range's pairs from its judgments as arrays: the consensus of every task at once with numpy, as
``pair_rows`` computes it one task at a time, and the range's JSON lines joined from pieces.

Every piece of a line but its id and texts (margin…, categories, severity, each axis, harmful…) is
formatted once per distinct combination of its values and shared by the lines that hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson

from ..agreement import dense_index, majority_direction

if TYPE_CHECKING:
    from . import ExportContext

_SLACK = 65536  # codes of rounded numbers span a few tens of thousands however few they are: rank them without a sort


@dataclass
class Judged:
    """A range's judgments as arrays, however they were read, and the rest of its row."""

    record: np.ndarray  # (J,) task offset (id - lo), preference, severities
    axes: np.ndarray  # (J, 2A) x and y of each axis, -1: none
    tags: list[tuple[np.ndarray, np.ndarray]]  # per side: (task offset, tag) of each tag a judgment gave
    tag_names: list[str]  # what a tag indexes, sorted
    order: bytes | None  # reliability_weighted: the judgment id and rater of each record
    gold: bytes | None  # the task offsets of the range's gold tasks
    first_item: int | None  # the range's tasks' items lie within
    last_item: int | None
    adjudications: bytes | None  # task offset, preference, severities of each adjudicated task
    adjudicated_tags: tuple[str | None, str | None]  # their tag lists, per side, one JSON list a line


@dataclass
class Range:
    """A task-id range once its consensus is known: which pairs it exports and every piece of their lines
    but the texts."""

    lo: int
    hi: int
    kept: np.ndarray  # (K,) task offsets (id - lo) of the exported pairs, increasing
    x_chosen: np.ndarray  # (K,) whether x is the chosen reply
    first_item: int | None
    last_item: int | None
    pieces: list[list[bytes]]  # each (K,): margin…, categories, severity, one per axis, harmful…end of line


@dataclass
class Texts:
    """A range's texts, JSON-escaped without quotes, one entry per exported pair in task order."""

    prompt: list[bytes]
    chosen: list[bytes | None]  # None: JSON null
    rejected: list[bytes | None]


def python_round(values: np.ndarray, ndigits: int) -> np.ndarray:
    """Python's ``round(v, ndigits)`` of each value.

    numpy rounds ``v * 10**ndigits`` to an integer and divides back, which is the correctly rounded
    decimal, as Python's, unless the product lies within its rounding error of a half; those few take
    Python's round.
    """
    out = np.round(values, ndigits)
    scaled = values * 10.0**ndigits
    near = np.abs(scaled - np.floor(scaled) - 0.5) <= 4 * np.spacing(np.abs(scaled))
    for i in np.flatnonzero(near).tolist():
        out[i] = round(float(values[i]), ndigits)
    return out


def _take(table: list[bytes], codes: np.ndarray) -> list[bytes]:
    column = np.empty(len(table), dtype=object)
    column[:] = table
    return column[codes].tolist()


def _json_values(values: np.ndarray, *, integers: bool = False) -> tuple[np.ndarray, list[bytes]]:
    """(code of each value, same shape; JSON of each code): numbers as orjson writes them, nan as null.

    Every number exported has at most 4 decimals (rounded means, counts, adjudicated indexes), so
    ``rint(v * 10**4)`` tells them apart as integers, which are ranked without sorting.
    """
    flat = values.ravel()
    keys = np.where(np.isnan(flat), -1, np.rint(np.nan_to_num(flat) * 1e4)).astype(np.int64)
    distinct, codes = dense_index(keys, slack=_SLACK)
    first = np.zeros(len(distinct), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # a place holding each distinct value
    cast = int if integers else float
    return codes.reshape(values.shape), [b"null" if v != v else orjson.dumps(cast(v)) for v in flat[first].tolist()]


def _pieces(fmt: bytes, *columns: tuple[np.ndarray, list[bytes]]) -> list[bytes]:
    """``fmt % (JSON of each column)`` for each row, formatted once per distinct combination."""
    combined = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, table in columns:
        combined = combined * len(table) + codes
    distinct, rows = dense_index(combined, slack=_SLACK)
    texts = []
    for code in distinct.tolist():
        values = []
        for _, table in reversed(columns):
            code, i = divmod(code, len(table))
            values.append(table[i])
        texts.append(fmt % tuple(reversed(values)))
    return _take(texts, rows)


class _TagTable:
    """Distinct tag lists of a range: code 0 is [], each with its JSON and whether the filter wants it."""

    def __init__(self, wanted: tuple[str, ...]) -> None:
        self.codes: dict[tuple[str, ...], int] = {(): 0}
        self.json: list[bytes] = [b"[]"]
        self.hit: list[bool] = [False]
        self.wanted = set(wanted)

    def code(self, tags: tuple[str, ...]) -> int:
        if tags not in self.codes:
            self.codes[tags] = len(self.json)
            self.json.append(orjson.dumps(list(tags)))
            self.hit.append(bool(self.wanted & set(tags)))
        return self.codes[tags]


def _majority_codes(tags: list[tuple[np.ndarray, np.ndarray]], names: list[str], n: np.ndarray,
                    table: _TagTable) -> list[np.ndarray]:
    """Per side, the code of each task's majority tags (given by more than half its judgments)."""
    out = []
    for tag_task, tag in tags:
        codes = np.zeros(len(n), dtype=np.int64)
        if len(tag):
            pair, count = np.unique(tag_task * len(names) + tag, return_counts=True)
            major = pair[count * 2 > n[pair // len(names)]]  # sorted by task, then tag name
            task, first = np.unique(major // len(names), return_index=True)
            alone = np.diff(np.append(first, len(major))) == 1
            single = np.array([table.code((name,)) for name in names], dtype=np.int64)
            codes[task[alone]] = single[major[first[alone]] % len(names)]
            for t in task[~alone].tolist():  # two or more majority tags: rare
                codes[t] = table.code(tuple(names[k] for k in (major[major // len(names) == t] % len(names)).tolist()))
        out.append(codes)
    return out


def _means(task: np.ndarray, values: np.ndarray, width: int) -> np.ndarray:
    """(width, C) per task and column of ``values`` (J, C): the mean of the given values (>= 0), rounded as
    _mean does; nan when none is given."""
    columns = values.shape[1]
    given = values >= 0
    cell = (task[:, None] * columns + np.arange(columns)).ravel()  # (J * C,) the (task, column) of each value
    counts = np.bincount(cell, weights=given.ravel(), minlength=width * columns).reshape(width, columns)
    sums = np.bincount(cell, weights=np.where(given, values, 0).ravel(), minlength=width * columns).reshape(width, columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, python_round(sums / counts, 4), np.nan)


def consensus(ctx: ExportContext, lo: int, hi: int, judged: Judged, counters: dict[str, int]) -> Range:
    """Every task of a range at once, as ``pair_rows`` does one at a time; ``counters`` gets its ties and
    the tasks the filters leave out."""
    filters, width, record, axes = ctx.filters, hi - lo, judged.record, judged.axes
    task = record["task"].astype(np.int64)
    if filters.aggregation == "reliability_weighted":
        ids = np.frombuffer(judged.order or b"", dtype=np.dtype([("id", ">i8"), ("rater", ">i4")]))
        by_task_then_id = np.lexsort((ids["id"], task))  # fixes the order of the weighted sums' additions
        record, task, ids, axes = record[by_task_then_id], task[by_task_then_id], ids[by_task_then_id], axes[by_task_then_id]
    gold_task = np.frombuffer(judged.gold or b"", dtype=">i4")
    if len(gold_task):
        not_gold = ~np.isin(task, gold_task)
        record, task, axes = record[not_gold], task[not_gold], axes[not_gold]
        if filters.aggregation == "reliability_weighted":
            ids = ids[not_gold]
    pref = record["pref"].astype(np.int64)
    n = np.bincount(task, minlength=width)  # (width,) judgments per task id; 0: not a pair of this export
    direction_of = np.sign(pref) + 1  # 0: x better, 1: tie, 2: y better
    count = np.bincount(task * 3 + direction_of, minlength=3 * width).reshape(width, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        if filters.aggregation == "majority":
            sums = np.bincount(task * 3 + direction_of, weights=pref, minlength=3 * width).reshape(width, 3)
            winner = majority_direction(count)  # -1: two directions tie for most
            split = (winner == -1) | (winner == 1)
            rows = np.arange(width)
            value = np.where(split, 0.0, sums[rows, winner] / count[rows, winner])
        else:
            mean = np.bincount(task, weights=pref, minlength=width) / n
            value = mean
            if filters.aggregation == "reliability_weighted":
                raters = np.array(sorted(ctx.rater_weights), dtype=np.int64)
                weights = np.array([ctx.rater_weights[r] for r in raters.tolist()], dtype=np.float64)
                at = np.minimum(np.searchsorted(raters, ids["rater"]), max(len(raters) - 1, 0))
                w = np.where(raters[at] == ids["rater"], weights[at], 0.5) if len(raters) else np.full(len(task), 0.5)
                total = np.bincount(task, weights=w, minlength=width)
                value = np.where(total != 0, np.bincount(task, weights=pref * w, minlength=width) / total, mean)
    # (width, 2 + 2A): severity x, y, then x and y of each axis
    means = _means(task, np.concatenate([record["sev"], axes], axis=1), width)
    tags = _TagTable(filters.categories)
    tags_x, tags_y = _majority_codes(judged.tags, judged.tag_names, n, tags)  # gold tasks' are never kept (n = 0)

    adjudicated = np.zeros(width, dtype=bool)
    adjudication = np.frombuffer(judged.adjudications or b"", dtype=np.dtype([("task", ">i4"), ("pref", ">i2"), ("sev", ">i2", (2,))]))
    if len(adjudication):
        at = adjudication["task"].astype(np.int64)
        adjudicated[at] = True
        value[at] = adjudication["pref"]
        means[at, :2] = adjudication["sev"]
        for t, listed_x, listed_y in zip(at.tolist(), *(lists.split("\n") for lists in judged.adjudicated_tags)):
            tags_x[t] = tags.code(tuple(sorted(orjson.loads(listed_x) or [])))
            tags_y[t] = tags.code(tuple(sorted(orjson.loads(listed_y) or [])))

    present = n > 0  # the others are no pair of this export: other campaigns' ids, gold tasks, no judgment yet
    direction = np.sign(python_round(np.where(present, value, 0.0), 9)).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = count[np.arange(width), direction + 1] / n
    too_few = present & (n < filters.min_judgments)
    tie = present & ~too_few & (direction == 0)
    keep = present & ~too_few & ~tie
    disagreeing = keep & (agreement < filters.min_agreement) & ~adjudicated
    keep &= ~disagreeing
    off_topic = np.zeros(width, dtype=bool)
    if filters.categories:
        hit = np.array(tags.hit)
        off_topic = keep & ~(hit[tags_x] | hit[tags_y])
        keep &= ~off_topic
    counters["ties"] += int(tie.sum())
    counters["filtered"] += int(too_few.sum() + disagreeing.sum() + off_topic.sum())

    kept = np.flatnonzero(keep)
    x_first = direction[kept] < 0

    swap = np.arange(means.shape[1]).reshape(-1, 2)[:, ::-1].ravel()  # x, y → y, x in every pair of columns
    mean_codes, mean_json = _json_values(np.where(x_first[:, None], means[kept], means[kept][:, swap]))  # (K, 2 + 2A)
    tags_c, tags_r = np.where(x_first, tags_x[kept], tags_y[kept]), np.where(x_first, tags_y[kept], tags_x[kept])

    def chosen_rejected(column: int) -> list[tuple[np.ndarray, list[bytes]]]:
        return [(mean_codes[:, column], mean_json), (mean_codes[:, column + 1], mean_json)]

    pieces = [
        _pieces(b'","margin":%s,"n_judgments":%s,"agreement":%s,"categories":{"chosen":',
                _json_values(python_round(np.abs(value[kept]), 4)), _json_values(n[kept].astype(np.float64), integers=True),
                _json_values(python_round(agreement[kept], 4))),
        _pieces(b'%s,"rejected":%s},"severity":{"chosen":', (tags_c, tags.json), (tags_r, tags.json)),
        _pieces(b'%s,"rejected":%s},"axes":{', *chosen_rejected(0)),
    ]
    for i, key in enumerate(ctx.axis_keys):
        fmt = (b"," if i else b"") + orjson.dumps(key).replace(b"%", b"%%") + b':{"chosen":%s,"rejected":%s}'
        pieces.append(_pieces(fmt, *chosen_rejected(2 + 2 * i)))
    sev_c, sev_r = np.where(x_first, means[kept, 0], means[kept, 1]), np.where(x_first, means[kept, 1], means[kept, 0])
    harmful_c = ~np.isnan(sev_c) & (sev_c >= filters.harmful_threshold)
    harmful_r = ~np.isnan(sev_r) & (sev_r >= filters.harmful_threshold)
    ending = [b'},"harmful":{"chosen":%s,"rejected":%s},"spec_version":' % (hc, hr) + orjson.dumps(ctx.spec_label)
              + b',"campaign":' + orjson.dumps(ctx.campaign_name) + b',"adjudicated":' + adj + b"}\n"
              for hc in (b"false", b"true") for hr in (b"false", b"true") for adj in (b"false", b"true")]
    pieces.append(_take(ending, harmful_c * 4 + harmful_r * 2 + adjudicated[kept]))
    return Range(lo=lo, hi=hi, kept=kept, x_chosen=x_first, first_item=judged.first_item, last_item=judged.last_item,
                 pieces=pieces)


def empty_rows(column: list[bytes | None]) -> list[int]:
    """The rows of a column of escaped replies that are empty: b"", a reply of whitespace only having been read
    as '' (``postgresql.BLANK_REPLY``); None, a JSON null, is a missing value, not an empty reply."""
    return [i for i, text in enumerate(column) if text == b""] if b"" in column else []


def without_empty_replies(rng: Range, texts: Texts, counters: dict[str, int]) -> tuple[Range, Texts]:
    """The range less its pairs with an empty chosen or rejected reply, which ``pair_rows`` leaves out too
    (known only once the texts are read); ``counters["empty"]`` gets how many."""
    empty = sorted(set(empty_rows(texts.chosen)) | set(empty_rows(texts.rejected)))
    if not empty:
        return rng, texts
    counters["empty"] += len(empty)
    keep = np.ones(len(rng.kept), dtype=bool)
    keep[empty] = False
    rows = np.flatnonzero(keep).tolist()

    def pick(column: list) -> list:
        return [column[i] for i in rows]

    return (Range(lo=rng.lo, hi=rng.hi, kept=rng.kept[keep], x_chosen=rng.x_chosen[keep], first_item=rng.first_item,
                  last_item=rng.last_item, pieces=[pick(piece) for piece in rng.pieces]),
            Texts(pick(texts.prompt), pick(texts.chosen), pick(texts.rejected)))


def lines(ctx: ExportContext, rng: Range, texts: Texts) -> bytes:
    """The range's JSON lines, joined once from their pieces: each line's head and texts between constants,
    then the pieces made by ``consensus`` (the first opens with the quote that closes the rejected text)."""
    head = b'{"id":"%d-%%d","prompt":"' % ctx.campaign_id
    k = len(rng.kept)
    columns = [list(map(head.__mod__, (rng.kept + rng.lo).tolist())), texts.prompt, [b'","chosen":"'] * k,
               texts.chosen, [b'","rejected":"'] * k, texts.rejected, *rng.pieces]
    width = len(columns)
    flat: list[bytes] = [b""] * (width * k)
    for i, column in enumerate(columns):
        flat[i::width] = column
    if None in texts.chosen or None in texts.rejected:
        for row in range(k):  # JSON null is written without the quotes around a text
            at = row * width
            if texts.chosen[row] is None:
                flat[at + 2:at + 5] = [b'","chosen":', b"null", b',"rejected":"']
            if texts.rejected[row] is None:
                flat[at + 4] = flat[at + 4][:-1]
                flat[at + 5] = b"null"
                flat[at + 6] = flat[at + 6][1:]
    return b"".join(flat)
