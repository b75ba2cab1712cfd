import math

import pytest
import torch

from rewardmodels.ml import bradley_terry_loss, cost_loss


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bradley_terry_is_the_mean_of_minus_log_sigmoid_of_the_differences():
    chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    expected = -(log_sigmoid(1.0) + log_sigmoid(0.0) + log_sigmoid(-2.0)) / 3
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, rel=1e-6)
    assert bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2), rel=1e-6)


def test_a_margin_asks_for_a_wider_gap():
    chosen, rejected, margin = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.5])
    expected = -(log_sigmoid(2.0 - 1.0 - 1.0) + log_sigmoid(1.0 - 1.0 - 0.5)) / 2
    loss = bradley_terry_loss(chosen, rejected, margin=margin)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() > bradley_terry_loss(chosen, rejected).item()


def test_reward_centering_adds_the_mean_squared_sum_of_the_pair():
    chosen, rejected = torch.tensor([3.0, 1.0]), torch.tensor([1.0, -2.0])
    plain = bradley_terry_loss(chosen, rejected).item()
    centred = bradley_terry_loss(chosen, rejected, center_coefficient=0.1).item()
    assert centred - plain == pytest.approx(0.1 * ((4.0 ** 2) + (-1.0) ** 2) / 2, rel=1e-6)
    # Rewards already centred (r_c = -r_r) pay nothing extra.
    assert bradley_terry_loss(torch.tensor([1.0]), torch.tensor([-1.0]), center_coefficient=5.0).item() == \
        pytest.approx(-log_sigmoid(2.0), rel=1e-6)


def test_the_cost_loss_adds_one_sign_term_per_reply_whose_flag_is_known():
    c_more, c_less = torch.tensor([1.0, 0.5]), torch.tensor([-1.0, 2.0])
    s_more, s_less = torch.tensor([1.0, 1.0]), torch.tensor([-1.0, 0.0])  # pair 2's less harmful reply: unknown
    expected = (-log_sigmoid(2.0) - log_sigmoid(1.0) - log_sigmoid(1.0)          # pair 1: pairwise + two signs
                - log_sigmoid(-1.5) - log_sigmoid(0.5)) / 2                       # pair 2: pairwise + one sign
    assert cost_loss(c_more, c_less, s_more, s_less).item() == pytest.approx(expected, rel=1e-6)
    weighted = (-log_sigmoid(2.0) - 0.5 * 2 * log_sigmoid(1.0) - log_sigmoid(-1.5) - 0.5 * log_sigmoid(0.5)) / 2
    assert cost_loss(c_more, c_less, s_more, s_less, sign_weight=0.5).item() == pytest.approx(weighted, rel=1e-6)


def test_without_known_flags_the_cost_loss_is_the_pairwise_term():
    c_more, c_less, unknown = torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.4]), torch.zeros(2)
    assert cost_loss(c_more, c_less, unknown, unknown).item() == pytest.approx(
        bradley_terry_loss(c_more, c_less).item(), rel=1e-6)


def test_the_cost_gradient_pushes_harmful_replies_above_zero_and_safe_ones_below():
    c_more = torch.tensor([0.0], requires_grad=True)  # harmful
    c_less = torch.tensor([0.0], requires_grad=True)  # safe
    cost_loss(c_more, c_less, torch.tensor([1.0]), torch.tensor([-1.0])).backward()
    assert c_more.grad.item() < 0 < c_less.grad.item()  # gradient descent raises c_more, lowers c_less
    # Once the signs are right and the order too, the loss is lower than with both at zero.
    right = cost_loss(torch.tensor([3.0]), torch.tensor([-3.0]), torch.tensor([1.0]), torch.tensor([-1.0]))
    wrong = cost_loss(torch.tensor([-3.0]), torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([-1.0]))
    assert right.item() < math.log(2) * 3 < wrong.item()
