"""Approximate nearest neighbours for :class:`~skvidsage.VideoGraphBuilder` (faiss).

Brute force costs ``O(n_queries * n_reference * d)``: about 95 s for a
100k-video graph on 2 cores, hours at a million. :class:`HNSWIndex` is faiss's
hierarchical navigable small-world graph (``IndexHNSWFlat``, inner product on
the L2-normalised rows). It proposes each query's best candidates, with their
exact similarities; the builder then applies its own tau / floor / cap rules
to them, so the rules are the same as brute force and only a true neighbour
that the search misses can be lost (recall is measured in
``benchmarks/bench_ann.py``).
"""

import numpy as np

__all__ = ["FAISS_FROM", "HNSWIndex", "choose_algorithm", "faiss_available"]

# "auto" uses faiss from this many reference videos. Below it brute force is
# exact and quick (5.9 s for the 14,547 YouTube-8M videos, where HNSW took
# 2.4 s at 98.5% recall@10); at 50,000 x 1024 it took 127 s against about
# 25 s for HNSW (99.4%), and it grows as n^2 (benchmarks/bench_ann.py)
FAISS_FROM = 50_000


def faiss_available():
    """Return whether ``import faiss`` works."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def choose_algorithm(algorithm, n_reference, *, semantic, max_degree):
    """Resolve ``"auto"`` | ``"brute"`` | ``"faiss"`` for a reference set.

    The one rule for every search over reference videos: faiss needs a
    bounded number of candidates per query (``max_degree``) and no object
    sets (VidSage's Jaccard links need every pair); "auto" takes it from
    :data:`FAISS_FROM` references when it is installed.
    """
    if algorithm == "brute":
        return "brute"
    if algorithm == "faiss":
        if semantic or max_degree is None:
            raise ValueError(
                "algorithm='faiss' needs max_degree (the candidates searched "
                "per query) and no object sets (the Jaccard links of VidSage "
                f"need every pair); got max_degree={max_degree}"
                f"{' and object sets' if semantic else ''}. Use "
                "algorithm='brute' or 'auto'."
            )
        _import_faiss()
        return "faiss"
    use = (
        n_reference >= FAISS_FROM
        and not semantic
        and max_degree is not None
        and faiss_available()
    )
    return "faiss" if use else "brute"


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "algorithm='faiss' needs faiss: pip install faiss-cpu (or the "
            "skvidsage[faiss] extra); faiss-gpu is used where it is installed."
        ) from exc
    return faiss


class HNSWIndex:
    """A faiss HNSW inner-product index (flat storage) that pickles.

    Parameters
    ----------
    R : ndarray of shape (n_reference, d), float32
        L2-normalised reference rows.
    ef_search : int, default=64
        Candidates kept while searching (faiss's ``efSearch``, at least the
        number asked for): more is slower and finds more true neighbours.
    m : int, default=16
        Links per node of the HNSW graph.
    ef_construction : int, default=40
        ``efConstruction`` of faiss: effort when adding a node.

    Notes
    -----
    Measured on the 14,547 YouTube-8M dev videos (1024-d ``mean_rgb``, 1,000
    sampled queries, 2 loaded cores): ``m=16, ef_search=64`` found 98.4% of
    the exact 10 nearest neighbours, in 3.5 s to build and 2.9 s to search
    every video; ``m=32`` 99.5% in 7.3 + 10.3 s. On 50,000 clustered 1024-d
    vectors, ``m=16`` found 99.4% in 12.7 + 14.0 s, where an IVF index
    (faiss ``IndexIVFFlat``, 4 sqrt(n) lists, 10% probed) was no faster than
    brute force at 100,000 vectors.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> R = rng.standard_normal((2000, 16)).astype(np.float32)
    >>> R /= np.linalg.norm(R, axis=1, keepdims=True)
    >>> sims, idx = HNSWIndex(R).search(R[:3], 1)
    >>> idx.ravel().tolist()
    [0, 1, 2]
    """

    def __init__(self, R, *, ef_search=64, m=16, ef_construction=40):
        faiss = _import_faiss()
        R = np.ascontiguousarray(R, dtype=np.float32)
        index = faiss.IndexHNSWFlat(R.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
        index.add(R)
        self.ef_search = int(ef_search)
        self.m = int(m)
        self._index = index

    def search(self, Q, k):
        """Return ``(similarities, indices)`` of the ``k`` best references.

        Rows are sorted by similarity, descending; where fewer than ``k``
        references were found the index is -1 and the similarity ``-inf``.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        self._index.hnsw.efSearch = max(self.ef_search, int(k))
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
