"""Approximate nearest neighbours (faiss) for the graph builder and VideoIndex.

Brute force costs ``O(n_queries * n_reference * d)``: about 95 s for a
100k-video graph on 2 cores, hours at a million. Two indexes:

* :class:`IVFIndex` (``VideoGraphBuilder(algorithm="faiss")``): faiss's
  spherical k-means cuts the reference rows into about ``sqrt(n)`` cells (an
  inverted file); a query is compared, exactly, with the rows of its
  ``n_probe`` nearest cells. The index stores only the centroids and the
  cell of each row (12 bytes a video), not the vectors: each cell's rows are
  read from the reference (an array or an ``np.memmap``) when it is scanned,
  and all the queries probing the cell are compared with them in one matrix
  product. faiss's own ``IndexIVFFlat`` scans the cells query by query (its
  search of all 100,000 clustered 1024-d rows took 23 s at 1 probe of 256
  cells, at load average 8 on 2 cores) and holds a second copy of the
  vectors (4 GB at 1M x 1024); the build here from a 1M x 1024 memmap took
  205 s in all at 1.6 GiB of RSS (``benchmarks/bench_ann_1m.py``).
* :class:`HNSWIndex` (``VideoIndex(algorithm="faiss")``): faiss's
  hierarchical navigable small-world graph, fast for single queries.

Either proposes each query's best candidates with their exact similarities;
the builder then applies its own tau / floor / cap rules to them, so the
rules are the same as brute force and only a true neighbour that the search
misses can be lost (recall in ``benchmarks/bench_ann.py``).
"""

import numpy as np
import torch

from skvidsage._blocks import row_blocks, take_rows
from skvidsage._neighbors import (
    _cosine_block,
    _pair_distance,
    exact_copies,
    float32_ceil,
    normalize_rows,
    similarity_from_cosine,
)

__all__ = [
    "FAISS_FROM",
    "HNSWIndex",
    "IVFIndex",
    "choose_algorithm",
    "faiss_available",
    "ivf_edges",
]

# "auto" uses faiss from this many reference videos. Below it brute force is
# exact and quick (5.9 s for the 14,547 YouTube-8M videos); at 50,000 x 1024
# (clustered, idle host) it took 53.5 s against 35.6 s for the IVF index at
# n_probe 8 (recall@10 1.0): only 1.5x, so brute force, exact, stays below;
# it grows as n^2, the IVF build about as n (benchmarks/bench_ann.py)
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


# k-means is trained on this many sampled rows per cell (faiss warns below 39)
_TRAIN_PER_LIST = 64
# n_probe="auto": the fewest cells probed, of 1, 2, 4, ..., whose recall of
# the exact max_degree nearest (all the candidates a query may link to)
# reaches RECALL_TARGET on _RECALL_SAMPLE reference rows. A fixed count does
# not carry over between data sets: at 8 probes, recall@10 was 0.899 on the
# 14,547 YouTube-8M videos (121 cells), and 1 probe already gave 0.969 on 1M
# clustered vectors (1,000 cells). 1,000 rows x 10 neighbours put the
# estimate's standard error near 0.003.
RECALL_TARGET = 0.95
_RECALL_SAMPLE = 1000
# query rows x cell rows compared in one product (2**25 values, 128 MiB)
_SCAN_VALUES = 2**25
# cell rows + query rows read and normalised at once (2**24 values, 64 MiB)
_GROUP_VALUES = 2**24


class IVFIndex:
    """Inverted lists over faiss k-means cells, scanned exactly.

    Build it with :meth:`build`. The index holds the ``n_lists`` unit
    centroids and the reference rows sorted by cell; the vectors stay in
    the reference array, which :meth:`search` is given.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> R = rng.standard_normal((2000, 16)).astype(np.float32)
    >>> index, _ = IVFIndex.build(R, n_probe=45, device=torch.device("cpu"))
    >>> sims, idx, dist = index.search(R[:3], R, 1, device=torch.device("cpu"))
    >>> idx.ravel().tolist() == index.search(R[:3], R, 1, exclude=False,
    ...     device=torch.device("cpu"))[1].ravel().tolist()  # self excluded
    False
    """

    def __init__(self, centroids, order, offsets, n_probe, recall=None):
        self.centroids = centroids
        self.order = order
        self.offsets = offsets
        self.n_probe = int(n_probe)
        self.recall = recall

    @classmethod
    def build(
        cls, reference, *, n_probe, device, n_lists=None, seed=0, recall_k=10
    ):
        """Train the cells on a sample of ``reference``; assign every row.

        Returns the index and each reference row's ``n_probe`` nearest cells
        (what ``fit_transform`` probes, so they are not computed twice).
        ``n_lists`` defaults to ``sqrt(n)``, which balances the cost of the
        assignment (``n * n_lists`` products) and of the scan
        (``n * n / n_lists``). ``n_probe="auto"`` takes the fewest cells, of
        1, 2, 4, ..., that find :data:`RECALL_TARGET` of the exact
        ``recall_k`` nearest others of a sample of reference rows
        (:func:`probe_recall`); the index keeps that estimate as ``recall``
        (None for a given ``n_probe``).
        """
        faiss = _import_faiss()
        n, d = reference.shape
        n_lists = max(1, round(n**0.5)) if n_lists is None else int(n_lists)
        n_lists = min(n_lists, n)
        rng = np.random.default_rng(seed)
        m = min(n, _TRAIN_PER_LIST * n_lists)
        sample = take_rows(reference, np.sort(rng.choice(n, m, replace=False)))
        sample = normalize_rows(sample, torch.device("cpu"))[0].numpy()
        kmeans = faiss.Kmeans(
            d,
            n_lists,
            niter=10,
            spherical=True,
            seed=int(seed),
            max_points_per_centroid=_TRAIN_PER_LIST,
            min_points_per_centroid=1,
        )
        kmeans.train(sample)
        del sample
        index = cls(np.ascontiguousarray(kmeans.centroids), None, None, 1)
        if n_probe == "auto":
            recall = probe_recall(index, reference, recall_k, device, rng)
            i = int(np.argmax(recall >= RECALL_TARGET))  # the last is all cells
            n_probe, index.recall = 2**i, float(recall[i])
        index.n_probe = min(int(n_probe), n_lists)
        probes = index.probe(reference, device)
        cells = probes[:, 0]
        index.order = np.argsort(cells, kind="stable").astype(np.int64)
        index.offsets = np.concatenate(
            [[0], np.cumsum(np.bincount(cells, minlength=n_lists))]
        ).astype(np.int64)
        return index, probes

    def probe(self, Q, device):
        """Return the ``n_probe`` cells of largest inner product with each row of Q.

        Returns an int64 array of shape ``(n_queries, min(n_probe, n_lists))``.
        """
        p = min(self.n_probe, len(self.centroids))
        C = torch.from_numpy(self.centroids).to(device)
        out = np.empty((Q.shape[0], p), dtype=np.int64)
        with torch.inference_mode():
            for start, stop, block in row_blocks(Q):
                Qn, _ = normalize_rows(block, device)
                out[start:stop] = torch.topk(Qn @ C.T, p, dim=1)[1].cpu().numpy()
        return out

    def search(self, Q, R, k, *, probes=None, exclude=True, device):
        """Exact ``k`` best references of each query among its probed cells.

        Parameters
        ----------
        Q : array-like of shape (n_queries, d)
            Query rows (not normalised; an array or an ``np.memmap``).
        R : array-like of shape (n_reference, d)
            The reference rows the index was built on.
        k : int
            Candidates per query.
        probes : ndarray of shape (n_queries, p), default=None
            Cells to scan per query; None computes them (:meth:`probe`).
        exclude : bool, default=True
            Leave out references whose raw row is identical to the query's
            (itself, or an exact copy), as brute force does.
        device : torch.device
            Where to compute.

        Returns
        -------
        sims, idx, dist : ndarray of shape (n_queries, k)
            Cosine-equivalent similarities (descending; exact ties by lower
            index), reference indices and distances of the normalised rows
            (computed directly); ``-inf``, ``-1`` and ``inf`` where fewer
            than ``k`` were found.
        """
        if probes is None:
            probes = self.probe(Q, device)
        n_q, p = probes.shape
        sims = np.full((n_q, p, k), -np.inf, dtype=np.float32)
        idx = np.full((n_q, p, k), -1, dtype=np.int64)
        dist = np.full((n_q, p, k), np.inf, dtype=np.float32)
        flat = probes.ravel()
        by_cell = np.argsort(flat, kind="stable")
        starts = np.concatenate(
            [[0], np.cumsum(np.bincount(flat, minlength=len(self.centroids)))]
        )
        with torch.inference_mode():
            for cells in self._groups(starts, max(1, _GROUP_VALUES // R.shape[1])):
                # the rows of a group of cells and of their queries are read
                # and normalised together: per-cell reads of about 1,000 rows
                # spent more time in small torch calls than in the products
                r_lo, s_lo = self.offsets[cells[0]], starts[cells[0]]
                members = self.order[r_lo : self.offsets[cells[-1] + 1]]
                slots = by_cell[s_lo : starts[cells[-1] + 1]]
                R_raw = take_rows(R, members)
                Rn, r_nonzero = normalize_rows(R_raw, device)
                Q_raw = take_rows(Q, slots // p)
                Qn, q_nonzero = normalize_rows(Q_raw, device)
                for cell in cells:
                    r0, r1 = self.offsets[cell] - r_lo, self.offsets[cell + 1] - r_lo
                    if r0 == r1:
                        continue
                    step = max(1, _SCAN_VALUES // (r1 - r0))
                    for s0 in range(starts[cell] - s_lo, starts[cell + 1] - s_lo, step):
                        s1 = min(s0 + step, starts[cell + 1] - s_lo)
                        vals, pos, d = _scan(
                            (Qn[s0:s1], q_nonzero[s0:s1], Q_raw[s0:s1]),
                            (Rn[r0:r1], r_nonzero[r0:r1], R_raw[r0:r1]),
                            k,
                            exclude,
                        )
                        q, slot, w = slots[s0:s1] // p, slots[s0:s1] % p, vals.shape[1]
                        sims[q, slot, :w] = vals
                        cols = members[r0:r1][np.maximum(pos, 0)]
                        idx[q, slot, :w] = np.where(pos >= 0, cols, -1)
                        dist[q, slot, :w] = d
        # merge the probed cells: by similarity, descending, then index
        sims, idx, dist = (a.reshape(n_q, p * k) for a in (sims, idx, dist))
        if p > 1:
            order = np.lexsort((idx, -sims), axis=-1)[:, :k]
            sims, idx, dist = (
                np.take_along_axis(a, order, axis=1) for a in (sims, idx, dist)
            )
        return sims, idx, dist

    def _groups(self, starts, limit):
        """Consecutive cells whose rows and query rows total about ``limit``."""
        group, size = [], 0
        for cell in range(len(self.centroids)):
            rows = self.offsets[cell + 1] - self.offsets[cell]
            rows += starts[cell + 1] - starts[cell]
            if group and size + rows > limit:
                yield group
                group, size = [], 0
            group.append(cell)
            size += rows
        if group:
            yield group

    def __repr__(self):
        return (
            f"IVFIndex(n_lists={len(self.centroids)}, n_probe={self.n_probe}, "
            f"n_reference={len(self.order)}"
            + ("" if self.recall is None else f", recall={self.recall:.3f}")
            + ")"
        )


def probe_recall(index, reference, k, device, rng, sample=_RECALL_SAMPLE):
    """Recall of the exact ``k`` nearest at 1, 2, 4, ... probes (up to all cells).

    For ``sample`` reference rows drawn with ``rng``: their exact ``k``
    nearest other reference rows (by cosine, one pass over ``reference`` by
    blocks), and the share of those that lie in the query's ``p`` nearest
    cells. A neighbour in a probed cell is always found (cells are scanned
    exactly), so that share is the search's recall@k at ``p`` probes.
    Returns a float array, entry ``i`` for ``2**i`` probes.
    """
    n = reference.shape[0]
    n_steps = int(np.ceil(np.log2(len(index.centroids)))) + 1
    if n < 2:  # no other row to find
        return np.ones(n_steps)
    k = max(1, min(int(k), n - 1))
    rows = np.sort(rng.choice(n, min(n, sample), replace=False))
    C = torch.from_numpy(index.centroids).to(device)
    with torch.inference_mode():
        Q, q_nonzero = normalize_rows(take_rows(reference, rows), device)
        best = torch.full((len(rows), k), -torch.inf, device=device)
        where = torch.full((len(rows), k), -1, dtype=torch.int64, device=device)
        for start, stop, block in row_blocks(reference):
            R, r_nonzero = normalize_rows(block, device)
            zero = not (q_nonzero.all() and r_nonzero.all())
            s = _cosine_block(Q, q_nonzero, R, r_nonzero, zero)  # numpy's BLAS
            own = np.flatnonzero((rows >= start) & (rows < stop))
            s[own, rows[own] - start] = -torch.inf  # not its own neighbour
            top, pos = torch.topk(s, min(k, stop - start), dim=1)
            best, keep = torch.topk(torch.cat([best, top], 1), k, dim=1)
            where = torch.gather(torch.cat([where, pos + start], 1), 1, keep)
        # each sample row's ranking of the cells, and each neighbour's cell
        rank = torch.argsort(torch.argsort(Q @ C.T, dim=1, descending=True), dim=1)
        where = where.cpu().numpy()
        needed, inverse = np.unique(where, return_inverse=True)
        cells = torch.from_numpy(index.probe(take_rows(reference, needed), device))
        cell_of = cells[:, 0].to(device)[torch.from_numpy(inverse).to(device)]
        rank_of = torch.gather(rank, 1, cell_of.reshape(where.shape)).cpu().numpy()
    return np.array([(rank_of < 2**i).mean() for i in range(n_steps)])


def _scan(queries, cell, k, exclude):
    """Top ``k`` of some queries against one cell: ``(sims, positions, dist)``.

    ``queries`` and ``cell`` are ``(normalised, nonzero, raw)`` rows. Ranked
    by similarity, descending, exact ties by lower position (the rows of a
    cell are sorted by index, so by lower index), as brute force ranks them.
    """
    (Qn, q_nonzero, Q_raw), (Rn, r_nonzero, R_raw) = queries, cell
    any_zero = not (bool(q_nonzero.all()) and bool(r_nonzero.all()))
    c = _cosine_block(Qn, q_nonzero, Rn, r_nonzero, any_zero)
    if exclude:
        rows, cols = exact_copies(c, Q_raw, R_raw)
        c[rows, cols] = -torch.inf
    m = c.shape[1]
    w = min(k, m)
    if w < m:
        vals, pos = torch.topk(c, w + 1, dim=1)
        tie = (vals[:, w - 1] == vals[:, w]).nonzero(as_tuple=True)[0]
        vals, pos = vals[:, :w], pos[:, :w]
        # ties inside the top w: by position (sort by it, then stably by value)
        order = torch.argsort(pos, dim=1)
        vals, pos = vals.gather(1, order), pos.gather(1, order)
        order = torch.sort(vals, dim=1, descending=True, stable=True)[1]
        vals, pos = vals.gather(1, order), pos.gather(1, order)
        if len(tie):  # a tie across the cut: topk's choice is arbitrary
            v, p = torch.sort(c[tie], dim=1, descending=True, stable=True)
            vals[tie], pos[tie] = v[:, :w], p[:, :w]
    else:
        vals, pos = torch.sort(c, dim=1, descending=True, stable=True)
    del c
    rows = torch.arange(len(Qn), device=Qn.device).repeat_interleave(w)
    d = _pair_distance(Qn, Rn, rows, pos.reshape(-1)).reshape(len(Qn), w)
    missing = vals == -torch.inf
    pos[missing] = -1
    d[missing] = torch.inf
    return vals.cpu().numpy(), pos.cpu().numpy(), d.cpu().numpy()


def ivf_edges(
    index, Q, R_raw, *, tau, n_neighbors, max_degree, visual_weight, probes, device
):
    """LiteVidSage links of each row of ``Q`` among its IVF candidates.

    The rule is brute force's (``_visual_links`` with a cap): the first
    ``min(max_degree, max(n_neighbors, #{g >= tau}))`` candidates by
    similarity, exact copies of the query excluded and not counted. Returns
    the CSR arrays ``indptr, indices, data`` of shape ``(n_q, n_ref)``.
    """
    sims, idx, dist = index.search(Q, R_raw, max_degree, probes=probes, device=device)
    c = torch.from_numpy(sims)
    found = (c > -torch.inf).sum(dim=1)
    g, _ = similarity_from_cosine(c)
    n_thr = (g >= float32_ceil(tau)).sum(dim=1)
    k = torch.maximum(n_thr, torch.full_like(n_thr, n_neighbors))
    k = torch.minimum(k.clamp(max=max_degree), found).numpy()
    keep = np.arange(sims.shape[1])[None, :] < k[:, None]
    rows, pos = np.nonzero(keep)
    cols, d = idx[rows, pos], dist[rows, pos]
    order = np.lexsort((cols, rows))  # by row, then column
    cols, d = cols[order], d[order]
    if visual_weight is not None:
        w = visual_weight(torch.from_numpy(d)).numpy()
    else:
        w = np.ones(len(cols), dtype=np.float32)
    indptr = np.concatenate([[0], np.cumsum(k)])
    idx_dtype = np.int32 if max(len(R_raw), indptr[-1]) < 2**31 else np.int64
    return indptr.astype(idx_dtype), cols.astype(idx_dtype), w
