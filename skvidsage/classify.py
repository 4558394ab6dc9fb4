"""GraphSmoothingClassifier: a classifier's scores smoothed over the graph."""

import inspect
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import expit, softmax
from sklearn import config_context
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from skvidsage._checks import ZeroRowsByBlocks
from skvidsage._device import DeviceStateMixin, resolve_device
from skvidsage._neighbors import shared_blocks
from skvidsage._propagation import GraphOperator, label_propagation
from skvidsage.graph import VideoGraphBuilder

__all__ = ["GraphSmoothingClassifier"]


def _default_graph():
    # the label vote of the 20 nearest training videos, weighed by
    # exp(-10 d^2): the middle of what the YouTube-8M protocol chose when it
    # tuned the graph with the head (20-50 neighbours, gamma 5-10; see
    # docs/results, which also lists the fixed-C explorations behind it)
    return VideoGraphBuilder(n_neighbors=20, max_degree=20, visual_weight="rbf")


def _encode_targets(y, n):
    """Encode ``y``: ``(Y, y_fit, classes, multilabel)``.

    ``Y`` is the (n, n_classes) float32 0/1 target matrix, ``y_fit`` what the
    estimator is fitted on, ``multilabel`` whether ``y`` is an indicator.
    """
    kind = type_of_target(y, input_name="y", raise_unknown=True)
    if kind == "multilabel-indicator":
        multilabel = True
        Y = y.toarray() if sp.issparse(y) else np.asarray(y)
        classes = np.arange(Y.shape[1])
        # int64: OneVsRestClassifier(LogisticRegression) fitted on an
        # int8 indicator matrix scored Hit@1 0.001 on YouTube-8M
        y_fit = y.astype(np.int64) if sp.issparse(y) else Y.astype(np.int64)
        Y = Y.astype(np.float32)
    elif kind in ("binary", "multiclass"):
        multilabel = False
        binarizer = LabelBinarizer().fit(y)
        classes = binarizer.classes_
        Y = binarizer.transform(y).astype(np.float32)
        if Y.shape[1] == 1:  # two classes: LabelBinarizer gives one column
            Y = np.hstack([1.0 - Y, Y])
        y_fit = np.asarray(y)
    else:
        raise ValueError(
            f"Unknown label type: GraphSmoothingClassifier takes class "
            f"labels or a 0/1 label indicator matrix; got y of type {kind!r}."
        )
    if Y.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {Y.shape[0]}.")
    return Y, y_fit, classes, multilabel


def _scores_as(estimator, base, names):
    """Whether ``estimator``'s class takes the methods ``names`` from ``base``.

    Looked up statically: scikit-learn's ``available_if`` methods are new
    objects at every attribute access.
    """
    return isinstance(estimator, base) and all(
        inspect.getattr_static(type(estimator), name)
        is inspect.getattr_static(base, name)
        for name in names
    )


def _plain_logistic(estimator):
    """Whether ``estimator`` is a fitted LogisticRegression scoring as its class."""
    return hasattr(estimator, "coef_") and _scores_as(
        estimator, LogisticRegression, ("predict_proba", "decision_function")
    )


def _logistic_columns(head):
    """``(W, b, kind)`` of a fitted logistic head, or None.

    ``kind`` is ``"ovr"`` for a multi-label ``OneVsRestClassifier`` whose
    every estimator is a binary ``LogisticRegression`` (a label constant in
    training gets a constant predictor instead: None then),
    ``"binary"`` or ``"multinomial"`` for a ``LogisticRegression``, scored as
    its ``predict_proba`` does (expit of the one column; softmax). A
    subclass that changes how scores are made is asked as usual.
    """
    if _plain_logistic(head):
        if getattr(head, "multi_class", "auto") == "ovr":  # older scikit-learn
            return None
        kind = "binary" if len(head.classes_) <= 2 else "multinomial"
        return head.coef_, head.intercept_, kind
    if not (
        _scores_as(head, OneVsRestClassifier, ("predict_proba",))
        and head.multilabel_
    ):
        return None
    estimators = head.estimators_
    if len(estimators) < 2 or not all(
        _plain_logistic(e) and e.coef_.shape[0] == 1 for e in estimators
    ):
        return None
    W = np.vstack([e.coef_ for e in estimators])
    b = np.concatenate([e.intercept_ for e in estimators])
    return W, b, "ovr"


def _row_products(X, W):
    """``X @ W.T`` in float64, each row's value independent of the other rows.

    BLAS picks its kernels by the matrix's shape and splits it by threads,
    so in one product a row's value can change in the last bit with the
    rows it comes with: a float32 LogisticRegression head gave 18 of 600
    probabilities differing by up to 4e-8 between one call and 37-row
    blocks (OpenBLAS 0.3.31, SkylakeX kernels), so Dask inference was not
    in-memory inference exactly; padding every product to one shape did not
    help (the last rows of a 256-row block still differed). A stacked
    ``matmul`` makes one (1, d) x (d, k) product per row: the same at any
    row position, memory alignment and thread count (tested), for 0.16 s
    against 0.055 s for one product of 2,459 x 3,072 YouTube-8M-sized rows
    by 255 labels (idle 2 cores).
    """
    if sp.issparse(X):  # a sparse product works row by row
        return np.asarray(X.astype(np.float64) @ W.T)
    X = np.asarray(X, np.float64)
    WT = np.ascontiguousarray(np.asarray(W, np.float64).T)
    return np.matmul(X[:, None, :], WT)[:, 0, :]


def _logistic_proba(estimator, X):
    """Score with a logistic head's stacked coefficients (None: cannot).

    ``OneVsRestClassifier`` scores its labels one by one: 255 products of the
    2,459 x 3,072 YouTube-8M embeddings with one coefficient row each, each
    a float64 copy of the input. One product with the stacked coefficients,
    ``expit(X W^T + b)``, gives the same scores to the head's float32
    rounding (1e-6) and took the best pipeline's scoring (embedder and head)
    from 9.6 s to 5.0 s (load 8 on 2 cores). A ``LogisticRegression`` is
    scored the same way, so that every row's score is the same whatever
    rows it is scored with (:func:`_row_products`). ``estimator`` is the head
    itself or a Pipeline ending in one (its other steps transform ``X`` as
    ``Pipeline`` does); None for any other estimator, which is then asked as
    usual.
    """
    pipeline = isinstance(estimator, Pipeline)
    columns = _logistic_columns(estimator[-1] if pipeline else estimator)
    if columns is None:
        return None
    if pipeline and len(estimator) > 1:
        X = estimator[:-1].transform(X)
    W, b, kind = columns
    z = _row_products(X, W) + b
    if kind == "ovr":
        return expit(z)
    if kind == "binary":
        p = expit(z[:, 0])
        return np.column_stack([1.0 - p, p])
    return softmax(z, axis=1)


# combine="log_odds": epsilon of (g + eps) / (prior + eps). On the YouTube-8M
# validation files (each C chosen there; benchmarks/explore_yt8m_val.py votes)
# 0.05 beat 0.01, and the update at a=1 beat the linear blend by +0.57 Hit@1
# and +0.65 mAP (0.8259 / 0.8047 GAP against 0.8202 / 0.8033)
_LOG_ODDS_EPS = 0.05
# scores are clipped to [_P_CLIP, 1 - _P_CLIP] before the logit
_P_CLIP = 1e-6


def _log_odds_update(P, graph, prior, a, multilabel):
    """Move the odds of ``P`` by ``a`` times log(graph estimate / prior)."""
    ratio = np.log(
        (np.clip(graph, 0.0, None) + _LOG_ODDS_EPS) / (prior + _LOG_ODDS_EPS)
    )
    if not multilabel:  # normalised by the caller
        return P * np.exp(a * ratio)
    P = np.clip(P, _P_CLIP, 1.0 - _P_CLIP)
    return expit(np.log(P) - np.log1p(-P) + a * ratio)


class GraphSmoothingClassifier(
    DeviceStateMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    r"""Correct and smooth a classifier's scores with the training videos' labels.

    A meta-classifier after Correct-and-Smooth (Huang et al. 2021), made
    inductive. ``fit(X, y)`` fits a clone of ``estimator`` on ``(X, y)`` and
    links the training videos with ``graph`` (a
    :class:`~skvidsage.VideoGraphBuilder`: no self links, so a training
    video's neighbours are the other training videos). ``predict_proba``
    links each video to the training videos and combines the estimator's
    scores :math:`p` with the labels :math:`Y` of the videos it links to, in
    one step of label propagation with the training labels held fixed:

    .. math::
        \hat p_q = (1 - a)\, p_q + a \Big[ s_{qq}\, p_q
                   + \sum_j S_{qj}\, (\tilde Y_j + c\, E_j) \Big]

    with :math:`a` = ``smoothing``, :math:`S` the normalised graph
    (``normalization``; :math:`s_{qq}` the query's self loop, zero for
    ``"mean"``), :math:`\tilde Y` the training labels smoothed
    ``smoothing_layers`` times over the training graph, :math:`E = Y - p` the
    estimator's residuals on the training videos and :math:`c` =
    ``correction``. With the default ``"mean"`` normalisation and no
    correction this is the estimator's scores blended with a weighted label
    vote of the video's nearest training videos. Each row's output depends on
    that row and the fitted training set only; a video without links keeps
    the estimator's scores.

    Multi-class targets (1-d ``y``) give rows that sum to 1; multi-label
    indicator targets (2-d 0/1 ``y``) give one probability per label.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, default=None
        The base classifier, cloned in ``fit`` (None:
        ``LogisticRegression(max_iter=1000)``, in a ``OneVsRestClassifier``
        for multi-label ``y``). For multi-label ``y`` it must take an
        indicator matrix; a Pipeline (for instance a
        :class:`~skvidsage.VidSageEmbedder` and a head) works.
    graph : VideoGraphBuilder, default=None
        Links videos to the training videos, on the features ``X`` as given
        to this classifier. None: the 20 nearest training videos, RBF
        weights ``exp(-10 d^2)`` (``VideoGraphBuilder(n_neighbors=20,
        max_degree=20, visual_weight="rbf")``). Its
        :class:`~skvidsage.ZeroRowWarning` names the rows of ``X`` of norm 0
        (once per ``fit`` or prediction call), which it cannot link by
        direction.
    smoothing : float in [0, 1], default=0.25
        :math:`a`, the weight of the graph's labels against the estimator's
        scores (0: the estimator alone).
    smoothing_layers : int, default=0
        Label propagation steps over the training graph before the query
        step (PyG's ``LabelPropagation``, with ``smoothing`` as its
        :math:`\alpha`); 0 uses the training labels as given.
    correction : float, default=0.0
        :math:`c`, the weight of the training videos' residuals propagated
        to the query (the "correct" step of C&S).
    combine : {"linear", "log_odds"}, default="linear"
        How the graph's estimate :math:`g_q` (the bracket above) meets the
        estimator's scores. "linear": the formula above. "log_odds": a
        Bayesian update of the estimator's odds by the graph's evidence,
        :math:`\operatorname{logit} \hat p_q = \operatorname{logit} p_q
        + a \log\frac{g_q + \epsilon}{\pi + \epsilon}`, with :math:`\pi`
        the classes' training frequencies and :math:`\epsilon = 0.05`
        (multi-class: :math:`\hat p_q \propto p_q ((g_q + \epsilon) / (\pi
        + \epsilon))^a`). A label the neighbours hold more often than its
        prior is raised, one they lack is lowered, whatever its score.
    normalization : {"mean", "symmetric"}, default="mean"
        :math:`S`: the weighted mean of the neighbours (:math:`D^{-1} A`), or
        GCN's :math:`D^{-1/2} (A + I) D^{-1/2}` with the query's self loop
        (see :mod:`skvidsage._propagation`).
    device : str, default="auto"
        Torch device of the label propagation; "auto" uses CUDA when
        available. The graph's device is ``graph``'s own.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    graph_builder_ : VideoGraphBuilder
        The fitted clone of ``graph``; its reference videos are the training
        videos.
    operator_ : skvidsage._propagation.GraphOperator
        The training graph's normalised operator.
    reference_targets_ : ndarray of shape (n_train, n_classes), float32
        :math:`\tilde Y + c E`, what a query reads from its neighbours.
    class_prior_ : ndarray of shape (n_classes,)
        :math:`\pi`, each class's share of the training videos.
    classes_ : ndarray of shape (n_classes,)
        Class labels (multi-class), or ``0..n_labels-1`` (multi-label).
    n_features_in_ : int
        Input width.
    device_ : torch.device
        The device used in ``fit``.

    See Also
    --------
    VideoGraphBuilder : the graph.
    VidSageEmbedder : propagated features for the estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import GraphSmoothingClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.randn(30, 4) + 2, rng.randn(30, 4) - 2])
    >>> y = np.repeat([0, 1], 30)
    >>> clf = GraphSmoothingClassifier(smoothing=0.5).fit(X, y)
    >>> clf.predict(np.array([[2.0, 2, 2, 2], [-2, -2, -2, -2]]))
    array([0, 1])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "graph": [VideoGraphBuilder, None],
        "smoothing": [Interval(numbers.Real, 0, 1, closed="both")],
        "smoothing_layers": [Interval(numbers.Integral, 0, None, closed="left")],
        "correction": [Interval(numbers.Real, 0, None, closed="left")],
        "combine": [StrOptions({"linear", "log_odds"})],
        "normalization": [StrOptions({"mean", "symmetric"})],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        estimator=None,
        *,
        graph=None,
        smoothing=0.25,
        smoothing_layers=0,
        correction=0.0,
        combine="linear",
        normalization="mean",
        device="auto",
    ):
        self.estimator = estimator
        self.graph = graph
        self.smoothing = smoothing
        self.smoothing_layers = smoothing_layers
        self.correction = correction
        self.combine = combine
        self.normalization = normalization
        self.device = device

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the estimator and link the training videos.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_features)
            Training video features.
        y : array-like of shape (n_videos,) or (n_videos, n_labels)
            Class labels, or a 0/1 label indicator matrix (dense or sparse).

        Returns
        -------
        self : GraphSmoothingClassifier
            The fitted classifier.
        """
        X = validate_data(self, X, dtype=np.float32)
        Y, y_fit, self.classes_, self._multilabel = _encode_targets(y, X.shape[0])
        estimator = self.estimator
        if estimator is None:
            estimator = LogisticRegression(max_iter=1000)
            if self._multilabel:
                estimator = OneVsRestClassifier(estimator)
        self.estimator_ = clone(estimator).fit(X, y_fit)
        builder = _default_graph() if self.graph is None else clone(self.graph)
        self.graph_builder_ = builder
        adjacency = builder.fit_transform(X).adjacency
        self.device_ = resolve_device(self.device)
        self.operator_ = GraphOperator(adjacency, self.normalization)
        targets = Y
        if self.smoothing_layers:
            targets = label_propagation(
                self.operator_,
                Y,
                alpha=float(self.smoothing),
                n_layers=self.smoothing_layers,
                device=self.device_,
            )
        if self.correction:
            targets = targets + self.correction * (Y - self._base_proba(X))
        self.reference_targets_ = np.asarray(targets, dtype=np.float32)
        self.class_prior_ = Y.mean(axis=0, dtype=np.float64)
        return self

    def _base_proba(self, X):
        """Return the estimator's scores as an (n, n_classes) array.

        ``X`` is validated (finite) by the caller, so the estimator's own
        finiteness checks are skipped: ``OneVsRestClassifier`` repeats them
        once per class, which took 2/3 of its ``predict_proba`` on 3072-d
        YouTube-8M embeddings (255 classes: 2.0 s against 0.65 s for 2,459
        videos). The scores are checked instead.
        """
        with config_context(assume_finite=True):
            P = _logistic_proba(self.estimator_, X)
            if P is None:
                P = self.estimator_.predict_proba(X)
        if isinstance(P, list):  # one (n, 2) array per label
            P = np.column_stack([p[:, -1] for p in P])
        P = np.asarray(P, dtype=np.float64)
        bad = ~np.isfinite(P).all(axis=1)
        if bad.any():
            raise ValueError(
                f"the estimator returned non-finite scores for {int(bad.sum())} "
                f"of {len(P)} videos (rows {np.flatnonzero(bad)[:10].tolist()}"
                f"{', ...' if bad.sum() > 10 else ''}); the input was finite, so "
                "a step of the estimator produced them."
            )
        if P.shape[1] != len(self.classes_):
            raise ValueError(
                f"the estimator gives {P.shape[1]} scores per video for "
                f"{len(self.classes_)} classes; for multi-label y use an "
                "estimator that scores every label (e.g. OneVsRestClassifier)."
            )
        return P

    def predict_proba(self, X):
        """Scores corrected and smoothed through the links to the training videos.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_features)
            Video features.

        Returns
        -------
        P : ndarray of shape (n_videos, n_classes)
            Class probabilities (rows sum to 1), or per-label probabilities.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        # By blocks of the label graph's rows: when the estimator links the
        # same rows to the same training videos (an embedder's graph, built
        # from the same X in fit), each block's similarities are computed
        # once for both graphs (the default "auto" blocks are the same size).
        # 2,459 YouTube-8M queries: 1.57 s -> 1.21 s a call. Zero rows are
        # named once, for the whole X.
        rows = self.graph_builder_._block_rows()
        out = []
        with ZeroRowsByBlocks() as blocks:
            for start in range(0, X.shape[0], rows):
                blocks.start = start
                with shared_blocks():
                    out.append(self._predict_block(X[start : start + rows]))
        return np.vstack(out)

    def _predict_block(self, X):
        """``predict_proba`` of validated rows."""
        P = self._base_proba(X)
        adjacency = self.graph_builder_.transform(X).adjacency
        S_q, s_qq = self.operator_.query(adjacency)
        vote = S_q @ self.reference_targets_.astype(np.float64)
        linked = np.diff(S_q.indptr) > 0
        a = float(self.smoothing)
        out = P.copy()
        step = s_qq[linked, None] * P[linked] + vote[linked]
        if self.combine == "linear":
            out[linked] = (1.0 - a) * P[linked] + a * step
        else:
            out[linked] = _log_odds_update(
                P[linked], step, self.class_prior_, a, self._multilabel
            )
        if self._multilabel:
            return np.clip(out, 0.0, 1.0)
        out = np.clip(out, 0.0, None)
        return out / out.sum(axis=1, keepdims=True).clip(min=np.finfo(float).tiny)

    def predict(self, X):
        """Most probable class, or every label with probability >= 0.5.

        Parameters
        ----------
        X : array-like of shape (n_videos, n_features)
            Video features.

        Returns
        -------
        y : ndarray of shape (n_videos,) or (n_videos, n_labels)
            Class labels, or a 0/1 indicator matrix.
        """
        P = self.predict_proba(X)
        if self._multilabel:
            return (P >= 0.5).astype(np.int64)
        return self.classes_[np.argmax(P, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags
