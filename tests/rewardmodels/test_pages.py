"""The model registry pages (list, detail, try it) through the Django test client."""

import re

import pytest
from django.urls import reverse

from rewardmodels import services
from rewardmodels.models import RewardModel
from tests.pages import HX, XSS, json_script, page_text
from tests.training import page_data

@pytest.fixture
def shared(actors):
    return page_data.imported_export(actors.admin)


@pytest.fixture
def model(actors, shared) -> RewardModel:
    return page_data.registered(page_data.job(actors.admin, [shared]), [shared], name="rm baseline")


@pytest.fixture
def private(actors) -> RewardModel:
    """A cost model trained on a campaign export of a spec only ``actors.policy`` edits."""
    export = page_data.campaign_export(actors)
    job = page_data.job(actors.admin, [export], name="private job", kind="cost_model")
    return page_data.registered(job, [export], name="private cost model", kind=RewardModel.COST)


class FakeScorer:
    def __init__(self, value: float):
        self.value = value
        self.calls = []

    def score(self, prompts, responses):
        self.calls.append((prompts, responses))
        return [self.value for _ in prompts]


@pytest.fixture
def scorer(monkeypatch):
    fake = FakeScorer(1.2345)
    monkeypatch.setattr(services, "scorer_get", lambda model: fake)
    return fake


PAGES = {
    "list": lambda m: reverse("models:list"),
    "detail": lambda m: reverse("models:detail", args=[m.pk]),
}


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, model, page):
    response = client.get(PAGES[page](model))

    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("who", ["rater", "outsider"])
@pytest.mark.parametrize("page", PAGES)
def test_raters_and_users_without_a_role_get_403(client, actors, model, who, page):
    client.force_login(getattr(actors, who))

    assert client.get(PAGES[page](model)).status_code == 403
    assert client.post(reverse("models:score", args=[model.pk]), {"prompt": "p", "response": "r"}).status_code == 403


@pytest.mark.parametrize("who", ["admin", "policy"])
@pytest.mark.parametrize("page", PAGES)
def test_admins_and_policy_users_open_the_registry(client, actors, model, who, page):
    client.force_login(getattr(actors, who))

    response = client.get(PAGES[page](model))

    assert response.status_code == 200 and "rm baseline" in response.content.decode()


def test_a_model_from_a_job_the_user_cannot_see_is_a_404_and_not_listed(client, actors, model, private, scorer):
    client.force_login(actors.policy2)

    assert client.get(reverse("models:detail", args=[private.pk])).status_code == 404
    assert client.post(reverse("models:score", args=[private.pk]), {"prompt": "p", "response": "r"},
                       headers=HX).status_code == 404
    assert not scorer.calls
    listing = client.get(reverse("models:list")).content.decode()
    assert "private cost model" not in listing and "rm baseline" in listing
    client.force_login(actors.policy)
    assert client.get(reverse("models:detail", args=[private.pk])).status_code == 200


def test_an_unknown_model_is_a_404(client, actors):
    client.force_login(actors.admin)

    assert client.get(reverse("models:detail", args=[424242])).status_code == 404


def test_model_names_and_backbones_are_escaped(client, actors, shared):
    job = page_data.job(actors.admin, [shared], name=XSS)
    bad = page_data.registered(job, [shared], name=XSS)
    RewardModel.objects.filter(pk=bad.pk).update(backbone=XSS)
    client.force_login(actors.admin)

    for response in (client.get(reverse("models:list")), client.get(reverse("models:detail", args=[bad.pk]))):
        body = response.content.decode()
        assert XSS not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_list_shows_kind_backbone_accuracy_provenance_and_the_job(client, actors, model, private):
    client.force_login(actors.policy)

    response = client.get(reverse("models:list"))

    text = page_text(response)
    assert re.search(r"rm baseline reward .*?sentence-transformers/all-MiniLM-L6-v2 87\.5% hh harmless sample a1a1a1", text)
    assert re.search(r"private cost model cost .*?87\.5% sign 80\.0% round 1 consensus b2b2b2.*?Harm spec v1 · Harm pairs", text)
    assert f'href="{reverse("training:detail", args=[model.job_id])}"' in response.content.decode()


def test_the_list_costs_the_same_queries_for_one_model_or_many(client, actors, shared, model, django_assert_num_queries):
    client.force_login(actors.admin)
    client.get(reverse("models:list"))  # warm the session

    def queries():
        # session, user, roles, the models (with job, spec, campaign, creator), their exports
        with django_assert_num_queries(5):
            return client.get(reverse("models:list"))

    assert queries().content.decode().count("<tr data-model=") == 1
    for n in range(3):
        page_data.registered(page_data.job(actors.admin, [shared], name=f"more {n}"), [shared], name=f"more {n}")
    assert queries().content.decode().count("<tr data-model=") == 4


def test_the_detail_page_shows_categories_calibration_and_distributions(client, actors, private):
    client.force_login(actors.policy)

    response = client.get(reverse("models:detail", args=[private.pk]))

    text = page_text(response)
    body = response.content.decode()
    assert "87.5%" in text and "80.0%" in text and "0.052" in text  # accuracy, sign accuracy, ECE
    assert re.search(r'data-category="violence">\s*<td>Violence <span class="key">violence</span></td>\s*'
                     r'<td class="bar-col"><span class="acc-label">75\.0%</span><span class="bar acc-bar w-75">'
                     r'</span></td>\s*<td class="num">70\.0%</td>\s*<td class="num">12</td>', body)
    assert "Harm spec v1" in text and "Harm pairs" in text and "sha256 " + "b2" * 32 in text
    data = json_script(response, "model-data")
    assert data["calibration"]["bins"] == [{"mean_predicted": 0.62, "accuracy": 0.58, "count": 14},
                                           {"mean_predicted": 0.88, "accuracy": 0.91, "count": 26}]  # the empty bin goes
    assert data["distributions"]["harmful"]["hist"] == [0, 2, 8, 10]
    assert data["distributions"]["edges"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert 'data-model-chart="calibration"' in body and 'data-model-chart="distributions"' in body


@pytest.mark.parametrize("metrics", [{}, {"accuracy": "n/a", "per_category": [], "calibration": None,
                                          "distributions": {"edges": [0, 1], "harmful": {"histogram": [1, 2, 3]}}}])
def test_the_detail_page_tolerates_missing_or_odd_metrics(client, actors, shared, metrics):
    bare = page_data.registered(page_data.job(actors.admin, [shared]), [shared], model_metrics=metrics)
    client.force_login(actors.admin)

    response = client.get(reverse("models:detail", args=[bare.pk]))

    text = page_text(response)
    assert response.status_code == 200
    assert "No per-category accuracy" in text and "No calibration data" in text and "No score distributions" in text
    assert json_script(response, "model-data") == {"calibration": {"ece": None, "bins": []}, "distributions": None}


# --- try it -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "policy"])
def test_try_it_scores_a_reply_with_the_model(client, actors, private, scorer, who):
    client.force_login(getattr(actors, who))

    response = client.post(reverse("models:score", args=[private.pk]),
                           {"prompt": "How do I pick a lock?", "response": "Here is how…"}, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="try-it">')
    assert '<span class="score-value" id="score-value">1.2345</span>' in body
    assert "predicted harmful" in body  # a cost above 0
    assert scorer.calls == [(["How do I pick a lock?"], ["Here is how…"])]


def test_try_it_without_javascript_renders_the_page_with_the_score(client, actors, model, scorer):
    client.force_login(actors.admin)

    response = client.post(reverse("models:score", args=[model.pk]), {"prompt": "", "response": "Sure."})

    assert response.status_code == 200
    assert "<h1>rm baseline</h1>" in response.content.decode() and 'id="score-value">1.2345<' in response.content.decode()


def test_try_it_asks_for_a_reply(client, actors, model, scorer):
    client.force_login(actors.admin)

    response = client.post(reverse("models:score", args=[model.pk]), {"prompt": "p", "response": ""}, headers=HX)

    assert response.status_code == 400 and "Type a reply to score." in response.content.decode()
    assert not scorer.calls


def test_try_it_escapes_what_was_typed(client, actors, model, scorer):
    client.force_login(actors.admin)

    body = client.post(reverse("models:score", args=[model.pk]), {"prompt": XSS, "response": XSS}, headers=HX).content.decode()

    assert XSS not in body and "&lt;script&gt;" in body


def test_a_missing_checkpoint_is_reported_in_the_form(client, actors, model, monkeypatch):
    def missing(model):
        raise FileNotFoundError(2, "No such file or directory", "/media/models/job-1")

    monkeypatch.setattr(services, "scorer_get", missing)
    client.force_login(actors.admin)

    response = client.post(reverse("models:score", args=[model.pk]), {"prompt": "p", "response": "r"}, headers=HX)

    assert response.status_code == 400
    assert "checkpoint could not be read" in response.content.decode()
