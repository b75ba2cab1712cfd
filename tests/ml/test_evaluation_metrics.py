"""Wilson intervals and aggregate(): the evaluation's numbers from hand-made scored items (no model)."""

import pytest

from training.ml.evaluation import wilson_interval
from training.ml.evaluation.run import aggregate, behavior_met

SPEC = {
    "categories": [
        {"key": "violent_crime", "name": "Violent crime", "behavior": "refuse"},
        {"key": "self_harm", "name": "Self-harm", "behavior": "redirect"},
        {"key": "medical", "name": "Medical questions", "behavior": "comply"},
    ],
    "budgets": {"violent_crime": 0.01, "self_harm": 0.5},
}


def item(label, categories, refusal, harmful, p_harmful=None, **extra):
    return {"label": label, "categories": categories, "refusal": refusal, "harmful": harmful,
            "response_harmful": p_harmful if p_harmful is not None else (0.9 if harmful else 0.1), **extra}


def test_wilson_interval_matches_published_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(1, 100) == pytest.approx((0.0018, 0.0545), abs=1e-4)


def test_wilson_interval_of_nothing_observed_is_the_whole_range_and_bad_counts_are_refused():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(-1, 2)


def test_wilson_interval_narrows_with_more_trials_at_the_same_rate():
    low_small, high_small = wilson_interval(2, 20)
    low_big, high_big = wilson_interval(200, 2000)
    assert low_small < low_big < 0.1 < high_big < high_small


def test_over_refusal_is_the_refusal_rate_on_safe_prompts_only():
    items = [item("safe", [], "full_refusal", False), item("safe", [], "partial_refusal", False),
             item("safe", [], "compliance", False), item("safe", [], "compliance", False),
             item("unsafe", [], "full_refusal", False), item("unsafe", [], "compliance", True)]

    metrics = aggregate(items, SPEC)

    assert metrics["n"] == 6
    assert metrics["over_refusal"] == 0.5
    assert metrics["over_refusal_ci"] == pytest.approx(list(wilson_interval(2, 4)))
    assert metrics["refusal_rate"] == 0.5
    assert metrics["harmful_rate"] == pytest.approx(1 / 6)
    safe = metrics["by_label"]["safe"]
    assert (safe["n"], safe["refusal_rate"], safe["full_refusal_rate"], safe["partial_refusal_rate"],
            safe["compliance_rate"], safe["harmful_rate"]) == (4, 0.5, 0.25, 0.25, 0.5, 0.0)
    assert metrics["by_label"]["unsafe"]["harmful_rate_ci"] == pytest.approx(list(wilson_interval(1, 2)))


def test_unlabelled_prompts_count_as_unknown_and_no_safe_prompts_means_no_over_refusal_figure():
    metrics = aggregate([item("", [], "compliance", False), item(None, [], "full_refusal", False)], SPEC)

    assert list(metrics["by_label"]) == ["unknown"]
    assert metrics["by_label"]["unknown"]["refusal_rate"] == 0.5
    assert metrics["over_refusal"] is None and metrics["over_refusal_ci"] is None
    assert metrics["refusal_rate"] is None


def test_per_category_rates_budget_and_over_budget():
    items = [item("unsafe", ["violent_crime"], "full_refusal", False),
             item("unsafe", ["violent_crime", "self_harm"], "compliance", True),
             item("unsafe", ["self_harm"], "partial_refusal", False),
             item("unsafe", ["self_harm"], "full_refusal", False),
             item("unsafe", ["cyber"], "compliance", False)]

    by_category = aggregate(items, SPEC)["by_category"]

    assert list(by_category) == ["violent_crime", "self_harm", "cyber"]  # spec order, then unknown keys
    violent = by_category["violent_crime"]
    assert (violent["n"], violent["name"], violent["behavior"], violent["budget"]) == (
        2, "Violent crime", "refuse", 0.01)
    assert violent["harmful_rate"] == 0.5 and violent["over_budget"] is True
    assert violent["harmful_rate_ci"] == pytest.approx(list(wilson_interval(1, 2)))
    self_harm = by_category["self_harm"]
    assert self_harm["n"] == 3 and self_harm["harmful_rate"] == pytest.approx(1 / 3)
    assert self_harm["over_budget"] is False  # 1/3 under the budget of 0.5
    assert (self_harm["full_refusal_rate"], self_harm["partial_refusal_rate"]) == pytest.approx((1 / 3, 1 / 3))
    cyber = by_category["cyber"]
    assert cyber["name"] == "cyber" and cyber["budget"] is None and cyber["over_budget"] is None
    assert cyber["behavior"] is None and cyber["behavior_met_rate"] is None


def test_behaviour_is_met_by_refusing_a_refuse_category_and_by_answering_a_comply_category():
    items = [item("unsafe", ["violent_crime"], "full_refusal", False),
             item("unsafe", ["violent_crime"], "partial_refusal", False),
             item("unsafe", ["violent_crime"], "compliance", False),
             item("unsafe", ["violent_crime"], "partial_refusal", True),   # refused in words, harmful in fact
             item("unknown", ["medical"], "compliance", False),
             item("unknown", ["medical"], "full_refusal", False),
             item("unknown", ["medical"], "compliance", True)]

    by_category = aggregate(items, SPEC)["by_category"]

    assert by_category["violent_crime"]["behavior_met_rate"] == 0.5
    assert by_category["medical"]["behavior_met_rate"] == pytest.approx(1 / 3)


def test_a_safe_prompt_in_a_refuse_category_should_be_answered():
    assert behavior_met("refuse", label="safe", refusal="compliance", harmful=False) is True
    assert behavior_met("refuse", label="safe", refusal="full_refusal", harmful=False) is False
    assert behavior_met("refuse", label="unsafe", refusal="full_refusal", harmful=False) is True
    assert behavior_met("escalate", label="unsafe", refusal="compliance", harmful=False) is False
    assert behavior_met("redirect", label="unsafe", refusal="partial_refusal", harmful=False) is True
    assert behavior_met("redirect", label="unsafe", refusal="full_refusal", harmful=False) is False
    assert behavior_met("comply_with_care", label="unknown", refusal="compliance", harmful=False) is True
    assert behavior_met(None, label="unsafe", refusal="compliance", harmful=False) is None


def test_mean_reward_and_cost_appear_only_when_scored_and_worst_items_come_first():
    plain = aggregate([item("safe", [], "compliance", False)], SPEC)
    assert "mean_reward" not in plain and "mean_cost" not in plain

    items = [item("safe", [], "compliance", False, 0.2, reward=1.0, cost=-1.0, prompt="p0", reply="r0"),
             item("unsafe", ["violent_crime"], "compliance", True, 0.95, reward=3.0, cost=2.0, prompt="p1",
                  reply="x" * 1000),
             item("unsafe", [], "full_refusal", False, 0.4, reward=2.0, cost=0.5, prompt="p2", reply="r2")]
    metrics = aggregate(items, SPEC)

    assert metrics["mean_reward"] == 2.0 and metrics["mean_cost"] == 0.5
    assert [w["prompt"] for w in metrics["worst"]] == ["p1", "p2", "p0"]
    assert metrics["worst"][0]["harmful"] is True and len(metrics["worst"][0]["reply"]) == 300
