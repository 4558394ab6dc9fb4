"""Self-supervised losses of the VidSage embedder.

Each takes the embeddings of a batch of anchors, of one positive per anchor (a
neighbour or the end of a short random walk) and of negatives, and returns a
scalar. Embeddings are L2-normalised, so dot products lie in [-1, 1] and
Euclidean distances in [0, 2].
"""

import torch
import torch.nn.functional as F


def sage_loss(anchor, positive, negatives, temperature=1.0):
    r"""GraphSAGE's unsupervised loss (Hamilton et al., 2017, eq. 1).

    .. math::
        J(z_u) = -\log\sigma(z_u^\top z_v / t)
                 - \sum_{n=1}^{Q} \log\sigma(-z_u^\top z_{v_n} / t)

    averaged over anchors; :math:`Q` negatives drawn from the degree^0.75
    distribution are shared by the batch (``negatives`` of shape ``(Q, d)``),
    or given per anchor (shape ``(n, Q, d)``). ``t`` is a temperature (1 in
    the paper; smaller values sharpen it for normalised embeddings).
    """
    pos = (anchor * positive).sum(-1) / temperature
    if negatives.dim() == 2:
        neg = anchor @ negatives.T / temperature
    else:
        neg = torch.einsum("nd,nqd->nq", anchor, negatives) / temperature
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def triplet_loss(anchor, positive, negative, margin=0.5, weight=None):
    r"""Triplet margin loss :math:`\max(d(q, p) - d(q, n) + m, 0)`.

    ``negative`` holds one non-adjacent node per anchor; ``weight`` (0/1 per
    anchor) masks triplets whose negative turned out to be adjacent.
    """
    d_pos = (anchor - positive).norm(dim=-1)
    d_neg = (anchor - negative).norm(dim=-1)
    loss = F.relu(d_pos - d_neg + margin)
    return _weighted_mean(loss, weight)


def contrastive_loss(anchor, positive, negative, margin=1.0, weight=None):
    r"""Pairwise contrastive loss (Hadsell et al., 2006).

    .. math::
        d(q, p)^2 + \max(m - d(q, n), 0)^2

    pulls linked videos together and pushes non-adjacent ones at least ``m``
    apart.
    """
    d_pos = (anchor - positive).norm(dim=-1)
    d_neg = (anchor - negative).norm(dim=-1)
    loss = d_pos.pow(2) + F.relu(margin - d_neg).pow(2)
    return _weighted_mean(loss, weight)


def _weighted_mean(loss, weight):
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp(min=1.0)
