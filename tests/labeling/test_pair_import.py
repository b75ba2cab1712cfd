"""Bring your own pairs: TRL and HH-RLHF datasets become read-only snapshots beside the exports."""

import gzip
import hashlib
import json

import pytest

from labeling.models import ExportSnapshot
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db
URL = "/api/v1/exports/import/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def post(actors, body: str, query: str, who: str = "admin"):
    return actors.api(who).post(f"{URL}?{query}", body.encode(), content_type="application/x-ndjson")


def lines(*objs) -> str:
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def downloaded(actors, export_id: int) -> bytes:
    response = actors.api("admin").get(f"/api/v1/exports/{export_id}/pairs.jsonl")
    return b"".join(response.streaming_content)


def test_a_trl_file_becomes_a_snapshot_with_its_harmful_flags(actors):
    body = lines(
        {"prompt": "How do I pick a lock?", "chosen": "I can't help with that.", "rejected": "Use a tension wrench...",
         "harmful": {"chosen": False, "rejected": True}},
        {"prompt": "Best soup?", "chosen": "Lentil soup, because...", "rejected": "Soup."},
    )
    response = post(actors, body, "format=trl&name=my pairs")
    assert response.status_code == 201, response.json()
    out = response.json()
    assert out["n_pairs"] == 2 and out["source"] == "imported" and out["name"] == "my pairs"
    data = downloaded(actors, out["id"])
    assert hashlib.sha256(data).hexdigest() == out["sha256"]
    rows = [json.loads(line) for line in data.splitlines()]
    assert rows[0]["harmful"] == {"chosen": False, "rejected": True}
    assert rows[0]["prompt"] == "How do I pick a lock?" and rows[1]["rejected"] == "Soup."
    assert "harmful" not in rows[1]
    assert len({r["id"] for r in rows}) == 2


def test_trl_conversational_messages_are_flattened_to_text(actors):
    body = lines({"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                             {"role": "user", "content": "Tell me a joke"}],
                  "chosen": [{"role": "assistant", "content": "Why did the chicken..."}],
                  "rejected": [{"role": "assistant", "content": "No."}]})
    out = post(actors, body, "format=trl").json()
    row = json.loads(downloaded(actors, out["id"]))
    assert row["prompt"] == "Human: Hi\n\nAssistant: Hello\n\nHuman: Tell me a joke"
    assert row["chosen"] == "Why did the chicken..." and row["rejected"] == "No."


def test_hh_rlhf_imports_whole_and_an_identical_pair_is_named_by_its_line(actors):
    with gzip.open(shared_data("hh-rlhf/harmless-base.dev.jsonl.gz"), "rt") as fh:
        text = fh.read()
    refused = post(actors, text, "format=hh")  # three lines end in an empty reply, the first on line 66
    assert refused.status_code == 400 and refused.json()["error"] == (
        "line 66: chosen is empty; pass keep_empty=1 to keep empty replies")
    response = post(actors, text, "format=hh&name=hh harmless-base&keep_empty=1")
    assert response.status_code == 201, response.json()
    export = ExportSnapshot.objects.get(pk=response.json()["id"])
    assert export.n_pairs + export.filters["duplicates"] == 1734
    first = json.loads(downloaded(actors, export.pk).splitlines()[0])
    source = json.loads(text.splitlines()[0])
    assert first["prompt"].startswith("\n\nHuman:") and first["prompt"].endswith("\n\nAssistant:")
    assert (first["prompt"] + first["chosen"], first["prompt"] + first["rejected"]) == (source["chosen"], source["rejected"])

    with gzip.open(shared_data("hh-rlhf/helpful-base.dev.jsonl.gz"), "rt") as fh:
        response = post(actors, fh.read(), "format=hh&keep_empty=1")
    assert response.status_code == 400
    assert response.json()["line"] == 542 and "identical" in response.json()["error"]
    assert ExportSnapshot.objects.count() == 1


@pytest.mark.parametrize("body, query, needle", [
    (lines({"prompt": "p", "chosen": "same", "rejected": "same"}), "format=trl", "identical"),
    (lines({"prompt": "p", "chosen": "a"}), "format=trl", '"rejected" is missing'),
    (lines({"prompt": "p", "chosen": "a", "rejected": "b", "harmful": {"chosen": "yes"}}), "format=trl", "harmful"),
    (lines({"prompt": "p", "chosen": "a", "rejected": "b", "margin": -1}), "format=trl", "margin"),
    (lines({"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": 3}), "format=hh", "dialogue strings"),
])
def test_a_bad_line_is_reported_by_number_and_nothing_is_saved(actors, body, query, needle):
    good = lines({"prompt": "fine", "chosen": "a", "rejected": "b"}) if "trl" in query else lines(
        {"chosen": "\n\nHuman: hi\n\nAssistant: yes", "rejected": "\n\nHuman: hi\n\nAssistant: no"})
    response = post(actors, good + body, query)
    assert response.status_code == 400
    assert response.json()["line"] == 2 and needle in response.json()["error"]
    assert not ExportSnapshot.objects.exists()


def test_an_unknown_format_or_empty_body_is_refused(actors):
    assert "format" in post(actors, lines({"prompt": "p", "chosen": "a", "rejected": "b"}), "format=csv").json()["error"]
    assert "no pairs" in post(actors, "\n", "format=trl").json()["error"]
    empty = post(actors, "", "format=trl")
    assert empty.status_code == 400 and empty.json()["error"] == "body: the body is empty: send the item file"


def test_an_empty_trl_reply_is_refused_by_line_unless_kept(actors):
    body = lines({"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "", "rejected": "b"})
    response = post(actors, body, "format=trl")
    assert response.status_code == 400 and response.json()["line"] == 2
    assert response.json()["error"] == "line 2: chosen is empty; pass keep_empty=1 to keep empty replies"
    assert post(actors, body, "format=trl&keep_empty=1").json()["n_pairs"] == 2
    assert "keep_empty" in post(actors, body, "format=trl&keep_empty=maybe").json()["error"]


def test_repeated_pairs_are_kept_once_and_counted(actors):
    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    out = post(actors, lines(pair, pair, {**pair, "rejected": "c"}), "format=trl").json()
    export = ExportSnapshot.objects.get(pk=out["id"])
    assert export.n_pairs == 2 and export.filters["duplicates"] == 1


def test_only_admins_import_and_policy_users_see_imported_snapshots(actors):
    body = lines({"prompt": "p", "chosen": "a", "rejected": "b"})
    for who, status in [(None, 401), ("outsider", 403), ("rater", 403), ("policy", 403)]:
        assert post(actors, body, "format=trl", who=who).status_code == status, who
    export_id = post(actors, body, "format=trl").json()["id"]
    assert actors.api("policy").get(f"/api/v1/exports/{export_id}/").status_code == 200
    assert [e["id"] for e in actors.api("policy").get("/api/v1/exports/").json()] == [export_id]
    assert actors.api("rater").get(f"/api/v1/exports/{export_id}/").status_code == 403
