"""The prompt-set endpoints: import with the column mapping in the query, the role matrix, another spec's set."""

import json

import pytest

from safety.models import PromptSet, PromptSetImport

from .helpers import example_version, small_version
from .test_prompt_set_import import AILUMINATE, head


@pytest.fixture
def version(actors):
    return small_version(actors.policy)


def post(client, query: str, body: bytes, content_type="application/x-ndjson"):
    return client.post(f"/api/v1/prompt-sets/?{query}", data=body, content_type=content_type)


def lines(*objs) -> bytes:
    return "\n".join(json.dumps(o) for o in objs).encode()


def test_an_admin_imports_a_jsonl_set_and_gets_its_counts(actors, version, media):
    response = post(actors.api("admin"), f"name=probes&spec={version.spec_id}",
                    lines({"prompt": "hurt?", "label": "unsafe", "codes": {"llama_guard": ["S1", "S99"]}},
                          {"prompt": "hello", "label": "safe"}))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["n_prompts"], body["by_category"], body["unmapped"]) == (2, {"violence": 1}, {"llama_guard:S99": 1})
    assert len(body["sha256"]) == 64 and body["version"] == version.number
    assert not list((media / "imports").glob("*.upload"))  # the spooled body is gone


def test_a_csv_body_imports_with_the_mapping_from_the_query(actors, media):
    version = example_version(actors.policy)
    data, _ = head(AILUMINATE, 12)
    response = post(actors.api("admin"), f"name=ail&spec={version.spec_id}&prompt_column=prompt_text"
                    "&code_column=hazard&taxonomy=ailuminate&label=unsafe", data, content_type="text/csv")
    assert response.status_code == 201, response.json()
    assert response.json()["n_prompts"] == 12 and response.json()["options"]["format"] == "csv"


def test_response_column_repeats_in_the_query(actors, version, media):
    data = b"question,a_response,a_harmful,a_action,b_response,b_harmful,b_action\nq,ra,1,5,rb,0,0\n"
    response = post(actors.api("admin"), f"name=two&spec={version.spec_id}&format=csv&prompt_column=question"
                    "&response_column=a_response&response_column=b_response", data, content_type="text/csv")
    assert response.status_code == 201, response.json()
    prompts = list(PromptSet.objects.get(pk=response.json()["id"]).prompts.values_list(
        "response", "response_harmful", "response_refusal"))
    assert prompts == [("ra", True, "compliance"), ("rb", False, "full_refusal")]


@pytest.mark.parametrize(("query", "field"), [
    ("spec={spec}", "name"),
    ("name=x", "spec"),
    ("name=x&spec={spec}&format=xml", "format"),
    ("name=x&spec={spec}&label=maybe", "label"),
    ("name=x&spec={spec}&format=csv&code_column=hazard", "taxonomy"),
    ("name=x&spec={spec}&prompt_column=question", "prompt_column"),
])
def test_a_bad_query_is_a_400_naming_the_parameter(actors, version, media, query, field):
    response = post(actors.api("admin"), query.format(spec=version.spec_id), lines({"prompt": "x"}))
    assert response.status_code == 400
    assert response.json()["detail"]["errors"][0]["field"] == field
    assert not PromptSet.objects.exists()


def test_a_bad_line_is_a_400_with_the_line_and_nothing_is_saved(actors, version, media):
    response = post(actors.api("admin"), f"name=x&spec={version.spec_id}",
                    lines({"prompt": "ok"}, {"prompt": "ok"}, {"prompt": "x", "category": "nope"}))
    assert response.status_code == 400 and response.json()["line"] == 3
    assert not PromptSet.objects.exists()


def test_a_large_body_is_imported_by_a_job_that_reports_the_set(actors, version, media, settings,
                                                                django_capture_on_commit_callbacks):
    settings.IMPORT_ASYNC_BYTES = 10
    with django_capture_on_commit_callbacks(execute=True):
        response = post(actors.api("admin"), f"name=big&spec={version.spec_id}",
                        lines(*({"prompt": f"p{i}"} for i in range(50))))
    assert response.status_code == 202
    job = actors.api("admin").get(response.json()["url"]).json()
    assert job["status"] == "succeeded" and PromptSet.objects.get(pk=job["prompt_set"]).n_prompts == 50
    assert actors.api("policy").get(response.json()["url"]).status_code == 403
    other_admin = PromptSetImport.objects.get(pk=job["id"])
    other_admin.owner = actors.policy2
    other_admin.save()
    assert actors.api("admin").get(response.json()["url"]).status_code == 404


def test_the_specs_examples_become_a_set_over_the_api(actors, version):
    response = actors.api("admin").post("/api/v1/prompt-sets/from-spec/", {"spec": version.spec_id}, format="json")
    assert response.status_code == 201
    assert response.json()["by_label"] == {"safe": 0, "unsafe": 1, "unknown": 0}
    assert actors.api("admin").post("/api/v1/prompt-sets/from-spec/", {"spec": "x"}, format="json").status_code == 400


@pytest.fixture
def prompt_set(actors, version, media):
    response = post(actors.api("admin"), f"name=probes&spec={version.spec_id}", lines({"prompt": "a"}))
    return PromptSet.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize(("who", "status"), [("admin", 201), ("policy", 403), ("rater", 403), (None, 401)])
def test_only_admins_import(actors, version, media, who, status):
    response = post(actors.api(who), f"name=x&spec={version.spec_id}", lines({"prompt": "a"}))
    assert response.status_code == status


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("policy", 200), ("policy2", 404), ("rater", 403), (None, 401)])
def test_admins_and_the_specs_editors_read_a_set(actors, prompt_set, who, status):
    client = actors.api(who)
    for path in (f"/api/v1/prompt-sets/{prompt_set.pk}/", f"/api/v1/prompt-sets/{prompt_set.pk}/prompts.jsonl"):
        assert client.get(path).status_code == status


def test_the_list_shows_another_editors_sets_to_no_one_but_admins(actors, prompt_set):
    assert [p["id"] for p in actors.api("policy").get("/api/v1/prompt-sets/").json()] == [prompt_set.pk]
    assert actors.api("policy2").get("/api/v1/prompt-sets/").json() == []
    assert actors.api("rater").get("/api/v1/prompt-sets/").status_code == 403


def test_an_import_whose_runner_went_silent_reads_as_failed(actors, version, media, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.IMPORT_STALL_SECONDS = 60
    job = PromptSetImport.objects.create(owner=actors.admin, spec_version=version, name="x", upload="imports/gone.upload",
                                         size_bytes=10, options={"format": "jsonl"}, status=PromptSetImport.RUNNING)
    PromptSetImport.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    body = actors.api("admin").get(f"/api/v1/prompt-sets/imports/{job.pk}/").json()
    assert body["status"] == "failed" and "send the file again" in body["error"]["error"]
    # Reading wrote nothing; the periodic check records it, once, and leaves a job still talking alone.
    from django.conf import settings as live

    from safety import tasks

    alive = PromptSetImport.objects.create(owner=actors.admin, spec_version=version, name="y", upload="imports/y.upload",
                                           size_bytes=10, options={"format": "jsonl"}, status=PromptSetImport.RUNNING)
    assert PromptSetImport.objects.get(pk=job.pk).status == PromptSetImport.RUNNING
    assert tasks.prompt_set_imports_reap_task() == 1 and tasks.prompt_set_imports_reap_task() == 0
    job.refresh_from_db()
    assert (job.status, job.upload, job.error["error"]) == (PromptSetImport.FAILED, "", body["error"]["error"])
    assert job.finished_at is not None and PromptSetImport.objects.get(pk=alive.pk).status == PromptSetImport.RUNNING
    assert live.CELERY_BEAT_SCHEDULE["prompt-set-imports-reap"]["task"] == "safety.tasks.prompt_set_imports_reap_task"
