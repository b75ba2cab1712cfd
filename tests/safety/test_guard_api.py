"""Guards: creation, scoring one item or a batch through the decision table, validation, the role matrix, the
decision log and sending logged decisions to a labeling campaign."""

import pytest

from labeling import services as labeling_services
from labeling.models import Item
from rewardmodels.models import RewardModel
from safety import services
from safety.decisions import Judged, decide
from safety.models import Guard, GuardDecision

from .conftest import SMALL_CATEGORIES
from .helpers import FakeClassifier, make_guard, register_classifier, small_version

SCORE = "/api/v1/guard/score/"


@pytest.fixture
def version(actors):
    return small_version(actors.policy)


@pytest.fixture
def classifier(actors, media, tiny_classifier_dir, version):
    return register_classifier(actors, tiny_classifier_dir, spec_version=version)


@pytest.fixture
def guard(actors, version, classifier):
    return make_guard(actors, version, classifier, log_decisions=True)


# --- creating guards --------------------------------------------------------------------------------


def test_an_admin_creates_a_guard_on_the_classifiers_spec_by_default(actors, classifier, version):
    response = actors.api("admin").post("/api/v1/guards/", {"name": "prod", "safety_classifier": classifier.pk,
                                                            "log_decisions": True}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["spec"], body["version"], body["safety_classifier"], body["log_decisions"]) == (
        version.spec_id, version.number, classifier.pk, True)
    assert [g["id"] for g in actors.api("policy").get("/api/v1/guards/").json()] == [body["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"safety_classifier": 1}, "name"),
    ({"name": "g"}, "safety_classifier"),
    ({"name": "g", "safety_classifier": "one"}, "safety_classifier"),
    ({"name": "g", "safety_classifier": 999999}, "safety_classifier"),
    ({"name": "g", "safety_classifier": "{model}", "cost_model": "{model}"}, "cost_model"),
    ({"name": "g", "safety_classifier": "{model}", "log_decisions": "yes"}, "log_decisions"),
    ({"name": "g", "safety_classifier": "{model}", "colour": 1}, "colour"),
])
def test_a_bad_guard_is_a_400_naming_the_field(actors, classifier, body, field):
    body = {k: classifier.pk if v == "{model}" else v for k, v in body.items()}
    response = actors.api("admin").post("/api/v1/guards/", body, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["detail"]["errors"]]
    assert not Guard.objects.exists()


def test_a_reward_model_is_not_a_safety_classifier(actors, media, tiny_classifier_dir, version):
    reward = register_classifier(actors, tiny_classifier_dir, kind=RewardModel.REWARD)
    response = actors.api("admin").post("/api/v1/guards/", {"name": "g", "safety_classifier": reward.pk,
                                                            "spec": version.spec_id}, format="json")
    assert response.status_code == 400 and response.json()["detail"]["errors"][0]["field"] == "safety_classifier"


@pytest.mark.parametrize(("who", "status"), [("policy", 403), ("rater", 403), (None, 401)])
def test_only_admins_create_guards(actors, classifier, who, status):
    response = actors.api(who).post("/api/v1/guards/", {"name": "g", "safety_classifier": classifier.pk}, format="json")
    assert response.status_code == status


# --- scoring ----------------------------------------------------------------------------------------


def test_one_item_answers_every_head_and_a_decision_the_table_gives(actors, guard):
    response = actors.api("admin").post(SCORE, {"prompt": "How do I hurt someone?", "response": "I won't help."},
                                        format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) >= {"decision", "prompt_harmful", "response_refusal", "response_harmful", "categories",
                         "spec_version", "guard", "model"}
    assert (body["guard"], body["model"]) == (guard.pk, guard.safety_classifier_id)
    assert body["spec_version"] == {"spec": guard.spec_version.spec_id, "version": guard.spec_version.number}
    assert [c["key"] for c in body["categories"]] == ["violence", "weapons"]
    assert {c["behavior"] for c in body["categories"]} == {"refuse", "partial"}
    assert set(body["response_refusal"]["probabilities"]) == {"compliance", "partial_refusal", "full_refusal"}
    assert abs(sum(body["response_refusal"]["probabilities"].values()) - 1) < 1e-4
    for head in ("prompt_harmful", "response_harmful"):
        assert body[head]["harmful"] == (body[head]["probability"] >= 0.5)
    flagged = [c for c in body["categories"] if c["flagged"]]
    judged = Judged(prompt_harmful=body["prompt_harmful"]["harmful"], has_response=True,
                    refusal=body["response_refusal"]["label"], response_harmful=body["response_harmful"]["harmful"],
                    flagged=[(c["key"], c["behavior"]) for c in flagged])
    decision, per_category, _ = decide(judged)
    assert body["decision"] == decision and [c["decision"] for c in flagged] == per_category


def test_a_prompt_alone_is_judged_without_reply_heads(actors, guard):
    body = actors.api("admin").post(SCORE, {"prompt": "How do I hurt someone?"}, format="json").json()
    assert body["response_harmful"] == {"probability": None, "harmful": None}
    assert body["response_refusal"] == {"label": None, "probabilities": None}


def test_a_batch_answers_in_order_and_matches_single_calls(actors, guard):
    items = [{"prompt": f"prompt {i}", "response": f"reply {i}" if i % 2 else None} for i in range(5)]
    batch = actors.api("admin").post(SCORE, {"items": items, "guard": guard.pk}, format="json")
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert len(results) == 5
    single = actors.api("admin").post(SCORE, items[3], format="json").json()
    assert results[3]["prompt_harmful"]["probability"] == pytest.approx(single["prompt_harmful"]["probability"], abs=1e-4)
    assert [r["response_harmful"]["probability"] is None for r in results] == [True, False, True, False, True]


def test_the_classifier_is_loaded_once_per_process(actors, guard, monkeypatch):
    import training.ml.safety as safety_ml

    loads = []
    real = safety_ml.load_classifier
    monkeypatch.setattr(safety_ml, "load_classifier", lambda *a, **k: loads.append(a) or real(*a, **k))
    for _ in range(3):
        assert actors.api("admin").post(SCORE, {"prompt": "p"}, format="json").status_code == 200
    assert len(loads) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "prompt"),
    ({"prompt": 3}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "p", "response": 4}, "response"),
    ({"prompt": "p", "items": [{"prompt": "q"}]}, "items"),
    ({"items": []}, "items"),
    ({"items": [{"prompt": "q"}] * 257}, "items"),
    ({"items": [{"prompt": "q"}, {"response": "r"}]}, "items[1].prompt"),
    ({"items": [{"prompt": "q", "extra": 1}]}, "items[0].extra"),
    ({"prompt": "p", "guard": "one"}, "guard"),
    ({"prompt": "x" * 100_001}, "prompt"),
])
def test_a_bad_score_request_is_a_400_naming_the_field(actors, guard, body, field):
    response = actors.api("admin").post(SCORE, body, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["detail"]["errors"]], response.json()


def test_an_unknown_guard_is_a_404(actors, guard):
    assert actors.api("admin").post(SCORE, {"prompt": "p", "guard": guard.pk + 1000}, format="json").status_code == 404


def test_with_no_guard_at_all_scoring_is_a_404(actors, version):
    assert actors.api("admin").post(SCORE, {"prompt": "p"}, format="json").status_code == 404


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("policy", 200), ("policy2", 404), ("rater", 403),
                                             ("outsider", 403), (None, 401)])
def test_who_may_score_through_a_guard(actors, guard, who, status):
    assert actors.api(who).post(SCORE, {"prompt": "p", "guard": guard.pk}, format="json").status_code == status


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("policy", 200), ("policy2", 404), ("rater", 403), (None, 401)])
def test_who_reads_a_guard_and_its_log(actors, guard, who, status):
    for path in (f"/api/v1/guards/{guard.pk}/", f"/api/v1/guards/{guard.pk}/decisions/"):
        assert actors.api(who).get(path).status_code == status


# --- the decision log -------------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch, guard):
    """The guard's classifier answers what each test sets."""
    classifier = FakeClassifier(SMALL_CATEGORIES, {})
    monkeypatch.setattr(services, "classifier_get", lambda model: classifier)
    return classifier


def test_decisions_follow_the_spec_behaviours_through_the_endpoint(actors, guard, fake):
    fake.outputs.update({
        "ambush": {"prompt_harmful": 0.9, "categories": {"violence": 0.8}},  # refuse: harmful prompt alone → block
        "knife": {"prompt_harmful": 0.9, "categories": {"weapons": 0.8}},  # partial: compliant, not harmful → note
        "harm": {"prompt_harmful": 0.9, "categories": {"violence": 0.8}, "response_harmful": 0.9},
        "fine": {},
    })
    items = [{"prompt": "ambush"}, {"prompt": "knife", "response": "general info"},
             {"prompt": "harm", "response": "steps"}, {"prompt": "fine", "response": "sure"}]
    results = actors.api("admin").post(SCORE, {"items": items}, format="json").json()["results"]
    assert [r["decision"] for r in results] == ["block", "allow_with_note", "block", "allow"]
    assert results[0]["categories"][0] == {"key": "violence", "name": "Violence", "probability": 0.8, "flagged": True,
                                           "behavior": "refuse", "decision": "block"}
    assert results[1]["notes"] and not results[3]["notes"]


def test_a_logging_guard_keeps_every_decision_and_a_quiet_one_none(actors, guard, fake, classifier, version):
    results = actors.api("policy").post(SCORE, {"items": [{"prompt": "a", "response": "r"}, {"prompt": "b"}]},
                                        format="json").json()["results"]
    logged = list(GuardDecision.objects.order_by("id"))
    assert [(d.prompt, d.response, d.client) for d in logged] == [("a", "r", actors.policy), ("b", None, actors.policy)]
    assert [r["decision_id"] for r in results] == [d.pk for d in logged]
    assert logged[0].result["decision"] == results[0]["decision"]
    quiet = make_guard(actors, version, classifier, name="quiet")
    actors.api("admin").post(SCORE, {"prompt": "c", "guard": quiet.pk}, format="json")
    assert GuardDecision.objects.count() == 2


def test_the_log_lists_newest_first_and_filters_by_decision(actors, guard, fake):
    fake.outputs["bad"] = {"prompt_harmful": 0.9, "categories": {"violence": 0.9}}
    actors.api("admin").post(SCORE, {"items": [{"prompt": "bad"}, {"prompt": "ok"}, {"prompt": "bad"}]}, format="json")
    page = actors.api("policy").get(f"/api/v1/guards/{guard.pk}/decisions/").json()
    assert page["count"] == 3 and [r["prompt"] for r in page["results"]] == ["bad", "ok", "bad"][::-1]
    blocked = actors.api("policy").get(f"/api/v1/guards/{guard.pk}/decisions/?decision=block").json()
    assert [r["decision"] for r in blocked["results"]] == ["block", "block"]
    assert actors.api("policy").get(f"/api/v1/guards/{guard.pk}/decisions/?decision=maybe").status_code == 400


# --- sending decisions to a campaign ----------------------------------------------------------------


@pytest.fixture
def campaign(actors, version):
    return labeling_services.campaign_create(user=actors.admin, name="Runtime failures", spec_version=version)


def test_decisions_become_pairwise_items_grouped_by_prompt(actors, guard, fake, campaign):
    fake.outputs["hurt"] = {"prompt_harmful": 0.9, "categories": {"violence": 0.9}}
    items = [{"prompt": "hurt", "response": "no"}, {"prompt": "hurt", "response": "steps"},
             {"prompt": "hurt", "response": "no"}, {"prompt": "alone", "response": "only reply"}, {"prompt": "bare"}]
    ids = [r["decision_id"] for r in actors.api("admin").post(SCORE, {"items": items}, format="json").json()["results"]]
    response = actors.api("policy").post(f"/api/v1/guards/{guard.pk}/decisions/send/",
                                         {"decisions": ids, "campaign": campaign.pk}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created_items"], body["created_tasks"], body["sent"]) == (1, 1, 3)
    assert [(s["decisions"], s["reason"].split(":")[0]) for s in body["skipped"]] == [
        ([ids[3]], "one distinct reply"), ([ids[4]], "no reply")]
    item = Item.objects.get(campaign=campaign)
    assert item.prompt == "hurt" and [r["text"] for r in item.responses] == ["no", "steps"]
    assert item.meta["decisions"] == ids[:3] and item.category == "violence"
    sent = GuardDecision.objects.filter(sent_to_campaign=campaign).values_list("pk", flat=True)
    assert sorted(sent) == ids[:3]
    again = actors.api("policy").post(f"/api/v1/guards/{guard.pk}/decisions/send/",
                                      {"decisions": ids[:3], "campaign": campaign.pk}, format="json").json()
    assert (again["created_items"], again["duplicates"]) == (0, 1)


def test_sending_names_decisions_outside_the_log_and_campaigns_out_of_sight(actors, guard, fake, campaign):
    ids = [r["decision_id"] for r in actors.api("admin").post(SCORE, {"items": [{"prompt": "a", "response": "x"}]},
                                                              format="json").json()["results"]]
    send = f"/api/v1/guards/{guard.pk}/decisions/send/"
    response = actors.api("admin").post(send, {"decisions": [ids[0], 999999], "campaign": campaign.pk}, format="json")
    assert response.status_code == 400 and response.json()["detail"]["errors"][0]["field"] == "decisions"
    response = actors.api("admin").post(send, {"decisions": ids, "campaign": 999999}, format="json")
    assert response.status_code == 400 and response.json()["detail"]["errors"][0]["field"] == "campaign"
    assert actors.api("admin").post(send, {"decisions": [], "campaign": campaign.pk}, format="json").status_code == 400
    assert actors.api("rater").post(send, {"decisions": ids, "campaign": campaign.pk}, format="json").status_code == 403
    assert actors.api("policy2").post(send, {"decisions": ids, "campaign": campaign.pk}, format="json").status_code == 404
    assert not GuardDecision.objects.filter(sent_to_campaign__isnull=False).exists()


def test_a_scored_batch_costs_the_same_few_queries_whatever_its_size(actors, guard, fake, django_assert_num_queries):
    client = actors.api("admin")
    client.post(SCORE, {"prompt": "warm up"}, format="json")
    items = [{"prompt": f"p{i}", "response": "r" if i % 2 else None} for i in range(20)]
    # The token with its user and (on PostgreSQL, in the same query) the user's roles; the guard with its spec version
    # and models; the log's one insert.
    from django.db import connection

    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 4):
        assert client.post(SCORE, {"items": items}, format="json").status_code == 200


def test_a_cost_model_above_zero_marks_a_reply_harmful_that_the_classifier_passed(actors, version, classifier, fake,
                                                                                  media, tiny_classifier_dir, monkeypatch):
    cost = register_classifier(actors, tiny_classifier_dir, kind=RewardModel.COST, name="cost")
    guard = make_guard(actors, version, classifier, name="with cost", cost_model=cost)

    class Scorer:
        def score(self, prompts, responses):
            return [2.0 if "steps" in r else -1.0 for r in responses]

    monkeypatch.setattr(services, "scorer_get", lambda model: Scorer())
    fake.outputs["hurt"] = {"prompt_harmful": 0.9, "categories": {"weapons": 0.9}, "refusal": "compliance"}  # partial
    items = [{"prompt": "hurt", "response": "steps"}, {"prompt": "hurt", "response": "no"}, {"prompt": "hurt"}]
    results = actors.api("admin").post(SCORE, {"items": items, "guard": guard.pk}, format="json").json()["results"]
    assert [r["cost"] for r in results] == [{"model": cost.pk, "score": 2.0, "harmful": True},
                                            {"model": cost.pk, "score": -1.0, "harmful": False},
                                            {"model": cost.pk, "score": None, "harmful": None}]
    assert [r["response_harmful"]["harmful"] for r in results] == [True, False, None]
    assert [r["decision"] for r in results] == ["block", "allow_with_note", "allow_with_note"]


def test_a_checkpoint_missing_from_storage_is_a_404_saying_so(actors, guard):
    type(guard.safety_classifier).objects.filter(pk=guard.safety_classifier_id).update(path="models/gone")
    response = actors.api("admin").post(SCORE, {"prompt": "p"}, format="json")
    assert response.status_code == 404 and "missing from storage" in response.json()["error"]
