"""Retrieval of similar videos ("more like this"): :class:`VideoIndex`.

Matching a new video to a catalogue is a nearest-neighbour search in some
video representation. :class:`VideoIndex` wraps any transformer (a
:class:`~skvidsage.VidSageEmbedder`, a Pipeline, or none: the features
themselves), keeps the catalogue's L2-normalised representation, and answers
``kneighbors`` in scikit-learn's convention. The search is the graph
builder's: exact blocked torch products for small catalogues, a faiss HNSW
index (:mod:`skvidsage._ann`) from the same catalogue size at which
:class:`~skvidsage.VideoGraphBuilder` switches to it.
"""

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skvidsage._ann import HNSWIndex, choose_algorithm
from skvidsage._checks import warn_zero_rows_at_caller
from skvidsage._device import DeviceStateMixin, resolve_device, usable_device
from skvidsage._neighbors import _select_top, normalize_rows
from skvidsage.containers import VideoGraph
from skvidsage.graph import _AUTO_BLOCK_VALUES

__all__ = ["VideoIndex"]

_FAISS_BATCH = 8192  # query rows per faiss call: its memory does not grow with n
_PAIR_VALUES = 2**24  # float32 values gathered at once to recompute distances


def _blocks_of(transformer):
    """Return the ``blocks_`` of a fitted transformer, looking through wrappers.

    A :class:`~sklearn.frozen.FrozenEstimator` is looked into, and a
    Pipeline's last step; None where no step says how its output is made of
    blocks.
    """
    est = transformer
    while True:
        if isinstance(est, FrozenEstimator):
            est = est.estimator
        elif isinstance(est, Pipeline):
            est = est.steps[-1][1]
        else:
            break
    blocks = getattr(est, "blocks_", None)
    return dict(blocks) if blocks else None


def _unit(Z, blocks):
    """L2-normalise each block of ``Z``, then divide by sqrt(number of blocks).

    Returns the normalised rows (float32, C-contiguous) and, per row, the
    number of its blocks that are not all zero (they stay zero).
    """
    cpu = torch.device("cpu")
    if blocks is None:
        t, nonzero = normalize_rows(Z, cpu)
        return t.numpy(), nonzero.numpy().astype(np.int64)
    out = np.empty(Z.shape, dtype=np.float32)
    filled = np.zeros(Z.shape[0], dtype=np.int64)
    for columns in blocks.values():
        t, nonzero = normalize_rows(np.ascontiguousarray(Z[:, columns]), cpu)
        out[:, columns] = t.numpy()
        filled += nonzero.numpy()
    out /= np.float32(math.sqrt(len(blocks)))
    return out, filled


def _exact_search(Q, R, shift, k, *, self_rows, batch_size, device):
    """Return the indices of the ``k`` nearest rows of ``R`` to each row of ``Q``.

    ``Q`` (ndarray) and ``R`` (Tensor on ``device``) are normalised rows;
    ``shift`` (Tensor or None) is ``(1 - |r|^2) / 2`` per reference, which
    makes ``q.r + shift`` rank references by Euclidean distance also where a
    row is not of unit length. ``self_rows[i]``, when given, is never
    returned for query ``i``. Ties go to the lower index.
    """
    out = np.empty((Q.shape[0], k), dtype=np.int64)
    for start in range(0, Q.shape[0], batch_size):
        stop = min(start + batch_size, Q.shape[0])
        c = torch.from_numpy(Q[start:stop]).to(device) @ R.T
        if shift is not None:
            c += shift
        if self_rows is not None:
            own = torch.from_numpy(self_rows[start:stop]).to(device)
            c[torch.arange(stop - start, device=device), own] = -torch.inf
        _, cols = _select_top([c], torch.full((stop - start,), k, device=device))
        del c
        out[start:stop] = cols.view(stop - start, k).cpu().numpy()
    return out


def _faiss_search(index, Q, k, *, self_rows):
    """As :func:`_exact_search`, with the faiss index; -1 where none was found."""
    width = k + (self_rows is not None)
    out = np.empty((Q.shape[0], k), dtype=np.int64)
    for start in range(0, Q.shape[0], _FAISS_BATCH):
        stop = min(start + _FAISS_BATCH, Q.shape[0])
        _, idx = index.search(Q[start:stop], width)
        if self_rows is not None:
            # drop the query itself where it was found, else the last candidate
            is_self = idx == self_rows[start:stop, None]
            drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), width - 1)
            keep = np.ones(idx.shape, dtype=bool)
            keep[np.arange(stop - start), drop] = False
            idx = idx[keep].reshape(stop - start, k)
        out[start:stop] = idx
    return out


def _sorted_by_distance(Q, E, idx):
    """Distances ``||Q[i] - E[idx[i, j]]||`` and both arrays sorted by them.

    The distances are computed from the rows' difference, in float64 and
    rounded to float32: exact to float32 rounding also for near-duplicates
    (unlike ``sqrt(2 - 2 cos)``), and the same for two identical catalogue
    rows wherever they sit (a float32 sum rounds by position). Each row is
    sorted by distance, ties by the lower index.
    """
    n_q, k = idx.shape
    dist = np.empty((n_q, k), dtype=np.float32)
    step = max(1, _PAIR_VALUES // max(k * E.shape[1], 1))
    for s in range(0, n_q, step):
        diff = E[idx[s : s + step]].astype(np.float64)
        diff -= Q[s : s + step, None, :]
        dist[s : s + step] = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
    order = np.lexsort((idx, dist), axis=1)
    return (
        np.take_along_axis(dist, order, axis=1),
        np.take_along_axis(idx, order, axis=1),
    )


class VideoIndex(DeviceStateMixin, BaseEstimator):
    r"""Search a catalogue of videos for the nearest ones to any query videos.

    ``fit(X)`` fits a clone of ``transformer`` on the catalogue videos ``X``
    (as a meta-estimator does) and keeps their representation, L2-normalised;
    ``kneighbors(X_query)`` maps the queries through the fitted transformer,
    seen or unseen videos alike (a :class:`~skvidsage.VidSageEmbedder` embeds
    an unseen video inductively, through its links to its training videos),
    and returns the distances and indices of their nearest catalogue videos,
    in the convention of :meth:`sklearn.neighbors.NearestNeighbors.kneighbors`.
    ``kneighbors()`` without queries searches for each catalogue video's
    nearest *other* ones. To search with an already fitted model, pass
    ``FrozenEstimator(model)`` (:class:`sklearn.frozen.FrozenEstimator`):
    ``fit`` then only indexes the catalogue, which may hold other videos than
    those the model was trained on.

    **Distance.** The Euclidean distance of the normalised rows,
    :math:`\lVert \hat z_q - \hat z_c \rVert_2 \in [0, 2]`, so
    :math:`1 - d^2 / 2` is their cosine similarity. With
    ``normalize="blocks"`` each block of the representation (the blocks
    :math:`x, Sx, S^2 x, \dots` of a VidSageEmbedder, its ``blocks_``) is
    L2-normalised on its own and the row divided by
    :math:`\sqrt{\text{n\_blocks}}`: the row is still of unit length and
    :math:`1 - d^2 / 2` is the *mean of the blocks' cosines*, each block
    weighing the same. Under ``"rows"`` the whole row is normalised at once,
    and the input block :math:`x` (of unit length) outweighs the propagated
    blocks, which averaging shrinks. On YouTube-8M ``"blocks"`` retrieved
    better (:doc:`/results`, "Retrieval"), so ``"auto"`` takes it whenever
    the transformer has blocks.

    An all-zero representation row (or block) stays zero (warned with a
    :class:`~skvidsage.ZeroRowWarning`): such a row is at distance 1 from
    every unit row.

    Parameters
    ----------
    transformer : estimator or None, default=None
        Maps videos to their representation (``fit`` and ``transform``,
        returning a 2-D array): a VidSageEmbedder, a Pipeline (e.g.
        featurizer, graph and embedder), any scikit-learn transformer, or a
        :class:`~sklearn.frozen.FrozenEstimator` around a fitted one. None:
        the input features themselves.
    n_neighbors : int, default=10
        Neighbours returned by :meth:`kneighbors` when it is not given.
    normalize : {"auto", "rows", "blocks"}, default="auto"
        ``"rows"``: L2-normalise each row. ``"blocks"``: each block of the
        transformer's ``blocks_`` (of the Pipeline's last step, or of the
        frozen estimator) on its own, as above. ``"auto"``: ``"blocks"``
        when the transformer has ``blocks_``, else ``"rows"``.
    algorithm : {"auto", "brute", "faiss"}, default="auto"
        ``"brute"``: exact, every query against every catalogue video, in
        blocks. ``"faiss"``: a faiss HNSW index (inner product on the
        normalised rows) built in ``fit``; the hits are those its graph walk
        finds, with exact distances. ``"auto"``: faiss from 50,000 catalogue
        videos when it is installed, the rule of
        :class:`~skvidsage.VideoGraphBuilder`, else brute force.
    ef_search : int, default=128
        Search effort of the faiss index (its ``efSearch``, at least the
        number of neighbours asked for): more finds more of the exact
        neighbours, slower. Read at search time, so ``set_params`` changes
        it on a fitted index.
    m : int, default=32
        Links per node of the HNSW graph (faiss's ``M``). More links cost
        memory (about ``8 * m`` bytes a video) and build time, and keep
        clustered catalogues connected: on 1,000,000 clustered 256-d vectors
        ``m=32, ef_construction=80`` found 99.95% of the exact 10 nearest
        neighbours at ``ef_search=128`` (0.74 ms a query), the graph
        builder's ``m=16, ef_construction=40`` 84% (:doc:`/results`,
        "Retrieval").
    ef_construction : int, default=80
        Effort when a video is added to the HNSW graph (faiss's
        ``efConstruction``): more builds a better graph, slower.
    batch_size : int or "auto", default="auto"
        Query rows per block. The exact search holds ``batch_size *
        n_catalogue`` float32 similarities at a time (plus a top-k);
        ``"auto"`` picks about 2**25 values (128 MiB), e.g. 33 queries per
        block for 1,000,000 catalogue videos, so memory stays bounded however
        large the catalogue is. The faiss search takes 8,192 queries per call
        (``"auto"``) or ``batch_size``; its memory does not grow with the
        catalogue.
    device : str or torch.device, default="auto"
        Torch device of the exact search; ``"auto"`` uses CUDA when
        available. The faiss search runs on the CPU.

    Attributes
    ----------
    transformer_ : estimator or None
        The fitted clone of ``transformer`` (a FrozenEstimator is used as
        it is).
    embedding_ : ndarray of shape (n_catalogue, n_dims), float32
        The catalogue's normalised representation; ``kneighbors()`` uses it
        for the catalogue's own queries.
    blocks_ : dict of str to slice or None
        The blocks normalised one by one (``normalize_ == "blocks"``), else
        None.
    normalize_ : str
        ``"rows"`` or ``"blocks"``: the normalisation in use.
    algorithm_ : str
        ``"brute"`` or ``"faiss"``: the search in use.
    index_ : object or None
        The faiss index over ``embedding_`` (``algorithm_ == "faiss"``).
    n_samples_fit_ : int
        Number of catalogue videos.
    device_ : torch.device
        The resolved ``device``.
    n_features_in_ : int
        Number of input features, when the input (or the transformer's) has
        them.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the input columns, when ``fit`` saw named columns.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : The same convention, any metric.
    VidSageEmbedder : The representation the index is meant for.
    VideoGraphBuilder : The same search back-ends, to build a graph.

    Notes
    -----
    Why an estimator around the transformer rather than a
    ``VidSageEmbedder.kneighbors`` method: any representation (raw features,
    a reference, a Pipeline from video files to embeddings) is searched by
    the same code and conventions, so they compare fairly; the catalogue
    need not be the training set (fit the model once, index a larger
    catalogue through a FrozenEstimator); and the search state (normalised
    catalogue, faiss index) stays apart from the model, as
    :class:`~sklearn.neighbors.NearestNeighbors` stays apart from the
    transformers it is used with.

    The exact search costs one ``(batch_size, d) @ (d, n_catalogue)``
    product and a top-k per block; ties in the float32 similarity go to the
    lower index. Distances are then recomputed from each pair's difference
    (float32), and the hits sorted by them. Memory is ``O(n_catalogue * d)``
    for the catalogue (twice with faiss, whose index holds its own copy)
    plus ``O(batch_size * n_catalogue)`` for a block.

    With faiss, a catalogue row that is not of unit length (a zero row, or a
    row with a zero block) is ranked by its inner product rather than by
    distance, and a query whose search finds fewer than ``n_neighbors``
    videos (possible in tiny catalogues) is searched again exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import VideoIndex
    >>> X = np.array([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 1.0]])
    >>> index = VideoIndex(n_neighbors=1).fit(X)
    >>> dist, idx = index.kneighbors([[1.0, 0.1]])
    >>> idx
    array([[0]])
    >>> index.kneighbors(return_distance=False).ravel()  # itself excluded
    array([1, 0, 3, 2])

    With an embedder, on unseen videos:

    >>> from skvidsage import VidSageEmbedder
    >>> rng = np.random.RandomState(0)
    >>> catalogue, queries = rng.rand(50, 8), rng.rand(3, 8)
    >>> index = VideoIndex(VidSageEmbedder(), n_neighbors=5).fit(catalogue)
    >>> index.normalize_, list(index.blocks_)
    ('blocks', ['x', 'hop1', 'hop2'])
    >>> dist, idx = index.kneighbors(queries)
    >>> idx.shape, bool(np.all(np.diff(dist, axis=1) >= 0))
    ((3, 5), True)
    """

    _parameter_constraints: dict = {
        "transformer": [HasMethods(["fit", "transform"]), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions({"auto", "rows", "blocks"})],
        "algorithm": [StrOptions({"auto", "brute", "faiss"})],
        "ef_search": [Interval(Integral, 1, None, closed="left")],
        "m": [Interval(Integral, 2, None, closed="left")],
        "ef_construction": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        transformer=None,
        *,
        n_neighbors=10,
        normalize="auto",
        algorithm="auto",
        ef_search=128,
        m=32,
        ef_construction=80,
        batch_size="auto",
        device="auto",
    ):
        self.transformer = transformer
        self.n_neighbors = n_neighbors
        self.normalize = normalize
        self.algorithm = algorithm
        self.ef_search = ef_search
        self.m = m
        self.ef_construction = ef_construction
        self.batch_size = batch_size
        self.device = device

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the transformer on the catalogue videos and index them.

        Parameters
        ----------
        X : array-like of shape (n_catalogue, n_features)
            The catalogue videos: anything the transformer takes (e.g. file
            paths for a Pipeline that starts with a
            :class:`~skvidsage.VideoFeaturizer`).
        y : None or array-like
            Passed to the transformer's ``fit`` (VidSageEmbedder ignores it).

        Returns
        -------
        self : VideoIndex
            The fitted index.
        """
        if self.transformer is None:
            Z = validate_data(self, X, dtype=np.float32)
            self.transformer_ = None
        else:
            est = clone(self.transformer)
            if hasattr(est, "fit_transform"):
                Z = est.fit_transform(X, y)
            else:  # a FrozenEstimator: fitted already
                Z = est.fit(X, y).transform(X)
            self.transformer_ = est
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(est, name):
                    setattr(self, name, getattr(est, name))
        Z = self._representation(Z)
        self.normalize_, self.blocks_ = self._resolve_normalize(Z.shape[1])
        self._warn_zero_rows(Z, "fit")
        self.embedding_, filled = _unit(Z, self.blocks_)
        n_blocks = 1 if self.blocks_ is None else len(self.blocks_)
        # (1 - |r|^2) / 2 for rows with a zero block, exactly; None if none
        self._shift = None
        if np.any(filled < n_blocks):
            self._shift = (0.5 * (1.0 - filled / n_blocks)).astype(np.float32)
        self.n_samples_fit_ = Z.shape[0]
        self.device_ = resolve_device(self.device)
        # the one rule of every search over reference videos (skvidsage._ann)
        self.algorithm_ = choose_algorithm(
            self.algorithm, Z.shape[0], semantic=False, max_degree=self.n_neighbors
        )
        self.index_ = None
        if self.algorithm_ == "faiss":
            self.index_ = HNSWIndex(
                self.embedding_,
                ef_search=self.ef_search,
                m=self.m,
                ef_construction=self.ef_construction,
            )
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the nearest catalogue videos of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            The query videos, seen or unseen (anything the transformer
            takes, e.g. file paths). None: the catalogue videos
            themselves, each excluded from its own neighbours (another video
            with identical features is not excluded: it is returned first, at
            distance 0).
        n_neighbors : int, default=None
            Neighbours per query (None: ``self.n_neighbors``); at most the
            catalogue size, less one when ``X`` is None.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), float32
            Euclidean distances of the normalised representations (see the
            class description), ascending along each row. Only with
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors), int64
            Indices of the nearest catalogue videos, in ``fit``'s order.
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"Expected n_neighbors > 0 (an int). Got {k!r}")
        k = int(k)
        n = self.n_samples_fit_
        if X is None:
            Q, self_rows = self.embedding_, np.arange(n)
            if k > n - 1:
                raise ValueError(
                    f"Expected n_neighbors < n_samples_fit, but n_neighbors = {k}, "
                    f"n_samples_fit = {n}, n_samples = {n}: a catalogue video "
                    "is not its own neighbour."
                )
        else:
            Q, self_rows = self._queries(X), None
            if k > n:
                raise ValueError(
                    f"Expected n_neighbors <= n_samples_fit, but n_neighbors = "
                    f"{k}, n_samples_fit = {n}, n_samples = {Q.shape[0]}"
                )
        idx = self._search(Q, k, self_rows)
        dist, idx = _sorted_by_distance(Q, self.embedding_, idx)
        return (dist, idx) if return_distance else idx

    # --------------------------------------------------------------- helpers
    def _search(self, Q, k, self_rows):
        if self.algorithm_ == "faiss":
            # read at search time: set_params(ef_search=...) needs no refit
            self.index_.ef_search = int(self.ef_search)
            idx = _faiss_search(self.index_, Q, k, self_rows=self_rows)
            missed = np.flatnonzero((idx < 0).any(axis=1))
            if len(missed) == 0:
                return idx
            exact = self._exact(
                Q[missed], k, None if self_rows is None else self_rows[missed]
            )
            idx[missed] = exact
            return idx
        return self._exact(Q, k, self_rows)

    def _exact(self, Q, k, self_rows):
        n = self.n_samples_fit_
        batch_size = self.batch_size
        if batch_size == "auto":
            batch_size = max(1, _AUTO_BLOCK_VALUES // n)
        device = usable_device(self.device_, type(self).__name__)
        with torch.inference_mode():
            R = torch.from_numpy(self.embedding_).to(device)
            shift = None if self._shift is None else torch.from_numpy(self._shift)
            return _exact_search(
                Q,
                R,
                None if shift is None else shift.to(device),
                k,
                self_rows=self_rows,
                batch_size=batch_size,
                device=device,
            )

    def _queries(self, X):
        """Return the normalised representation of the query videos ``X``."""
        if self.transformer_ is None:
            Z = validate_data(self, X, dtype=np.float32, reset=False)
        else:
            Z = self.transformer_.transform(X)
        Z = self._representation(Z, expected=self.embedding_.shape[1])
        self._warn_zero_rows(Z, "kneighbors")
        return _unit(Z, self.blocks_)[0]

    def _representation(self, Z, expected=None):
        """Check a representation: a finite 2-D float32 array."""
        if isinstance(Z, VideoGraph):
            raise TypeError(
                "The transformer returned a VideoGraph; VideoIndex needs one "
                "row of numbers per video. End the transformer with a "
                "VidSageEmbedder (e.g. make_pipeline(VideoGraphBuilder(), "
                "VidSageEmbedder())), or pass the features themselves."
            )
        Z = check_array(Z, dtype=np.float32, order="C", accept_sparse=False)
        if expected is not None and Z.shape[1] != expected:
            raise ValueError(
                f"The representation of the queries has {Z.shape[1]} columns, "
                f"the catalogue's {expected}."
            )
        return Z

    def _resolve_normalize(self, width):
        blocks = None
        if self.transformer_ is not None:
            blocks = _blocks_of(self.transformer_)
        if self.normalize == "rows" or (self.normalize == "auto" and blocks is None):
            return "rows", None
        if blocks is None:
            raise ValueError(
                "normalize='blocks' needs a transformer with blocks_ (a "
                "VidSageEmbedder, or a Pipeline or FrozenEstimator ending with "
                "one); use normalize='rows'."
            )
        covered = sorted((s.start, s.stop) for s in blocks.values())
        ends = [0] + [stop for _, stop in covered]
        if [start for start, _ in covered] != ends[:-1] or ends[-1] != width:
            raise ValueError(
                f"The transformer's blocks_ {blocks} do not cover its "
                f"{width} output columns one after another."
            )
        return "blocks", blocks

    def _warn_zero_rows(self, Z, method):
        warn_zero_rows_at_caller(
            Z, owner=f"{type(self).__name__}.{method}", name="the representation"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.transformer is not None:
            tags.input_tags = get_tags(self.transformer).input_tags
        tags.non_deterministic = False
        return tags
