"""Blocked torch kernels behind :class:`skvidsage.graph.VideoGraphBuilder`.

Everything here works on one block of query rows against all reference rows
at a time, so memory is ``O(batch_size * n_reference)`` for the block plus
``O(n_queries * max_degree)`` for the edges kept; no ``n x n`` matrix is ever
formed. Each query row is handled independently of the others.

Notation: ``c`` is the cosine similarity of two L2-normalised rows, so their
Euclidean distance is ``d = sqrt(2 - 2 c)`` and the paper's visual similarity
is ``g = 1 - d``. ``g`` is a non-decreasing function of ``c`` (also after
float32 rounding), so ranking by ``c`` is ranking by ``g``.
"""

import contextlib
import contextvars

import numpy as np
import scipy.sparse as sp
import torch

from skvidsage._blocks import release

__all__ = [
    "build_edges",
    "encode_object_sets",
    "float32_ceil",
    "normalize_rows",
    "normalized_reference",
    "shared_blocks",
    "similarity_from_cosine",
    "vocabulary",
]


def float32_ceil(x):
    """Smallest float32 that is >= ``x``, so ``g32 >= x <=> g32 >= float32_ceil(x)``.

    ``x`` is first clipped to [-3, 3]: ``g`` lies in [-1, 1], so this changes
    no comparison and keeps the cast finite.
    """
    x = min(max(float(x), -3.0), 3.0)
    x32 = np.float32(x)
    if float(x32) < x:
        x32 = np.nextafter(x32, np.float32(np.inf))
    return float(x32)


def normalize_rows(X, device):
    """L2-normalise the rows of ``X`` into a new float32 tensor on ``device``.

    Rows are first divided by their largest absolute value, so large values do
    not overflow. All-zero rows stay zero (``sklearn.preprocessing.normalize``
    convention). Returns the tensor and a boolean tensor, True for non-zero
    rows.
    """
    t = torch.tensor(X, dtype=torch.float32, device=device)
    scale = t.abs().amax(dim=1)
    nonzero = scale > 0
    t.div_(torch.where(nonzero, scale, 1.0)[:, None])
    norm = torch.linalg.vector_norm(t, dim=1)
    t.div_(torch.where(nonzero, norm, 1.0)[:, None])
    return t, nonzero


def similarity_from_cosine(c):
    """Return ``(g, d)``: ``d = sqrt(max(2 - 2c, 0))`` and ``g = 1 - d``."""
    d = torch.sqrt(torch.clamp(2.0 - 2.0 * c, min=0.0))
    return 1.0 - d, d


def _cosine_block(Qb, q_nonzero, R, r_nonzero, any_zero):
    """Cosine-equivalent similarities ``c`` of a block, shape (b, n_ref).

    For unit rows ``c`` is the dot product. When a row is all-zero (it stays
    zero after normalisation) ``c`` is shifted so that ``2 - 2c`` is still the
    squared distance of the normalised rows:
    ``||q - r||^2 = m_q + m_r - 2 q.r`` with ``m = 1`` for unit and ``0`` for
    zero rows, i.e. ``c = q.r + (2 - m_q - m_r) / 2``.
    """
    if Qb.device.type == "cpu":
        # numpy's BLAS, not torch's: 0.32 s against 0.51 s for 2,459 x 10,572
        # YouTube-8M rows of 1024 (166 against 105 GFlop/s, idle 2 cores)
        c = torch.from_numpy(Qb.numpy() @ R.numpy().T)
    else:
        c = Qb @ R.T
    if any_zero:
        mq = q_nonzero.to(c.dtype)
        mr = r_nonzero.to(c.dtype)
        c += (2.0 - mq[:, None] - mr[None, :]) * 0.5
    return c


def _select_top(keys, k, top=None):
    """Per row ``i``, the ``k[i]`` columns that rank first.

    Columns rank by ``keys[0]`` descending, exact ties by ``keys[1]``
    descending, and so on, remaining ties by lower column index; the result
    depends only on each row's values (no arbitrary tie-breaking).

    Parameters
    ----------
    keys : list of Tensor of shape (m, n)
        Ranking keys, most significant first; finite.
    k : Tensor of shape (m,), int64
        How many columns to keep per row, ``0 <= k[i] <= n``.
    top : tuple of Tensor, optional
        ``torch.topk(keys[0], w)`` already computed, with
        ``w >= min(k.max() + 1, n)``.

    Returns
    -------
    rows, cols : Tensor of shape (sum(k),), int64
        The kept positions, sorted by row then column.
    """
    primary = keys[0]
    m, n = primary.shape
    device = primary.device
    kmax = int(k.max()) if m else 0
    if kmax == 0:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return empty, empty
    width = min(kmax + 1, n)
    if top is None:
        top = torch.topk(primary, width, dim=1)
    vals, idx = top[0][:, :width], top[1][:, :width]
    last = vals.gather(1, (k - 1).clamp(min=0)[:, None]).squeeze(1)
    after = vals.gather(1, k.clamp(max=width - 1)[:, None]).squeeze(1)
    # a tie across the boundary: topk's choice among the tied is arbitrary
    ambiguous = (k > 0) & (k < n) & (after == last)

    keep = torch.arange(width, device=device)[None, :] < k[:, None]
    keep &= ~ambiguous[:, None]
    r, p = keep.nonzero(as_tuple=True)
    rows, cols = [r], [idx[r, p]]

    amb = ambiguous.nonzero(as_tuple=True)[0]
    if len(amb):
        sub = [key[amb] for key in keys]
        boundary = last[amb][:, None]
        above = sub[0] > boundary
        tied = sub[0] == boundary
        need = k[amb] - above.sum(dim=1)
        if len(keys) > 1:
            rest = [torch.where(tied, key, -torch.inf) for key in sub[1:]]
            tr, tc = _select_top(rest, need)
            chosen = torch.zeros_like(tied)
            chosen[tr, tc] = True
        else:
            chosen = tied & (tied.cumsum(dim=1) <= need[:, None])
        r, c = (above | chosen).nonzero(as_tuple=True)
        rows.append(amb[r])
        cols.append(c)

    rows, cols = torch.cat(rows), torch.cat(cols)
    order = torch.argsort(rows * n + cols)
    return rows[order], cols[order]


def _jaccard_block(q_sets, q_sizes, r_sets_T, r_sizes, device):
    """Jaccard similarities of a block of query sets to all reference sets.

    ``q_sets`` (b, V) and ``r_sets_T`` (V, n_ref) are scipy sparse 0/1
    matrices over the reference vocabulary; ``q_sizes`` counts each query's
    labels including those outside the vocabulary. ``0 / 0`` is defined as 0.
    """
    inter = torch.from_numpy((q_sets @ r_sets_T).toarray()).to(device)
    union = q_sizes[:, None] + r_sizes[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1.0), 0.0)


# cosine above which a pair may be an exact copy (identical rows give 1 up to
# float32 rounding, about 1e-6 in 1024 dimensions); those few pairs are then
# compared exactly on the raw features
_COPY_COSINE = 0.999


def exact_copies(c, Q_block, R_raw):
    """Pairs ``(row, col)`` of a block whose raw feature rows are identical.

    ``c`` is the block's cosine-equivalent similarity (two zero rows have
    ``c = 1``); only pairs with ``c > 0.999`` are compared, exactly, on the
    raw float32 rows ``Q_block`` and ``R_raw``.
    """
    rows, cols = (c > _COPY_COSINE).nonzero(as_tuple=True)
    if len(rows) == 0:
        return rows, cols
    r, k = rows.cpu().numpy(), cols.cpu().numpy()
    same = np.all(Q_block[r] == R_raw[k], axis=1)
    keep = torch.from_numpy(same).to(c.device)
    return rows[keep], cols[keep]


# the last block of similarities, and normalised reference, of the builds
# inside ``shared_blocks()`` (None outside)
_SHARED = contextvars.ContextVar("skvidsage_shared_blocks", default=None)


@contextlib.contextmanager
def shared_blocks():
    """Let graph builds on the same arrays compute each block only once.

    Inside, ``build_edges`` keeps its last block of similarities (exact
    copies masked) and its normalised reference; a build on the very same
    query and reference arrays (the same objects, the same block of rows, on
    the same device) takes them instead of computing them again. The result
    is the same: each depends on those arrays only. One block is kept, so
    the memory is one block's. ``GraphSmoothingClassifier`` links a query
    block twice, for the embedder and for the label vote: the second build
    then skips the 0.45 s product of 2,459 x 11,790 YouTube-8M rows.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def normalized_reference(reference, device):
    """``normalize_rows(reference, device)``, shared inside ``shared_blocks()``."""
    memo = _SHARED.get()
    kept = None if memo is None else memo.get("reference")
    if kept is not None and kept[0] is reference and kept[1] == device:
        return kept[2]
    out = normalize_rows(reference, device)
    if memo is not None:
        memo["reference"] = (reference, device, out)
    return out


def _similarity_block(Q, rows, Qb, q_nonzero, R, R_nonzero, any_zero, R_raw):
    """Return the block's ``c`` and, with ``R_raw``, its exact copies (or None).

    ``c`` has the copies at ``-inf`` (never linked, never counted); callers
    do not modify it, so inside ``shared_blocks()`` it is kept for the next
    build on the same ``Q`` rows and ``R_raw``.
    """
    memo = _SHARED.get()
    kept = None if memo is None or R_raw is None else memo.get("block")
    if (
        kept is not None
        and kept[0] is Q
        and kept[1] is R_raw
        and kept[2] == (rows, R.device)
    ):
        return kept[3]
    c = _cosine_block(Qb, q_nonzero, R, R_nonzero, any_zero)
    copies = None
    if R_raw is not None:
        copies = exact_copies(c, Q[rows[0] : rows[1]], R_raw)
        c[copies] = -torch.inf
        if memo is not None:
            memo["block"] = (Q, R_raw, (rows, R.device), (c, copies))
    return c, copies


def build_edges(
    Q,
    R,
    *,
    R_raw=None,
    tau,
    n_neighbors,
    max_degree,
    visual_weight,
    batch_size,
    semantic=None,
    alpha=0.0,
    beta=1.0,
    index=None,
    device,
):
    """Link each row of ``Q`` to the rows of ``R``; see ``VideoGraphBuilder``.

    Parameters
    ----------
    Q : ndarray of shape (n_queries, d), float32
        Query features (not normalised).
    R : Tensor of shape (n_ref, d), float32, on ``device``
        L2-normalised reference features.
    R_raw : ndarray of shape (n_ref, d), float32, default=None
        The reference features as given. When set, a query is never linked to
        a reference row identical to its own (itself in the training graph,
        or an exact copy), and such a row does not count toward the floor or
        the cap: the next nearest takes its place. None links them like any
        other pair.
    tau : float
        Threshold on ``g``.
    n_neighbors : int
        Visual floor, already ``<= n_ref``.
    max_degree : int or None
        Cap on links per query, already ``<= n_ref``; None for no cap.
    visual_weight : callable or None
        Visual weight of a link from the distance ``d`` of its two
        normalised rows (a Tensor; see ``similarity_weight`` and
        ``rbf_weight``), or None for 1. Links are chosen with ``g`` from the
        float32 cosine; the weights of the chosen links use ``d`` recomputed
        directly from the difference of the two rows.
    batch_size : int
        Query rows per block.
    semantic : tuple or None
        ``(q_sets, q_sizes, r_sets_T, r_sizes)`` for VidSage (see
        ``_jaccard_block``; sizes as float32 ndarrays), or None for LiteVidSage.
    alpha, beta : float
        VidSage weights of the Jaccard and of the visual term.
    index : skvidsage._ann.HNSWIndex or None
        Approximate search over ``R`` (LiteVidSage with a ``max_degree``
        only): each query's links are chosen by the same rules among its
        ``max_degree + 1 + 4`` best candidates, not among all references.
    device : torch.device
        Where to compute.

    Returns
    -------
    indptr, indices, data : ndarray
        The CSR arrays, shape ``(n_queries, n_ref)``, sorted indices.
    """
    if index is not None and (semantic is not None or max_degree is None):
        raise ValueError("approximate search needs LiteVidSage and a max_degree")
    n_q, n_ref = Q.shape[0], R.shape[0]
    tau32 = float32_ceil(tau)
    R_nonzero = torch.linalg.vector_norm(R, dim=1) > 0
    any_r_zero = not bool(R_nonzero.all())
    if semantic is not None:
        q_sets, q_sizes, r_sets_T, r_sizes = semantic
        r_sizes = torch.from_numpy(r_sizes).to(device)
    counts, indices, data = [np.zeros(1, dtype=np.int64)], [], []
    for start in range(0, n_q, batch_size):
        stop = min(start + batch_size, n_q)
        Qb, q_nonzero = normalize_rows(Q[start:stop], device)
        release(Q)  # a memmap's pages, once read
        if index is not None:
            rows, cols = _candidate_links(
                index, Qb, Q[start:stop], R_raw, tau32, n_neighbors, max_degree
            )
            if visual_weight is not None:
                w = visual_weight(_pair_distance(Qb, R, rows, cols))
            else:
                w = torch.ones(len(rows), dtype=torch.float32, device=device)
            counts.append(np.bincount(rows.cpu().numpy(), minlength=stop - start))
            indices.append(cols.cpu().numpy())
            data.append(w.cpu().numpy())
            continue
        any_zero = any_r_zero or not bool(q_nonzero.all())
        c, copies = _similarity_block(
            Q, (start, stop), Qb, q_nonzero, R, R_nonzero, any_zero, R_raw
        )
        floor = torch.full(
            (stop - start,), n_neighbors, dtype=torch.int64, device=device
        )
        if R_raw is not None:
            copy_rows, copy_cols = copies
            # a row with m copies has only n_ref - m references left
            left = n_ref - torch.bincount(copy_rows, minlength=stop - start)
            floor = torch.minimum(floor, left)
        if semantic is None:
            rows, cols = _visual_links(c, tau32, floor, max_degree)
            del c
            if visual_weight is not None:
                w = visual_weight(_pair_distance(Qb, R, rows, cols))
            else:
                w = torch.ones(len(rows), dtype=torch.float32, device=device)
        else:
            jac = _jaccard_block(
                q_sets[start:stop],
                torch.from_numpy(q_sizes[start:stop]).to(device),
                r_sets_T,
                r_sizes,
                device,
            )
            if R_raw is not None:
                jac[copy_rows, copy_cols] = 0.0
            rows, cols, jac, visual = _semantic_links(
                c, jac, tau32, floor, max_degree, visual_weight, alpha, beta
            )
            del c
            if visual_weight is not None:
                s = visual_weight(_pair_distance(Qb, R, rows, cols))
                visual = visual * s
            w = alpha * jac
            w += beta * visual
        del Qb
        rows = rows.cpu().numpy()
        counts.append(np.bincount(rows, minlength=stop - start))
        indices.append(cols.cpu().numpy())
        data.append(w.cpu().numpy())
    indptr = np.cumsum(np.concatenate(counts))
    idx_dtype = np.int32 if max(n_ref, indptr[-1]) < 2**31 else np.int64
    return (
        indptr.astype(idx_dtype),
        np.concatenate(indices).astype(idx_dtype),
        np.concatenate(data),
    )


_COPY_MARGIN = 4  # extra candidates, in place of exact copies dropped


def _candidate_links(index, Qb, Q_block, R_raw, tau32, n_neighbors, max_degree):
    """Choose the visual links of a block among approximate candidates.

    The rule is brute force's (``_visual_links`` with a cap): the first
    ``min(max_degree, max(n_neighbors, #{g >= tau}))`` candidates by
    similarity, exact copies of the query excluded and not counted.
    """
    device = Qb.device
    width = max_degree + 1 + _COPY_MARGIN
    sims, idx = index.search(Qb.cpu().numpy(), width)
    if R_raw is not None:
        r, p = np.nonzero(sims > _COPY_COSINE)
        if len(r):
            same = np.all(Q_block[r] == R_raw[idx[r, p]], axis=1)
            sims[r[same], p[same]] = -np.inf
            order = np.argsort(-sims, axis=1, kind="stable")
            sims = np.take_along_axis(sims, order, axis=1)
            idx = np.take_along_axis(idx, order, axis=1)
    c = torch.from_numpy(sims).to(device)
    cols_all = torch.from_numpy(idx.astype(np.int64)).to(device)
    found = (c > -torch.inf).sum(dim=1)
    g, _ = similarity_from_cosine(c)
    n_thr = (g >= tau32).sum(dim=1)
    k = torch.maximum(n_thr, torch.full_like(n_thr, n_neighbors))
    k = torch.minimum(k.clamp(max=max_degree), found)
    keep = torch.arange(c.shape[1], device=device)[None, :] < k[:, None]
    rows, pos = keep.nonzero(as_tuple=True)
    cols = cols_all[rows, pos]
    order = torch.argsort(rows * 2**32 + cols)  # by row, then column
    return rows[order], cols[order]


def _pair_distance(Qb, R, rows, cols, max_values=2**20):
    """``||Qb[rows] - R[cols]||`` computed directly, in chunks of pairs.

    Exact to float32 rounding, unlike ``sqrt(2 - 2c)``, which loses most
    digits for near-duplicates (``c`` close to 1), e.g. a video and itself;
    and each pair's value depends on its two rows only, so a link weighs the
    same whatever block its query came in. Chunks of 2**20 values stay in
    the cache: 0.064 s for 49,180 links of 1024-d rows, against 0.28 s in
    chunks of 2**24 (the same values).
    """
    out = torch.empty(len(rows), dtype=torch.float32, device=Qb.device)
    step = max(1, max_values // max(Qb.shape[1], 1))
    for s in range(0, len(rows), step):
        diff = Qb[rows[s : s + step]] - R[cols[s : s + step]]
        out[s : s + step] = torch.linalg.vector_norm(diff, dim=1)
    return out


def similarity_weight(d):
    """Similarity weight ``(1 + g) / 2 = 1 - d / 2`` of a visual link, > 0."""
    return torch.clamp(1.0 - 0.5 * d, min=torch.finfo(torch.float32).tiny)


def rbf_weight(gamma):
    """Return the RBF (heat-kernel) weight ``exp(-gamma d^2)``, > 0, of a link.

    scikit-learn's ``LabelSpreading(kernel="rbf")`` weighs its graph so.
    """

    def weight(d):
        w = torch.exp(-gamma * d.to(torch.float64) ** 2).to(torch.float32)
        return torch.clamp(w, min=torch.finfo(torch.float32).tiny)

    return weight


def _visual_links(c, tau32, floor, max_degree):
    """LiteVidSage: link g >= tau, plus the top ``floor[i]`` of row i, capped.

    Excluded pairs have ``c = -inf``, so ``g = -inf``: below any threshold,
    ranked last, and ``floor`` leaves them out.
    """
    b, n_ref = c.shape
    if max_degree is None:
        g, _ = similarity_from_cosine(c)
        linked = g >= tau32
        del g
        if b and int(floor.max()):
            fr, fc = _select_top([c], floor)
            linked[fr, fc] = True
        return linked.nonzero(as_tuple=True)
    # The links of a row are a prefix of its columns ranked by c (then by
    # column index): the ``max(n_neighbors, #{g >= tau})`` first, capped.
    width = min(max_degree + 1, n_ref)
    top = torch.topk(c, width, dim=1)
    g_top, _ = similarity_from_cosine(top[0])
    n_thr = (g_top >= tau32).sum(dim=1)
    k = torch.maximum(n_thr, floor).clamp(max=max_degree)
    return _select_top([c], k, top)


def _semantic_links(c, jac, tau32, floor, max_degree, visual_weight, alpha, beta):
    """VidSage: ``w = alpha * Jaccard + beta * visual``, strongest kept.

    Returns the kept ``rows, cols`` with their Jaccard and visual indicator
    (float 0/1); the caller forms the weights.
    """
    b, n_ref = c.shape
    g, d = similarity_from_cosine(c)
    visual = g >= tau32
    del g
    if b and int(floor.max()):
        fr, fc = _select_top([c], floor)
        visual[fr, fc] = True
    w = alpha * jac
    if visual_weight is not None:
        w += beta * (visual * visual_weight(d))
    else:
        w += beta * visual
    del d
    candidate = w > 0
    if max_degree is None:
        rows, cols = candidate.nonzero(as_tuple=True)
    else:
        k = candidate.sum(dim=1).clamp(max=max_degree)
        del candidate
        rows, cols = _select_top([w, c], k)
    return rows, cols, jac[rows, cols], visual[rows, cols].to(torch.float32)


def encode_object_sets(object_sets, vocabulary):
    """0/1 CSR matrix (n, len(vocabulary)) of the sets, and each set's size.

    Labels outside ``vocabulary`` get no column but count in the size.
    """
    indptr = [0]
    indices = []
    for labels in object_sets:
        indices.extend(vocabulary[x] for x in labels if x in vocabulary)
        indptr.append(len(indices))
    n = len(object_sets)
    matrix = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr),
        shape=(n, len(vocabulary)),
    )
    sizes = np.fromiter((len(s) for s in object_sets), dtype=np.float32, count=n)
    return matrix, sizes


def vocabulary(object_sets):
    """Map each label seen in ``object_sets`` to a column index.

    Labels are sorted when they can be compared, else kept in first-seen order.
    """
    labels = list(dict.fromkeys(x for s in object_sets for x in s))
    try:
        labels = sorted(labels)
    except TypeError:
        pass
    return {label: i for i, label in enumerate(labels)}
