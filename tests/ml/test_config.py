import dataclasses

import pytest

from rewardmodels.ml import DEFAULT_BACKBONE, ConfigError, TrainConfig, config_from_dict


def test_an_empty_dict_gives_the_defaults():
    cfg = config_from_dict({})
    assert cfg == TrainConfig()
    assert cfg.backbone == DEFAULT_BACKBONE and cfg.kind == "reward"


def test_valid_values_are_taken_and_whole_numbers_become_floats_where_a_float_is_meant():
    cfg = config_from_dict({"kind": "cost", "epochs": 3, "learning_rate": 1, "use_margin": True,
                            "backbone": "/models/x", "device": "cpu", "max_pairs": 10})
    assert (cfg.kind, cfg.epochs, cfg.learning_rate, cfg.use_margin, cfg.device, cfg.max_pairs) == \
        ("cost", 3, 1.0, True, "cpu", 10)
    assert isinstance(cfg.learning_rate, float)


@pytest.mark.parametrize("field, value, expected", [
    ("epochs", 1e9, "whole number"),           # a float, even a whole one, is not a count
    ("epochs", 3.0, "whole number"),
    ("epochs", 10**9, "1..100"),
    ("epochs", 101, "1..100"),
    ("batch_size", 1025, "1..1024"),
    ("max_length", 7, "8..8192"),
    ("max_length", 8193, "8..8192"),
    ("learning_rate", 0.0, "(0, 1]"),
    ("learning_rate", 1.5, "(0, 1]"),
    ("eval_fraction", 0.6, "[0, 0.5]"),
    ("grad_accum", 0, "1..1024"),
    ("grad_accum", 2000, "1..1024"),
    ("seed", 2**32, "0..4294967295"),
    ("seed", -1, "0..4294967295"),
    ("max_steps", 10**7, "0..1000000"),
    ("max_pairs", 10**9, "0..100000000"),
    ("warmup_ratio", 1.01, "[0, 1]"),
    ("max_grad_norm", 0.0, "(0, 1000]"),
    ("learning_rate", float("nan"), "finite"),
    ("sign_weight", float("inf"), "finite"),
    ("backbone", "x" * 501, "500 characters"),
])
def test_every_numeric_setting_is_bounded_and_the_message_names_the_range(field, value, expected):
    with pytest.raises(ConfigError) as raised:
        config_from_dict({field: value})
    assert [e["field"] for e in raised.value.errors] == [field]
    assert expected in raised.value.errors[0]["message"]


def test_the_ends_of_each_range_are_accepted():
    low = config_from_dict({"epochs": 1, "batch_size": 1, "max_length": 8, "learning_rate": 1e-12, "seed": 0,
                            "eval_fraction": 0.0, "grad_accum": 1, "max_steps": 0, "max_pairs": 0})
    high = config_from_dict({"epochs": 100, "batch_size": 1024, "max_length": 8192, "learning_rate": 1.0,
                             "seed": 2**32 - 1, "eval_fraction": 0.5, "grad_accum": 1024, "max_steps": 1_000_000})
    assert (low.epochs, high.epochs, high.seed, high.eval_fraction) == (1, 100, 2**32 - 1, 0.5)


def test_no_numeric_setting_is_left_without_a_range():
    from rewardmodels.ml.config import _RANGES

    numeric = {f.name for f in dataclasses.fields(TrainConfig) if f.type in (int, float)}
    assert numeric == set(_RANGES)


def test_it_names_every_unknown_key_and_every_bad_value_at_once():
    with pytest.raises(ConfigError) as raised:
        config_from_dict({"kind": "value", "lr": 0.1, "epochs": 0, "batch_size": "16", "eval_fraction": 1.5,
                          "use_margin": 1, "device": "tpu", "learning_rate": 0, "max_length": True, "colour": "red",
                          "seed": 1.5, "backbone": ""})
    errors = {e["field"]: e["message"] for e in raised.value.errors}
    assert set(errors) == {"kind", "lr", "epochs", "batch_size", "eval_fraction", "use_margin", "device",
                           "learning_rate", "max_length", "colour", "seed", "backbone"}
    assert "unknown" in errors["lr"] and "unknown" in errors["colour"]
    assert "reward" in errors["kind"] and "cost" in errors["kind"]
    assert "true or false" in errors["use_margin"]
    assert "boolean" in errors["max_length"]
    assert "whole number" in errors["seed"]
    for e in raised.value.errors:
        assert e["field"] in str(raised.value)


def test_a_non_dict_is_refused():
    with pytest.raises(ConfigError) as raised:
        config_from_dict(["epochs", 1])
    assert raised.value.errors[0]["field"] == "config"
