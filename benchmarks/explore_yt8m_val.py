"""Explorations on the YouTube-8M validation files only (never the test files).

Ideas for issue 9 that did not make it into the package, kept runnable so
that their figures in ``docs/results.rst`` ("What was tried") can be
reproduced. Everything here uses the validation split of the quality
protocol (``bench_yt8m_quality.py``): of the 10,572 training videos of
validate0000-0039, the first 80% in file order (8,458) train and the last
20% (2,114) are the validation videos; ``mean_rgb``. Each system's ``C``
(1, 4, 16, 64) and its own settings are chosen by GAP on the validation
videos and printed, with the references (raw, ``[x, mean of 10 nearest]``,
SGC ``[x, Sx, S^2x]``) chosen the same way in the same run: design
explorations scored where they are chosen, not gain claims. The head is
the protocol's per-label L2
logistic regression, fitted here jointly for all labels with L-BFGS in
torch (the same objective as ``OneVsRestClassifier(LogisticRegression(C))``;
raw Hit@1 0.8084 against scikit-learn's 0.8094 on these files), because it
is several times faster.

- ``votes``: ways of combining the head's scores with the neighbours' label
  vote: the linear blend ``(1 - a) p + a v`` (the package's), a Bayesian
  log-odds update ``logit p + a log((v + eps) / (prior + eps))``, a geometric
  blend ``p^(1-a) (v + 0.01)^a``; and neighbours found in the head's
  prediction space (5-fold out-of-fold scores of the training videos;
  cosine of ``sqrt p``, of the logits, of ``p``) instead of the features;
  and the vote as features of the head (stacking: ``[x, s v]``, each
  training video's vote from its 20 nearest other training videos, ``s`` in
  0.25-1), alone and blended once more with the vote.
- ``grace``: a GRACE-style self-supervised objective (Zhu et al. 2020): a
  2-layer GCN over the symmetrised 10-NN training graph (256 units, ELU),
  two views with edges dropped (0.2, 0.4) and feature columns masked (0.3,
  0.4), InfoNCE at temperature 0.5 on a projection head over 2,048 sampled
  nodes per step, Adam 1e-3, 100 full-graph steps; unseen videos embedded
  over their links by the SGC query rule; the head on ``[h1, h2]`` alone and
  on ``[x, Sx, S^2x, h1, h2]``.
- ``soft-targets``: the head fitted on labels filled in by the graph,
  ``(1 - b) y + b v`` with ``v`` each training video's RBF vote from its
  k nearest other training videos (k 20 gamma 5, k 50 gamma 10; b 0-0.5,
  chosen with ``C``), on the raw features and the default embedding, alone
  and blended with the prediction-time vote (linear and log-odds).
- ``vote-space``: the label vote from neighbours found in the default
  embedding's space (blocks L2-normalised) instead of the raw features,
  on the embedder's head, with the linear blend and the log-odds update
  (k 10-50, gamma 5-20 and the weight chosen with C).
- ``soft-vote``: the neighbours vote ``(1 - m) y + m p``, their labels
  softened by the head's 5-fold out-of-fold scores ``p`` (m 0-0.5, the
  head's C 4 or 16), with the linear blend and the log-odds update.
- ``fused-vote``: with ``mean_rgb`` + ``mean_audio`` (each on the unit
  sphere), the label vote of neighbours ranked and weighed by the fused
  cosine ``(cos_rgb + w cos_audio) / (1 + w)`` (w 0-1; 0 is the package's
  visual vote), with the linear blend and the log-odds update.
- ``class-weights``: the linear blend and the log-odds update with a weight
  per label, ``a (n_c / median n)^-beta`` (``n_c`` the label's training
  positives; beta -0.5 to 1: beta > 0 leans the rare labels more on the
  vote), k 20 gamma 5 or k 50 gamma 10.
- ``ensemble``: the mean of the raw head's and the embedder's head's scores
  (each with its own ``C``), alone and blended with the vote (k 20 gamma 5
  or k 50 gamma 10).
- ``graph-choice``: the embedder's graph (k nearest 10, 15, 20) and hops (2,
  3), scored for the head (``C`` tuned, with the references) and for
  retrieval (``retrieval``'s precision@10, below).
- ``hop-blocks``: the embedder's three blocks with the far hops pooled
  instead of appended, ``[x, Sx, mean(S^2x, ..., S^Kx)]`` (K 3 or 4) and
  ``[x, mean(Sx, S^2x), mean(S^3x, S^4x)]``, beside ``[x, Sx, S^2x]`` and
  ``[x, Sx, S^2x, S^3x]``, all from one 4-hop embedding of the default
  graph: more hops at the default's 3,072 columns, scored for the head
  (``C`` tuned, with the references) and for retrieval, as ``graph-choice``.
- ``transductive``: the default embedder fitted, without labels, on the
  training and the unseen videos together (the validation videos, or for
  retrieval the queries, linked to each other as well as to the training
  videos), beside the inductive default (fitted on the training videos,
  ``transform`` for the unseen ones); scored as ``graph-choice``.
- ``trans-smooth``: Correct-and-Smooth's smoothing as its paper runs it,
  transductively: a symmetrised RBF k-NN graph over the training and the
  validation videos together (k 10, 20, 50), the training rows clamped to
  their labels, the validation rows starting at the raw head's scores, 20
  steps of ``Z <- (1 - a) G + a S Z`` (a 0.5-0.9), ``S`` symmetric-normalised
  or the mean over the links; beside the package's inductive vote (linear
  and log-odds).
- ``snn-graph``: SGC's ``[x, Sx, S^2x]`` with each k-NN link weighed by
  the neighbours the two videos share (``|N+(i) & N+(j)| / (k + 1)``, ``N+``
  the k nearest and the video itself), beside binary links (the SGC
  reference), k 10 and 20; scored as ``graph-choice``.
- ``mutual-ppr``: SGC's blocks over mutual k-NN links only (each video
  also keeps its nearest; an unseen video keeps a link when it would be
  among that training video's k nearest), k 10, 20 and 30; and
  ``[x, Sx, far]``, ``far`` the hops 2-8 of SGC's graph mixed with weights
  ``beta^(h-2)`` (beta 0.5, 0.8; a personalised-PageRank-like tail in the
  default's 3,072 columns); scored as ``graph-choice``.
- ``geometric-tail``: that tail (beta 0.5, 0.8, 1) over the default
  embedder's own graph (``VidSageEmbedder(hops=8)``'s blocks), beside the
  default ``[x, Sx, S^2x]``; scored as ``graph-choice``.
- ``reverse-links``: SGC's graph, with each unseen video linked as the
  symmetrised graph links a training video: to its k nearest and to every
  training video that would have it among its own k nearest (its cosine
  reaches that video's k-th nearest; searched among the unseen video's 100
  nearest), beside SGC's rule (its k nearest only), k 10 and 20; scored as
  ``graph-choice``.
- ``c-grid``: every system's ``C`` chosen from 1, 2, 4, ..., 64 (the
  protocol's grid steps by 4) for raw, the two references, the default
  embedder, and the raw and embedder heads blended with the vote (k 50,
  gamma 10; linear and log-odds): is the coarse grid what holds a system
  back?
- ``mlp-head``: the references, the default embedder and the raw and
  MLP heads blended with the vote (k 50, gamma 10), each with a
  one-hidden-layer MLP head (512 ReLU units, dropout, AdamW; weight decay
  1e-4-1e-2 and epochs 10-45 chosen like ``C``) beside the LR head: does
  the graph's gain hold, or grow, with a non-linear head?
- ``retrieval``: precision@10 (a shared label) of the default embedding's
  variants for "more like this" (``bench_retrieval.py``'s measure), with
  validate0000-0031 as the catalogue and 0032-0039 as the queries: the
  embedder's graph (default, 20 nearest), 2-4 hops, and the blocks weighed
  before the search (x down to 0.5, later hops up to 1.75); and PCA
  whitening fitted on the catalogue (eigenvalues to the power -p/2, p 0-1),
  of the raw features and of each block of the embedding; and hubness
  reduction (CSLS, Conneau et al. 2018): catalogue video j ranked by
  ``cos(q, j) - b r_j``, ``r_j`` its mean cosine to its ``kr`` nearest other
  catalogue videos (b 0.25-1), in the index, and in the embedder's graph
  (the SGC rule over the 10 nearest by that score).
- ``query-expansion``: average query expansion (Chum et al. 2007; the
  alpha-weighted form of Radenovic et al. 2018): each query row plus its n
  first hits, weighed by ``max(cos, 0)^alpha``, searched again; raw
  features, ``[x, mean of 10 nearest]``, SGC and the default embedding
  (blocks L2-normalised), n 1-10, alpha 0 or 3, on ``retrieval``'s split and
  measure.

Usage::

    python benchmarks/explore_yt8m_val.py votes --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py grace --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py vote-space --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py soft-vote --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py soft-targets --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py fused-vote --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py class-weights --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py ensemble --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py graph-choice --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py hop-blocks --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py transductive --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py trans-smooth --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py snn-graph --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py mutual-ppr --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py geometric-tail --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py reverse-links --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py c-grid --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py mlp-head --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py retrieval --data ../shared/data/yt8m
    python benchmarks/explore_yt8m_val.py query-expansion --data ../shared/data/yt8m
"""

import argparse
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from bench_yt8m_quality import (  # benchmarks/ is on sys.path
    knn,
    load_split,
    mean10,
    scores,
    sgc,
)
from sklearn.model_selection import KFold
from sklearn.preprocessing import normalize


def validation_split(data_dir, inputs="rgb"):
    X, Y, _, _, _ = load_split(data_dir, inputs)
    n_val = int(round(0.2 * len(X)))
    Y = Y.astype(np.float32)
    return X[:-n_val], Y[:-n_val], X[-n_val:], Y[-n_val:]


def head(Z, Y, C, Zq, iters=200):
    """Per-label L2 logistic regression (scikit-learn's objective), L-BFGS."""
    Z, Yt = torch.as_tensor(np.asarray(Z, np.float32)), torch.as_tensor(Y)
    W = torch.zeros(Z.shape[1], Y.shape[1], requires_grad=True)
    b = torch.zeros(Y.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6,
                            tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        logits = Z @ W + b
        loss = C * F.binary_cross_entropy_with_logits(logits, Yt, reduction="sum")
        loss = loss + 0.5 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        Zq = torch.as_tensor(np.asarray(Zq, np.float32))
        return torch.sigmoid(Zq @ W + b).numpy().astype(np.float64)


C_GRID = (1.0, 4.0, 16.0, 64.0)


def tuned(name, candidates, Yv):
    """Print the best of ``{(C, setting): P}`` by GAP, with its C and setting."""
    best = max(candidates.items(), key=lambda kv: scores(Yv, kv[1])["GAP"])
    (C, setting), P = best
    s = scores(Yv, P)
    if isinstance(C, float):
        C = f"C={C:g}"
    elif not isinstance(C, str):  # an MLP head's settings
        C = " ".join(C)
    print(f"{name:44s} {C} {setting or ''} " + " ".join(
        f"{k} {v:.4f}" for k, v in s.items()), flush=True)


def references(X, Y, Xv, Yv, raw_by_C):
    """Print the protocol's references, C chosen like every system's."""
    tuned("raw", {(C, None): P for C, P in raw_by_C.items()}, Yv)
    for name, Z, Zv in (("[x, mean of 10 nearest]", mean10(X, X, True),
                         mean10(X, Xv, False)),
                        ("SGC [x, Sx, S^2x]", sgc(X, X, True), sgc(X, Xv, False))):
        tuned(name, {(C, None): head(Z, Y, C, Zv) for C in C_GRID}, Yv)


def weighted_vote(Y, idx, sim, k, gamma):
    w = np.exp(-gamma * (2 - 2 * sim[:, :k]))
    return np.einsum("qk,qkc->qc", w, Y[idx[:, :k]]) / w.sum(1, keepdims=True)


def top(S, k):
    idx = np.argpartition(-S, k, axis=1)[:, :k]
    sim = np.take_along_axis(S, idx, 1)
    order = np.argsort(-sim, axis=1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(sim, order, 1)


def votes(X, Y, Xv, Yv):
    x, xv = normalize(X), normalize(Xv)
    raw = {C: head(x, Y, C, xv) for C in C_GRID}
    references(X, Y, Xv, Yv, raw)
    idx, sim = top(xv @ x.T, 50)
    V = weighted_vote(Y, idx, sim, 20, 5.0)
    prior = Y.mean(axis=0)

    def bayes(P, a, eps):
        return 1 / (1 + np.exp(-(_logit(P) + a * np.log((V + eps) / (prior + eps)))))

    tuned("linear blend (20-NN, gamma 5)", {
        (C, f"a={a}"): (1 - a) * P + a * V
        for C, P in raw.items() for a in (0.2, 0.3, 0.5)}, Yv)
    tuned("geometric blend", {
        (C, f"a={a}"): P ** (1 - a) * (V + 0.01) ** a
        for C, P in raw.items() for a in (0.2, 0.3, 0.5)}, Yv)
    tuned("log-odds update", {
        (C, f"a={a} eps={eps}"): bayes(P, a, eps)
        for C, P in raw.items() for a in (0.3, 0.5, 1.0) for eps in (0.01, 0.05)}, Yv)
    spaces = {}
    for C, P in raw.items():
        oof = np.zeros_like(Y, dtype=np.float64)
        for tr, te in KFold(5).split(x):
            oof[te] = head(x[tr], Y[tr], C, x[te])
        for space, A, B in (("sqrt p", np.sqrt(oof), np.sqrt(P)),
                            ("logit", _logit(oof), _logit(P)), ("p", oof, P)):
            i2, s2 = top(normalize(B) @ normalize(A).T, 50)
            for k in (10, 20, 50):
                V2 = weighted_vote(Y, i2, s2, k, 5.0)
                for a in (0.2, 0.3, 0.5):
                    spaces[(C, f"{space} {k}-NN a={a}")] = (1 - a) * P + a * V2
    tuned("prediction-space neighbours", spaces, Yv)
    # the vote as features of the head (stacking): each training video's vote
    # of its 20 nearest other training videos, the vote block scaled by s
    S = x @ x.T
    np.fill_diagonal(S, -np.inf)  # a training video does not vote for itself
    i_tr, s_tr = top(S, 20)
    del S
    Vt = weighted_vote(Y, i_tr, s_tr, 20, 5.0)
    stacked = {s: {C: head(np.hstack([x, s * Vt]), Y, C, np.hstack([xv, s * V]))
                   for C in C_GRID} for s in (0.25, 0.5, 1.0)}
    tuned("stacked [x, s vote]", {
        (C, f"s={s}"): P for s, by_C in stacked.items() for C, P in by_C.items()}, Yv)
    tuned("stacked, then blended", {
        (C, f"s={s} a={a}"): (1 - a) * P + a * V
        for s, by_C in stacked.items() for C, P in by_C.items()
        for a in (0.1, 0.2, 0.3)}, Yv)


class _GCN(torch.nn.Module):
    def __init__(self, d_in, hidden):
        super().__init__()
        self.l1 = torch.nn.Linear(d_in, hidden)
        self.l2 = torch.nn.Linear(hidden, hidden)
        self.p1 = torch.nn.Linear(hidden, hidden)  # projection head
        self.p2 = torch.nn.Linear(hidden, hidden)

    def forward(self, S, X):
        h1 = F.elu(self.l1(torch.sparse.mm(S, X)))
        return h1, self.l2(torch.sparse.mm(S, h1))

    def project(self, z):
        return self.p2(F.elu(self.p1(z)))


def _info_nce(z1, z2, t=0.5):
    z1, z2 = F.normalize(z1), F.normalize(z2)
    between, within = torch.exp(z1 @ z2.T / t), torch.exp(z1 @ z1.T / t)
    neg = between.sum(1) + within.sum(1) - within.diag()
    return -torch.log(between.diag() / neg).mean()


def grace(X, Y, Xv, Yv, k=10, hidden=256, steps=100, batch=2048, seed=0):
    x, xv = normalize(X), normalize(Xv)
    n = len(x)
    nb = knn(x, x, k, exclude_self=True)
    A = sp.csr_matrix((np.ones(nb.size), nb.ravel(), np.arange(0, nb.size + 1, k)),
                      shape=(n, n))
    A = A.maximum(A.T).tocoo()
    rows, cols = A.row, A.col
    d = 1.0 + np.bincount(rows, minlength=n)

    def operator(keep=None):
        r, c = (rows, cols) if keep is None else (rows[keep], cols[keep])
        dd = 1.0 + np.bincount(r, minlength=n)
        ii = np.vstack([np.concatenate([r, np.arange(n)]),
                        np.concatenate([c, np.arange(n)])])
        w = np.concatenate([1.0 / np.sqrt(dd[r] * dd[c]), 1.0 / dd])
        return torch.sparse_coo_tensor(ii, w.astype(np.float32), (n, n)).coalesce()

    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    Xt = torch.as_tensor(x)
    model = _GCN(x.shape[1], hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    for step in range(steps):
        views = []
        for p_edge, p_feat in ((0.2, 0.3), (0.4, 0.4)):
            keep = rng.rand(len(rows)) > p_edge
            mask = torch.as_tensor((rng.rand(x.shape[1]) > p_feat).astype(np.float32))
            views.append(model(operator(keep), Xt * mask)[1])
        b = torch.as_tensor(rng.choice(n, batch, replace=False))
        z1, z2 = model.project(views[0][b]), model.project(views[1][b])
        loss = 0.5 * (_info_nce(z1, z2) + _info_nce(z2, z1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    S = operator()
    q = knn(x, xv, k, exclude_self=False)
    with torch.no_grad():
        h1 = F.elu(model.l1(torch.sparse.mm(S, Xt)))
        h2 = model.l2(torch.sparse.mm(S, h1))
        d_q = 1.0 + k  # a query: itself 1 / d_q, training video j 1 / sqrt(d_q d_j)
        w = torch.as_tensor(1.0 / np.sqrt(d_q * d[q]), dtype=torch.float32)
        qi, xq = torch.as_tensor(q), torch.as_tensor(xv)
        h1q = F.elu(model.l1(xq / d_q + torch.einsum("qk,qkd->qd", w, Xt[qi])))
        h2q = model.l2(h1q / d_q + torch.einsum("qk,qkd->qd", w, h1[qi]))
    H = normalize(torch.cat([h1, h2], 1).numpy())
    Hq = normalize(torch.cat([h1q, h2q], 1).numpy())
    references(X, Y, Xv, Yv, {C: head(x, Y, C, xv) for C in C_GRID})
    Zs, Zsq = sgc(X, X, True), sgc(X, Xv, False)
    tuned("GRACE [h1, h2] alone", {(C, None): head(H, Y, C, Hq) for C in C_GRID}, Yv)
    tuned("[x, Sx, S^2x, h1, h2]", {
        (C, None): head(np.hstack([Zs, H]), Y, C, np.hstack([Zsq, Hq]))
        for C in C_GRID}, Yv)


def _blends(raw, V, prior, setting, lin, bayes, scale=1.0):
    """Add the linear blends and log-odds updates of each head ``P`` by ``V``.

    ``scale`` multiplies the weight per label (clipped to 1 for the blend, 2
    for the update); 1 is one weight for all labels.
    """
    update = np.log((V + 0.05) / (prior + 0.05))
    for C, P in raw.items():
        for a in (0.2, 0.3, 0.5):
            w = np.clip(a * scale, 0.0, 1.0)
            lin[(C, f"{setting} a={a}")] = (1 - w) * P + w * V
        for a in (0.5, 0.75, 1.0):
            bayes[(C, f"{setting} a={a}")] = 1 / (
                1 + np.exp(-(_logit(P) + np.clip(a * scale, 0.0, 2.0) * update)))


def _raw_heads_and_neighbours(X, Y, Xv, Yv):
    """Print the references; return the raw heads and the 50 nearest."""
    x, xv = normalize(X), normalize(Xv)
    raw = {C: head(x, Y, C, xv) for C in C_GRID}
    references(X, Y, Xv, Yv, raw)
    idx, sim = top(xv @ x.T, 50)
    return x, raw, idx, sim


def soft_vote(X, Y, Xv, Yv):
    """Neighbours vote ``(1 - m) y + m p_oof`` (labels softened by the head)."""
    x, raw, idx, sim = _raw_heads_and_neighbours(X, Y, Xv, Yv)
    prior = Y.mean(axis=0)
    for C_oof in (4.0, 16.0):
        oof = np.zeros_like(Y, dtype=np.float64)
        for tr, te in KFold(5).split(x):
            oof[te] = head(x[tr], Y[tr], C_oof, x[te])
        for m in (0.0, 0.25, 0.5):
            lin, bayes = {}, {}
            for k, gamma in ((20, 5.0), (50, 10.0)):
                V = weighted_vote((1 - m) * Y + m * oof, idx, sim, k, gamma)
                _blends(raw, V, prior, f"k={k}", lin, bayes)
            tuned(f"linear, m={m} (oof C={C_oof:g})", lin, Yv)
            tuned(f"log-odds, m={m} (oof C={C_oof:g})", bayes, Yv)


def soft_targets(X, Y, Xv, Yv):
    """Fit the head on labels filled in by the graph: ``(1 - b) y + b v``.

    ``v`` is each training video's vote from its k nearest *other* training
    videos (RBF, as the package's vote); YouTube-8M's labels are incomplete,
    and the neighbours' labels suggest the missing ones. Nothing changes at
    prediction: the head is inductive as before. On the raw features and on
    the default embedding, alone and blended with the vote at prediction.
    """
    from skvidsage import VidSageEmbedder

    x, _, idx, sim = _raw_heads_and_neighbours(X, Y, Xv, Yv)
    emb = VidSageEmbedder()
    spaces = {"raw": (x, normalize(Xv)), "VidSageEmbedder()": (emb.fit_transform(X),
                                                               emb.transform(Xv))}
    S = x @ x.T
    np.fill_diagonal(S, -np.inf)
    tr_idx, tr_sim = top(S, 50)
    del S
    prior = Y.mean(axis=0)
    V = weighted_vote(Y, idx, sim, 50, 10.0)  # the prediction-time vote
    for (k, gamma) in ((20, 5.0), (50, 10.0)):
        V_train = weighted_vote(Y, tr_idx, tr_sim, k, gamma).astype(np.float32)
        for name, (Z, Zv) in spaces.items():
            heads, lin, bayes = {}, {}, {}
            for b in (0.0, 0.1, 0.25, 0.5):
                Yb = (1 - b) * Y + b * V_train
                P = {C: head(Z, Yb, C, Zv) for C in C_GRID}
                tuned(f"{name}, targets k={k}, b={b}",
                      {(C, None): p for C, p in P.items()}, Yv)
                heads.update({(C, f"b={b}"): p for C, p in P.items()})
                _blends(P, V, prior, f"b={b} vote k=50", lin, bayes)
            tuned(f"{name}, targets k={k}", heads, Yv)
            tuned(f"{name}, targets k={k}, + linear", lin, Yv)
            tuned(f"{name}, targets k={k}, + log-odds", bayes, Yv)


def vote_space(X, Y, Xv, Yv):
    from skvidsage import VidSageEmbedder

    emb = VidSageEmbedder()
    E, Ev = emb.fit_transform(X), emb.transform(Xv)
    P = {C: head(E, Y, C, Ev) for C in C_GRID}
    tuned("VidSageEmbedder() head", {(C, None): p for C, p in P.items()}, Yv)
    prior = Y.mean(axis=0)
    for space, A, B in (("raw", normalize(X), normalize(Xv)),
                        ("embedding", _unit_blocks(E, X.shape[1]),
                         _unit_blocks(Ev, X.shape[1]))):
        idx, sim = top(B @ A.T, 50)
        print(f"{space} space: mean similarity of the 1st / 10th / 20th nearest "
              f"{sim[:, 0].mean():.3f} / {sim[:, 9].mean():.3f} / "
              f"{sim[:, 19].mean():.3f}", flush=True)
        linear, log_odds = {}, {}
        for k in (10, 20, 50):
            for gamma in (5.0, 10.0, 20.0):
                V = weighted_vote(Y, idx, sim, k, gamma)
                ratio = np.log((V + 0.05) / (prior + 0.05))
                for C, p in P.items():
                    for a in (0.2, 0.3, 0.5):
                        linear[(C, f"k={k} g={gamma:g} a={a}")] = (1 - a) * p + a * V
                    for a in (0.5, 0.75, 1.0):
                        log_odds[(C, f"k={k} g={gamma:g} a={a}")] = 1 / (
                            1 + np.exp(-(_logit(p) + a * ratio)))
        tuned(f"linear blend, {space} neighbours", linear, Yv)
        tuned(f"log-odds update, {space} neighbours", log_odds, Yv)


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _unit_blocks(E, d):
    """Each d-column block L2-normalised, rows of norm 1."""
    n_blocks = E.shape[1] // d
    return np.hstack([normalize(E[:, i * d:(i + 1) * d]) for i in range(n_blocks)]
                     ).astype(np.float32) / np.sqrt(n_blocks)


def _whiten(Bc, Bq, p):
    """PCA whitening fitted on the catalogue rows, eigenvalues ** (-p / 2)."""
    mu = Bc.mean(axis=0)
    w, V = np.linalg.eigh(np.cov((Bc - mu).T.astype(np.float64)))
    P = (V / np.maximum(w, 1e-12) ** (p / 2)).astype(np.float32)
    return normalize((Bc - mu) @ P), normalize((Bq - mu) @ P)


def _csls_penalty(Ec, kr):
    """Each catalogue row's mean cosine to its kr nearest other rows."""
    E = torch.as_tensor(Ec)
    r = []
    for s in range(0, len(E), 2048):
        S = E[s:s + 2048] @ E.T
        S[torch.arange(len(S)), torch.arange(s, s + len(S))] = -9.0  # not itself
        r.append(torch.topk(S, kr).values.mean(dim=1))
    return torch.cat(r)


def _nearest(Eq, Ec, k, penalty, exclude_self):
    """Return the k catalogue rows of the highest ``cos - penalty`` a query."""
    Q, E = torch.as_tensor(Eq), torch.as_tensor(Ec)
    out = []
    for s in range(0, len(Q), 2048):
        S = Q[s:s + 2048] @ E.T - penalty[None]
        if exclude_self:
            S[torch.arange(len(S)), torch.arange(s, s + len(S))] = -9.0
        out.append(torch.topk(S, k).indices)
    return torch.cat(out).numpy()


def _sgc_by(Xc, Xq, penalty, k=10):
    """SGC blocks, rows unit, over the k nearest by ``cos - penalty``."""
    n = len(Xc)
    idx = _nearest(Xc, Xc, k, penalty, exclude_self=True)
    A = sp.csr_matrix((np.ones(idx.size), idx.ravel(), np.arange(0, idx.size + 1, k)),
                      shape=(n, n))
    A = A.maximum(A.T)
    d = 1.0 + np.asarray(A.sum(axis=1)).ravel()
    Dm = sp.diags(1.0 / np.sqrt(d))
    S = Dm @ (A + sp.eye(n)) @ Dm
    S1 = S @ Xc
    q = _nearest(Xq, Xc, k, penalty, exclude_self=False)
    w = 1.0 / np.sqrt((1.0 + k) * d[q])
    s1 = Xq / (1.0 + k) + np.einsum("qk,qkd->qd", w, Xc[q])
    s2 = s1 / (1.0 + k) + np.einsum("qk,qkd->qd", w, S1[q])
    d_in = Xc.shape[1]
    return (_unit_blocks(np.hstack(B), d_in) for B in ((Xc, S1, S @ S1), (Xq, s1, s2)))


def _retrieval_split(data_dir):
    """Catalogue 0000-0031 and queries 0032-0039, and their precision@10."""
    from skvidsage import load_youtube8m

    files = sorted(Path(data_dir).glob("*.tfrecord"))
    cat = load_youtube8m(files[:32], features=("mean_rgb",))
    qry = load_youtube8m(files[32:40], features=("mean_rgb",))
    relevant = (qry.target.astype(np.float32) @ cat.target.astype(np.float32).T)
    relevant = relevant.toarray() > 0
    keep = relevant.any(axis=1)
    Xc, Xq = cat.data.astype(np.float32), qry.data.astype(np.float32)
    print(f"catalogue {len(Xc)}, queries {len(Xq)} ({keep.sum()} with a "
          "relevant catalogue video)", flush=True)

    def p10(Ec, Eq, penalty=None):
        if penalty is None:
            penalty = torch.zeros(len(Ec))
        idx = _nearest(Eq, Ec, 10, penalty, exclude_self=False)
        return float(np.take_along_axis(relevant, idx, 1)[keep].mean())

    return Xc, Xq, p10


def retrieval(data_dir):
    from skvidsage import VideoGraphBuilder, VidSageEmbedder

    Xc, Xq, p10 = _retrieval_split(data_dir)

    def csls(Ec, Eq, kr):
        r = _csls_penalty(Ec, kr)
        return ", ".join(f"b={b} {p10(Ec, Eq, b * r):.4f}" for b in (0.25, 0.5, 1.0))

    print(f"raw mean_rgb: P@10 {p10(normalize(Xc), normalize(Xq)):.4f}", flush=True)
    d = Xc.shape[1]
    emb = VidSageEmbedder()
    Bc, Bq = (_unit_blocks(E, d) for E in (emb.fit_transform(Xc), emb.transform(Xq)))
    xc, xq = normalize(Xc), normalize(Xq)
    for kr in (10, 50):
        print(f"CSLS in the index, kr={kr}: raw P@10 {csls(xc, xq, kr)}", flush=True)
    print(f"CSLS in the index, kr=10: default embedding P@10 {csls(Bc, Bq, 10)}",
          flush=True)
    r = _csls_penalty(xc, 10)
    for b in (0.0, 0.5, 1.0):
        Sc, Sq = _sgc_by(xc, xq, b * r)
        print(f"SGC over the 10 nearest by CSLS, b={b}: P@10 {p10(Sc, Sq):.4f}",
              flush=True)
    for p in (0.25, 0.5, 1.0):
        raw = _whiten(normalize(Xc), normalize(Xq), p)
        white = [_whiten(Bc[:, i * d:(i + 1) * d], Bq[:, i * d:(i + 1) * d], p)
                 for i in range(Bc.shape[1] // d)]
        Wc, Wq = np.hstack([c for c, _ in white]), np.hstack([q for _, q in white])
        print(f"whitened, p={p}: raw P@10 {p10(*raw):.4f}, default embedding "
              f"(each block) P@10 {p10(Wc, Wq):.4f}", flush=True)
    for name, graph in (("default graph", None),
                        ("20 nearest", VideoGraphBuilder(n_neighbors=20))):
        for hops in (2, 3, 4):
            emb = VidSageEmbedder(hops=hops, graph=graph)
            blocks = [emb.fit_transform(Xc), emb.transform(Xq)]
            blocks = [[normalize(E[:, i * d:(i + 1) * d]) for i in range(hops + 1)]
                      for E in blocks]
            for w0 in (1.0, 0.7, 0.5):
                for rising in (False, True):
                    w = [w0] + [1.0 + 0.25 * i * rising for i in range(hops)]
                    Ec, Eq = (np.hstack([wi * b for wi, b in zip(w, B, strict=True)])
                              for B in blocks)
                    print(f"{name}, {hops} hops, block weights {w}: P@10 "
                          f"{p10(Ec, Eq):.4f}", flush=True)


def query_expansion(data_dir):
    """Precision@10 with each query averaged with its first hits, then searched."""
    from skvidsage import VidSageEmbedder

    Xc, Xq, p10 = _retrieval_split(data_dir)
    emb = VidSageEmbedder()
    d = Xc.shape[1]
    none = torch.zeros(len(Xc))
    spaces = {
        "raw mean_rgb": (normalize(Xc), normalize(Xq)),
        "[x, mean of 10 nearest]": tuple(
            _unit_blocks(mean10(Xc, X, same), d)
            for X, same in ((Xc, True), (Xq, False))
        ),
        "SGC [x, Sx, S^2x]": tuple(_sgc_by(normalize(Xc), normalize(Xq), none)),
        "default embedding": tuple(
            _unit_blocks(E, d) for E in (emb.fit_transform(Xc), emb.transform(Xq))
        ),
    }
    for name, (Ec, Eq) in spaces.items():
        Ec, Eq = Ec.astype(np.float32), Eq.astype(np.float32)
        print(f"{name}: P@10 {p10(Ec, Eq):.4f}", flush=True)
        for n in (1, 2, 3, 5, 10):
            idx = _nearest(Eq, Ec, n, none, exclude_self=False)
            cos = np.einsum("qd,qnd->qn", Eq, Ec[idx])
            for alpha in (0, 3):
                w = np.maximum(cos, 0.0) ** alpha
                Q = normalize(Eq + np.einsum("qn,qnd->qd", w, Ec[idx]))
                print(f"{name}, expanded by {n} hits, alpha={alpha}: P@10 "
                      f"{p10(Ec, Q.astype(np.float32)):.4f}", flush=True)


def class_weights(X, Y, Xv, Yv):
    """Blend with weights that depend on the label's training frequency."""
    _, raw, idx, sim = _raw_heads_and_neighbours(X, Y, Xv, Yv)
    prior = Y.mean(axis=0)
    relative = Y.sum(axis=0) / np.median(Y.sum(axis=0))
    votes = [(k, weighted_vote(Y, idx, sim, k, gamma)) for k, gamma in
             ((20, 5.0), (50, 10.0))]
    for beta in (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0):
        lin, bayes = {}, {}
        for k, V in votes:  # beta > 0: rare labels lean more on the vote
            _blends(raw, V, prior, f"k={k}", lin, bayes, scale=relative ** -beta)
        tuned(f"linear, beta={beta}", lin, Yv)
        tuned(f"log-odds, beta={beta}", bayes, Yv)


def ensemble(X, Y, Xv, Yv):
    """Average the raw head and the embedder's head, then blend with the vote."""
    from skvidsage import VidSageEmbedder

    _, raw, idx, sim = _raw_heads_and_neighbours(X, Y, Xv, Yv)
    emb = VidSageEmbedder()
    Z, Zv = emb.fit_transform(X), emb.transform(Xv)
    embedded = {C: head(Z, Y, C, Zv) for C in C_GRID}
    tuned("VidSageEmbedder() head", {(C, None): P for C, P in embedded.items()}, Yv)
    # one C per head: the raw head's is C, the embedder's is in the setting
    mean = {(C1, C2): (P1 + P2) / 2 for C1, P1 in raw.items()
            for C2, P2 in embedded.items()}
    tuned("mean of the two heads", {(C1, f"C_embedding={C2:g}"): P
                                     for (C1, C2), P in mean.items()}, Yv)
    prior = Y.mean(axis=0)
    lin, bayes = {}, {}
    for k, gamma in ((20, 5.0), (50, 10.0)):
        V = weighted_vote(Y, idx, sim, k, gamma)
        for C2 in C_GRID:
            _blends({C1: P for (C1, c2), P in mean.items() if c2 == C2}, V, prior,
                    f"C_embedding={C2:g} k={k}", lin, bayes)
    tuned("mean of the two heads, linear blend", lin, Yv)
    tuned("mean of the two heads, log-odds update", bayes, Yv)


GRAPH_CHOICES = ((10, 2), (10, 3), (15, 2), (20, 2), (20, 3))


def _head_and_retrieval(data_dir, embeddings):
    """Score ``embeddings(X, Xq)``'s ``(name, Z, Zq)`` for the head and retrieval.

    The head as every system's here (``C`` tuned, the references in the run)
    on the validation split; then precision@10 on ``retrieval``'s split, each
    ``d``-column block L2-normalised.
    """
    X, Y, Xv, Yv = validation_split(data_dir)
    raw = {C: head(normalize(X), Y, C, normalize(Xv)) for C in C_GRID}
    references(X, Y, Xv, Yv, raw)
    for name, Z, Zv in embeddings(X, Xv):
        tuned(f"head on {name}", {(C, None): head(Z, Y, C, Zv) for C in C_GRID}, Yv)
    Xc, Xq, p10 = _retrieval_split(data_dir)
    print(f"retrieval: raw mean_rgb P@10 {p10(normalize(Xc), normalize(Xq)):.4f}")
    for name, Ec, Eq in embeddings(Xc, Xq):
        Ec, Eq = (_unit_blocks(E, Xc.shape[1]) for E in (Ec, Eq))
        print(f"retrieval: {name} P@10 {p10(Ec, Eq):.4f}", flush=True)


def graph_choice(data_dir):
    """Score the embedder's k nearest and hops for the head and for retrieval."""
    from skvidsage import VideoGraphBuilder, VidSageEmbedder

    def embeddings(X, Xq):
        for k, hops in GRAPH_CHOICES:
            emb = VidSageEmbedder(hops=hops, graph=VideoGraphBuilder(n_neighbors=k))
            yield (f"VidSageEmbedder, k={k}, {hops} hops", emb.fit_transform(X),
                   emb.transform(Xq))

    _head_and_retrieval(data_dir, embeddings)


HOP_BLOCKS = {
    "[x, Sx, S^2x] (default)": ((0,), (1,), (2,)),
    "[x, Sx, S^2x, S^3x]": ((0,), (1,), (2,), (3,)),
    "[x, Sx, mean(S^2x, S^3x)]": ((0,), (1,), (2, 3)),
    "[x, Sx, mean(S^2x..S^4x)]": ((0,), (1,), (2, 3, 4)),
    "[x, mean(Sx, S^2x), mean(S^3x, S^4x)]": ((0,), (1, 2), (3, 4)),
}


def _pooled(E, d, blocks):
    """Return the blocks of ``E`` (``d`` columns each) named by ``blocks``, pooled."""
    return np.hstack([np.mean([E[:, h * d:(h + 1) * d] for h in hops], axis=0)
                      for hops in blocks])


def hop_blocks(data_dir):
    """Pool the far hops into the third block, for the head and for retrieval."""
    from skvidsage import VidSageEmbedder

    def embeddings(X, Xq):
        emb = VidSageEmbedder(hops=4)
        E, Eq, d = emb.fit_transform(X), emb.transform(Xq), X.shape[1]
        for name, blocks in HOP_BLOCKS.items():
            yield name, _pooled(E, d, blocks), _pooled(Eq, d, blocks)

    _head_and_retrieval(data_dir, embeddings)


def transductive(data_dir):
    """Fit the default embedder on the training and the unseen videos together."""
    from skvidsage import VidSageEmbedder

    def embeddings(X, Xq):
        emb = VidSageEmbedder()
        yield "VidSageEmbedder(), inductive", emb.fit_transform(X), emb.transform(Xq)
        E = VidSageEmbedder().fit_transform(np.vstack([X, Xq]))
        yield "VidSageEmbedder(), transductive", E[:len(X)], E[len(X):]

    _head_and_retrieval(data_dir, embeddings)


def _union_links(x, xv, k):
    """Each row's ``k`` nearest other rows of training and unseen videos together.

    Sorted by cosine, so the first ``k' < k`` columns are the ``k'`` nearest.
    """
    xa = np.vstack([x, xv]).astype(np.float32)
    S = xa @ xa.T
    np.fill_diagonal(S, -np.inf)
    return top(S, k)


def _union_graph(idx, sim, k, gamma, norm):
    """RBF graph over the first ``k`` links of ``_union_links``, symmetrised.

    ``norm`` "sym" gives ``D^-1/2 W D^-1/2``; "mean", ``D^-1 W``.
    """
    idx, sim = idx[:, :k], sim[:, :k]
    W = _links(idx, np.exp(-gamma * (2 - 2 * sim)), len(idx))
    W = W.maximum(W.T)
    d = np.asarray(W.sum(axis=1)).ravel()
    if norm == "mean":
        return (sp.diags(1.0 / d) @ W).tocsr()
    Dm = sp.diags(1.0 / np.sqrt(d))
    return (Dm @ W @ Dm).tocsr()


def trans_smooth(X, Y, Xv, Yv):
    """Smooth the head's scores over a graph that links the unseen videos too.

    Correct-and-Smooth's smoothing step as in its paper (transductive): the
    training rows start at their labels, the unseen rows at the head's scores,
    ``Z <- (1 - a) G + a S Z`` for 20 steps with the training rows reset to
    their labels each step; ``S`` symmetric-normalised (the paper's) or the
    mean over the links; beside the package's inductive one-hop vote.
    """
    x, raw, idx, sim = _raw_heads_and_neighbours(X, Y, Xv, Yv)
    xv, n = normalize(Xv), len(X)
    prior = Y.mean(axis=0)
    lin, bayes = {}, {}
    for k, gamma in ((20, 5.0), (50, 10.0)):
        _blends(raw, weighted_vote(Y, idx, sim, k, gamma), prior, f"k={k}", lin, bayes)
    tuned("inductive vote, linear", lin, Yv)
    tuned("inductive vote, log-odds", bayes, Yv)
    links = _union_links(x, xv, 50)
    for norm in ("sym", "mean"):
        smooth = {}
        for k, gamma in ((10, 5.0), (20, 5.0), (50, 10.0)):
            S = _union_graph(*links, k, gamma, norm)
            for C, P in raw.items():
                G = np.vstack([Y, P])
                for a in (0.5, 0.8, 0.9):
                    Z = G.copy()
                    for _ in range(20):
                        Z = (1 - a) * G + a * (S @ Z)
                        Z[:n] = Y
                    smooth[(C, f"k={k} a={a}")] = Z[n:]
        tuned(f"transductive smoothing, {norm}", smooth, Yv)


def _weighted_hops(x, xq, W, q, wq, hops=2):
    """Propagated blocks ``[x, Sx, ..., S^hops x]`` over weighted links.

    ``W``: the training videos' links (sparse, symmetric, no self loops);
    ``q``/``wq``: each unseen video's linked training videos and their weights.
    As ``sgc``: self loops of 1, ``S = D^-1/2 (W + I) D^-1/2``, an unseen row
    weighs itself ``1/d_q`` and training video ``j`` by ``w/sqrt(d_q d_j)``.
    Returns the two lists of blocks, training then unseen.
    """
    n = len(x)
    d = 1.0 + np.asarray(W.sum(axis=1)).ravel()
    Dm = sp.diags(1.0 / np.sqrt(d))
    S = Dm @ (W + sp.eye(n)) @ Dm
    d_q = 1.0 + wq.sum(axis=1, keepdims=True)
    wq = wq / np.sqrt(d_q * d[q])
    train, unseen = [x], [xq]
    for _ in range(hops):
        unseen.append(unseen[-1] / d_q + np.einsum("qk,qkd->qd", wq, train[-1][q]))
        train.append(S @ train[-1])
    return train, unseen


def _links(idx, w, n):
    """Sparse ``n x n`` links from each row's ``idx`` with weights ``w`` (its dtype)."""
    k = idx.shape[1]
    return sp.csr_matrix((np.asarray(w).ravel(), idx.ravel(),
                          np.arange(0, idx.size + 1, k)), shape=(n, n))


def _snn_propagation(X, Xq, k):
    """SGC's ``[x, Sx, S^2x]`` with its links weighed by shared neighbours.

    A link ``i -> j`` weighs ``|N+(i) & N+(j)| / (k + 1)`` (``N+`` a video's
    k nearest and itself; an unseen video is in no other video's list), where
    ``sgc`` gives every link 1; otherwise as ``sgc``: symmetrised by the
    larger weight, unseen rows by its rule (``_weighted_hops``).
    """
    x, xq = normalize(X), normalize(Xq)
    idx = knn(x, x, k, exclude_self=True)
    q = knn(x, xq, k, exclude_self=False)
    members = [set(row) | {i} for i, row in enumerate(idx)]
    w = np.array([[len(members[i] & members[j]) for j in row]
                  for i, row in enumerate(idx)]) / (k + 1)
    wq = np.array([[len(set(row) & members[j]) for j in row] for row in q]) / (k + 1)
    W = _links(idx, w, len(x))
    blocks = _weighted_hops(x, xq, W.maximum(W.T), q, wq)
    return (np.hstack(B).astype(np.float32) for B in blocks)


def snn_graph(data_dir):
    """Weigh the propagation's links by shared neighbours, for head and retrieval."""

    def embeddings(X, Xq):
        for k in (10, 20):
            yield f"binary links, k={k}", sgc(X, X, True, k), sgc(X, Xq, False, k)
            yield f"shared-neighbour links, k={k}", *_snn_propagation(X, Xq, k)

    _head_and_retrieval(data_dir, embeddings)


def _mutual_links(x, xq, k):
    """Mutual k-NN links: ``i - j`` kept when each is among the other's k nearest.

    Every video also keeps its nearest neighbour, so that none is left alone.
    An unseen video ``q`` keeps its link to ``j`` when ``cos(q, j)`` reaches
    ``j``'s k-th nearest cosine (``q`` would be among ``j``'s k nearest), and
    always its nearest: inductive, one row at a time.
    """
    n = len(x)
    idx, A, q, wq = _links_back(x, xq, k, k)
    W = A.minimum(A.T).maximum(_links(idx[:, :1], np.ones(n), n))
    wq[:, 0] = 1.0
    return W.maximum(W.T), q, wq


def _links_back(x, xq, k, reach):
    """Link the training videos to their k nearest; say which would link to q.

    Returns ``idx`` (each training video's k nearest others), ``A`` (those
    links, sparse), ``q`` (each unseen video's ``reach`` nearest training
    videos) and ``back`` (1.0 where ``cos(q, j)`` reaches ``j``'s k-th
    nearest cosine: ``q`` would be among ``j``'s k nearest).
    """
    idx = knn(x, x, k, exclude_self=True)
    A = _links(idx, np.ones(idx.size), len(x))
    kth = np.einsum("nd,nd->n", x, x[idx[:, -1]])
    q = knn(x, xq, reach, exclude_self=False)
    cos = np.einsum("qd,qkd->qk", xq, x[q])
    return idx, A, q, (cos >= kth[q] - 1e-6).astype(float)


def _geometric(blocks, beta):
    """``[x, Sx, sum_h beta^(h-2) S^h x / sum_h beta^(h-2)]`` for hops h >= 2."""
    w = beta ** np.arange(len(blocks) - 2)
    far = sum(wi * B for wi, B in zip(w, blocks[2:], strict=True)) / w.sum()
    return np.hstack([blocks[0], blocks[1], far]).astype(np.float32)


def mutual_ppr(data_dir):
    """Mutual k-NN links, and a geometric mix of far hops, for head and retrieval."""

    def embeddings(X, Xq):
        x, xq = normalize(X), normalize(Xq)
        for k in (10, 20, 30):
            W, q, wq = _mutual_links(x, xq, k)
            print(f"mutual k={k}: {W.nnz / len(x):.1f} links a video, "
                  f"{wq.sum(axis=1).mean():.1f} an unseen one", flush=True)
            blocks = _weighted_hops(x, xq, W, q, wq)
            yield (f"mutual k-NN links, k={k}",
                   *(np.hstack(B).astype(np.float32) for B in blocks))
        idx, q = knn(x, x, 10, exclude_self=True), knn(x, xq, 10, exclude_self=False)
        A = _links(idx, np.ones(idx.size), len(x))
        train, unseen = _weighted_hops(x, xq, A.maximum(A.T), q, np.ones(q.shape), 8)
        yield ("binary k=10 (SGC)", *(np.hstack(B[:3]).astype(np.float32)
                                      for B in (train, unseen)))
        for beta in (0.5, 0.8):
            yield (f"[x, Sx, geometric S^2x..S^8x, beta {beta}]",
                   _geometric(train, beta), _geometric(unseen, beta))

    _head_and_retrieval(data_dir, embeddings)


def geometric_tail(data_dir):
    """Score ``mutual-ppr``'s geometric tail over the default embedder's graph."""
    from skvidsage import VidSageEmbedder

    def embeddings(X, Xq):
        emb = VidSageEmbedder(hops=8)
        E, Eq, d = emb.fit_transform(X), emb.transform(Xq), X.shape[1]
        train, unseen = ([B[:, h * d:(h + 1) * d] for h in range(9)] for B in (E, Eq))
        yield ("[x, Sx, S^2x] (default)",
               *(np.hstack(B[:3]) for B in (train, unseen)))
        for beta in (0.5, 0.8, 1.0):
            yield (f"[x, Sx, geometric S^2x..S^8x, beta {beta}]",
                   _geometric(train, beta), _geometric(unseen, beta))

    _head_and_retrieval(data_dir, embeddings)


def _reverse_links(x, xq, k, reach=100):
    """Symmetrised k-NN links, and an unseen video's links under the same rule.

    A training video's links are its k nearest and the videos that have it
    among theirs (``A`` or ``A^T``). An unseen video ``q`` links to its k
    nearest and, the same way, to every training video ``j`` of its
    ``reach`` nearest whose k-th nearest cosine ``cos(q, j)`` reaches (``q``
    would be among ``j``'s k nearest): as if it had been in the training
    graph, one row at a time.
    """
    _, A, q, wq = _links_back(x, xq, k, reach)
    wq[:, :k] = 1.0
    return A.maximum(A.T), q, wq


def reverse_links(data_dir):
    """Unseen videos linked as the symmetrised training graph links its own."""

    def embeddings(X, Xq):
        x, xq = normalize(X), normalize(Xq)
        for k in (10, 20):
            W, q, wq = _reverse_links(x, xq, k)
            print(f"k={k}: {W.nnz / len(x):.1f} links a training video, "
                  f"{wq.sum(axis=1).mean():.1f} an unseen one", flush=True)
            fwd = np.zeros_like(wq)
            fwd[:, :k] = 1.0
            for name, w in (("own k nearest (SGC)", fwd), ("with reverse links", wq)):
                train, unseen = _weighted_hops(x, xq, W, q, w)
                yield (f"k={k}, {name}",
                       *(np.hstack(B).astype(np.float32) for B in (train, unseen)))

    _head_and_retrieval(data_dir, embeddings)


C_FINE = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def c_grid(X, Y, Xv, Yv):
    """Choose every system's ``C`` from a grid twice as fine (1-64, factor 2)."""
    from skvidsage import VidSageEmbedder

    x, xv = normalize(X), normalize(Xv)
    systems = {"raw": (x, xv), "[x, mean of 10 nearest]": (mean10(X, X, True),
                                                          mean10(X, Xv, False)),
               "SGC [x, Sx, S^2x]": (sgc(X, X, True), sgc(X, Xv, False))}
    emb = VidSageEmbedder()
    systems["VidSageEmbedder()"] = (emb.fit_transform(X), emb.transform(Xv))
    heads = {}
    for name, (Z, Zv) in systems.items():
        heads[name] = {C: head(Z, Y, C, Zv) for C in C_FINE}
        for grid in (C_GRID, C_FINE):
            tuned(f"{name}, C from {len(grid)}",
                  {(C, None): heads[name][C] for C in grid}, Yv)
    idx, sim = top(xv @ x.T, 50)
    V = weighted_vote(Y, idx, sim, 50, 10.0)
    prior = Y.mean(axis=0)
    for name in ("raw", "VidSageEmbedder()"):
        for grid in (C_GRID, C_FINE):
            lin, bayes = {}, {}
            _blends({C: heads[name][C] for C in grid}, V, prior, "k=50", lin, bayes)
            tuned(f"{name} + vote, linear, C from {len(grid)}", lin, Yv)
            tuned(f"{name} + vote, log-odds, C from {len(grid)}", bayes, Yv)


MLP_EPOCHS = (10, 20, 30, 45)
MLP_DECAY = (1e-4, 1e-3, 1e-2)


def mlp_heads(Z, Y, Zq, hidden=512, in_drop=0.2, decays=MLP_DECAY, seed=0):
    """Fit a one-hidden-layer MLP head, sigmoid per label: ``{(decay, epochs): P}``.

    Columns standardised on ``Z``; ReLU, dropout ``in_drop`` on the input and
    0.5 on the hidden layer, AdamW (lr 1e-3, batch 256, each of ``decays``
    as the weight decay); the scores of ``Zq`` after each of
    :data:`MLP_EPOCHS`, so that the epochs are chosen like ``C``.
    """
    mu, sd = Z.mean(0), Z.std(0) + 1e-6
    Zt = torch.as_tensor(((Z - mu) / sd).astype(np.float32))
    Zq = torch.as_tensor(((Zq - mu) / sd).astype(np.float32))
    Yt, out = torch.as_tensor(Y), {}
    for decay in decays:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # the layers' initial weights
        net = torch.nn.Sequential(
            torch.nn.Dropout(in_drop), torch.nn.Linear(Z.shape[1], hidden),
            torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(hidden, Y.shape[1]))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=decay)
        for epoch in range(1, max(MLP_EPOCHS) + 1):
            net.train()
            for batch in torch.randperm(len(Zt), generator=gen).split(256):
                opt.zero_grad()
                loss = F.binary_cross_entropy_with_logits(net(Zt[batch]), Yt[batch])
                loss.backward()
                opt.step()
            if epoch in MLP_EPOCHS:
                net.eval()
                with torch.no_grad():
                    out[(decay, epoch)] = torch.sigmoid(net(Zq)).numpy().astype(
                        np.float64)
    return out


def mlp_head(X, Y, Xv, Yv):
    """Score the protocol's systems with a non-linear head (an MLP) beside LR."""
    from skvidsage import VidSageEmbedder

    x, xv = normalize(X), normalize(Xv)
    raw = {C: head(x, Y, C, xv) for C in C_GRID}
    references(X, Y, Xv, Yv, raw)
    emb = VidSageEmbedder()
    systems = {"raw": (x, xv), "[x, mean of 10 nearest]": (mean10(X, X, True),
                                                          mean10(X, Xv, False)),
               "SGC [x, Sx, S^2x]": (sgc(X, X, True), sgc(X, Xv, False)),
               "VidSageEmbedder()": (emb.fit_transform(X), emb.transform(Xv))}
    Z, Zv = systems["VidSageEmbedder()"]
    tuned("VidSageEmbedder(), LR head", {(C, None): head(Z, Y, C, Zv)
                                         for C in C_GRID}, Yv)
    idx, sim = top(xv @ x.T, 50)
    V = weighted_vote(Y, idx, sim, 50, 10.0)
    prior = Y.mean(axis=0)
    lin, bayes = {}, {}
    _blends(raw, V, prior, "k=50", lin, bayes)
    tuned("raw LR + vote, log-odds", bayes, Yv)
    for name, (Z, Zv) in systems.items():
        P = {(f"decay={d:g}", f"epochs={e}"): p
             for (d, e), p in mlp_heads(Z, Y, Zv).items()}
        tuned(f"MLP head on {name}", P, Yv)
        lin, bayes = {}, {}
        _blends(P, V, prior, "k=50", lin, bayes)
        tuned(f"MLP head on {name} + vote, linear", lin, Yv)
        tuned(f"MLP head on {name} + vote, log-odds", bayes, Yv)


def fused_vote(X, Y, Xv, Yv):
    """Blend the head with the vote of neighbours by ``cos_rgb + w cos_audio``."""
    raw = {C: head(X, Y, C, Xv) for C in C_GRID}
    references(X, Y, Xv, Yv, raw)
    prior = Y.mean(axis=0)
    rgb = Xv[:, :1024] @ X[:, :1024].T
    audio = Xv[:, 1024:] @ X[:, 1024:].T
    for w in (0.0, 0.25, 0.5, 1.0):
        idx, sim = top((rgb + w * audio) / (1.0 + w), 50)
        lin, bayes = {}, {}
        for k, gamma in ((20, 5.0), (50, 10.0)):
            V = weighted_vote(Y, idx, sim, k, gamma)
            _blends(raw, V, prior, f"k={k}", lin, bayes)
        tuned(f"linear, w={w}", lin, Yv)
        tuned(f"log-odds, w={w}", bayes, Yv)


def main(argv=None):
    # commands that load their own splits, and those on the validation split
    on_files = {"retrieval": retrieval, "query-expansion": query_expansion,
                "graph-choice": graph_choice, "hop-blocks": hop_blocks,
                "transductive": transductive, "snn-graph": snn_graph,
                "mutual-ppr": mutual_ppr, "geometric-tail": geometric_tail,
                "reverse-links": reverse_links}
    on_split = {"votes": votes, "vote-space": vote_space, "grace": grace,
                "soft-vote": soft_vote, "class-weights": class_weights,
                "ensemble": ensemble, "trans-smooth": trans_smooth, "c-grid": c_grid,
                "soft-targets": soft_targets,
                "mlp-head": mlp_head}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=(*on_split, "fused-vote", *on_files))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count()))
    print(f"load: {os.getloadavg()[0]:.1f}", flush=True)
    if args.what in on_files:
        on_files[args.what](args.data)
    elif args.what == "fused-vote":
        fused_vote(*validation_split(args.data, "rgb+audio"))
    else:
        on_split[args.what](*validation_split(args.data))


if __name__ == "__main__":
    main()
