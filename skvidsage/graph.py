"""The video graph of VidSage / LiteVidSage (paper Section 3.3).

:class:`VideoGraphBuilder` links videos that look alike (visual edges) and,
when object labels are known, videos that show the same objects (semantic
edges). ``fit`` keeps the reference (training) videos; ``transform`` links any
videos to them, as scikit-learn's ``KNeighborsTransformer`` does. The
computation is blocked over query rows (see :mod:`skvidsage._neighbors`): no
``n x n`` matrix is ever formed.
"""

from numbers import Integral, Real

import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from skvidsage._ann import IVFIndex, choose_algorithm, ivf_edges
from skvidsage._blocks import release
from skvidsage._device import DeviceStateMixin, resolve_device, usable_device
from skvidsage._graph_input import (
    similarity_features,
    validate_features,
    warn_zero_similarity_rows,
)
from skvidsage._neighbors import (
    build_edges,
    encode_object_sets,
    normalized_reference,
    rbf_weight,
    similarity_weight,
    vocabulary,
)
from skvidsage._tau import learn_tau
from skvidsage.containers import VideoFeatures, VideoGraph

__all__ = ["VideoGraphBuilder"]

# "auto" batch size: query rows per block such that the block of similarities
# holds about this many float32 values (2**25 values = 128 MiB).
_AUTO_BLOCK_VALUES = 2**25
# reference videos whose k-th neighbour estimates tau="auto" (evenly spaced)


def _split_input(X):
    """Return ``(features, object_sets)`` from a VideoFeatures or an array."""
    if isinstance(X, VideoFeatures):
        return X.features, X.object_sets
    return X, None


# auto_wrap_output_keys=None: the output is a VideoGraph, never wrapped in a
# DataFrame, whatever set_output or transform_output say
class VideoGraphBuilder(
    DeviceStateMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    r"""Link videos by visual similarity and shared objects (VidSage graph).

    ``fit(X)`` keeps the reference videos (the training set); ``transform(X)``
    links each row of ``X`` to the reference videos and returns a
    :class:`~skvidsage.containers.VideoGraph` whose ``adjacency`` has shape
    ``(n_queries, n_reference)``, like scikit-learn's
    ``KNeighborsTransformer``; ``fit_transform(X)`` equals
    ``fit(X).transform(X)``.

    **Visual similarity** (paper 3.3, LiteVidSage). With :math:`f_u` the
    L2-normalised features of video :math:`u`,

    .. math:: g(u, v) = 1 - \lVert f_u - f_v \rVert_2 = 1 - \sqrt{2 - 2\cos(u, v)}
              \in [1 - 2, 1] = [-1, 1].

    Reference video :math:`v` is a *visual link* of query :math:`u` when
    :math:`g(u, v) \ge \tau`, or when :math:`v` is among the ``n_neighbors``
    reference videos with the largest :math:`g(u, v)` (the paper's inference
    rule, "connect the video's node to its nearest neighbours"; ties go to the
    lower reference index). This floor guarantees every query
    ``min(n_neighbors, n_reference)`` links even where the threshold alone
    leaves it isolated, as it does for most YouTube-8M videos at
    :math:`\tau = 0.3`. A visual link weighs :math:`s(u, v) = 1`
    (``visual_weight="binary"``, the paper's "weight one") or
    :math:`s(u, v) = (1 + g(u, v)) / 2 = 1 - \lVert f_u - f_v \rVert / 2 \in
    (0, 1]` (``"similarity"``; an exactly antipodal pair gets the smallest
    positive float32 instead of 0, so it stays a link) or the RBF (heat
    kernel) weight :math:`s(u, v) = \exp(-\gamma \lVert f_u - f_v \rVert^2)
    = \exp(-2 \gamma (1 - \cos(u, v)))` (``"rbf"``, as scikit-learn's
    ``LabelSpreading``; also kept at least the smallest positive float32),
    which weighs a near neighbour far above a distant one: the label vote
    of :class:`~skvidsage.GraphSmoothingClassifier` gains from it.

    **Semantic edges** (VidSage), only when the videos come with object sets
    (a :class:`~skvidsage.containers.VideoFeatures`): with :math:`O_u` the
    labels detected in video :math:`u`,

    .. math:: w_{uv} = \alpha \frac{|O_u \cap O_v|}{|O_u \cup O_v|}
              + \beta \, \mathbb{1}[v \text{ is a visual link of } u] \, s(u, v),

    (:math:`0 / 0 = 0`: two videos without objects have Jaccard 0). Every pair
    with :math:`w_{uv} > 0` is a link: the visual links and the pairs sharing
    an object. Without object sets (LiteVidSage) a link weighs
    :math:`s(u, v)`; ``alpha`` and ``beta`` are then unused.

    **Degree cap**: a query keeps at most ``max_degree`` links, those of
    largest weight (ties: larger :math:`g`, then lower reference index). In
    LiteVidSage the links of a query are thus its ``k`` most similar reference
    videos, with ``k = min(max_degree, max(n_neighbors, #{v: g(u, v) >= tau}))``.
    In VidSage strong semantic links may push visual ones out, but a query
    still keeps at least ``min(n_neighbors, n_reference)`` links when
    ``beta > 0``.

    **Self links and exact copies**: a video is never linked to a reference
    video whose features are identical to its own. In ``fit(X).transform(X)``
    (or ``fit_transform(X)``) that is the video itself, and a duplicated
    video's copies; such a reference does not count toward ``n_neighbors``
    or ``max_degree`` either, so the next nearest takes its place (as
    scikit-learn's ``KNeighborsTransformer`` asks for one neighbour more).
    A training video and an unseen one thus get the same number of real
    neighbours, and the training graph has an empty diagonal. Identity is
    tested on the features as given (float32), not on their direction:
    ``x`` and ``2 x`` are distinct videos at :math:`g = 1`.

    All-zero feature rows have no direction; like
    ``sklearn.preprocessing.normalize`` we leave them at zero, so a zero row
    is at distance 1 (:math:`g = 0`) from every unit row and at distance 0
    from another zero row: its links say nothing about the video. ``fit``
    (for the reference videos) and ``transform`` (for the queries) warn with
    a :class:`~skvidsage.ZeroRowWarning` that names such rows, once per call
    (``fit_transform`` once in all); with ``columns``, a row counts as zero
    when its similarity columns are.

    Parameters
    ----------
    tau : float or "auto", default=0.3
        Threshold on :math:`g` for a visual link (:math:`g \ge \tau` links).
        :math:`g` lies in [-1, 1]: ``tau=0.3`` links videos within Euclidean
        distance 0.7 of each other (cosine >= 0.755); ``tau > 1``
        disables the threshold (links are then the ``n_neighbors`` nearest
        only); ``tau <= -1`` links everything (bounded by ``max_degree``).
        Useful values depend on the features (the 10th neighbour of a
        YouTube-8M video lies near :math:`g = -0.2`, a generated clip's near
        0.4). ``"auto"`` learns it in ``fit`` (``tau_``): the
        median, over the reference videos, of :math:`g` to their
        ``n_neighbors``-th nearest other reference video (estimated on up to
        2,000 evenly spaced ones), so that about half of them get more links
        than the floor and the rest the floor. Needs ``n_neighbors >= 1``.
    n_neighbors : int, default=10
        Floor: each query is linked to at least its ``n_neighbors`` nearest
        reference videos, even below ``tau`` (capped at ``n_reference``). ``0``
        keeps the pure threshold graph, where a query may have no link.
    max_degree : int or None, default=50
        Cap on the links kept per query, the strongest first; at least
        ``n_neighbors``. ``None`` keeps every link: memory is then no longer
        bounded by ``n_queries * max_degree`` (a low ``tau`` or a common object
        makes the graph dense).
    alpha : float, default=0.7
        VidSage weight of the Jaccard similarity of the object sets.
    beta : float, default=0.3
        VidSage weight of the visual link. ``beta=0`` keeps only semantic
        links (and no floor).
    visual_weight : {"binary", "similarity", "rbf"}, default="binary"
        Weight :math:`s` of a visual link: 1, :math:`(1 + g) / 2`, or
        :math:`\exp(-\gamma \lVert f_u - f_v \rVert^2)`.
    gamma : float, default=10.0
        The RBF weight's :math:`\gamma` (``visual_weight="rbf"`` only); on
        L2-normalised features a link at cosine 0.9 weighs
        :math:`e^{-2} \approx 0.14` with the default.
    columns : array-like of int, slice or None, default=None
        The feature columns the similarity is computed on (None: all). The
        paper links videos by *visual* similarity: with
        ``[mean_rgb, mean_audio]`` features, ``columns=slice(0, 1024)``
        links by the visual part while the graph's ``features`` (and so the
        embedder and the head) keep every column. On YouTube-8M, each head
        tuned, the embedding over the graph of both modalities lost 0.9-1.2
        GAP to the raw features at 2.5k-10.6k training videos; over the
        visual graph it gained 1.3-3.6 (:doc:`/results`, "Ablations").
    algorithm : {"auto", "brute", "faiss"}, default="auto"
        How candidates are searched. "brute" compares every query with every
        reference (exact). "faiss" cuts the references into about
        ``sqrt(n_reference)`` cells by faiss's spherical k-means in ``fit``
        (an inverted file, :class:`skvidsage._ann.IVFIndex`) and compares
        each query exactly with the references of its ``n_probe`` nearest
        cells: its links are chosen by the same tau / floor / cap rules among
        them, so a neighbour in a cell not probed is lost (recall in
        :doc:`/results`, "Approximate graphs"). It needs ``max_degree`` and
        no object sets (LiteVidSage). "auto" uses faiss from 50,000 reference
        videos when it is installed, the graph is LiteVidSage and
        ``max_degree`` is set, else brute force.
    n_probe : int or "auto", default="auto"
        Cells compared with each query (``algorithm="faiss"``): more find
        more true neighbours, at proportional cost. "auto": the fewest of 1,
        2, 4, ... that find 95% of the exact ``max_degree`` nearest of 1,000
        reference videos (estimate: ``index_.recall``); 8 found 0.899 of
        them on YouTube-8M, 1 found 0.969 on 1M clustered vectors.
    batch_size : int or "auto", default="auto"
        Query rows per block: a block holds ``batch_size * n_reference``
        float32 similarities (plus a few same-size temporaries). ``"auto"``
        picks about 2**25 values (128 MiB), e.g. 335 rows for 100,000
        reference videos; a quarter of that with object sets, whose Jaccard
        step holds several more block-sized temporaries. Results do not
        depend on it, up to float32 rounding of the similarities (which can
        only swap near-tied neighbours).
    device : str or torch.device, default="auto"
        Torch device of the computation; ``"auto"`` uses CUDA when available.

    Attributes
    ----------
    reference_ : ndarray of shape (n_reference, n_similarity_features), float32
        The reference videos' features as given to ``fit`` (not
        normalised), restricted to ``columns``. A float32 ``np.memmap`` is
        kept as it is (with a slice of ``columns``, a view of it), on disk.
    tau_ : float
        The threshold in use: ``tau``, or the learned one for ``"auto"``.
    object_sets_ : list of frozenset or None
        The reference videos' object labels; None without object sets.
    object_vocabulary_ : dict or None
        Maps each object label seen in ``fit`` to a column of the set
        encoding. Labels seen only at ``transform`` never intersect.
    algorithm_ : str
        "brute" or "faiss": the search in use.
    index_ : IVFIndex or None
        The cells of the reference rows (``algorithm_ == "faiss"``), with the
        probes used (``index_.n_probe``) and the recall estimate of "auto".
    device_ : torch.device
        The resolved ``device``. An estimator fitted on CUDA and unpickled (or
        used) on a machine without CUDA falls back to the CPU, with a warning.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    skvidsage.containers.VideoFeatures : Features with object sets.
    skvidsage.containers.VideoGraph : The output.
    sklearn.neighbors.KNeighborsTransformer : The k-NN graph alone.

    Notes
    -----
    Links are chosen with :math:`g` computed from float32 cosine
    similarities, :math:`g = 1 - \sqrt{2 - 2\cos}`. With 1024-d features the
    cosine is off by up to about :math:`10^{-6}`, so :math:`g` is off by
    about :math:`10^{-6} / \lVert f_u - f_v \rVert`: about
    :math:`10^{-6}` for most pairs, but up to :math:`10^{-3}` for
    near-duplicates (:math:`g > 0.999`), whose order is thus arbitrary.
    Exact ties in the float32 similarity go to the lower reference index.
    The weights ``visual_weight="similarity"`` of the chosen links use
    :math:`g` recomputed directly as :math:`1 - \lVert f_u - f_v \rVert`
    (float32 accurate: two videos in the same direction weigh exactly 1).

    Each block of ``batch_size`` queries costs one ``(batch_size, d) @ (d,
    n_reference)`` product and a ``topk`` on the device; memory is
    :math:`O(\text{batch\_size} \cdot n_{ref})` for the block plus
    :math:`O(n_{queries} \cdot \text{max\_degree})` for the edges, never
    :math:`O(n^2)`. With object sets each block also forms its dense Jaccard
    block from sparse label matrices.

    **Out of core**: ``fit`` and ``transform`` take a float32 ``np.memmap``
    without reading it whole. With ``algorithm="faiss"`` it is read block by
    block (checks, k-means sample, cell assignment) and cell by cell (the
    scan), each block copied, used and its pages handed back: 1M x 1024
    (4 GB on disk) builds its graph in well under 4 GB of RSS
    (:doc:`/results`). Brute force normalises the reference rows into memory
    (``4 d`` bytes a video; the queries are still read block by block).

    The paper writes :math:`dis(u, v) > \tau` and, for VidSage,
    :math:`\mathbb{1}(\text{Euclidean}(u, v) > \tau)`; both are read as the
    similarity rule :math:`g(u, v) \ge \tau`.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage.graph import VideoGraphBuilder
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> graph = VideoGraphBuilder(tau=0.5, n_neighbors=1).fit_transform(X)
    >>> graph
    VideoGraph(n_queries=3, n_reference=3, n_features=2, n_edges=3)
    >>> graph.toarray()  # no self links; video 2 gets its nearest other one
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        "tau": [Interval(Real, None, None, closed="neither"), StrOptions({"auto"})],
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
        "max_degree": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "visual_weight": [StrOptions({"binary", "similarity", "rbf"})],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "columns": ["array-like", slice, None],
        "algorithm": [StrOptions({"auto", "brute", "faiss"})],
        "n_probe": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        *,
        tau=0.3,
        n_neighbors=10,
        max_degree=50,
        alpha=0.7,
        beta=0.3,
        visual_weight="binary",
        gamma=10.0,
        columns=None,
        algorithm="auto",
        n_probe="auto",
        batch_size="auto",
        device="auto",
    ):
        self.tau = tau
        self.n_neighbors = n_neighbors
        self.max_degree = max_degree
        self.alpha = alpha
        self.beta = beta
        self.visual_weight = visual_weight
        self.gamma = gamma
        self.columns = columns
        self.algorithm = algorithm
        self.n_probe = n_probe
        self.batch_size = batch_size
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Keep ``X`` as the reference videos.

        Parameters
        ----------
        X : array-like of shape (n_reference, n_features) or VideoFeatures
            Reference video features, optionally with object sets (then
            ``transform`` builds the VidSage graph, else LiteVidSage).
        y : None
            Ignored.

        Returns
        -------
        self : VideoGraphBuilder
            The fitted builder.
        """
        self._fit(X)
        return self

    def _fit(self, X):
        """``fit``; returns the IVF cells of the reference rows (or None)."""
        features, object_sets = _split_input(X)
        features = validate_features(self, features, reset=True)
        if self.max_degree is not None and self.max_degree < self.n_neighbors:
            raise ValueError(
                f"max_degree={self.max_degree} must be >= n_neighbors="
                f"{self.n_neighbors}: the cap would remove the guaranteed "
                "nearest neighbours."
            )
        if self.tau == "auto" and (self.n_neighbors < 1 or features.shape[0] < 2):
            raise ValueError(
                "tau='auto' learns the threshold from each reference video's "
                "n_neighbors-th nearest other one: it needs n_neighbors >= 1 and "
                f"at least 2 reference videos (got n_neighbors={self.n_neighbors}, "
                f"{features.shape[0]} videos)."
            )
        self.device_ = resolve_device(self.device)
        self.reference_ = self._similarity_features(features)
        self._warn_zero_rows(self.reference_, "fit")
        self.tau_ = self._auto_tau() if self.tau == "auto" else float(self.tau)
        self.object_sets_ = None if object_sets is None else list(object_sets)
        self.object_vocabulary_ = (
            None if object_sets is None else vocabulary(object_sets)
        )
        self.algorithm_ = choose_algorithm(
            self.algorithm,
            self.reference_.shape[0],
            semantic=object_sets is not None,
            max_degree=self.max_degree,
        )
        self.index_, probes = None, None
        if self.algorithm_ == "faiss":
            self.index_, probes = IVFIndex.build(
                self.reference_, n_probe=self.n_probe, device=self.device_,
                recall_k=self.max_degree,
            )
        return probes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Keep ``X`` as the reference videos and link them to each other.

        Equals ``fit(X).transform(X)``; rows of norm 0 are warned about once
        (by ``fit``), not once more as queries.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_features) or VideoFeatures
            As in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        graph : VideoGraph
            The training graph, of shape ``(n_videos, n_videos)``, without
            self links.
        """
        probes = self._fit(X)
        return self._transform(X, warn=False, probes=probes)

    def transform(self, X):
        """Link each row of ``X`` to the reference videos.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or VideoFeatures
            Query video features; with object sets exactly when ``fit`` had
            them. Rows of norm 0 (in the similarity ``columns``) are linked
            all the same, with a :class:`~skvidsage.ZeroRowWarning` naming
            them.

        Returns
        -------
        graph : VideoGraph
            ``graph.features`` is ``X`` as float32 (not normalised);
            ``graph.adjacency`` is a CSR matrix of shape
            ``(n_queries, n_reference)`` with the positive link weights.
        """
        return self._transform(X, warn=True)

    def _transform(self, X, *, warn, probes=None):
        """``transform``; ``warn=False`` when ``fit`` has checked these rows."""
        check_is_fitted(self)
        features, object_sets = _split_input(X)
        features = validate_features(self, features, reset=False)
        semantic = self._encode_semantic(object_sets)
        similar = self._similarity_features(features)
        if warn:
            self._warn_zero_rows(similar, "transform")
        n_ref = self.reference_.shape[0]
        batch_size = self._block_rows()
        device = usable_device(self.device_, type(self).__name__)
        rules = dict(
            tau=self.tau_,
            n_neighbors=min(self.n_neighbors, n_ref),
            max_degree=None if self.max_degree is None else min(self.max_degree, n_ref),
            visual_weight=self._visual_weight(),
            device=device,
        )
        if self.index_ is not None:
            csr = ivf_edges(
                self.index_, similar, self.reference_, probes=probes, **rules
            )
            return self._graph(features, *csr)
        with torch.inference_mode():
            R, _ = normalized_reference(self.reference_, device)
            release(self.reference_)
            indptr, indices, data = build_edges(
                similar,
                R,
                R_raw=self.reference_,
                batch_size=batch_size,
                semantic=semantic,
                alpha=float(self.alpha),
                beta=float(self.beta),
                **rules,
            )
            del R
        return self._graph(features, indptr, indices, data)

    def _block_rows(self):
        """Query rows per block of ``transform``: ``batch_size``, resolved."""
        if self.batch_size != "auto":
            return self.batch_size
        # the Jaccard path (object sets, as in fit) holds more such temporaries
        semantic = self.object_sets_ is not None
        values = _AUTO_BLOCK_VALUES // 4 if semantic else _AUTO_BLOCK_VALUES
        return max(1, values // self.reference_.shape[0])

    def _graph(self, features, indptr, indices, data):
        """Return the VideoGraph of the CSR arrays (sorted indices)."""
        shape = (features.shape[0], self.reference_.shape[0])
        adjacency = sp.csr_matrix((data, indices, indptr), shape=shape)
        adjacency.has_sorted_indices = True
        return VideoGraph(
            features, adjacency, feature_names=getattr(self, "feature_names_in_", None)
        )

    def set_output(self, *, transform=None):
        """Accept a Pipeline's output setting; the graph stays a VideoGraph.

        A graph has no DataFrame form (its adjacency is sparse and
        ``n_queries x n_reference``), so ``transform`` and ``fit_transform``
        return a :class:`~skvidsage.containers.VideoGraph` whatever is set
        here or in ``sklearn.set_config(transform_output=...)``. The method
        exists so that ``make_pipeline(VideoGraphBuilder(),
        VidSageEmbedder()).set_output(transform="pandas")`` works: the
        Pipeline passes the setting to every step, and the embedder after
        the builder returns the DataFrame.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            The output asked for; checked, then ignored.

        Returns
        -------
        self : VideoGraphBuilder
            The builder, unchanged.

        Examples
        --------
        >>> from sklearn.pipeline import make_pipeline
        >>> from skvidsage import VideoGraphBuilder, VidSageEmbedder
        >>> pipe = make_pipeline(VideoGraphBuilder(), VidSageEmbedder())
        >>> pipe.set_output(transform="pandas").steps[0][1]
        VideoGraphBuilder()
        """
        allowed = (None, "default", "pandas", "polars")
        if transform not in allowed:
            raise ValueError(
                f"transform={transform!r} is not an output setting; use one of "
                f"{allowed[1:]} or None (the graph is returned as a VideoGraph "
                "in every case)."
            )
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of the graph's feature columns: the input's, passed through.

        ``VideoGraph.features`` is ``X`` itself, so its columns keep the input
        names; the next step (the embedder) names its output from them, and
        ``Pipeline.get_feature_names_out`` works through the builder.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input names: None uses ``feature_names_in_``, or ``x0, x1, ...``
            when ``fit`` saw none; given, they must match those.

        Returns
        -------
        names : ndarray of str objects of shape (`n_features_in_`,)
            The names of the columns of ``VideoGraph.features``.
        """
        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)

    def _warn_zero_rows(self, similar, method):
        """Name the rows that L2 normalisation leaves at zero (see _graph_input)."""
        warn_zero_similarity_rows(similar, type(self).__name__, method, self.columns)

    def _similarity_features(self, features):
        """Return the columns of ``features`` the similarity uses."""
        return similarity_features(features, self.columns)

    def _visual_weight(self):
        """Return the link-weight function of ``build_edges`` (None: one)."""
        if self.visual_weight == "similarity":
            return similarity_weight
        if self.visual_weight == "rbf":
            return rbf_weight(float(self.gamma))
        return None

    def _auto_tau(self):
        """Median ``g`` of the reference videos to their k-th nearest other one.

        "Other" as in ``transform``: exact copies of a video do not count.
        """
        return learn_tau(
            self.reference_, self.n_neighbors, self.device_, _AUTO_BLOCK_VALUES
        )

    def _encode_semantic(self, object_sets):
        """Encode query and reference object sets for ``build_edges``."""
        if self.object_sets_ is None:
            if object_sets is not None:
                raise ValueError(
                    "X has object sets but the builder was fitted without them; "
                    "fit on a VideoFeatures with object_sets to use them "
                    "(VidSage), or pass plain features (LiteVidSage)."
                )
            return None
        if object_sets is None:
            raise ValueError(
                "The builder was fitted with object sets (VidSage), so X needs "
                "them too: pass a VideoFeatures(features, object_sets)."
            )
        vocabulary = self.object_vocabulary_
        r_sets, r_sizes = encode_object_sets(self.object_sets_, vocabulary)
        q_sets, q_sizes = encode_object_sets(object_sets, vocabulary)
        return q_sets, q_sizes, r_sets.T.tocsr(), r_sizes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The output (features and edge weights) is always float32.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
