"""VidSageEmbedder: a graph neural network trained without labels (paper 3.3-3.5)."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

from skvidsage._checks import check_graph_feature_names, warn_zero_rows_at_caller
from skvidsage._device import DeviceStateMixin, resolve_device, usable_device
from skvidsage._propagation import GraphOperator
from skvidsage.containers import VideoGraph
from skvidsage.embed._inference import (
    block_names,
    check_settings,
    embed_rows,
    normalize,
    output_blocks,
    reference_states,
)
from skvidsage.embed._outofcore import embed_by_blocks, write_output
from skvidsage.embed._sampler import CSRGraph
from skvidsage.embed._training import (
    TrainConfig,
    expected_batch_nodes,
    fit_network,
)
from skvidsage.graph import VideoGraphBuilder

__all__ = ["VidSageEmbedder"]


class VidSageEmbedder(DeviceStateMixin, TransformerMixin, BaseEstimator):
    r"""Embed videos through the graph: propagated features and a GNN, no labels.

    ``fit`` takes the graph between the training videos (``y`` is ignored),
    propagates their features over it and, with ``hidden_dims``, trains an
    ``L``-layer GraphSAGE / GAT / GCN network on it, without labels: linked
    videos are pulled together, videos drawn at random pushed apart.
    ``transform`` embeds any videos, seen or unseen, through their links into
    that reference graph (inductive inference, paper 3.5); each row's
    embedding depends only on that row and the fitted reference graph.

    The output (``jumping_knowledge=True``) is

    .. math:: z = [\, x \,\Vert\, S x \,\Vert\, \dots \,\Vert\, S^K x
              \,\Vert\, h^1 \,\Vert\, \dots \,\Vert\, h^L \,]

    with :math:`x` the L2-normalised input, :math:`S^k x` its propagation over
    ``K = hops`` steps of the graph (parameter-free, as in SGC / SIGN; see
    ``propagation``) and :math:`h^t` the trained layers' embeddings.
    ``hidden_dims=()`` trains nothing and outputs the propagated blocks
    alone. On YouTube-8M ``mean_rgb`` the propagated blocks are what a tuned
    linear head gains from (:doc:`/results`): the default is two hops and
    no trained layers, and the paper's network is one parameter away
    (``hidden_dims=(512, 256)``).

    The output's columns are named by block (:meth:`get_feature_names_out`,
    and the columns of the DataFrame that ``set_output(transform="pandas")``
    gives): ``x_*`` for :math:`x`, ``hop1_*`` ... ``hopK_*`` for
    :math:`S^k x`, ``layer1_*`` ... ``layerL_*`` for :math:`h^t`
    (``jumping_knowledge=False``: ``layerL_*`` alone), and ``blocks_`` maps
    each block's name to its slice of columns, so that a linear head's
    coefficients can be read block by block. The columns of ``x`` and of each
    hop are named after the input column they come from: ``x_<name>``,
    ``hop2_<name>`` when ``fit`` saw named columns (a DataFrame, or a
    :class:`~skvidsage.VideoGraph` built from one, which carries them),
    else its index, ``x_3``, ``hop2_3``; a layer's columns are numbered,
    ``layer1_0``, ``layer1_1``, ...

    The VidSage layer (paper 3.3) is

    .. math::
        h_i^t = \mathrm{ReLU}\left(W_2 \left[h_i^{t-1} \,\Vert\,
                \mathrm{AGG}_{j \in N(i)}\, w_{ij}\,
                \mathrm{ReLU}(W_1 h_j^{t-1})\right]\right),
        \quad h_i^t \leftarrow h_i^t / \lVert h_i^t \rVert

    with :math:`h^0` the L2-normalised input features and :math:`w_{ij}` the
    edge weights of :class:`~skvidsage.VideoGraphBuilder`; the last layer has
    no outer ReLU (nor dropout), which would let the loss collapse it to zero.

    A video whose features are all zero has no direction: its normalised
    input stays zero and its embedding comes from its neighbours alone. A
    :class:`~skvidsage.ZeroRowWarning` names such rows, once per call: given
    a :class:`~skvidsage.VideoGraph`, the embedder checks its features; given
    features, the ``graph`` builder that links them does.

    Parameters
    ----------
    hidden_dims : tuple of int, default=()
        Output width of each trained layer; its length is the number of
        layers. ``()``: no trained layers (nothing to train; then
        ``jumping_knowledge`` must be True).
    conv : {"sage", "gat", "gcn"}, default="sage"
        Layer type (see :mod:`skvidsage.embed.nn`).
    aggr : {"sum", "mean", "max"}, default="mean"
        Weighted neighbourhood aggregation of the "sage" layer (the paper's
        is "sum").
    heads : int, default=4
        Attention heads of the "gat" layer.
    share_weights : bool, default=False
        Share :math:`W_1, W_2` across layers, as the paper does (needs
        ``hidden_dims`` equal to the input width in every layer).
    jumping_knowledge : bool, default=True
        Output ``[x, S x, ..., S^K x, h_1, ..., h_L]`` (the normalised input,
        its propagated blocks and every layer's embedding) instead of ``h_L``
        alone, so that the embedding keeps what the input features know.
    hops : int, default=2
        With ``jumping_knowledge``, the number ``K`` of propagated blocks
        :math:`S x, \dots, S^K x` output after ``x``. A query's blocks
        follow the rule of the training videos' (below), through its links.
    tail_hops : int, default=0
        That many further hops averaged into the last propagated block, which
        becomes the mean of :math:`S^K x, \dots, S^{K+T} x` (named
        ``"hopK-K+T"``, ``T = tail_hops``): farther neighbours at the same
        width. On YouTube-8M ``hops=2, tail_hops=6`` (the mean of hops 2-8)
        lifted retrieval precision@10 by +0.4 and cost a tuned head up to 0.6
        mAP (:doc:`/results`, "Retrieval"): a setting for retrieval. The
        reference side keeps ``K + T - 1`` propagated copies of the training
        features instead of ``K - 1``.
    propagation : {"symmetric", "mean"}, default="symmetric"
        The operator :math:`S` of the propagated blocks, on the graph as
        given: ``"symmetric"`` is GCN's :math:`D^{-1/2} (A + I) D^{-1/2}`
        with :math:`d_i = 1 + \sum_j a_{ij}` (row :math:`i`: :math:`1 / d_i`
        for itself, :math:`a_{ij} / \sqrt{d_i d_j}` for each neighbour);
        ``"mean"`` is the weighted mean of the neighbours, :math:`D^{-1} A`
        (zero for a video without links).
    symmetrize : bool, default=True
        The training videos' side of :math:`S` (their degrees :math:`d_j`
        and propagated features :math:`S^k x_j`) comes from the training
        graph made symmetric, :math:`\max(A, A^\top)`, as in SGC; every
        video, training or unseen, is still propagated over its own links
        by one rule. On YouTube-8M, each head tuned, it gained +0.9 Hit@1
        and +1.1 mAP over the graph as given (:mod:`skvidsage._propagation`).
    dropout : float, default=0.5
        Dropout after each layer during training.
    loss : {"sage", "triplet", "contrastive"}, default="sage"
        Self-supervised objective (see :mod:`skvidsage.embed._losses`).
    n_negatives : int, default=20
        Negatives per batch for the "sage" loss (:math:`Q`).
    walk_length : int, default=1
        Positives are the end of a random walk of this many steps (1: a
        neighbour).
    temperature : float, default=0.1
        Scale of the dot products in the "sage" loss.
    margin : float, default=0.5
        Margin of the "triplet" and "contrastive" losses.
    fanouts : tuple of int, default=(25, 10)
        Neighbours sampled per node and hop in mini-batch training (-1: all).
    batch_size : int, default=512
        Anchor videos per mini-batch.
    full_batch : {"auto"} or bool, default="auto"
        Train on the whole graph at every step. "auto" does so when a sampled
        mini-batch would touch about as many nodes as the graph has, which is
        then faster.
    max_epochs : int, default=100
        Passes over the training videos.
    learning_rate : float, default=1e-3
        Peak learning rate of Adam (the paper used 1e-5 over 12 h on a V100).
    warmup_steps : int, default=10
        Steps of linear warm-up before the cosine decay (paper: 10).
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    early_stopping : bool, default=False
        Stop when the epoch loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs.
    tol : float, default=1e-4
        See ``early_stopping``.
    n_iter_no_change : int, default=5
        See ``early_stopping``.
    graph : VideoGraphBuilder, default=None
        Builds the graph when ``fit``/``transform`` get a plain feature array
        (None: ``VideoGraphBuilder()``). Ignored for :class:`VideoGraph` input.
    device : str, default="auto"
        Torch device; "auto" uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, dropout and sampling. Same seed and data: identical
        embeddings on the CPU (torch's deterministic kernels are switched on
        during ``fit`` and ``transform`` there, and the previous setting
        restored). The global torch seed is left alone.
    verbose : bool, default=False
        Show a progress bar with the loss.

    Attributes
    ----------
    blocks_ : dict of str to slice
        The output's blocks in column order, each name (``"x"``,
        ``"hop1"`` ... ``"hopK"``, ``"layer1"`` ... ``"layerL"``) mapped to
        its columns: ``Z[:, emb.blocks_["hop2"]]`` is :math:`S^2 x`.
    module_ : skvidsage.embed.nn.VidSageNet or None
        The trained network (on the CPU); None with ``hidden_dims=()``.
    operator_ : skvidsage._propagation.GraphOperator
        The propagation operator's reference side (the training videos'
        degrees), which a query's row of :math:`S` needs.
    reference_propagated_ : list of ndarray of shape (n_reference, `n_features_in_`)
        :math:`S x, \dots, S^{K+T-1} x` of the reference videos (float32):
        the inputs of a query's blocks :math:`S^2 x, \dots, S^{K+T} x`.
    reference_states_ : list of ndarray
        Embeddings of the reference videos after each layer but the last: the
        inputs of layers 1..L-1 when queries are embedded (layer 0 reads the
        normalised ``reference_features_``).
    reference_features_ : ndarray of shape (n_reference, `n_features_in_`)
        The training videos' features.
    graph_builder_ : VideoGraphBuilder or None
        The fitted builder, when ``fit`` got a feature array.
    loss_curve_ : list of float
        Mean loss per epoch (empty without trained layers).
    n_iter_ : int
        Epochs run.
    full_batch_ : bool
        Whether training was full-batch.
    device_ : torch.device
        The device used in ``fit``.
    n_features_in_ : int
        Input width.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the input columns, when ``fit`` got a DataFrame with string
        column names or a :class:`~skvidsage.VideoGraph` with
        ``feature_names``.

    See Also
    --------
    VideoGraphBuilder : builds the graph this embedder consumes.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import VidSageEmbedder
    >>> X = np.random.RandomState(0).rand(60, 8).astype("float32")
    >>> emb = VidSageEmbedder(hidden_dims=(16, 8), max_epochs=3, random_state=0)
    >>> emb.fit_transform(X).shape  # [x, S x, S^2 x, h_1, h_2]
    (60, 48)
    >>> list(emb.blocks_)
    ['x', 'hop1', 'hop2', 'layer1', 'layer2']
    >>> emb.blocks_["layer1"]
    slice(24, 40, None)
    >>> emb.get_feature_names_out()[[0, 8, 16, 24, 47]]
    array(['x_0', 'hop1_0', 'hop2_0', 'layer1_0', 'layer2_7'], dtype=object)
    """

    _parameter_constraints = {
        "hidden_dims": ["array-like"],
        "conv": [StrOptions({"sage", "gat", "gcn"})],
        "aggr": [StrOptions({"sum", "mean", "max"})],
        "heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "share_weights": ["boolean"],
        "jumping_knowledge": ["boolean"],
        "hops": [Interval(numbers.Integral, 0, None, closed="left")],
        "tail_hops": [Interval(numbers.Integral, 0, None, closed="left")],
        "propagation": [StrOptions({"symmetric", "mean"})],
        "symmetrize": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "loss": [StrOptions({"sage", "triplet", "contrastive"})],
        "n_negatives": [Interval(numbers.Integral, 1, None, closed="left")],
        "walk_length": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "margin": [Interval(numbers.Real, 0, None, closed="neither")],
        "fanouts": ["array-like"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "full_batch": [StrOptions({"auto"}), "boolean"],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "warmup_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "graph": [VideoGraphBuilder, None],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        hidden_dims=(),
        conv="sage",
        aggr="mean",
        heads=4,
        share_weights=False,
        jumping_knowledge=True,
        hops=2,
        tail_hops=0,
        propagation="symmetric",
        symmetrize=True,
        dropout=0.5,
        loss="sage",
        n_negatives=20,
        walk_length=1,
        temperature=0.1,
        margin=0.5,
        fanouts=(25, 10),
        batch_size=512,
        full_batch="auto",
        max_epochs=100,
        learning_rate=1e-3,
        warmup_steps=10,
        weight_decay=0.0,
        early_stopping=False,
        tol=1e-4,
        n_iter_no_change=5,
        graph=None,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.hidden_dims = hidden_dims
        self.conv = conv
        self.aggr = aggr
        self.heads = heads
        self.share_weights = share_weights
        self.jumping_knowledge = jumping_knowledge
        self.hops = hops
        self.tail_hops = tail_hops
        self.propagation = propagation
        self.symmetrize = symmetrize
        self.dropout = dropout
        self.loss = loss
        self.n_negatives = n_negatives
        self.walk_length = walk_length
        self.temperature = temperature
        self.margin = margin
        self.fanouts = fanouts
        self.batch_size = batch_size
        self.full_batch = full_batch
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.graph = graph
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input
    def _check_graph(self, G, *, reset):
        """Validate a VideoGraph; return ``(features, adjacency)``."""
        with warnings.catch_warnings():
            # the graph's names are checked below, not the array's
            warnings.filterwarnings("ignore", "X does not have valid feature names")
            features = validate_data(self, G.features, dtype=np.float32, reset=reset)
        self._check_graph_feature_names(G.feature_names, reset=reset)
        warn_zero_rows_at_caller(
            features,
            owner=f"{type(self).__name__}.{'fit' if reset else 'transform'}",
            name="the VideoGraph's features",
        )
        if reset and G.shape[0] != G.shape[1]:
            raise ValueError(
                "fit needs the graph among the training videos, of shape "
                f"(n, n); got a VideoGraph of shape {G.shape}. Pass the "
                "output of VideoGraphBuilder.fit_transform."
            )
        if not reset and G.shape[1] != self.reference_features_.shape[0]:
            raise ValueError(
                f"The VideoGraph links to {G.shape[1]} reference videos but "
                f"this embedder was fitted on {self.reference_features_.shape[0]}."
            )
        return features, G.adjacency

    def _check_graph_feature_names(self, names, *, reset):
        """Take or check ``feature_names_in_`` from a VideoGraph's ``feature_names``.

        As scikit-learn's ``validate_data`` does for a DataFrame's columns.
        """
        if reset:
            if names is not None:
                self.feature_names_in_ = names.copy()
            return
        check_graph_feature_names(
            getattr(self, "feature_names_in_", None), names, type(self).__name__
        )

    def _build_graph(self, X, builder, *, reset):
        """Validate plain features and link them with ``builder``.

        The builder warns about rows of norm 0 (once, also in
        ``fit_transform``); every all-zero row is also zero in its
        similarity ``columns``, so the embedder does not check again.
        """
        features = validate_data(self, X, dtype=np.float32, reset=reset)
        link = builder.fit_transform if reset else builder.transform
        return features, link(features).adjacency

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the network on the graph between the training videos.

        Parameters
        ----------
        X : VideoGraph or array-like of shape (n_videos, n_features)
            The output of ``VideoGraphBuilder.fit_transform`` or features, from
            which the default graph is built.
        y : None
            Ignored (self-supervised).

        Returns
        -------
        self : VidSageEmbedder
            The fitted embedder.
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit, then embed the training videos.

        Parameters
        ----------
        X : VideoGraph or array-like of shape (n_videos, n_features)
            As in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        Z : ndarray of shape (n_videos, n_features_out)
            The training videos' embeddings, as ``fit(X).transform(X)``.
        """
        adjacency = self._fit(X)
        return self._embed(self.reference_features_, adjacency)

    def _fit(self, X):
        """Fit on ``X``; return the training graph's adjacency."""
        if isinstance(X, VideoGraph):
            features, adjacency = self._check_graph(X, reset=True)
            self.graph_builder_ = None
        else:
            builder = VideoGraphBuilder() if self.graph is None else clone(self.graph)
            features, adjacency = self._build_graph(X, builder, reset=True)
            self.graph_builder_ = builder
        hidden, fanouts = check_settings(self, features.shape[0])
        self.device_ = resolve_device(self.device)
        self.reference_features_ = features
        x = normalize(features)
        self.operator_ = GraphOperator(
            adjacency, self.propagation, symmetrize=self.symmetrize
        )
        n_blocks, n_tail = self._hop_blocks()
        self.reference_propagated_ = self.operator_.reference_powers(
            x.numpy(), max(n_blocks + n_tail - 1, 0), dtype=np.float32
        )
        if hidden:
            self._train_network(x, adjacency, hidden, fanouts)
        else:
            self.module_, self.reference_states_ = None, []
            self.loss_curve_, self.n_iter_, self.full_batch_ = [], 0, False
        self.blocks_ = output_blocks(
            features.shape[1], n_blocks, hidden, self.jumping_knowledge, n_tail
        )
        self._n_features_out = max(b.stop for b in self.blocks_.values())
        return adjacency

    def _train_network(self, x, adjacency, hidden, fanouts):
        """Train the GNN layers; set ``module_``, ``reference_states_``, etc."""
        graph = CSRGraph.from_scipy(adjacency)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.full_batch == "auto":
            self.full_batch_ = bool(
                expected_batch_nodes(graph, self.batch_size, fanouts) >= graph.n_nodes
            )
        else:
            self.full_batch_ = bool(self.full_batch)
        config = TrainConfig.from_estimator(
            self, fanouts=fanouts, full_batch=self.full_batch_
        )
        net = dict(
            conv=self.conv,
            aggr=self.aggr,
            heads=self.heads,
            share_weights=self.share_weights,
            dropout=self.dropout,
            jumping_knowledge=self.jumping_knowledge,
        )
        module, self.loss_curve_ = fit_network(
            x, graph, hidden, net, config, seed, self.device_, self.verbose
        )
        self.n_iter_ = len(self.loss_curve_)
        self.module_ = module
        self.reference_states_ = reference_states(self.module_, x, graph, self.device_)

    # -------------------------------------------------------------- transform
    def transform(self, X, out=None):
        """Embed videos through their links into the reference graph.

        Parameters
        ----------
        X : VideoGraph or array-like of shape (n_videos, n_features)
            The output of ``VideoGraphBuilder.transform`` (queries linked to
            the training videos), used exactly as given, or features when the
            embedder built its own graph in ``fit``. An ``np.memmap`` (or a
            VideoGraph whose ``features`` is one) is read by blocks of
            16,384 rows, each linked with the fitted builder and embedded
            alone (rows are independent: the result is the same), its pages
            released once read, so that the memory used is one block's.
        out : None, str, os.PathLike or ndarray, default=None
            Where to write ``Z``, by blocks: a path (a ``.npy`` file,
            written with plain writes and returned opened read-only as an
            ``np.memmap``), or a float32 array of shape ``(n_videos,
            n_features_out)``, e.g. a ``mode="w+"`` memmap (its written
            pages are flushed and released). None: a new in-memory array.

        Returns
        -------
        Z : ndarray of shape (n_videos, n_features_out), dtype float32
            Embeddings (``out``, or the file written); a video without any
            link gets the embedding of its own features through the root
            path (and self loop).
        """
        check_is_fitted(self)
        if not isinstance(X, VideoGraph) and self.graph_builder_ is None:
            raise ValueError(
                "This VidSageEmbedder was fitted on a VideoGraph: pass the "
                "VideoGraphBuilder.transform output for new videos, not features."
            )
        features = X.features if isinstance(X, VideoGraph) else X
        if isinstance(features, np.ndarray) and (
            out is not None or isinstance(features, np.memmap)
        ):
            return embed_by_blocks(self, X, out)
        if isinstance(X, VideoGraph):
            features, adjacency = self._check_graph(X, reset=False)
        else:
            features, adjacency = self._build_graph(X, self.graph_builder_, reset=False)
        Z = self._embed(features, adjacency)
        return Z if out is None else write_output(out, Z)

    def _hop_blocks(self):
        """Propagated blocks output, and further hops averaged into the last."""
        n_hops = self.hops if self.jumping_knowledge else 0
        return n_hops, self.tail_hops if n_hops else 0

    def _embed(self, features, adjacency):
        n_hops, n_tail = self._hop_blocks()
        return embed_rows(
            features,
            adjacency,
            reference_features=self.reference_features_,
            reference_propagated=self.reference_propagated_,
            reference_states=self.reference_states_,
            module=self.module_,
            operator=self.operator_,
            jumping_knowledge=self.jumping_knowledge,
            n_hops=n_hops,
            n_tail=n_tail,
            n_out=self._n_features_out,
            device=usable_device(self.device_, type(self).__name__),
        )

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, block by block (see ``blocks_``).

        ``x_<c>`` for the normalised input, ``hop<k>_<c>`` for
        :math:`S^k x`, ``layer<t>_<j>`` for layer :math:`t`, where ``<c>`` is
        the input column's name (``feature_names_in_``) when ``fit`` saw
        named columns, else its index, and ``<j>`` numbers a layer's units.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked as scikit-learn does (equal to ``feature_names_in_``
            when ``fit`` saw names, else of length ``n_features_in_``). The
            names themselves come from what ``fit`` saw, so that they are
            always the columns of ``transform``'s DataFrame output.

        Returns
        -------
        names : ndarray of str objects of shape (n_features_out,)
            One name per output column, in order.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        inputs = getattr(self, "feature_names_in_", None)
        if inputs is None:
            inputs = [str(i) for i in range(self.n_features_in_)]
        return block_names(self.blocks_, inputs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags
