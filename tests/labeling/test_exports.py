"""Export snapshots: consensus pairs in canonical terms, filters, adjudication, sha256, streaming download."""

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from labeling import exports, services
from labeling.exports import AGGREGATIONS, ExportContext, ExportFilters, aggregate_preference, consensus, postgresql
from labeling.models import Adjudication, Assignment, ExportSnapshot, Item, Judgment, Task
from tests.labeling.helpers import jsonl, make_campaign, published_version


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def judge_task(campaign, task, rater, pref_xy, *, swapped, severity_xy=(0, 0), tags_xy=([], []), helpful_xy=None):
    assignment = Assignment.objects.create(task=task, campaign=campaign, rater=rater, swapped=swapped,
                                           created_at=task.item.created_at, expires_at=task.item.created_at.replace(year=2100))
    Task.objects.filter(pk=task.pk).update(n_open=1)
    a, b = ("y", "x") if swapped else ("x", "y")
    by_side = {"x": 0, "y": 1}
    data = {
        "preference": -pref_xy if swapped else pref_xy,
        "severity": {"a": severity_xy[by_side[a]], "b": severity_xy[by_side[b]]},
        "categories": {"a": tags_xy[by_side[a]], "b": tags_xy[by_side[b]]},
    }
    if helpful_xy:
        data["axes"] = {"helpful": {"a": helpful_xy[by_side[a]], "b": helpful_xy[by_side[b]]}}
    return services.judgment_submit(assignment_id=assignment.pk, rater=rater, data=data)


def lines(export: ExportSnapshot) -> list[dict]:
    return [json.loads(line) for line in (Path(settings.MEDIA_ROOT) / export.path).read_text().splitlines()]


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=3, overlap=2, raters=())


def tasks_of(campaign):
    return list(Task.objects.filter(campaign=campaign).select_related("item").order_by("id"))


def test_pairs_come_out_in_canonical_terms_whatever_side_raters_saw(actors, campaign):
    t1, t2, t3 = tasks_of(campaign)
    # Both raters prefer x on t1 and y on t2, each seeing a different side order; t3 is a tie.
    judge_task(campaign, t1, actors.rater, -2, swapped=True, severity_xy=(0, 3), tags_xy=([], ["violence"]), helpful_xy=(2, 0))
    judge_task(campaign, t1, actors.rater2, -1, swapped=False, severity_xy=(1, 2), tags_xy=([], ["violence"]), helpful_xy=(2, 1))
    judge_task(campaign, t2, actors.rater, 1, swapped=False)
    judge_task(campaign, t2, actors.rater2, 2, swapped=True)
    judge_task(campaign, t3, actors.rater, 1, swapped=False)
    judge_task(campaign, t3, actors.rater2, -1, swapped=True)
    export = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={})
    rows = lines(export)
    assert (export.n_pairs, export.n_ties) == (2, 1)
    first = rows[0]
    x1, y1 = (t1.item.responses[i]["text"] for i in (t1.x_index, t1.y_index))
    assert (first["prompt"], first["chosen"], first["rejected"]) == (t1.item.prompt, x1, y1)
    assert first["margin"] == 1.5 and first["n_judgments"] == 2 and first["agreement"] == 1.0
    assert first["categories"] == {"chosen": [], "rejected": ["violence"]}
    assert first["severity"] == {"chosen": 0.5, "rejected": 2.5}
    assert first["harmful"] == {"chosen": False, "rejected": True}
    assert first["axes"]["helpful"] == {"chosen": 2.0, "rejected": 0.5}
    assert first["spec_version"] == "Labeling spec v1" and first["campaign"] == "Pairs"
    x2, y2 = (t2.item.responses[i]["text"] for i in (t2.x_index, t2.y_index))
    assert (rows[1]["chosen"], rows[1]["rejected"]) == (y2, x2)
    assert first["adjudicated"] is False  # always present: datasets infers its schema from early rows


def test_filters_leave_out_pairs_and_say_so(actors, campaign):
    t1, t2, _ = tasks_of(campaign)
    judge_task(campaign, t1, actors.rater, -2, swapped=False)
    judge_task(campaign, t1, actors.rater2, 1, swapped=False)
    judge_task(campaign, t2, actors.rater, -1, swapped=False, tags_xy=(["weapons"], []))
    assert services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={"min_judgments": 2}).n_pairs == 0
    # mean of -2 and 1 is -0.5: x wins with half the raters agreeing
    mean = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={"aggregation": "mean"})
    assert mean.n_pairs == 2 and lines(mean)[0]["margin"] == 0.5 and lines(mean)[0]["agreement"] == 0.5
    strict = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={"aggregation": "mean", "min_agreement": 0.75})
    assert strict.n_pairs == 1 and strict.filters["excluded"] == 1
    tagged = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={"categories": ["weapons"]})
    assert [row["categories"]["chosen"] for row in lines(tagged)] == [["weapons"]]
    lenient = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={"harmful_threshold": 0})
    assert all(row["harmful"]["chosen"] for row in lines(lenient))


def test_a_pair_with_an_empty_reply_is_left_out_and_counted_in_the_snapshot_filters(actors, campaign):
    t1, t2, t3 = tasks_of(campaign)
    for task, text in [(t1, ""), (t3, " \n ")]:  # an empty and a whitespace-only reply
        responses = task.item.responses
        responses[task.y_index]["text"] = text
        Item.objects.filter(pk=task.item_id).update(responses=responses)
    for task in (t1, t2, t3):
        judge_task(campaign, task, actors.rater, -2, swapped=False)
        judge_task(campaign, task, actors.rater2, -1, swapped=False)
    export = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={})
    assert [row["id"] for row in lines(export)] == [f"{campaign.pk}-{t2.pk}"]
    assert (export.n_pairs, export.filters["excluded_empty"], export.filters["excluded"]) == (1, 2, 0)


def test_bad_filters_are_named(actors, campaign):
    from specloop.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        services.export_snapshot_create(campaign=campaign, user=actors.admin,
                                        filters={"aggregation": "vote", "min_agreement": 2, "categories": ["ghost"], "x": 1})
    assert {e["field"] for e in info.value.errors} == {"aggregation", "min_agreement", "categories", "x"}
    assert ExportSnapshot.objects.count() == 0


def test_an_adjudicated_label_wins_and_is_marked(actors, campaign):
    t1, *_ = tasks_of(campaign)
    judge_task(campaign, t1, actors.rater, -2, swapped=False)
    judge_task(campaign, t1, actors.rater2, -1, swapped=True)
    services.adjudication_save(task=t1, user=actors.policy, data={
        "preference": 2, "categories_x": ["violence"], "categories_y": [], "severity_x": 3, "severity_y": 0,
        "note": "x gives instructions"})
    row = lines(services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={}))[0]
    x, y = (t1.item.responses[i]["text"] for i in (t1.x_index, t1.y_index))
    assert (row["chosen"], row["rejected"], row["margin"]) == (y, x, 2.0)
    assert row["adjudicated"] is True
    assert row["categories"] == {"chosen": [], "rejected": ["violence"]}
    assert row["harmful"] == {"chosen": False, "rejected": True}


def test_aggregations():
    assert aggregate_preference([-2, -1, 2], [1, 1, 1], "majority") == -1.5
    assert aggregate_preference([-2, 2], [1, 1], "majority") == 0.0
    assert aggregate_preference([-2, -1, 2], [1, 1, 1], "mean") == pytest.approx(-1 / 3)
    assert aggregate_preference([-2, 2], [0.1, 0.9], "reliability_weighted") == pytest.approx(1.6)


def test_reliability_weighting_weighs_raters_by_their_agreement_with_the_others(actors, campaign):
    t1, t2, _ = tasks_of(campaign)
    # admin goes against two raters who agree: admin's agreement is 0, weighed at the floor of 0.05; the two
    # are never compared (the others of each split one against one), so they weigh the default 0.5.
    for task, pref in ((t1, -2), (t2, -1)):
        judge_task(campaign, task, actors.rater, pref, swapped=False)
        judge_task(campaign, task, actors.rater2, pref, swapped=True)
        judge_task(campaign, task, actors.admin, -pref, swapped=False)
    export = services.export_snapshot_create(campaign=campaign, user=actors.admin,
                                             filters={"aggregation": "reliability_weighted"})
    # (2 × 0.5 × pref − 0.05 × pref) / 1.05; the unweighted mean would give |pref| / 3, no floor |pref|
    assert [(row["margin"], row["agreement"]) for row in lines(export)] == [(1.8095, 0.6667), (0.9048, 0.6667)]


def test_a_snapshot_that_cannot_be_recorded_leaves_no_file(actors, campaign, monkeypatch):
    t1, *_ = tasks_of(campaign)
    judge_task(campaign, t1, actors.rater, -1, swapped=False)

    def refuse(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ExportSnapshot.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={})
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


def test_a_write_that_fails_midway_leaves_neither_the_file_nor_its_partial():
    def chunks():
        yield 1, b'{"id": 1}\n'
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        exports.write_chunks(chunks(), "exports/broken.jsonl")
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


def test_the_download_streams_the_same_bytes_as_the_recorded_sha256(actors, campaign):
    t1, t2, _ = tasks_of(campaign)
    judge_task(campaign, t1, actors.rater, -2, swapped=False)
    judge_task(campaign, t2, actors.rater, 1, swapped=True)
    client = actors.api("admin")
    created = client.post(f"/api/v1/campaigns/{campaign.pk}/exports/", {"aggregation": "majority"}, format="json")
    assert created.status_code == 201
    body = created.json()
    response = client.get(f"/api/v1/exports/{body['id']}/pairs.jsonl")
    assert response.status_code == 200 and response.streaming
    content = b"".join(response.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["sha256"] == response["X-Content-SHA256"]
    assert len(content.splitlines()) == body["n_pairs"] == 2


def test_an_export_file_loads_with_datasets_style_json_lines(actors, campaign):
    """Every line is a flat JSON object whose prompt/chosen/rejected are plain strings (what TRL reads)."""
    t1, *_ = tasks_of(campaign)
    judge_task(campaign, t1, actors.rater, -1, swapped=False)
    row = lines(services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={}))[0]
    assert all(isinstance(row[k], str) for k in ("prompt", "chosen", "rejected"))
    assert set(row) >= {"id", "prompt", "chosen", "rejected", "margin", "n_judgments", "agreement", "categories",
                        "severity", "axes", "harmful", "spec_version", "campaign"}


# --- the PostgreSQL path against the plain one ----------------------------------------------------------

NASTY_TEXTS = [
    'She said "no" \\ twice', "line one\nline two\r\n\ttabbed", "control \x01\x02\x1f and DEL \x7f",
    "unicode é ü 中文 😀 \u2028\u2029 \ufeff", "", "plain words only",
    '{"looks": "like json"}, ["and", "lists"]', "%s %d %% format characters",
]


def random_campaign(actors, rng: random.Random):
    """40 items of three replies (120 tasks, ids interleaved with another campaign's), nasty texts, one null
    text, gold tasks, 0-6 judgments per task with optional severities, tags and axes, and adjudications."""
    axes = [{"key": "helpful", "name": "Helpful", "description": "", "scale": ["no", "somewhat", "yes"]},
            {"key": "honest", "name": "Honest", "description": "", "scale": ["no", "partly", "mostly", "yes"]}]
    version = published_version(actors.policy, rubric={"axes": axes, "severity_scale": ["a", "b", "c", "d"]})
    campaign = services.campaign_create(user=actors.admin, name='Random "campaign" ✓', spec_version=version, overlap=6)
    other = services.campaign_create(user=actors.admin, name="Other", spec_version=version, overlap=6)
    for i in range(4):  # two campaigns imported by turns: neither one's task ids are contiguous
        services.items_import(campaign=campaign, text=jsonl(10, replies=3, prefix=f"p{i}"), fmt="jsonl")
        services.items_import(campaign=other, text=jsonl(5, replies=2, prefix=f"o{i}"), fmt="jsonl")
    items = list(Item.objects.filter(campaign=campaign).order_by("id"))
    for item in items:
        item.prompt = rng.choice(NASTY_TEXTS) + f" #{item.pk}"
        item.responses = [{"text": rng.choice(NASTY_TEXTS) + f" r{r}", "model": None} for r in range(3)]
    items[3].responses[1]["text"] = None  # JSON null: exported as null, not "None"
    # Empty replies (nothing, whitespace, Unicode spaces): their pairs are left out and counted. Replies that
    # start as those do but say something are kept.
    items[5].responses[0]["text"], items[6].responses[2]["text"] = "", " \n\t\x1f "
    items[7].responses[1]["text"] = "\u3000\u00a0\u2028"
    for item in items[8:12]:
        item.responses[0]["text"] = " \u3000\n\\ said something"
    for item in items[20:23]:  # what the texts are split by when read, and its escape
        item.prompt, item.responses[2]["text"] = "the separator itself: \x1e", "a literal \\u001e, its escape"
    Item.objects.bulk_update(items, ["prompt", "responses"])
    tasks = list(Task.objects.filter(campaign__in=[campaign, other]).order_by("id"))
    Task.objects.filter(pk__in=[t.pk for t in rng.sample(tasks, 8)]).update(is_gold=True)
    people = [actors.admin, actors.policy, actors.policy2, actors.rater, actors.rater2, actors.outsider]
    assignments, judgments = [], []
    for task in tasks:
        for rater in rng.sample(people, rng.choice([0, 1, 2, 3, 3, 3, 4, 5, 6])):
            lean = rng.choice([-2, -1, 0, 1, 2])
            pref = max(-2, min(2, lean + rng.choice([-1, 0, 0, 1])))
            assignment = Assignment(task=task, campaign_id=task.campaign_id, rater=rater, swapped=False, status="judged",
                                    created_at=task.item.created_at, expires_at=task.item.created_at)
            tags = [sorted(rng.sample(["violence", "weapons"], rng.choice([0, 0, 0, 1, 1, 2]))) for _ in "xy"]
            severity = [rng.choice([None, 0, 1, 2, 3, 3]) for _ in "xy"]
            axes_xy = {a["key"]: {s: rng.choice([None, *range(len(a["scale"]))]) for s in "xy"}
                       for a in axes if rng.random() < 0.8}
            assignments.append(assignment)
            judgments.append(Judgment(
                assignment=assignment, task=task, campaign_id=task.campaign_id, rater=rater, preference=pref,
                preference_xy=pref, categories={"a": tags[0], "b": tags[1]}, severity={"a": severity[0], "b": severity[1]},
                axes={}, categories_x=tags[0], categories_y=tags[1], severity_x=severity[0], severity_y=severity[1],
                axes_xy=axes_xy))
    Assignment.objects.bulk_create(assignments)
    for judgment in judgments:
        judgment.assignment_id = judgment.assignment.pk
    Judgment.objects.bulk_create(judgments)
    # Not what validation lets through (an index off the scale, a side missing), read all the same.
    Judgment.objects.filter(pk=judgments[0].pk).update(axes_xy={"helpful": {"x": 40, "y": 1}, "honest": {"y": 2}})
    Judgment.objects.filter(pk=judgments[-1].pk).update(categories_x=["weapons", "violence"], categories_y=["weapons"] * 2)
    for task in rng.sample(tasks, 10):
        Adjudication.objects.create(task=task, preference_xy=rng.choice([-2, -1, 0, 1, 2]), decided_by=actors.policy,
                                    categories_x=rng.choice([[], ["weapons"], ["weapons", "violence"]]), categories_y=[],
                                    severity_x=rng.randrange(4), severity_y=rng.randrange(4))
    return campaign


def both_paths(campaign, filters: ExportFilters, weights: dict[int, float]) -> tuple:
    """((pairs, sha256, bytes), counters, file) from pairs_write (range-wise on PostgreSQL) and from pair_rows."""
    version = campaign.spec_version
    ctx = ExportContext(campaign_id=campaign.pk, campaign_name=campaign.name,
                        spec_label=f"{version.spec.name} v{version.number}", filters=filters, rater_weights=weights,
                        axis_keys=tuple(a["key"] for a in version.document["rubric"]["axes"]))
    fast_counters, plain_counters = {"ties": 0, "filtered": 0, "empty": 0}, {"ties": 0, "filtered": 0, "empty": 0}
    fast = exports.pairs_write(ctx, "fast.jsonl", fast_counters)
    plain = exports.write_snapshot(exports.pair_rows(ctx, plain_counters), "plain.jsonl")
    media = Path(settings.MEDIA_ROOT)
    return ((fast, fast_counters, (media / "fast.jsonl").read_bytes()),
            (plain, plain_counters, (media / "plain.jsonl").read_bytes()))


POSTGRESQL_ONLY = pytest.mark.skipif(connection.vendor != "postgresql", reason="the range-wise path is PostgreSQL's")


@POSTGRESQL_ONLY
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("range_ids, item_spread", [(5, 4), (8192, 0)])  # 8192: all tasks in one range
def test_the_postgresql_path_writes_the_bytes_of_the_plain_one(actors, monkeypatch, aggregation, range_ids, item_spread):
    campaign = random_campaign(actors, random.Random(f"{aggregation}-{range_ids}"))
    monkeypatch.setattr(postgresql, "RANGE_IDS", range_ids)  # 5: many ranges, some with nothing to export
    monkeypatch.setattr(postgresql, "ITEM_SPREAD", item_spread)  # 0: items read one per task, not by id range
    weights = {actors.rater.pk: 0.9, actors.rater2.pk: 0.2, actors.policy.pk: 0.35}
    for filters in [ExportFilters(aggregation=aggregation),
                    ExportFilters(aggregation=aggregation, min_agreement=0.6, min_judgments=2, harmful_threshold=1.5),
                    ExportFilters(aggregation=aggregation, categories=("weapons",), harmful_threshold=0.0)]:
        fast, plain = both_paths(campaign, filters, weights)
        assert fast == plain
    (n, _, _), counters, content = both_paths(campaign, ExportFilters(aggregation=aggregation), weights)[0]
    rows = [json.loads(line) for line in content.splitlines()]
    assert n == len(rows) > 40 and counters["ties"] > 0 and counters["empty"] >= 3
    assert not any(r["chosen"] is not None and not r["chosen"].strip() for r in rows)
    assert not any(r["rejected"] is not None and not r["rejected"].strip() for r in rows)
    assert any((r["chosen"] or "").startswith(" \u3000\n") or (r["rejected"] or "").startswith(" \u3000\n") for r in rows)
    assert any(r["adjudicated"] for r in rows) and not all(r["adjudicated"] for r in rows)
    assert None in {r["chosen"] for r in rows} | {r["rejected"] for r in rows}  # the null text
    texts = [text or "" for r in rows for text in (r["prompt"], r["chosen"], r["rejected"])]
    assert any("\\u001e" in t for t in texts) and any("\x1e" in t for t in texts)  # texts that must not be split


@POSTGRESQL_ONLY
def test_postgresql_reads_a_reply_as_empty_exactly_when_str_strip_empties_it(db):
    """The fast path finds empty replies as '' once read: every character must be blanked exactly when
    ``str.isspace`` says so, and no other text change."""
    characters = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]  # PostgreSQL text holds no NUL
    texts = ["", " \n\t ", "\u3000\u00a0\x1f", " a ", "\n\nHuman: hi", "x\u3000", "\\", " \u200b "]
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(c ORDER BY c) FROM unnest(%s::int[]) c WHERE regexp_replace(chr(c), %s, '') = ''",
                       [characters, postgresql.BLANK_REPLY])
        (blank,) = cursor.fetchone()
        cursor.execute("SELECT array_agg(regexp_replace(t, %s, '') ORDER BY n) FROM unnest(%s::text[]) WITH ORDINALITY u(t, n)",
                       [postgresql.BLANK_REPLY, texts])
        (read,) = cursor.fetchone()
    assert blank == [c for c in characters if chr(c).isspace()] and len(blank) == 29
    assert read == ["" if not t.strip() else t for t in texts]
    assert consensus.empty_rows([b"a", b"", None, b"b", b""]) == [1, 4]


@POSTGRESQL_ONLY
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_texts_come_from_a_second_connection_on_the_same_snapshot(actors, monkeypatch):
    campaign = random_campaign(actors, random.Random(7))
    opened = []
    real_connect = connection.Database.connect
    monkeypatch.setattr(connection.Database, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    fast, plain = both_paths(campaign, ExportFilters(), {})
    assert fast == plain and fast[0][0] > 40
    assert opened == [1]


def test_rounding_is_pythons_round():
    rng = random.Random(3)
    values = [rng.uniform(-3, 3) for _ in range(5000)] + [k / 2**e for k in range(-40, 41) for e in range(1, 9)]
    values += [0.00005, 0.00015, 1.00005, 2.5e-10, -2.5e-10, 5e-10, 1.5e-9]
    for ndigits in (4, 9):
        assert consensus.python_round(np.array(values), ndigits).tolist() == [round(v, ndigits) for v in values]
