"""The safety classifier's masked head losses on hand-made tensors: a row without a head's label contributes nothing."""

import math

import pytest
import torch

from training.ml.safety.losses import (harm_pair_loss, masked_binary_loss, masked_multilabel_loss,
                                       masked_refusal_loss, safety_loss)


def test_the_binary_loss_is_the_bce_of_the_labelled_rows_only():
    logits = torch.tensor([2.0, -1.0, 5.0])
    targets = torch.tensor([1.0, 0.0, 0.0])
    mask = torch.tensor([True, True, False])
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert masked_binary_loss(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)
    # Whatever the unlabelled row holds, the loss does not move.
    logits_changed = torch.tensor([2.0, -1.0, -50.0])
    assert masked_binary_loss(logits_changed, torch.tensor([1.0, 0.0, 1.0]), mask).item() == pytest.approx(expected)


def test_an_unlabelled_row_gets_no_gradient_from_any_head():
    logits = torch.tensor([0.3, -0.7], requires_grad=True)
    masked_binary_loss(logits, torch.tensor([1.0, 1.0]), torch.tensor([True, False])).backward()
    assert logits.grad[0] != 0 and logits.grad[1] == 0

    multi = torch.zeros((2, 3), requires_grad=True)
    masked_multilabel_loss(multi, torch.ones((2, 3)), torch.tensor([False, True]), pos_weight=3.0).backward()
    assert torch.all(multi.grad[0] == 0) and torch.all(multi.grad[1] != 0)

    three = torch.zeros((2, 3), requires_grad=True)
    masked_refusal_loss(three, torch.tensor([2, 0]), torch.tensor([True, False])).backward()
    assert torch.all(three.grad[1] == 0) and three.grad[0, 2] < 0


def test_a_batch_without_any_label_of_a_head_gives_a_zero_that_still_backpropagates():
    logits = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = masked_binary_loss(logits, torch.zeros(2), torch.tensor([False, False]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_the_multilabel_loss_weighs_positive_labels():
    logits = torch.zeros((1, 2))
    targets = torch.tensor([[1.0, 0.0]])
    mask = torch.tensor([True])
    plain = masked_multilabel_loss(logits, targets, mask, pos_weight=1.0).item()
    weighted = masked_multilabel_loss(logits, targets, mask, pos_weight=4.0).item()
    assert plain == pytest.approx(math.log(2))                   # both terms log 2, mean over K
    assert weighted == pytest.approx((4 * math.log(2) + math.log(2)) / 2)


def test_the_refusal_loss_is_cross_entropy_over_the_labelled_rows():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 9.0]])
    loss = masked_refusal_loss(logits, torch.tensor([0, 1]), torch.tensor([True, False])).item()
    assert loss == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 2)), rel=1e-6)


def test_the_harm_pair_loss_falls_as_the_more_harmful_reply_scores_higher():
    safer = torch.tensor([0.0, 0.0])
    assert harm_pair_loss(torch.tensor([3.0, 3.0]), safer) < harm_pair_loss(torch.tensor([-3.0, -3.0]), safer)
    assert harm_pair_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2))


def test_the_total_loss_weighs_each_head_and_skips_heads_without_labels():
    logits = {"prompt_harmful": torch.tensor([0.0, 0.0]), "categories": torch.zeros((2, 2)),
              "response_refusal": torch.zeros((2, 3)), "response_harmful": torch.tensor([0.0, 0.0])}
    none = torch.tensor([False, False])
    targets = {"prompt_harmful": torch.tensor([1.0, 0.0]), "prompt_harmful_mask": torch.tensor([True, True]),
               "categories": torch.zeros((2, 2)), "categories_mask": none,
               "response_refusal": torch.tensor([0, 0]), "response_refusal_mask": torch.tensor([True, False]),
               "response_harmful": torch.zeros(2), "response_harmful_mask": none}
    total, terms = safety_loss(logits, targets, weights={"prompt_harmful": 2.0, "response_refusal": 0.5})
    assert terms["categories"] == 0.0 and terms["response_harmful"] == 0.0
    assert terms["prompt_harmful"] == pytest.approx(math.log(2))
    assert terms["response_refusal"] == pytest.approx(math.log(3))
    assert total.item() == pytest.approx(2.0 * math.log(2) + 0.5 * math.log(3))
