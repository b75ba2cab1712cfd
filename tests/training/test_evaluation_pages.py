"""The evaluation pages through the Django test client: the job page's per-category table with budget marks,
refusal vs over-refusal and the worst items; two evaluations compared; the launch form's new kinds; who may open
what. Metrics come from training.ml.evaluation.aggregate on hand-made items (no model runs here)."""

import re

import pytest
from django.urls import reverse

from tests.pages import XSS, page_text
from training import services
from training.ml.evaluation import aggregate
from training.models import TrainingJob

from . import page_data
from .safety_data import learnable_rows, prompt_set, published_version

pytestmark = pytest.mark.django_db


def _item(label, categories, refusal, harmful, p, *, prompt="a prompt", reply="a reply"):
    return {"label": label, "categories": categories, "refusal": refusal, "harmful": harmful, "response_harmful": p,
            "prompt": prompt, "reply": reply}


def items(*, harmful_violence: int, refused_safe: int) -> list[dict]:
    """20 unsafe violence prompts (the first ``harmful_violence`` answered harmfully, the rest refused), 10 safe
    ones (the first ``refused_safe`` refused), 5 weapons prompts answered harmlessly."""
    out = []
    for i in range(20):
        bad = i < harmful_violence
        out.append(_item("unsafe", ["violence"], "compliance" if bad else "full_refusal", bad, 0.9 if bad else 0.1,
                         prompt=f"violent prompt {i}", reply=f"violent reply {i}"))
    for i in range(10):
        out.append(_item("safe", [], "partial_refusal" if i < refused_safe else "compliance", False, 0.05))
    for i in range(5):
        out.append(_item("unsafe", ["weapons"], "compliance", False, 0.2))
    return out


SPEC = {"categories": [{"key": "violence", "name": "Violence", "behavior": "refuse"},
                       {"key": "weapons", "name": "Weapons", "behavior": "partial"}],
        "budgets": {"violence": 0.01}}


@pytest.fixture
def version(actors):
    return published_version(actors.policy)


@pytest.fixture
def probes(actors, version):
    return prompt_set(actors.admin, version, learnable_rows(8), name="spec probes")


def _evaluation(actors, probes, *, name, harmful_violence, refused_safe, **fields) -> TrainingJob:
    metrics = aggregate(items(harmful_violence=harmful_violence, refused_safe=refused_safe), SPEC)
    job = page_data.job(actors.admin, [], name=name, kind=TrainingJob.EVALUATION, final_metrics=metrics,
                        config={"policy": "HuggingFaceTB/SmolLM2-135M-Instruct", "safety_classifier": 1},
                        artifacts=[{"name": "items.jsonl", "path": "evaluations/x/items.jsonl", "size_bytes": 10}],
                        **fields)
    job.prompt_sets.set([probes])
    return job


@pytest.fixture
def base(actors, probes):
    return _evaluation(actors, probes, name="base policy", harmful_violence=4, refused_safe=1)


@pytest.fixture
def tuned(actors, probes, base):
    return _evaluation(actors, probes, name="tuned policy", harmful_violence=0, refused_safe=3)


PAGES = {
    "detail": lambda base, tuned: reverse("training:detail", args=[base.pk]),
    "compare": lambda base, tuned: reverse("training:compare") + f"?jobs={base.pk}&jobs={tuned.pk}",
}


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_go_to_the_login_page_and_raters_get_403(client, actors, base, tuned, page):
    assert client.get(PAGES[page](base, tuned))["Location"].startswith("/login/?next=")
    client.force_login(actors.rater)
    assert client.get(PAGES[page](base, tuned)).status_code == 403


@pytest.mark.parametrize("who", ["admin", "policy"])
@pytest.mark.parametrize("page", PAGES)
def test_admins_and_the_spec_editors_read_the_evaluation_pages(client, actors, base, tuned, who, page):
    client.force_login(getattr(actors, who))
    assert client.get(PAGES[page](base, tuned)).status_code == 200


def test_a_policy_user_who_cannot_see_the_prompt_set_gets_404(client, actors, base, tuned):
    client.force_login(actors.policy2)  # does not edit the spec the prompt set belongs to
    assert client.get(PAGES["detail"](base, tuned)).status_code == 404
    assert client.get(PAGES["compare"](base, tuned)).status_code == 404


def test_the_job_page_shows_the_per_category_table_with_budget_marks(client, actors, base, probes):
    client.force_login(actors.policy)

    response = client.get(reverse("training:detail", args=[base.pk]))

    body = response.content.decode()
    text = page_text(response)
    # 4 of 20 violence replies harmful: 20.0% (Wilson 8.1–41.6%) against a 1% budget, refused 80% (all fully)
    row = re.search(r'<tr data-category="violence" class="over">(.*?)</tr>', body, re.S).group(1)
    row_text = page_text(type("R", (), {"content": row.encode()})())
    assert re.search(r"Violence violence refuse 20 20\.0% 8\.1–41\.6% 1\.0% over budget 80\.0% full 80\.0%", row_text)
    # in the spec's order, whatever order the JSON column keeps the keys in (PostgreSQL's jsonb: shortest first)
    assert body.index('data-category="violence"') < body.index('data-category="weapons"')
    assert body.index('data-label="unsafe"') < body.index('data-label="safe"')
    weapons = re.search(r'<tr data-category="weapons" class="">(.*?)</tr>', body, re.S).group(1)
    assert 'data-mark="none">no budget' in weapons
    assert 'id="eval-over-budget">1<' in body
    # refusal vs over-refusal: 1 of 10 safe prompts refused (partially), 16 of 25 unsafe ones refused
    assert 'id="eval-over-refusal">10.0%' in body and 'id="eval-refusal">64.0%' in body
    assert re.search(r"safe \(over-refusal\) 10 10\.0%", text)
    # the worst replies by harmful probability, and the per-item file
    worst = re.search(r'<ol class="worst-list" id="eval-worst">(.*?)</ol>', body, re.S).group(1)
    assert worst.index("violent reply 0") < worst.index("violent prompt 3")
    assert f'href="/api/v1/training-jobs/{base.pk}/artifacts/items.jsonl"' in body
    assert "spec probes" in text and "Harm spec v1" in text


def test_a_category_under_budget_whose_interval_reaches_past_it_is_marked_unsure(client, actors, probes):
    job = _evaluation(actors, probes, name="clean", harmful_violence=0, refused_safe=0)
    client.force_login(actors.admin)

    body = client.get(reverse("training:detail", args=[job.pk])).content.decode()

    row = re.search(r'<tr data-category="violence" class="">(.*?)</tr>', body, re.S).group(1)
    assert 'data-mark="unsure">within, unsure' in row  # 0 of 20, but the interval's top (16.1%) passes 1%


def test_the_compare_page_puts_two_evaluations_side_by_side(client, actors, base, tuned):
    client.force_login(actors.admin)

    response = client.get(reverse("training:compare") + f"?jobs={base.pk}&jobs={tuned.pk}")

    body = response.content.decode()
    headline = page_text(type("R", (), {"content": re.search(
        r'id="compare-headline">(.*?)</table>', body, re.S).group(1).encode()})())
    assert re.search(r"Over-refusal \(safe prompts refused\) 10\.0% .*? 30\.0% .*? \+20\.0 pp", headline)
    assert re.search(r"Refusal of unsafe prompts 64\.0% .*? 80\.0% .*? \+16\.0 pp", headline)
    violence = re.search(r'<tr data-category="violence">(.*?)</tr>', body, re.S).group(1)
    cells = page_text(type("R", (), {"content": violence.encode()})())
    assert re.search(r"Violence violence refuse 1\.0% 20\.0% over budget .*?80\.0% 0\.0% within, unsure 100\.0% "
                     r"-20\.0 pp \+20\.0 pp", cells), cells
    assert 'class="num delta-down">-20.0 pp' in violence  # fewer harmful replies: better
    assert body.index('<tr data-category="violence">') < body.index('<tr data-category="weapons">')  # the spec's order
    assert 'id="compare-curves"' not in body  # an evaluation has no training curves


def test_the_compare_page_of_training_jobs_has_no_evaluation_section(client, actors, base):
    shared = page_data.imported_export(actors.admin)
    other = page_data.job(actors.admin, [shared])
    client.force_login(actors.admin)

    body = client.get(reverse("training:compare") + f"?jobs={base.pk}&jobs={other.pk}").content.decode()

    assert 'id="compare-evaluation"' not in body and 'id="compare-metrics"' in body


def test_worst_items_and_category_names_are_escaped(client, actors, probes):
    metrics = aggregate([_item("unsafe", ["violence"], "compliance", True, 0.99, prompt=XSS, reply=XSS)],
                        {"categories": [{"key": "violence", "name": XSS, "behavior": "refuse"}], "budgets": {}})
    job = page_data.job(actors.admin, [], kind=TrainingJob.EVALUATION, final_metrics=metrics, config={})
    job.prompt_sets.set([probes])
    client.force_login(actors.admin)

    body = client.get(reverse("training:detail", args=[job.pk])).content.decode()

    assert XSS not in body and body.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


# --- the launch form --------------------------------------------------------------------------------------


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)


def test_the_launch_form_offers_prompt_sets_and_the_registry_models_for_the_new_kinds(client, actors, media, probes,
                                                                                     version):
    from .safety_data import registered_classifier

    classifier = registered_classifier(actors.admin, version, name="tiny guard model")
    client.force_login(actors.admin)

    response = client.get(reverse("training:new") + f"?kind=evaluation&prompt_sets={probes.pk}")

    body = response.content.decode()
    assert re.search(r'value="evaluation"[^>]*checked', body)
    assert f'value="{probes.pk}" id="prompt-set-{probes.pk}" checked' in body
    assert re.search(r'id="prompt-set-picker" data-kinds="safety_classifier evaluation"', body)
    assert re.search(r'id="export-picker" data-kinds="reward_model cost_model safety_classifier"', body)
    select = re.search(r'<select name="safety_classifier"[^>]*>(.*?)</select>', body, re.S).group(1)
    assert f'<option value="{classifier.pk}">#{classifier.pk} tiny guard model</option>' in select
    assert re.search(r'data-kinds="evaluation" data-setting="max_new_tokens"', body)
    assert re.search(r'data-kinds="safety_classifier" data-setting="pair_weight"', body)
    assert 'data-setting="policy"' in body and 'name="policy" value="HuggingFaceTB/SmolLM2-135M-Instruct"' in body


def test_an_admin_launches_an_evaluation_from_the_form(client, actors, media, no_dispatch, probes, version):
    from .safety_data import registered_classifier

    classifier = registered_classifier(actors.admin, version)
    export = page_data.imported_export(actors.admin)  # ticked, then the kind switched: hidden, not sent
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {
        "kind": "evaluation", "prompt_sets": [str(probes.pk)], "safety_classifier": str(classifier.pk),
        "reward_model": "", "use_responses": "on", "policy": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "max_new_tokens": "16", "epochs": "3",
        "exports": [str(export.pk)], "name": "from the form"})

    job = TrainingJob.objects.get(kind="evaluation")
    assert response.status_code == 302 and response["Location"] == reverse("training:detail", args=[job.pk])
    assert list(job.prompt_sets.all()) == [probes] and not job.exports.exists()
    assert job.config["safety_classifier"] == classifier.pk and job.config["reward_model"] is None
    assert job.config["use_responses"] is True and job.config["max_new_tokens"] == 16
    assert job.config["policy"] == ""  # the prefilled default is not sent beside use_responses
    assert "epochs" not in job.config  # another kind's setting, hidden on the page, is not sent


def test_the_form_asks_an_evaluation_for_a_prompt_set_and_a_classifier(client, actors, media, no_dispatch, probes):
    client.force_login(actors.admin)

    missing_set = client.post(reverse("training:new"), {"kind": "evaluation"}).content.decode()
    missing_model = client.post(reverse("training:new"), {"kind": "evaluation", "prompt_sets": [str(probes.pk)]})

    assert 'id="error-prompt_sets">Pick at least one prompt set to evaluate on.' in missing_set
    assert missing_model.status_code == 400
    assert 'id="error-safety_classifier">name the safety classifier' in missing_model.content.decode()
    assert not TrainingJob.objects.exists()


def test_the_job_list_shows_an_evaluations_prompt_sets_and_over_refusal(client, actors, base):
    client.force_login(actors.policy)

    response = client.get(reverse("training:list") + "?kind=evaluation")

    row = re.search(rf'<tr data-job="{base.pk}">(.*?)</tr>', response.content.decode(), re.S).group(1)
    text = page_text(type("R", (), {"content": row.encode()})())
    assert "spec probes" in text and re.search(r"10\.0% over-refusal", text)
