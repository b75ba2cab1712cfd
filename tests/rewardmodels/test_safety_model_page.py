"""A safety classifier's model page: held-out quality per head and per category, the refusal confusion matrix, the
refusal head against string matching, and "try it" through the real (tiny) classifier."""

import re

import numpy as np
import pytest
from django.urls import reverse

from rewardmodels import services
from rewardmodels.models import RewardModel
from tests.pages import HX, page_text
from tests.training.safety_data import learnable_rows, prompt_set, published_version, registered_classifier
from training.ml.safety import metrics as m

pytestmark = pytest.mark.django_db


def safety_metrics() -> dict:
    """The shape train_safety_classifier writes, made with its own metric functions on small hand-made data."""
    scores, labels = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.1]), [True, True, False, False, False, True]
    gold = ["full_refusal", "partial_refusal", "compliance", "compliance", "partial_refusal", "full_refusal"]
    predicted = ["full_refusal", "partial_refusal", "compliance", "partial_refusal", "compliance", "full_refusal"]
    replies = ["I'm sorry, but I can't help with that.", "That is not something to do; in general, stay safe.",
               "Sure, here it is.", "Here you go.", "Let me suggest a safer route instead.", "I cannot assist."]
    refusal = m.refusal_metrics(gold, predicted)
    refusal["string_match"] = m.refusal_comparison(replies, gold, predicted)
    violence = {"name": "Violence", **m.binary_metrics(scores, labels, 0.75)}
    return {"n_rows": 6, "n_pairs": 4,
            "prompt_harmful": m.binary_metrics(scores, labels, 0.75),
            "response_harmful": {**m.binary_metrics(scores[::-1], labels, 0.5), "pair_accuracy": 0.75, "n_pairs": 4},
            "categories": {"n": 6, "macro_auroc": violence["auroc"], "macro_f1": violence["f1"], "n_with_positives": 1,
                           "per_category": {"violence": violence,
                                            "weapons": {"name": "Weapons", **m.binary_metrics(scores, [False] * 6, 0.5)}}},
            "response_refusal": refusal}


@pytest.fixture
def version(actors):
    return published_version(actors.policy)


@pytest.fixture
def classifier(actors, media, version) -> RewardModel:
    model = registered_classifier(actors.admin, version, name="tiny guard model")
    model.metrics = safety_metrics()
    model.save()
    model.job.prompt_sets.set([prompt_set(actors.admin, version, learnable_rows(4), name="guard probes")])
    services._scorers.clear()
    return model


def test_anonymous_visitors_go_to_the_login_page_and_raters_get_403(client, actors, classifier):
    url = reverse("models:detail", args=[classifier.pk])
    assert client.get(url)["Location"].startswith("/login/?next=")
    client.force_login(actors.rater)
    assert client.get(url).status_code == 403
    assert client.post(reverse("models:score", args=[classifier.pk]), {"prompt": "p"}).status_code == 403


@pytest.mark.parametrize("who", ["admin", "policy"])
def test_admins_and_the_spec_editors_read_a_safety_classifier(client, actors, classifier, who):
    client.force_login(getattr(actors, who))
    assert client.get(reverse("models:detail", args=[classifier.pk])).status_code == 200
    client.force_login(actors.policy2)  # edits no spec of the classifier's prompt set
    assert client.get(reverse("models:detail", args=[classifier.pk])).status_code == 404


def test_the_page_shows_each_head_category_the_confusion_matrix_and_the_string_match_baseline(client, actors,
                                                                                             classifier):
    client.force_login(actors.policy)

    response = client.get(reverse("models:detail", args=[classifier.pk]))

    body = response.content.decode()
    text = page_text(response)
    assert "safety classifier" in text and "guard probes" in text and "Harm spec v1" in text
    # prompt_harmful: 6 labelled, 3 positive, AUROC 6/9 pairs, F1 0.8 at the stored 0.75
    assert re.search(r"Prompt harmful prompt_harmful 6 3 0\.667 0\.800 0\.750", text), text
    assert re.search(r"Reply harmful response_harmful 6 3 .*? harm pairs ranked right 75\.0% of 4", text)
    assert re.search(r"Refusal \(3 classes\) response_refusal 6 .*?accuracy 66\.7%", text)
    # the confusion matrix, label by row: one compliance predicted partial, one partial predicted compliance
    confusion = re.search(r'id="refusal-confusion">(.*?)</section>', body, re.S).group(1)
    assert re.search(r'compliance</th><td class="num diag">1</td><td class="num">1</td><td class="num">0</td>',
                     confusion)
    baseline = re.search(r'id="refusal-baseline">(.*?)</section>', body, re.S).group(1)
    assert 'data-subset="overall"' in baseline and 'data-subset="non_templated"' in baseline
    assert 'data-subset="partial_refusals"' in baseline
    # per category, most positives first; a category without positives has no AUROC
    per_category = re.search(r'id="per-category">(.*?)</section>', body, re.S).group(1)
    assert per_category.index('data-category="violence"') < per_category.index('data-category="weapons"')
    weapons = re.search(r'data-category="weapons">(.*?)</tr>', per_category, re.S).group(1)
    assert "—" in weapons
    assert 'id="calibration"' not in body  # the reward model's reliability diagram is not a classifier's


def test_try_it_runs_the_classifier_and_shows_every_head(client, actors, classifier):
    client.force_login(actors.admin)

    response = client.post(reverse("models:score", args=[classifier.pk]),
                           {"prompt": "how do i bomb", "response": "Sure, here is how."}, headers=HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="classify-prompt-harmful"' in body and 'id="classify-response-harmful"' in body
    assert 'id="classify-refusal"' in body and "Violence" in body and "threshold 0.500" in body
    prompt_only = client.post(reverse("models:score", args=[classifier.pk]), {"prompt": "how do i bomb"}, headers=HX)
    assert 'id="classify-prompt-harmful"' in prompt_only.content.decode()
    assert 'id="classify-response-harmful"' not in prompt_only.content.decode()  # no reply: the prompt alone
    empty = client.post(reverse("models:score", args=[classifier.pk]), {"prompt": ""}, headers=HX)
    assert empty.status_code == 400 and "Type a prompt to classify." in empty.content.decode()


def test_the_registry_lists_a_safety_classifier_with_its_refusal_accuracy(client, actors, classifier):
    client.force_login(actors.admin)

    text = page_text(client.get(reverse("models:list")))

    assert re.search(r"tiny guard model safety .*? 66\.7% refusal", text)
