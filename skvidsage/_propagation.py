r"""Parameter-free propagation over the video graph, for reference and query rows.

One operator, used by the embedder's propagated blocks (features, SGC-style)
and by :class:`~skvidsage.GraphSmoothingClassifier` (labels and residuals,
Correct-and-Smooth-style), so that both normalise the graph the same way.

The reference (training) graph ``A`` comes from ``VideoGraphBuilder``: row
``i`` holds the links of video ``i`` to the others, without self links. A
query (unseen video) has links to the reference videos only, and no video
links to a query: so each query is propagated from the fixed reference rows
and its result depends on that row alone (inductive, row-independent).

Every row, reference or query, follows the same rule, from its own links
and the reference videos' degrees; a reference video's row is its query row
for the graph as the builder gave it. So propagating the training videos as
queries (``fit(X).transform(X)``) gives what fitting computed for them.

``symmetrize=True`` makes the *reference side* symmetric, as SGC does with
a k-NN graph: the degrees :math:`d_j` and the powers :math:`S^h X` of the
reference videos are those of :math:`\max(A, A^\top)` (a link either way,
its larger weight). Each row is still propagated over its own links only,
so training and unseen videos keep one rule. On the YouTube-8M dev split
(``mean_rgb``, all training videos, the head's ``C`` tuned on a validation
split for each, test files) the embedder scored Hit@1 0.8207 / GAP 0.8068 /
PERR 0.7474 / mAP 0.6394 with it and 0.8117 / 0.8022 / 0.7455 / 0.6288
without, against 0.8158 / 0.8078 / 0.7452 / 0.6450 for SGC proper
(training rows symmetrised too, so a training video is propagated by
another rule than an unseen one) and 0.8166 / 0.7908 / 0.7392 / 0.6315 for
the raw features (docs/results, "Ablations").

``normalization``:

- ``"symmetric"``: :math:`S = D^{-1/2} (A + I) D^{-1/2}` (GCN / SGC, Wu et
  al. 2019), with :math:`d_i = 1 + \sum_j a_{ij}` the degree of a row with
  its self loop: :math:`S_{ii} = 1 / d_i` and
  :math:`S_{ij} = a_{ij} / \sqrt{d_i d_j}`.
- ``"mean"``: :math:`S = D^{-1} A` with :math:`d_i = \sum_j a_{ij}`: the
  weighted mean of a row's neighbours, without the row itself; a row without
  links gets zeros.
"""

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["GraphOperator"]


class GraphOperator:
    """The normalised propagation operator of a reference graph.

    Parameters
    ----------
    adjacency : scipy.sparse matrix of shape (n_reference, n_reference)
        The reference graph, non-negative weights (``VideoGraphBuilder``'s
        training graph: no self links).
    normalization : {"symmetric", "mean"}
        See the module docstring.
    symmetrize : bool, default=False
        Degrees and reference powers from ``max(A, A.T)``; see the module
        docstring.
    """

    def __init__(self, adjacency, normalization, symmetrize=False):
        if normalization not in ("symmetric", "mean"):
            raise ValueError(
                f"normalization must be 'symmetric' or 'mean'; got {normalization!r}"
            )
        self.normalization = normalization
        A = sp.csr_matrix(adjacency, dtype=np.float64)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"the reference graph must be square; got {A.shape}.")
        if symmetrize:
            A = A.maximum(A.T).tocsr()
        self.n = A.shape[0]
        self.degree = self._degree(A)
        S, s_self = self.query(A)
        # the reference rows' operator, self loops included
        self.matrix = (S + sp.diags(s_self)).tocsr()

    def _degree(self, A):
        total = np.asarray(A.sum(axis=1)).ravel()
        return total + 1.0 if self.normalization == "symmetric" else total

    def query(self, adjacency, columns=None):
        """Operator rows of queries: ``(S_q, s_qq)``.

        ``S_q`` (CSR float64, the shape and structure of ``adjacency``) weighs
        the reference rows, ``s_qq`` (shape ``(n_queries,)``) the query's own
        row (its self loop; zero for ``"mean"``). Column ``c`` of
        ``adjacency`` is reference video ``columns[c]`` (default: ``c``), so a
        block of queries can be given on the columns it links to only.
        """
        A = sp.csr_matrix(adjacency, dtype=np.float64, copy=True)
        if columns is None and A.shape[1] != self.n:
            raise ValueError(
                f"the query graph links to {A.shape[1]} reference videos; the "
                f"operator has {self.n}."
            )
        degree = self.degree if columns is None else self.degree[columns]
        d_q = self._degree(A)
        rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
        if self.normalization == "symmetric":
            A.data /= np.sqrt(d_q[rows] * degree[A.indices])
            return A, 1.0 / d_q
        A.data /= d_q[rows]  # d_q > 0 on every row that has a link
        return A, np.zeros(A.shape[0])

    def reference_powers(self, X, hops, dtype=np.float64, block=32):
        """``[S X, S^2 X, ..., S^hops X]`` over the reference rows.

        Computed in float64 by blocks of ``block`` columns (a column of
        ``S X`` depends on that column of ``X`` alone, and each entry is
        summed in the same order, so the result is the same as at once) and
        stored as ``dtype``: the float64 temporaries are two ``n x block``
        arrays (512 MB at 1M rows) instead of ``hops`` copies of ``X`` (2 GB
        each at 1M x 256).
        """
        X = np.asarray(X)
        out = [np.empty(X.shape, dtype=dtype) for _ in range(hops)]
        for start in range(0, X.shape[1], block):
            current = np.asarray(X[:, start : start + block], dtype=np.float64)
            for power in out:
                current = self.matrix @ current
                power[:, start : start + block] = current
        return out

    def query_powers(self, adjacency, x, reference_powers, columns=None):
        r"""Return the same powers for query rows, from the reference rows' powers.

        ``reference_powers`` is ``[X_ref, S X_ref, ..., S^(hops-1) X_ref]``;
        the query's own row enters through its self loop:
        :math:`(S^h x)_q = s_{qq} (S^{h-1} x)_q + \sum_j S_{qj} (S^{h-1} X)_j`.
        ``columns`` as in :meth:`query` (the reference rows given are then
        those columns' only).
        """
        S_q, s_qq = self.query(adjacency, columns=columns)
        # in the dtype of the reference rows: a float32 product reads them as
        # they are (a float64 one first copies them: 0.20 against 0.44 s for
        # 2,459 YouTube-8M queries on 11,790 x 1024 rows); either sums each
        # row's links in its own order, so a row's result does not depend on
        # the other rows
        dtype = np.result_type(*reference_powers) if reference_powers else np.float64
        S_q, s_qq = S_q.astype(dtype, copy=False), s_qq.astype(dtype)[:, None]
        out, current = [], np.asarray(x, dtype=dtype)
        for ref in reference_powers:
            current = S_q @ ref + s_qq * current
            out.append(current)
        return out


def label_propagation(operator, Y, *, alpha, n_layers, device):
    r"""Smooth the reference rows' labels over the reference graph.

    :math:`Y^{(l)} = \alpha S Y^{(l-1)} + (1 - \alpha) Y`, clamped to
    [0, 1], ``n_layers`` times, with PyG's ``LabelPropagation`` (Zhu &
    Ghahramani 2002; the smoothing step of Correct-and-Smooth).
    """
    from torch_geometric.nn.models import LabelPropagation

    y = torch.tensor(np.asarray(Y), dtype=torch.float32, device=device)
    if n_layers == 0:
        return y.cpu().numpy()
    S = operator.matrix.tocoo()  # message j -> i weighs S[i, j]
    edge_index = torch.tensor(np.vstack([S.col, S.row]), dtype=torch.int64)
    edge_weight = torch.tensor(S.data, dtype=torch.float32)
    lp = LabelPropagation(num_layers=n_layers, alpha=alpha)
    out = lp(y, edge_index.to(device), edge_weight=edge_weight.to(device))
    return out.cpu().numpy()
