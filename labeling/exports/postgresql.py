"""The PostgreSQL path: a campaign read in task-id ranges, each in two aggregate queries.

A range's judgments come as fixed-width binary records (``_JUDGMENTS_SQL``); once ``consensus`` knows
which of its pairs are exported and which reply is chosen, their texts come in task order, three strings
split by a control character (``_TEXTS_SQL``), JSON-escaped by one orjson call each; a pair with an empty
reply (read as '') is dropped then, its texts being the first place its emptiness is known. One thread reads
judgments ahead, another the texts, on a second connection that shares the first one's snapshot.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from django.db import connection, transaction
from psycopg import Cursor, sql

from ..agreement import tags_of_sides
from .consensus import Judged, Range, Texts, consensus, lines, without_empty_replies

if TYPE_CHECKING:
    from . import ExportContext

RANGE_IDS = 4096  # task ids per range; a range's texts (a few MiB) are the largest thing held at once
ITEM_SPREAD = 4  # a range's items are read by id range while their ids span less than this many times its own

# Each judgment becomes one fixed-width record of big-endian values (the types' binary send functions);
# string_agg packs a range's records and numpy reads them as one structured array. NULL has no width:
# an absent index is -1. Gold tasks of the range and adjudications come in the same row.
_RECORD = ("int4send((j.task_id - %(lo)s)::int4) || int2send(j.preference_xy)"
           " || int2send(COALESCE(j.severity_x, -1::int2)) || int2send(COALESCE(j.severity_y, -1::int2))")
# An axis's {"x": i, "y": j} travels as its 64-bit jsonb hash, looked up in a table of every such object a
# judgment can hold (_AxisObjects): hashing costs PostgreSQL less than extracting two numbers as text and
# parsing them, most of a range's query otherwise. A range holding any other object is read again with
# the numbers themselves. Category tags come as the task of each judgment that tagged something and its
# (few distinct) tag lists as text.
_AXIS_HASH = " || int8send(jsonb_hash_extended(COALESCE(j.axes_xy -> {key}, '{{}}'), 0))"
_AXIS_VALUES = "".join(f" || int2send(COALESCE((j.axes_xy -> {{key}} ->> '{side}')::int2, -1::int2))" for side in "xy")
_JUDGMENTS_SQL = """
SELECT * FROM
(SELECT string_agg(int4send((j.task_id - %(lo)s)::int4), ''::bytea) FILTER (WHERE jsonb_array_length(j.categories_x) > 0),
        string_agg(j.categories_x::text, E'\\n') FILTER (WHERE jsonb_array_length(j.categories_x) > 0),
        string_agg(int4send((j.task_id - %(lo)s)::int4), ''::bytea) FILTER (WHERE jsonb_array_length(j.categories_y) > 0),
        string_agg(j.categories_y::text, E'\\n') FILTER (WHERE jsonb_array_length(j.categories_y) > 0),
        string_agg(int8send(j.id) || int4send(j.rater_id), ''::bytea) FILTER (WHERE %(weighted)s),
        string_agg({record}, ''::bytea)
 FROM labeling_judgment j WHERE j.campaign_id = %(campaign)s AND j.task_id >= %(lo)s AND j.task_id < %(hi)s) judged,
(SELECT string_agg(int4send((t.id - %(lo)s)::int4), ''::bytea) FILTER (WHERE t.is_gold), min(t.item_id), max(t.item_id)
 FROM labeling_task t WHERE t.id >= %(lo)s AND t.id < %(hi)s AND t.campaign_id = %(campaign)s) tasks,
(SELECT string_agg(int4send((a.task_id - %(lo)s)::int4) || int2send(a.preference_xy) || int2send(a.severity_x)
                   || int2send(a.severity_y), ''::bytea),
        string_agg(a.categories_x::text, E'\\n'), string_agg(a.categories_y::text, E'\\n')
 FROM labeling_adjudication a WHERE a.task_id >= %(lo)s AND a.task_id < %(hi)s) adjudicated
"""
class _AxisObjects:
    """Every axis object a validated judgment holds ({"x": i, "y": j}, each an index or null; {} for an axis
    not given), by its jsonb hash as PostgreSQL computes it, with its x and y (-1: none).

    A hash is looked up in a table of 2**20 slots by the top bits of its product with an odd constant
    (one with which no two objects share a slot), then compared whole: a few array operations per range.
    """

    INDEXES = [None, *range(32)]  # what a side is looked for to hold
    SLOT_BITS = 20

    def __init__(self, conn) -> None:
        objects = [{"x": x, "y": y} for x in self.INDEXES for y in self.INDEXES] + [{}]
        objects += [{"x": v} for v in self.INDEXES] + [{"y": v} for v in self.INDEXES]
        (hashes,) = _fetch_one(conn, "SELECT array_agg(jsonb_hash_extended(o::jsonb, 0) ORDER BY n)"
                                     " FROM unnest(%(objects)s::text[]) WITH ORDINALITY AS u(o, n)",
                               {"objects": [orjson.dumps(o).decode() for o in objects]})
        self.hashes = np.array(hashes, dtype=np.int64)
        self.values = np.array([[-1 if o.get(side) is None else o[side] for side in "xy"] for o in objects])
        multipliers = (np.uint64(0x9E3779B97F4A7C15) + np.uint64(2 * i) for i in range(64))
        self.multiplier = next((m for m in multipliers if len(np.unique(self._slots(self.hashes, m))) == len(objects)), None)
        self.slot = np.zeros(1 << self.SLOT_BITS, dtype=np.int32)
        if self.multiplier is not None:
            self.slot[self._slots(self.hashes, self.multiplier)] = np.arange(len(objects))

    def _slots(self, hashes: np.ndarray, multiplier: np.uint64) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (hashes.view(np.uint64) * multiplier) >> np.uint64(64 - self.SLOT_BITS)

    def lookup(self, hashes: np.ndarray) -> np.ndarray | None:
        """(J, A) hashes → (J, 2A) x and y of each axis; None when a hash is not an object of the table."""
        if self.multiplier is None:
            return None
        at = self.slot[self._slots(np.ascontiguousarray(hashes), self.multiplier)]
        if not np.array_equal(self.hashes[at], hashes):
            return None
        return self.values[at].reshape(len(hashes), 2 * hashes.shape[1])


def _records(packed: bytes | None, n_axes: int, hashed: bool) -> np.ndarray:
    fields = [("task", ">i4"), ("pref", ">i2"), ("sev", ">i2", (2,))]
    if hashed:
        fields += [("axes", ">i8", (n_axes,))] * bool(n_axes)
    else:
        fields += [("axes", ">i2", (n_axes, 2))] * bool(n_axes)
    return np.frombuffer(packed or b"", dtype=np.dtype(fields))


# The texts of a range's exported pairs, one aggregate per kind; ``sides`` holds one byte per task id of the
# range: 0 not exported, 1 x is chosen, 2 y is chosen. The texts come split by ASCII's record separator
# (\u001e once JSON-escaped), a JSON null as that character alone; should any text hold it, the split
# miscounts and the range is read again as bytea split by NUL (which PostgreSQL text never holds), a
# null as the byte FF (which UTF-8 never holds). Items are read by the id range of the range's tasks
# (hashed, one index range scan instead of a lookup per task) unless their ids are spread too far.
# A reply of whitespace only is read as '' (BLANK_REPLY: exactly the characters ``str.strip`` removes), so
# the pairs ``pair_rows`` leaves out for an empty reply are found by one C-speed look for b"" in the range's
# texts; no other text changes, and no expression is evaluated twice.
_CHOSEN_INDEX = "CASE get_byte(%(sides)s, (t.id - %(lo)s)::int) WHEN 1 THEN t.{} ELSE t.{} END"
_REPLY = "regexp_replace(i.responses -> ({}) ->> 'text', %(blank)s, '')"
_TEXTS = ("i.prompt", _REPLY.format(_CHOSEN_INDEX.format("x_index", "y_index")),
          _REPLY.format(_CHOSEN_INDEX.format("y_index", "x_index")))
BLANK_REPLY = r"^[ \t\n\r\v\f\x1c-\x1f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
_TEXTS_SQL = """
SELECT string_agg(int4send((t.id - %(lo)s)::int4), ''::bytea), {texts}
FROM labeling_task t JOIN labeling_item i ON i.id = t.item_id {items}
WHERE t.campaign_id = %(campaign)s AND t.id >= %(lo)s AND t.id < %(hi)s AND get_byte(%(sides)s, (t.id - %(lo)s)::int) <> 0
"""


@functools.cache
def _texts_sql(*, exact: bool, item_range: bool) -> str:
    if exact:
        texts = (f"string_agg(COALESCE(textsend({text}), '\\xff'::bytea), '\\x00'::bytea)" for text in _TEXTS)
    else:
        texts = (f"string_agg(COALESCE({text}, E'\\x1e'), E'\\x1e')" for text in _TEXTS)
    items = "AND i.id >= %(first_item)s AND i.id <= %(last_item)s" if item_range else ""
    return _TEXTS_SQL.format(texts=", ".join(texts), items=items)


def _escaped(packed: str | bytes | None, count: int) -> list[bytes | None] | None:
    """The texts of one aggregate, each JSON-escaped without its quotes (None: JSON null).

    Split by the record separator, they are escaped by one orjson call for all; None when that split
    does not give ``count`` texts (a text holds the separator, or the characters of its escape, or is
    null). Split by NUL (the range read again), one text at a time.
    """
    if isinstance(packed, bytes):
        return [None if text == b"\xff" else orjson.dumps(text.decode())[1:-1] for text in packed.split(b"\0")]
    parts = orjson.dumps(packed or "").split(b"\\u001e")
    if len(parts) != count:
        return None
    parts[0] = parts[0][1:]  # orjson's quotes around the whole
    parts[-1] = parts[-1][:-1]
    return parts


def _texts_of(rng: Range, fetched: tuple) -> Texts | None:
    packed_ids, *packed = fetched
    ids = np.frombuffer(packed_ids or b"", dtype=">i4").astype(np.int64)
    columns = [_escaped(p, len(ids)) for p in packed]
    if None in columns:
        return None
    if not np.array_equal(ids, rng.kept):  # the aggregates' input order is not guaranteed: put it right
        order = np.argsort(ids, kind="stable")
        if not np.array_equal(ids[order], rng.kept):
            raise RuntimeError(f"texts of task ids {rng.lo}..{rng.hi - 1} do not match their judged tasks")
        columns = [[column[i] for i in order.tolist()] for column in columns]
    return Texts(*columns)


@contextmanager
def _snapshot_connections() -> Iterator[tuple[Any, Any]]:
    """(connection for judgments, connection for texts), both seeing one snapshot of the database.

    Outside a transaction the export opens a read-only REPEATABLE READ one and a second connection joins
    its snapshot (as pg_dump's workers do), so texts and judgments are read at once by two backends.
    Inside the caller's transaction (which may hold rows no other connection sees), one connection
    serves both: psycopg serialises the two threads' queries. Parallel plans are off for the export's
    queries: workers would pass every text through a queue to the leader, more CPU for the same rows.
    """
    connection.ensure_connection()
    serial = "SELECT set_config('max_parallel_workers_per_gather', %s, true)"
    if connection.in_atomic_block or not connection.get_autocommit():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('max_parallel_workers_per_gather')")
            workers = cursor.fetchone()[0]
            cursor.execute(serial, ["0"])
        try:
            yield connection.connection, connection.connection
        finally:
            with connection.cursor() as cursor:
                cursor.execute(serial, [workers])  # SET LOCAL would last until the caller's transaction ends
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            cursor.execute(serial, ["0"])
        second = connection.Database.connect(**connection.get_connection_params())
        try:
            second.autocommit = True
            second.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            second.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            second.execute(serial, ["0"])
            yield connection.connection, second
        finally:
            second.close()


def _fetch_one(conn, query: str, params: dict[str, Any]) -> tuple:
    # A plain psycopg cursor: Django's (client-side binding) cannot ask for binary results, and text
    # results would send the bytea as hex, twice the size.
    with Cursor(conn) as cursor:
        cursor.execute(query, params, binary=True, prepare=True)  # prepared: planned once, not per range
        return cursor.fetchone()


def postgresql_chunks(ctx: ExportContext, counters: dict[str, int]) -> Iterator[tuple[int, bytes]]:
    """(pairs, lines) per task-id range, in task order.

    Three stages overlap: a thread reads the judgments of the next ranges, this thread computes the
    consensus of one range and composes the lines of the one before, whose texts another thread reads.
    """
    keys = [sql.Literal(key).as_string(None).replace("%", "%%") for key in ctx.axis_keys]
    n_axes = len(ctx.axis_keys)
    hashed_sql, values_sql = (_JUDGMENTS_SQL.format(record=_RECORD + "".join(axis.format(key=key) for key in keys))
                              for axis in (_AXIS_HASH, _AXIS_VALUES))
    weighted = ctx.filters.aggregation == "reliability_weighted"
    with _snapshot_connections() as (judgments_conn, texts_conn):
        first, last = _fetch_one(judgments_conn, "SELECT min(id), max(id) FROM labeling_task WHERE campaign_id = %(c)s",
                                 {"c": ctx.campaign_id})
        if first is None:
            return
        ranges = ((lo, min(lo + RANGE_IDS, last + 1)) for lo in range(first, last + 1, RANGE_IDS))

        axis_objects = _AxisObjects(judgments_conn)

        def judgments(lo: int, hi: int) -> Judged:
            params = {"lo": lo, "hi": hi, "campaign": ctx.campaign_id, "weighted": weighted}
            row = _fetch_one(judgments_conn, hashed_sql, params)
            record = _records(row[5], n_axes, hashed=True)
            axes = axis_objects.lookup(record["axes"].astype(np.int64)) if n_axes else np.zeros((len(record), 0))
            if axes is None:  # an axis object the table does not hold: read the numbers
                row = _fetch_one(judgments_conn, values_sql, params)
                record = _records(row[5], n_axes, hashed=False)
                axes = record["axes"].reshape(len(record), 2 * n_axes) if n_axes else np.zeros((len(record), 0))
            tasks_x, lists_x, tasks_y, lists_y, order, _, gold, first_item, last_item, adjudications, *adjudicated_tags = row
            tags, tag_names = tags_of_sides([(tasks_x, lists_x), (tasks_y, lists_y)], ">i4")
            return Judged(record, axes, tags, tag_names, order, gold, first_item, last_item, adjudications, tuple(adjudicated_tags))

        def texts(rng: Range) -> Texts:
            sides = np.zeros(rng.hi - rng.lo, dtype=np.uint8)
            sides[rng.kept] = np.where(rng.x_chosen, 1, 2)
            params = {"lo": rng.lo, "hi": rng.hi, "campaign": ctx.campaign_id, "sides": sides.tobytes(), "blank": BLANK_REPLY,
                      "first_item": rng.first_item, "last_item": rng.last_item}
            item_range = rng.first_item is not None and rng.last_item - rng.first_item < ITEM_SPREAD * (rng.hi - rng.lo)
            found = _texts_of(rng, _fetch_one(texts_conn, _texts_sql(exact=False, item_range=item_range), params))
            return found or _texts_of(rng, _fetch_one(texts_conn, _texts_sql(exact=True, item_range=item_range), params))

        def composed(rng: Range, read: Future) -> tuple[int, bytes]:
            rng, found = without_empty_replies(rng, read.result(), counters)
            return len(rng.kept), lines(ctx, rng, found)

        with ThreadPoolExecutor(1, "export-judgments") as judgment_reader, ThreadPoolExecutor(1, "export-texts") as text_reader:
            ahead: deque[tuple[tuple[int, int], Future]] = deque()

            def read_ahead() -> None:
                if (lohi := next(ranges, None)) is not None:
                    ahead.append((lohi, judgment_reader.submit(judgments, *lohi)))

            read_ahead()
            read_ahead()
            waiting = None  # the last range whose texts are being read
            try:
                while ahead:
                    (lo, hi), future = ahead.popleft()
                    judged = future.result()
                    read_ahead()
                    rng = consensus(ctx, lo, hi, judged, counters)
                    if not len(rng.kept):
                        continue
                    submitted = (rng, text_reader.submit(texts, rng))
                    if waiting:
                        yield composed(*waiting)
                    waiting = submitted
                if waiting:
                    yield composed(*waiting)
            finally:
                for _, future in ahead:
                    future.cancel()
