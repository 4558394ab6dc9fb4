import math

import pytest
import torch

from skvidsage.embed._losses import contrastive_loss, sage_loss, triplet_loss


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
P = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
N = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])


def test_sage_loss_by_hand():
    # anchor 0: pos dot .6, neg dots 0, -1, 1 ; anchor 1: pos 1, negs 1, 0, 0
    a0 = -(_log_sigmoid(0.6) + _log_sigmoid(0) + _log_sigmoid(1) + _log_sigmoid(-1))
    a1 = -(_log_sigmoid(1.0) + _log_sigmoid(-1) + 2 * _log_sigmoid(0))
    assert float(sage_loss(A, P, N)) == pytest.approx((a0 + a1) / 2)
    # temperature divides every dot product
    t0 = -(_log_sigmoid(1.2) + _log_sigmoid(0) + _log_sigmoid(2) + _log_sigmoid(-2))
    t1 = -(_log_sigmoid(2.0) + _log_sigmoid(-2) + 2 * _log_sigmoid(0))
    assert float(sage_loss(A, P, N, temperature=0.5)) == pytest.approx((t0 + t1) / 2)


def test_sage_loss_per_anchor_negatives_equal_shared():
    shared = sage_loss(A, P, N)
    per_anchor = sage_loss(A, P, N.expand(2, 3, 2))
    assert float(shared) == pytest.approx(float(per_anchor))


def test_triplet_loss_by_hand():
    neg = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # anchor 0: d(a,p) = sqrt(.16 + .64) ; d(a,n) = sqrt(2)
    d_ap = math.sqrt(0.8)
    expected0 = max(d_ap - math.sqrt(2) + 0.5, 0)  # = 0.4802...
    expected1 = max(0 - 0 + 0.5, 0)  # negative equals the anchor
    assert float(triplet_loss(A, P, neg, margin=0.5)) == pytest.approx(
        (expected0 + expected1) / 2
    )
    # a masked triplet does not count
    w = torch.tensor([1.0, 0.0])
    assert float(triplet_loss(A, P, neg, margin=0.5, weight=w)) == pytest.approx(
        expected0
    )


def test_contrastive_loss_by_hand():
    neg = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    e0 = 0.8 + max(1.0 - math.sqrt(2), 0) ** 2  # far enough: only the pull
    e1 = 0.0 + (1.0 - 0.0) ** 2
    assert float(contrastive_loss(A, P, neg, margin=1.0)) == pytest.approx(
        (e0 + e1) / 2
    )


def test_losses_are_differentiable():
    a = A.clone().requires_grad_()
    for loss in (
        sage_loss(a, P, N),
        triplet_loss(a, P, N[:2]),
        contrastive_loss(a, P, N[:2]),
    ):
        (g,) = torch.autograd.grad(loss, a)
        assert torch.isfinite(g).all()
