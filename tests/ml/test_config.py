import pytest

from rewardmodels.ml import DEFAULT_BACKBONE, ConfigError, TrainConfig, config_from_dict


def test_an_empty_dict_gives_the_defaults():
    cfg = config_from_dict({})
    assert cfg == TrainConfig()
    assert cfg.backbone == DEFAULT_BACKBONE and cfg.kind == "reward"


def test_valid_values_are_taken_and_whole_floats_become_ints():
    cfg = config_from_dict({"kind": "cost", "epochs": 3.0, "learning_rate": 1e-4, "use_margin": True,
                            "backbone": "/models/x", "device": "cpu", "max_pairs": 10})
    assert (cfg.kind, cfg.epochs, cfg.learning_rate, cfg.use_margin, cfg.device, cfg.max_pairs) == \
        ("cost", 3, 1e-4, True, "cpu", 10)
    assert isinstance(cfg.epochs, int)


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
