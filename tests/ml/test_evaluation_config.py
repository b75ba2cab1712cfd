"""evaluation_config_from_dict: defaults, and ConfigError naming every bad field."""

import pytest

from rewardmodels.ml import ConfigError
from training.ml.evaluation import DEFAULT_POLICY, EvaluationConfig, evaluation_config_from_dict


def fields_of(error: ConfigError) -> set[str]:
    return {e["field"] for e in error.errors}


def test_an_empty_config_generates_greedily_with_the_default_policy():
    cfg = evaluation_config_from_dict({})

    assert cfg == EvaluationConfig()
    assert cfg.policy == DEFAULT_POLICY and cfg.use_responses is False and cfg.do_sample is False
    assert cfg.max_new_tokens == 64 and cfg.batch_size == 8


def test_a_full_config_round_trips():
    data = {"policy": "my-policy", "use_responses": False, "safety_classifier": 3, "reward_model": 4,
            "cost_model": None, "max_new_tokens": 32, "batch_size": 4, "do_sample": True, "temperature": 1,
            "top_p": 0.5, "seed": 7, "max_prompts": 100, "device": "cpu", "bf16": False}

    cfg = evaluation_config_from_dict(data)

    assert cfg.to_dict() == {**data, "temperature": 1.0}
    assert isinstance(cfg.temperature, float)


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        evaluation_config_from_dict({"max_new_tokens": 0, "batch_size": 2.0, "temperature": 0, "top_p": 1.5,
                                     "seed": -1, "device": "tpu", "do_sample": "yes", "safety_classifier": "3",
                                     "reward_model": True, "cost_model": 0, "max_prompts": 10**9, "colour": "red"})

    assert fields_of(caught.value) == {"max_new_tokens", "batch_size", "temperature", "top_p", "seed", "device",
                                       "do_sample", "safety_classifier", "reward_model", "cost_model",
                                       "max_prompts", "colour"}
    messages = {e["field"]: e["message"] for e in caught.value.errors}
    assert "1..4096" in messages["max_new_tokens"] and "(0, 1]" in messages["top_p"]
    assert "unknown setting" in messages["colour"]


def test_use_responses_needs_no_policy_and_refuses_one_named_beside_it():
    assert evaluation_config_from_dict({"use_responses": True}).policy == ""
    assert evaluation_config_from_dict({"use_responses": True, "policy": ""}).policy == ""

    with pytest.raises(ConfigError) as both:
        evaluation_config_from_dict({"use_responses": True, "policy": "my-policy"})
    assert fields_of(both.value) == {"policy"}

    with pytest.raises(ConfigError) as neither:
        evaluation_config_from_dict({"policy": " "})
    assert fields_of(neither.value) == {"policy"} and "use_responses" in neither.value.errors[0]["message"]


def test_a_config_that_is_not_an_object_is_refused():
    with pytest.raises(ConfigError) as caught:
        evaluation_config_from_dict(["policy"])
    assert fields_of(caught.value) == {"config"}
