"""Safety-classifier jobs over REST and the service: per-kind config checks, prompt sets as inputs, and a tiny
classifier trained end to end (eagerly) on a prompt set and an export, registered as kind safety."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from rewardmodels.models import RewardModel
from training import services
from training.models import JobLog, TrainingJob

from .helpers import learnable_snapshot, tiny_config
from .safety_data import learnable_rows, prompt_set, published_version, safety_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)


@pytest.fixture
def version(actors):
    return published_version(actors.policy)


@pytest.fixture
def probes(actors, version):
    return prompt_set(actors.admin, version, learnable_rows(48))


def _launch(actors, body, who="admin"):
    return actors.api(who).post("/api/v1/training-jobs/", body, format="json")


def _fields(response) -> list[str]:
    return [e["field"] for e in response.json()["detail"]["errors"]]


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, field", [
    ({"head_learning_rate": 0}, "config.head_learning_rate"),
    ({"pair_weight": -1}, "config.pair_weight"),
    ({"epochs": "two"}, "config.epochs"),
    ({"eval_fraction": 0.9}, "config.eval_fraction"),
    ({"colour": "red"}, "config.colour"),
    ({"sign_weight": 1.0}, "config.sign_weight"),  # a cost-model setting: unknown to the classifier
    ({"backbone": "/etc"}, "config.backbone"),
    ({"kind": "safety"}, "config.kind"),
])
def test_a_bad_safety_classifier_config_is_refused_naming_the_key(actors, media, no_dispatch, probes, config, field):
    response = _launch(actors, {"kind": "safety_classifier", "prompt_sets": [probes.pk], "config": config})

    assert response.status_code == 400
    assert field in _fields(response), response.json()
    assert not TrainingJob.objects.exists()


def test_a_safety_classifier_job_answers_its_prompt_sets_and_full_config(actors, media, no_dispatch, probes):
    response = _launch(actors, {"kind": "safety_classifier", "prompt_sets": [probes.pk]})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "safety_classifier" and body["status"] == "queued"
    assert body["prompt_sets"] == [probes.pk] and body["exports"] == []
    assert body["config"]["backbone"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"pair_weight", "head_learning_rate", "category_pos_weight"} <= set(body["config"])
    assert actors.api("policy").get(f"/api/v1/training-jobs/{body['id']}/").json()["prompt_sets"] == [probes.pk]
    assert JobLog.objects.filter(job_id=body["id"], message__contains=f"prompt set(s) {probes.pk}").exists()


@pytest.mark.parametrize("body, field", [
    ({"kind": "safety_classifier"}, "prompt_sets"),
    ({"kind": "safety_classifier", "prompt_sets": [999999]}, "prompt_sets[0]"),
    ({"kind": "safety_classifier", "prompt_sets": "seven"}, "prompt_sets"),
    ({"kind": "reward_model", "prompt_sets": ["PROBES"], "export": "EXPORT"}, "prompt_sets"),
    ({"kind": "safety_classifier", "prompt_sets": ["PROBES", "PROBES"]}, "prompt_sets"),
    ({"kind": "safety_classifier", "exports": ["EXPORT"]}, "prompt_sets"),  # imported pairs carry no spec version
])
def test_a_bad_set_of_inputs_is_refused_naming_the_field(actors, media, no_dispatch, probes, body, field):
    export = learnable_snapshot(actors.admin, n=8)
    ids = {"PROBES": probes.pk, "EXPORT": export.pk}

    def fill(value):
        return [fill(v) for v in value] if isinstance(value, list) else ids.get(value, value)

    response = _launch(actors, {k: fill(v) for k, v in body.items()})

    assert response.status_code == 400
    assert field in _fields(response), response.json()
    assert not TrainingJob.objects.exists()


def test_another_users_prompt_set_is_named_as_one_they_cannot_use(actors, media, no_dispatch, probes):
    """The set's spec is edited by actors.policy only: pete (policy2) cannot see it, so he cannot name it."""
    from specloop.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as error:
        services.training_job_create(user=actors.policy2, kind="safety_classifier", prompt_set_ids=[probes.pk],
                                     config={})
    assert error.value.errors == [{"field": "prompt_sets[0]", "message": f"no prompt set {probes.pk} that you can use"}]
    job = services.training_job_create(user=actors.policy, kind="safety_classifier", prompt_set_ids=[probes.pk],
                                       config={})
    assert list(job.prompt_sets.all()) == [probes]
    # and the job is hidden from whoever cannot see its prompt set
    assert actors.api("policy2").get(f"/api/v1/training-jobs/{job.pk}/").status_code == 404
    assert actors.api("policy").get(f"/api/v1/training-jobs/{job.pk}/").status_code == 200


def test_the_idempotency_key_covers_the_prompt_sets(actors, media, no_dispatch, version, probes):
    other = prompt_set(actors.admin, version, learnable_rows(8, seed=3), name="other probes")
    key = {"HTTP_IDEMPOTENCY_KEY": "safety-launch-1"}
    first = actors.api("admin").post("/api/v1/training-jobs/", {"kind": "safety_classifier", "prompt_sets": [probes.pk]},
                                     format="json", **key)
    again = actors.api("admin").post("/api/v1/training-jobs/", {"kind": "safety_classifier", "prompt_sets": [probes.pk]},
                                     format="json", **key)
    changed = actors.api("admin").post("/api/v1/training-jobs/", {"kind": "safety_classifier", "prompt_sets": [other.pk]},
                                       format="json", **key)

    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"] and TrainingJob.objects.count() == 1


# --- a tiny classifier, end to end ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the job is handed over after the commit
def test_a_safety_classifier_job_trains_on_a_prompt_set_and_registers_a_safety_model(actors, media, tiny_model_dir,
                                                                                    version, probes):
    response = _launch(actors, {"kind": "safety_classifier", "prompt_sets": [probes.pk], "name": "tiny guard",
                                "config": safety_config(tiny_model_dir)})
    assert response.status_code == 201, response.json()

    detail = actors.api("policy").get(f"/api/v1/training-jobs/{response.json()['id']}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert detail["progress"] == 1.0 and detail["steps"] > 0 and detail["device"] == "cpu"
    assert detail["prompt_sets"] == [probes.pk]
    final = detail["metrics"]["final"]
    assert final["prompt_harmful"]["n"] > 0 and final["prompt_harmful"]["auroc"] is not None
    assert "violence" in final["categories"]["per_category"]
    assert final["response_refusal"]["n"] > 0 and "string_match" in final["response_refusal"]
    names = {a["name"] for a in detail["artifacts"]}
    assert {"model.safetensors", "specloop.json"} <= names

    model = RewardModel.objects.get(pk=detail["reward_model"])
    assert model.kind == "safety" and model.name == "tiny guard" and model.spec_version == version
    assert model.backbone == f"./{Path(tiny_model_dir).name}"  # named as the job named it, not the worker's path
    folder = Path(settings.MEDIA_ROOT) / model.path
    metadata = json.loads((folder / "specloop.json").read_text())
    assert metadata["provenance"]["prompt_sets"][0]["sha256"] == probes.sha256
    assert metadata["config"]["backbone"] == model.backbone
    assert [c["key"] for c in metadata["categories"]] == ["violence", "weapons"]

    from training.ml.safety import load_classifier

    out = load_classifier(folder, device="cpu").classify(["how do i bomb stab weapon"], ["Sure, here is how."])[0]
    assert set(out) == {"prompt_harmful", "categories", "response_refusal", "response_harmful"}
    # a safety classifier has no single score: the reward-model endpoint says where to go instead
    scored = actors.api("admin").post(f"/api/v1/reward-models/{model.pk}/score/",
                                      {"items": [{"prompt": "p", "response": "r"}]}, format="json")
    assert scored.status_code == 400 and "guard" in scored.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_a_safety_classifier_learns_from_an_export_beside_a_prompt_set(actors, media, tiny_model_dir, version,
                                                                       probes):
    """Export replies train the reply-harmful head (their flags) and the harm pairs its pairwise term."""
    export = learnable_snapshot(actors.admin, n=16)
    job = services.training_job_create(user=actors.admin, kind="safety_classifier", prompt_set_ids=[probes.pk],
                                       export_ids=[export.pk], config=safety_config(tiny_model_dir, epochs=1))
    job.refresh_from_db()

    assert job.status == "succeeded", job.error
    assert JobLog.objects.filter(job=job, message__contains=f"32 rows and 16 pairs from export {export.pk}").exists()
    assert job.reward_model.kind == "safety" and list(job.reward_model.exports.all()) == [export]
    assert job.final_metrics["n_pairs"] > 0


def test_category_keys_outside_the_spec_version_are_left_out_and_counted(actors, media, tiny_model_dir, version,
                                                                         monkeypatch):
    rows = learnable_rows(16)
    rows[0]["categories"] = ["violence", "not_in_the_spec"]
    probes = prompt_set(actors.admin, version, rows)
    seen = {}

    def fake_train(cfg, *, rows, pairs, categories, output_dir, provenance, hooks):
        seen.update(rows=rows, categories=categories, provenance=provenance)
        from training.ml.safety import SafetyTrainResult

        return SafetyTrainResult(status="cancelled", output_dir=output_dir, metrics={}, steps=0, seconds=0.0,
                                 device="cpu")

    from training.ml import safety as safety_ml

    monkeypatch.setattr(safety_ml, "train_safety_classifier", fake_train)
    job = services.training_job_create(user=actors.admin, kind="safety_classifier", prompt_set_ids=[probes.pk],
                                       config=safety_config(tiny_model_dir), dispatch=False)

    assert services.training_job_run(job_id=job.pk) == "cancelled"
    assert seen["rows"][0].categories == ["violence"]
    assert [c["key"] for c in seen["categories"]] == ["violence", "weapons"]
    assert seen["provenance"]["prompt_sets"] == [{"id": probes.pk, "sha256": probes.sha256, "name": probes.name,
                                                  "n_prompts": 16, "spec_version": str(version)}]
    assert JobLog.objects.filter(job=job, level="warning", message__contains="not_in_the_spec (1)").exists()


def test_a_reward_model_job_still_needs_an_export_and_trains_as_before(actors, media, no_dispatch, tiny_model_dir):
    response = _launch(actors, {"kind": "reward_model", "config": tiny_config(tiny_model_dir)})
    assert response.status_code == 400 and _fields(response) == ["exports"]
