"""Evaluation jobs: config checks with the registry ids, a tiny evaluation of the sets' own responses and one of a
tiny generated policy scored by a tiny classifier and reward/cost models, items.jsonl over REST."""

import json

import pytest

from training import services
from training.models import TrainingJob

from .helpers import learnable_snapshot, tiny_config
from .safety_data import learnable_rows, prompt_set, published_version, registered_classifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)


@pytest.fixture
def version(actors):
    return published_version(actors.policy)


@pytest.fixture
def answered(actors, version):
    """48 prompts, each with a response to score."""
    return prompt_set(actors.admin, version, learnable_rows(48), name="answered probes")


@pytest.fixture
def classifier(actors, media, version):
    return registered_classifier(actors.admin, version)


def _launch(actors, body, who="admin"):
    return actors.api(who).post("/api/v1/training-jobs/", body, format="json")


def _fields(response) -> list[str]:
    return [e["field"] for e in response.json()["detail"]["errors"]]


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, field, words", [
    ({}, "config.safety_classifier", "name the safety classifier"),
    ({"safety_classifier": 999999}, "config.safety_classifier", "no model 999999"),
    ({"safety_classifier": "CLASSIFIER", "reward_model": "CLASSIFIER"}, "config.reward_model", "not a reward model"),
    ({"safety_classifier": "CLASSIFIER", "cost_model": 999999}, "config.cost_model", "no model 999999"),
    ({"safety_classifier": "CLASSIFIER", "max_new_tokens": 0}, "config.max_new_tokens", "1..4096"),
    ({"safety_classifier": "CLASSIFIER", "temperature": -1}, "config.temperature", ""),
    ({"safety_classifier": "CLASSIFIER", "policy": "../elsewhere"}, "config.policy", "models directory"),
    ({"safety_classifier": "CLASSIFIER", "policy": "sentence-transformers/all-MiniLM-L6-v2"}, "config.policy",
     "not a policy"),
    ({"safety_classifier": "CLASSIFIER", "use_responses": True, "policy": "org/model"}, "config.policy", "not both"),
    ({"safety_classifier": "CLASSIFIER", "epochs": 1}, "config.epochs", "unknown setting"),
])
def test_a_bad_evaluation_config_is_refused_naming_the_key(actors, media, no_dispatch, answered, classifier, config,
                                                          field, words):
    config = {k: (classifier.pk if v == "CLASSIFIER" else v) for k, v in config.items()}
    response = _launch(actors, {"kind": "evaluation", "prompt_sets": [answered.pk], "config": config})

    assert response.status_code == 400
    errors = {e["field"]: e["message"] for e in response.json()["detail"]["errors"]}
    assert field in errors and words in errors[field], errors
    assert not TrainingJob.objects.filter(kind="evaluation").exists()


def test_a_classifier_whose_checkpoint_is_gone_is_refused(actors, media, no_dispatch, answered, classifier):
    classifier.path = "models/nowhere"
    classifier.save()

    response = _launch(actors, {"kind": "evaluation", "prompt_sets": [answered.pk],
                                "config": {"safety_classifier": classifier.pk, "use_responses": True}})

    assert response.status_code == 400 and "missing from storage" in response.json()["error"]


@pytest.mark.parametrize("body, field", [
    ({"kind": "evaluation"}, "prompt_sets"),
    ({"kind": "evaluation", "prompt_sets": []}, "prompt_sets"),
    ({"kind": "evaluation", "prompt_sets": [999999]}, "prompt_sets[0]"),
    ({"kind": "evaluation", "prompt_sets": ["SET"], "export": "EXPORT"}, "exports"),
])
def test_an_evaluation_reads_prompt_sets_only(actors, media, no_dispatch, answered, classifier, body, field):
    export = learnable_snapshot(actors.admin, n=8)
    ids = {"SET": answered.pk, "EXPORT": export.pk}
    body = {k: ([ids.get(x, x) for x in v] if isinstance(v, list) else ids.get(v, v)) for k, v in body.items()}
    body["config"] = {"safety_classifier": classifier.pk, "use_responses": True}

    response = _launch(actors, body)

    assert response.status_code == 400 and field in _fields(response), response.json()


def test_scoring_the_sets_own_responses_needs_sets_that_carry_them(actors, media, no_dispatch, version, classifier):
    bare = prompt_set(actors.admin, version, learnable_rows(8, with_responses=False), name="bare")

    response = _launch(actors, {"kind": "evaluation", "prompt_sets": [bare.pk],
                                "config": {"safety_classifier": classifier.pk, "use_responses": True}})

    assert response.status_code == 400 and _fields(response) == ["config.use_responses"]
    assert f"prompt set(s) {bare.pk} carry no responses" in response.json()["error"]


def test_a_policy_user_cannot_launch_an_evaluation(actors, media, no_dispatch, answered, classifier):
    response = _launch(actors, {"kind": "evaluation", "prompt_sets": [answered.pk],
                                "config": {"safety_classifier": classifier.pk, "use_responses": True}}, who="policy")
    assert response.status_code == 403


# --- tiny evaluations, end to end -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the job is handed over after the commit
def test_an_evaluation_of_the_sets_own_responses_reports_per_label_and_category_and_ships_its_items(
        actors, media, version, answered, classifier):
    response = _launch(actors, {"kind": "evaluation", "prompt_sets": [answered.pk], "name": "given replies",
                                "config": {"safety_classifier": classifier.pk, "use_responses": True}})
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]

    detail = actors.api("policy").get(f"/api/v1/training-jobs/{job_id}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert detail["reward_model"] is None and detail["prompt_sets"] == [answered.pk]
    final = detail["metrics"]["final"]
    assert final["n"] == 48
    assert 0 <= final["over_refusal"] <= 1
    assert final["by_label"]["safe"]["n"] == 24 and final["by_label"]["unsafe"]["n"] == 24
    for key in ("refusal_rate", "full_refusal_rate", "partial_refusal_rate", "harmful_rate"):
        assert 0 <= final["by_label"]["unsafe"][key] <= 1
    violence = final["by_category"]["violence"]
    assert violence["n"] == 24 and violence["budget"] == 0.01 and violence["behavior"] == "refuse"
    low, high = violence["harmful_rate_ci"]
    assert low <= violence["harmful_rate"] <= high
    assert final["worst"] and final["replies_per_second"] > 0

    items = actors.api("policy").get(f"/api/v1/training-jobs/{job_id}/artifacts/items.jsonl")
    assert items.status_code == 200
    lines = [json.loads(line) for line in b"".join(items.streaming_content).decode().splitlines()]
    rows = learnable_rows(48)
    assert [(i["prompt"], i["reply"]) for i in lines] == [(r["prompt"], r["response"]) for r in rows]
    assert {"label", "categories", "refusal", "harmful", "response_harmful", "prompt_harmful"} <= set(lines[0])
    assert [i["id"] for i in lines[:2]] == [f"{answered.pk}:0", f"{answered.pk}:1"]
    assert actors.api("rater").get(f"/api/v1/training-jobs/{job_id}/artifacts/items.jsonl").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_generates_with_a_tiny_policy_and_scores_reward_and_cost(actors, media, tiny_model_dir,
                                                                              tiny_policy_dir, version, classifier):
    bare = prompt_set(actors.admin, version, learnable_rows(12, with_responses=False), name="to answer")
    pairs = learnable_snapshot(actors.admin, n=16)
    reward = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[pairs.pk],
                                          config=tiny_config(tiny_model_dir, epochs=1))
    cost = services.training_job_create(user=actors.admin, kind="cost_model", export_ids=[pairs.pk],
                                        config=tiny_config(tiny_model_dir, epochs=1))
    reward.refresh_from_db()
    cost.refresh_from_db()

    job = services.training_job_create(user=actors.admin, kind="evaluation", prompt_set_ids=[bare.pk], config={
        "policy": tiny_policy_dir, "max_new_tokens": 6, "batch_size": 4, "safety_classifier": classifier.pk,
        "reward_model": reward.reward_model.pk, "cost_model": cost.reward_model.pk, "device": "cpu"})
    job.refresh_from_db()

    assert job.status == "succeeded", job.error
    assert job.config["policy"] == f"./{tiny_policy_dir}"
    assert job.final_metrics["n"] == 12
    assert isinstance(job.final_metrics["mean_reward"], float) and isinstance(job.final_metrics["mean_cost"], float)
    assert job.steps == 12
    path = next(a for a in job.artifacts if a["name"] == "items.jsonl")["path"]
    from django.conf import settings

    items = [json.loads(line) for line in (settings.MEDIA_ROOT / path).read_text().splitlines()]
    assert len(items) == 12 and all(isinstance(i["reply"], str) for i in items)
    assert {"reward", "cost"} <= set(items[0])


def test_a_cancel_stops_an_evaluation_and_records_no_results(actors, media, version, answered, classifier,
                                                             monkeypatch):
    job = services.training_job_create(user=actors.admin, kind="evaluation", prompt_set_ids=[answered.pk], config={
        "safety_classifier": classifier.pk, "use_responses": True, "batch_size": 4}, dispatch=False)
    TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)  # asked for as the worker picks it up
    monkeypatch.setattr(services, "REPORT_EVERY_SECONDS", 0.0)

    assert services.training_job_run(job_id=job.pk) == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.final_metrics == {} and job.artifacts == []
    assert job.log_lines.filter(message__startswith="cancelled after").exists()
