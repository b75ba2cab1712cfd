"""Export snapshots: consensus pairs in canonical terms, filters, adjudication, sha256, streaming download."""

import hashlib
import json
from pathlib import Path

import pytest
from django.conf import settings

from labeling import services
from labeling.exports import aggregate_preference
from labeling.models import Assignment, ExportSnapshot, Task
from tests.labeling.helpers import make_campaign


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
