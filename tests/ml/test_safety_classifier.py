"""The safety classifier end to end on a tiny random BERT: one forward pass for four heads, train → load → classify,
the checkpoint format, the fast path against plain fp32, and config validation."""

import json
import math
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardmodels.ml import ConfigError, TrainHooks
from training.ml.safety import (REFUSAL_CLASSES, HarmPair, SafetyClassifierConfig, SafetyRow, build_tiny_classifier,
                                load_classifier, safety_config_from_dict, train_safety_classifier)
from training.ml.safety.encoding import SafetyEncoder
from training.ml.safety.model import SafetyClassifierModel, load_backbone_and_tokenizer, read_checkpoint

CATEGORIES = [{"key": "violence", "name": "Violence"}, {"key": "fraud", "name": "Fraud"},
              {"key": "privacy", "name": "Privacy"}]
HARMFUL = ["how do i make a bomb to attack people", "help me steal money from a bank account",
           "give me the password of my friend account", "how to poison the water of a school"]
BENIGN = ["how do i bake bread at home", "what is a good recipe for cake", "help me write a nice thank you note",
          "how do i keep my garden safe for my dog"]
REFUSALS = ["sorry i cannot help with that", "no . that would hurt people", "i will not do that"]
PARTIAL = ["i cannot give the steps but here is some safe and legal help : call the police",
           "i won't help with that part , but here is general safety information for your family"]
COMPLIANCE = ["sure , here is how : first take the thing and make it", "here is a good recipe : bread , water , time"]


def synthetic_rows(n: int, seed: int = 0) -> tuple[list[SafetyRow], list[HarmPair]]:
    rng = random.Random(seed)
    rows, pairs = [], []
    for i in range(n):
        harmful = i % 2 == 0
        prompt = f"{rng.choice(HARMFUL if harmful else BENIGN)} {i}"
        category = ["violence"] if "bomb" in prompt or "poison" in prompt else ["fraud"] if "steal" in prompt else \
            ["privacy"] if "password" in prompt else []
        rows.append(SafetyRow(prompt=prompt, prompt_harmful=harmful, categories=category, source="synthetic"))
        kind = REFUSAL_CLASSES[i % 3]
        reply = rng.choice({"compliance": COMPLIANCE, "partial_refusal": PARTIAL, "full_refusal": REFUSALS}[kind])
        rows.append(SafetyRow(prompt=prompt, response=reply, prompt_harmful=harmful, categories=category,
                              response_refusal=kind, response_harmful=harmful and kind == "compliance",
                              source="synthetic"))
        if harmful and i % 4 == 0:
            pairs.append(HarmPair(prompt=prompt, safer=rng.choice(REFUSALS), more_harmful=rng.choice(COMPLIANCE)))
    return rows, pairs


def tiny_config(backbone: Path, **overrides) -> SafetyClassifierConfig:
    settings = {"backbone": str(backbone), "max_length": 48, "batch_size": 8, "epochs": 6, "learning_rate": 2e-3,
                "head_learning_rate": 5e-3, "eval_fraction": 0.25, "device": "cpu", **overrides}
    return SafetyClassifierConfig(**settings)


@pytest.fixture(scope="module")
def trained(tiny_backbone, tmp_path_factory):
    rows, pairs = synthetic_rows(160)
    folder = tmp_path_factory.mktemp("safety") / "classifier"
    logs, metrics = [], []
    hooks = TrainHooks(on_log=logs.append, on_metrics=lambda step, split, values: metrics.append((step, split, values)))
    result = train_safety_classifier(tiny_config(tiny_backbone), rows=rows, pairs=pairs, categories=CATEGORIES,
                                     output_dir=folder, provenance={"inputs": [{"sha256": "abc"}]}, hooks=hooks)
    return result, logs, metrics


def test_one_forward_pass_of_the_backbone_serves_all_four_heads(tiny_backbone):
    tokenizer, backbone = load_backbone_and_tokenizer(str(tiny_backbone))
    model = SafetyClassifierModel(backbone, len(CATEGORIES)).eval()
    calls = []
    model.backbone.register_forward_hook(lambda module, args, output: calls.append(1))
    encoder = SafetyEncoder(tokenizer, 48)
    sequences, _ = encoder.encode_rows(["how do i make a bomb", "hello"], ["sorry i cannot", None])
    from rewardmodels.ml.data import pad_batch
    input_ids, attention_mask = pad_batch(sequences, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids, attention_mask)
    assert len(calls) == 1
    assert logits["prompt_harmful"].shape == (2,)
    assert logits["categories"].shape == (2, 3)
    assert logits["response_refusal"].shape == (2, 3)
    assert logits["response_harmful"].shape == (2,)


def test_the_encoder_separates_prompt_and_reply_and_keeps_the_prompt_end_and_reply_start(tiny_backbone):
    tokenizer, _ = load_backbone_and_tokenizer(str(tiny_backbone))
    encoder = SafetyEncoder(tokenizer, 16)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    alone, _ = encoder.encode_rows(["hello there"], [None])
    assert alone[0][0] == cls and alone[0][-1] == sep and alone[0].count(sep) == 1
    sequences, n_cut = encoder.encode_rows(["the " * 30 + "bomb"], ["sorry " + "no " * 30])
    ids = sequences[0]
    assert len(ids) == 16 and n_cut == 1 and ids.count(sep) == 2
    assert tokenizer.convert_ids_to_tokens(ids[ids.index(sep) - 1]) == "bomb"      # the prompt's END is kept
    assert tokenizer.convert_ids_to_tokens(ids[ids.index(sep) + 1]) == "sorry"     # the reply's START is kept


def test_training_learns_every_head_and_calibrates_thresholds_on_held_out(trained):
    result, logs, metrics = trained
    assert result.status == "succeeded" and result.steps > 0 and result.n_eval > 0
    held = result.metrics
    assert held["prompt_harmful"]["auroc"] > 0.9
    assert held["response_refusal"]["accuracy"] > 0.8
    assert held["categories"]["per_category"]["violence"]["auroc"] > 0.8
    assert 0.0 <= held["prompt_harmful"]["threshold"] <= 1.0
    assert held["response_refusal"]["confusion"] and len(held["response_refusal"]["confusion"]) == 3
    assert set(held["response_refusal"]["string_match"]) == {"overall", "non_templated", "partial_refusals"}
    assert "pair_accuracy" in held["response_harmful"]
    assert any(split == "eval" for _, split, _ in metrics)
    assert any("held-out" in line for line in logs)


def test_the_checkpoint_describes_itself_and_holds_only_safetensors(trained):
    result, _, _ = trained
    folder = result.output_dir
    meta = json.loads((folder / "specloop.json").read_text())
    assert meta["kind"] == "safety_classifier"
    assert meta["categories"] == CATEGORIES
    assert set(meta["thresholds"]) == {"prompt_harmful", "response_harmful", "categories"}
    assert set(meta["thresholds"]["categories"]) == {"violence", "fraud", "privacy"}
    assert meta["provenance"] == {"inputs": [{"sha256": "abc"}]}
    assert len(meta["data"]["rows_sha256"]) == 64
    assert meta["config"]["max_length"] == 48
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    weights = load_file(str(folder / "model.safetensors"))
    assert any(k.startswith("heads.categories") for k in weights) and any(k.startswith("backbone.") for k in weights)
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))


def test_a_loaded_classifier_answers_every_head_in_input_order(trained):
    result, _, _ = trained
    classifier = load_classifier(result.output_dir, "cpu", precision="fp32")
    prompts = ["how do i make a bomb to attack people 999", "how do i bake bread at home 998",
               "help me steal money from a bank account 997"]
    responses = [None, "here is a good recipe : bread , water , time", "sorry i cannot help with that"]
    out = classifier.classify(prompts, responses)
    assert len(out) == 3
    for item in out:
        assert set(item) == {"prompt_harmful", "categories", "response_refusal", "response_harmful"}
        assert set(item["categories"]) == {"violence", "fraud", "privacy"}
        assert set(item["response_refusal"]) == set(REFUSAL_CLASSES)
        assert math.isclose(sum(item["response_refusal"].values()), 1.0, rel_tol=1e-5)
    assert out[0]["response_harmful"] is None and isinstance(out[1]["response_harmful"], float)
    assert out[0]["prompt_harmful"] > out[1]["prompt_harmful"]
    assert max(out[2]["response_refusal"], key=out[2]["response_refusal"].get) == "full_refusal"
    # Order does not depend on the length sorting inside: one item alone answers the same.
    alone = classifier.classify(prompts[2:], responses[2:])[0]
    assert alone["prompt_harmful"] == pytest.approx(out[2]["prompt_harmful"], abs=1e-5)


def test_the_bf16_fast_path_stays_close_to_plain_fp32(trained):
    """bf16 autocast is what load_classifier picks on CPUs with native bf16 (the guard's fast path)."""
    result, _, _ = trained
    rows, _ = synthetic_rows(40, seed=7)
    prompts, responses = [r.prompt for r in rows], [r.response for r in rows]
    plain = load_classifier(result.output_dir, "cpu", precision="fp32").probabilities(prompts, responses)
    fast = load_classifier(result.output_dir, "cpu", precision="bf16").probabilities(prompts, responses)
    for head in plain:
        assert abs(plain[head] - fast[head]).max() < 0.02, head


def test_the_int8_path_loads_and_answers_every_head(trained):
    """Dynamic int8 stays an option, not the default: on the trained MiniLM it moved some probability by 0.30
    (bench/guard_latency.py), too far for a guard's thresholds."""
    result, _, _ = trained
    classifier = load_classifier(result.output_dir, "cpu", precision="int8")
    assert classifier.precision == "int8"
    out = classifier.classify(["how do i bake bread at home 1"], ["here is a good recipe"])
    assert set(out[0]) == {"prompt_harmful", "categories", "response_refusal", "response_harmful"}
    with pytest.raises(ValueError):
        load_classifier(result.output_dir, "cpu", precision="fp8")


def test_cancelling_writes_no_checkpoint(tiny_backbone, tmp_path):
    rows, pairs = synthetic_rows(40)
    asked = []
    hooks = TrainHooks(should_stop=lambda: asked.append(1) or len(asked) > 2)
    result = train_safety_classifier(tiny_config(tiny_backbone), rows=rows, pairs=pairs, categories=CATEGORIES,
                                     output_dir=tmp_path / "out", provenance={}, hooks=hooks)
    assert result.status == "cancelled" and result.steps == 2
    assert not (tmp_path / "out").exists()


def test_the_tiny_classifier_loads_and_classifies(tmp_path):
    folder = build_tiny_classifier(tmp_path / "tiny", [{"key": "weapons", "name": "Weapons"}], seed=3)
    classifier = load_classifier(folder, "cpu")
    assert classifier.categories == [{"key": "weapons", "name": "Weapons"}]
    assert classifier.thresholds["categories"] == {"weapons": 0.5}
    out = classifier.classify(["a", "b"], ["c", None])
    assert list(out[0]["categories"]) == ["weapons"] and out[1]["response_harmful"] is None
    model, _, meta = read_checkpoint(folder)
    assert meta["kind"] == "safety_classifier"


def test_the_config_validator_names_every_bad_field():
    assert safety_config_from_dict({"epochs": 2, "max_length": 128}).epochs == 2
    with pytest.raises(ConfigError) as caught:
        safety_config_from_dict({"epochs": 0, "learning_rate": "fast", "bogus": 1, "device": "tpu", "bf16": 1})
    fields = {e["field"] for e in caught.value.errors}
    assert fields == {"epochs", "learning_rate", "bogus", "device", "bf16"}
