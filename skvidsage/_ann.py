"""Approximate nearest neighbours for :class:`~skvidsage.VideoGraphBuilder` (faiss).

Brute force costs ``O(n_queries * n_reference * d)``: about 95 s for a
100k-video graph on 2 cores, hours at a million. :class:`IVFIndex` is faiss's
inverted-file index (``IndexIVFFlat``, inner product on the L2-normalised
rows): a query is compared with the references of its ``n_probe`` nearest of
``n_lists`` k-means cells only. It proposes each query's ``width`` best
candidates; the builder then applies its own tau / floor / cap rules to them,
so the rules are the same as brute force and only a true neighbour that the
probed cells miss can be lost (recall is measured in
``benchmarks/bench_graph.py``).
"""

import numpy as np

__all__ = ["IVFIndex", "faiss_available"]


def faiss_available():
    """Return whether ``import faiss`` works."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "algorithm='faiss' needs faiss: pip install faiss-cpu (or the "
            "skvidsage[faiss] extra); faiss-gpu is used where it is installed."
        ) from exc
    return faiss


class IVFIndex:
    """A faiss IVF-Flat inner-product index that pickles.

    Parameters
    ----------
    R : ndarray of shape (n_reference, d), float32
        L2-normalised reference rows.
    n_lists : int, default=None
        k-means cells; default ``4 * sqrt(n_reference)`` (faiss's guideline
        is 4-16 sqrt(n)), at most ``n_reference // 39`` so every cell has
        training points.
    n_probe : int, default=None
        Cells searched per query; default ``max(32, n_lists // 10)``, at most
        128 (the search cost grows with it; 1M references have 4,000 cells): on the
        14,547 YouTube-8M dev videos (373 cells) 23 probes found 94.3% of the
        exact 10-NN links, 32 found 95.8% and 64 97.9%.
    random_state : int, default=0
        Seed of the k-means.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> R = rng.standard_normal((2000, 16)).astype(np.float32)
    >>> R /= np.linalg.norm(R, axis=1, keepdims=True)
    >>> sims, idx = IVFIndex(R, random_state=0).search(R[:3], 1)
    >>> idx.ravel().tolist()
    [0, 1, 2]
    """

    def __init__(self, R, *, n_lists=None, n_probe=None, random_state=0):
        faiss = _import_faiss()
        R = np.ascontiguousarray(R, dtype=np.float32)
        n, d = R.shape
        if n_lists is None:
            n_lists = int(4 * np.sqrt(n))
        self.n_lists = int(max(1, min(n_lists, n // 39)))
        self.n_probe = int(
            min(self.n_lists, n_probe or min(128, max(32, self.n_lists // 10)))
        )
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(
            quantizer, d, self.n_lists, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = int(random_state)
        # k-means on at most 256 points per cell: faiss's own default cap
        sample = R
        if n > 256 * self.n_lists:
            rng = np.random.default_rng(random_state)
            sample = R[np.sort(rng.choice(n, 256 * self.n_lists, replace=False))]
        index.train(sample)
        index.add(R)
        index.nprobe = self.n_probe
        self._index = index

    def search(self, Q, k):
        """Return ``(similarities, indices)`` of the ``k`` best references.

        Rows are sorted by similarity, descending; where fewer than ``k``
        references lie in the probed cells the index is -1 and the
        similarity ``-inf``.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        sims, idx = self._index.search(Q, int(k))
        sims[idx < 0] = -np.inf
        return sims, idx

    def __getstate__(self):
        faiss = _import_faiss()
        state = self.__dict__.copy()
        state["_index"] = faiss.serialize_index(self._index)
        return state

    def __setstate__(self, state):
        faiss = _import_faiss()
        state = dict(state)
        state["_index"] = faiss.deserialize_index(state["_index"])
        self.__dict__.update(state)
