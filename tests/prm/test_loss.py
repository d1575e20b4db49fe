"""The weighted loss: sum(w * BCE) / sum(w) (MetaStone-S1) against soft or hard targets."""

from __future__ import annotations

import math

import pytest
import torch

from prmflow.prm.model import weighted_bce


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_weighted_mean_of_per_step_bce():
    logits, targets, weights = [0.3, -1.2, 2.0], [1.0, 0.25, 0.0], [1.0, 2.0, 0.5]
    expected = sum(w * bce(x, y) for x, y, w in zip(logits, targets, weights, strict=True)) / sum(weights)
    got = weighted_bce(torch.tensor(logits), torch.tensor(targets), torch.tensor(weights))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_normalised_by_the_sum_of_weights_not_the_step_count():
    logits, targets = torch.tensor([0.5, -0.5, 1.5]), torch.tensor([1.0, 0.0, 0.6])
    w = torch.tensor([1.0, 0.5, 2.0])
    assert float(weighted_bce(logits, targets, w * 7.0)) == pytest.approx(float(weighted_bce(logits, targets, w)))


def test_zero_weight_steps_neither_count_nor_get_gradient():
    targets = torch.tensor([1.0, 0.0, 0.7])
    weights = torch.tensor([1.0, 0.0, 1.0])
    a = torch.tensor([0.2, 5.0, -0.3], requires_grad=True)
    b = torch.tensor([0.2, -9.0, -0.3])  # only the zero-weight step's logit differs
    loss = weighted_bce(a, targets, weights)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(weighted_bce(b, targets, weights)))
    assert a.grad[1] == 0 and a.grad[0] != 0 and a.grad[2] != 0


def test_all_zero_weights_give_zero_loss_and_zero_gradient():
    logits = torch.tensor([1.0, -2.0], requires_grad=True)
    loss = weighted_bce(logits, torch.tensor([1.0, 0.0]), torch.zeros(2))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(logits.grad, torch.zeros(2))


@pytest.mark.parametrize("target", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_a_soft_target_is_learned_as_itself_not_rounded(target):
    # the gradient of BCE in the logit is sigmoid(logit) - target: zero exactly where p = target, so a
    # soft 0.25 pulls the PRM towards 0.25 (TRL's int() cast would pull it towards 0)
    logit = torch.tensor([0.0], requires_grad=True)
    opt = torch.optim.SGD([logit], lr=2.0)
    for _ in range(300):
        opt.zero_grad()
        weighted_bce(logit, torch.tensor([target]), torch.ones(1)).backward()
        opt.step()
    assert float(torch.sigmoid(logit.detach())) == pytest.approx(target, abs=0.02)
