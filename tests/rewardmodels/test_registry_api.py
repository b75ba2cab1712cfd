"""The registry over REST: provenance, per-object visibility, and batch scoring with a model loaded once."""

import shutil
from pathlib import Path

import pytest

from labeling.models import ExportSnapshot
from rewardmodels import services
from training import services as training_services
from training.models import TrainingJob
from tests.training.helpers import learnable_snapshot, tiny_config

pytestmark = pytest.mark.django_db(transaction=True)  # jobs are handed over after the commit


@pytest.fixture
def trained(actors, settings, tmp_path, tiny_model_dir):
    settings.MEDIA_ROOT = tmp_path / "media"
    export = learnable_snapshot(actors.admin)
    job = training_services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                                config=tiny_config(tiny_model_dir, epochs=6), name="registry rm")
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job.reward_model


def test_a_model_carries_its_provenance(actors, trained):
    out = actors.api("policy").get(f"/api/v1/reward-models/{trained.pk}/").json()
    export = ExportSnapshot.objects.get()
    assert out["job"] == trained.job_id and out["kind"] == "reward" and out["name"] == "registry rm"
    assert out["exports"] == [{"id": export.pk, "sha256": export.sha256, "name": export.name, "source": "imported"}]
    assert out["metrics"]["accuracy"] >= 0.75
    assert out["spec_version"] is None and out["campaign"] is None  # imported data has neither


def test_scores_come_back_in_order_and_the_model_is_loaded_once(actors, trained, monkeypatch):
    from rewardmodels import ml

    services._scorers.clear()
    loads = []
    real = ml.load_scorer
    monkeypatch.setattr(ml, "load_scorer", lambda *a, **k: loads.append(a) or real(*a, **k))
    items = [{"prompt": "q", "response": "answer clear kind careful"}, {"prompt": "q", "response": "answer rude cruel"}]
    first = actors.api("admin").post(f"/api/v1/reward-models/{trained.pk}/score/", {"items": items}, format="json")
    second = actors.api("admin").post(f"/api/v1/reward-models/{trained.pk}/score/",
                                      {"items": list(reversed(items))}, format="json")
    assert first.status_code == 200
    a, b = first.json()["scores"]
    assert second.json()["scores"] == pytest.approx([b, a], abs=1e-5)
    assert len(loads) == 1


@pytest.mark.parametrize("body, field", [
    ({}, "items"),
    ({"items": []}, "items"),
    ({"items": [{"prompt": "q"}]}, "items[0].response"),
    ({"items": [{"prompt": "q", "response": 3}]}, "items[0].response"),
    ({"items": [{"prompt": "q", "response": "r", "extra": 1}]}, "items[0]"),
    ({"items": [{"prompt": "q", "response": "r"}] * 1001}, "items"),
])
def test_a_bad_score_request_names_the_field(actors, trained, body, field):
    response = actors.api("admin").post(f"/api/v1/reward-models/{trained.pk}/score/", body, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["detail"]["errors"]]


def test_the_role_matrix_on_the_registry_endpoints(actors, trained):
    body = {"items": [{"prompt": "q", "response": "r"}]}
    for who, status in [(None, 401), ("outsider", 403), ("rater", 403), ("policy", 200), ("admin", 200)]:
        assert actors.api(who).get("/api/v1/reward-models/").status_code == status, who
        assert actors.api(who).get(f"/api/v1/reward-models/{trained.pk}/").status_code == status, who
        assert actors.api(who).post(f"/api/v1/reward-models/{trained.pk}/score/", body,
                                    format="json").status_code == status, who


def test_a_model_trained_on_an_export_a_policy_user_cannot_see_is_a_404_for_them(actors, trained):
    hidden = ExportSnapshot.objects.create(source="campaign", name="hidden", n_pairs=1, sha256="0" * 64,
                                           path="x.jsonl", size_bytes=1, created_by=actors.admin)
    TrainingJob.objects.get(pk=trained.job_id).exports.add(hidden)
    assert actors.api("policy").get(f"/api/v1/reward-models/{trained.pk}/").status_code == 404
    assert actors.api("policy").post(f"/api/v1/reward-models/{trained.pk}/score/",
                                     {"items": [{"prompt": "q", "response": "r"}]}, format="json").status_code == 404
    assert actors.api("admin").get(f"/api/v1/reward-models/{trained.pk}/").status_code == 200


def test_a_process_keeps_only_the_most_recently_used_scorers(actors, trained, settings, monkeypatch):
    from rewardmodels import ml

    services._scorers.clear()
    monkeypatch.setattr(services, "MAX_LOADED_SCORERS", 1)
    loads = []
    real = ml.load_scorer
    monkeypatch.setattr(ml, "load_scorer", lambda *a, **k: loads.append(a) or real(*a, **k))
    services.scorer_get(trained)
    services.scorer_get(trained)
    other = type(trained).objects.get(pk=trained.pk)
    other.pk += 1000  # the same checkpoint under another key, as a second model would be
    services.scorer_get(other)
    assert len(loads) == 2 and list(services._scorers) == [(other.pk, str(Path(settings.MEDIA_ROOT) / other.path))]


def test_a_scorer_is_not_reused_for_another_media_root(actors, trained, settings, tmp_path, monkeypatch):
    """Ids and relative paths repeat (a rolled-back SQLite test, a second deployment on one host)."""
    from rewardmodels import ml

    services._scorers.clear()
    loads = []
    real = ml.load_scorer
    monkeypatch.setattr(ml, "load_scorer", lambda *a, **k: loads.append(a) or real(*a, **k))
    services.scorer_get(trained)
    moved = tmp_path / "other-media"
    shutil.copytree(settings.MEDIA_ROOT, moved)
    settings.MEDIA_ROOT = moved
    services.scorer_get(trained)
    assert [str(a[0]) for a in loads] == [str(loads[0][0]), str(moved / trained.path)]


def test_scoring_a_model_whose_checkpoint_is_gone_answers_404_naming_it(actors, settings, tmp_path):
    from rewardmodels.models import RewardModel

    settings.MEDIA_ROOT = tmp_path / "media"
    job = TrainingJob.objects.create(kind=TrainingJob.REWARD_MODEL, status=TrainingJob.SUCCEEDED, config={},
                                     created_by=actors.admin)
    model = RewardModel.objects.create(name="gone", kind=RewardModel.REWARD, job=job, path="models/gone",
                                       backbone="tiny", created_by=actors.admin)
    response = actors.api("admin").post(f"/api/v1/reward-models/{model.pk}/score/",
                                        {"items": [{"prompt": "q", "response": "r"}]}, format="json")
    assert response.status_code == 404
    assert response.json() == {"error": "The model's checkpoint is missing from storage.", "detail": {}}
