"""The YouTube-8M metrics: validation, ranking and the four scores.

See :mod:`skvidsage.metrics` for the definitions and the tie order.
"""


import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from skvidsage._text import counted

__all__ = [
    "global_average_precision_score",
    "hit_at_k_score",
    "mean_average_precision_score",
    "perr_score",
    "precision_at_equal_recall_rate_score",
    "top_k_accuracy_score",
]


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------
def _check_score(y_score):
    y_score = check_array(
        y_score,
        dtype=(np.float64, np.float32),
        ensure_all_finite=True,
        ensure_2d=False,
        input_name="y_score",
    )
    if y_score.ndim != 2:
        raise ValueError(
            "y_score must be a 2-D array of shape (n_samples, n_classes); "
            f"got shape {y_score.shape}."
        )
    return y_score


def _check_targets(y_true, y_score, labels=None, *, metric):
    """Validate inputs; return a boolean indicator ``Y`` and the scores ``P``.

    ``y_true`` is either a label-indicator matrix (dense or sparse) of the
    same shape as ``y_score`` (multi-label), or a 1-D array of class labels
    (multi-class) that ``labels`` (or the default rule, see
    :func:`hit_at_k_score`) maps onto the columns of ``y_score``.

    This is also where every metric applies the module's rule for a
    ``y_true`` with no positive label at all: a ``ValueError`` (see
    :mod:`skvidsage.metrics`, "Inputs without positive labels"). Videos
    without labels among labelled ones are valid and left to each metric.
    ``metric`` names the caller in that message.
    """
    P = _check_score(y_score)
    Y = _indicator(y_true, P.shape, labels)
    if not Y.any():
        n = len(Y)
        raise ValueError(
            f"{metric} is undefined: y_true has no positive label (none of its "
            f"{counted(n, 'video')} has a label), so every y_score "
            "would get the same value. Score on data with at least one labelled "
            "video; in cross_val_score or GridSearchCV such a test fold gets "
            "error_score (nan by default, with a warning), so split so that "
            "each test fold keeps some positives."
        )
    return Y, P


def _indicator(y_true, shape, labels):
    """``y_true`` as a boolean indicator of the given ``(n, n_classes)``."""
    n, n_classes = shape
    if sp.issparse(y_true):
        if labels is not None:
            raise ValueError("labels= only applies to 1-D multi-class y_true.")
        Y = sp.csr_matrix(y_true)
        if Y.shape != shape:
            raise ValueError(
                f"y_true has shape {Y.shape} but y_score has shape {shape}; "
                "a label-indicator y_true must match y_score."
            )
        data = Y.data
        if data.size and not np.all((data == 0) | (data == 1)):
            raise ValueError("A label-indicator y_true may only contain 0 and 1.")
        return Y.toarray().astype(bool, copy=False)

    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] == 1 and n_classes != 1:
        y_true = y_true.ravel()
    if y_true.ndim == 2:
        if labels is not None:
            raise ValueError("labels= only applies to 1-D multi-class y_true.")
        if y_true.shape != shape:
            raise ValueError(
                f"y_true has shape {y_true.shape} but y_score has shape "
                f"{shape}; a label-indicator y_true must match y_score."
            )
        if y_true.dtype == object or not np.all((y_true == 0) | (y_true == 1)):
            raise ValueError("A label-indicator y_true may only contain 0 and 1.")
        return y_true.astype(bool)
    if y_true.ndim != 1:
        raise ValueError(
            "y_true must be 1-D class labels or a 2-D label-indicator matrix; "
            f"got shape {y_true.shape}."
        )
    if y_true.shape[0] != n:
        raise ValueError(
            f"y_true has {y_true.shape[0]} samples but y_score has {n}."
        )
    return _labels_to_indicator(y_true, n_classes, labels)


def _labels_to_indicator(y_true, n_classes, labels):
    """One-hot encode 1-D class labels onto ``n_classes`` score columns."""
    if labels is None:
        if y_true.dtype.kind in "iub" or (
            y_true.dtype.kind == "f" and np.all(np.mod(y_true, 1) == 0)
        ):
            if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
                labels = np.unique(y_true)
            else:
                labels = np.arange(n_classes)
        else:
            labels = np.unique(y_true)
        if len(labels) != n_classes:
            raise ValueError(
                f"y_true has {len(np.unique(y_true))} distinct labels that are not "
                f"column indices 0..{n_classes - 1} of y_score; pass labels= "
                "(one label per column of y_score, in column order)."
            )
    else:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != n_classes:
            raise ValueError(
                f"labels must be 1-D with one entry per column of y_score "
                f"({n_classes}); got shape {labels.shape}."
            )
        if len(np.unique(labels)) != len(labels):
            raise ValueError("labels must be unique.")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.searchsorted(sorted_labels, y_true)
    pos = np.clip(pos, 0, len(labels) - 1)
    found = sorted_labels[pos] == y_true
    if not np.all(found):
        unknown = np.unique(y_true[~found])
        raise ValueError(
            f"y_true contains labels not in labels: {unknown[:10].tolist()}"
            f"{' ...' if len(unknown) > 10 else ''} (first at row "
            f"{int(np.flatnonzero(~found)[0])})."
        )
    Y = np.zeros((len(y_true), n_classes), dtype=bool)
    Y[np.arange(len(y_true)), order[pos]] = True
    return Y


def _check_k(k, name):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{name} must be a positive integer; got {k!r}.")
    return int(k)


# --------------------------------------------------------------------------
# ranking helpers
# --------------------------------------------------------------------------
def _top_k_mask(P, k):
    """Boolean mask of each row's ``k`` highest scores (ties: lowest index).

    ``k`` is an int or a per-row integer array; rows with ``k == 0`` select
    nothing. O(n_samples * n_classes) per distinct value of ``k``.
    """
    n, n_classes = P.shape
    ks = np.broadcast_to(np.minimum(np.asarray(k), n_classes), (n,))
    mask = np.zeros(P.shape, dtype=bool)
    for kk in np.unique(ks):
        if kk == 0:
            continue
        rows = np.flatnonzero(ks == kk)
        block = P[rows]
        kth = np.partition(block, n_classes - kk, axis=1)[:, n_classes - kk]
        kth = kth[:, None]
        above = block > kth
        need = kk - above.sum(axis=1, keepdims=True)
        equal = block == kth
        take_equal = equal & (np.cumsum(equal, axis=1) <= need)
        mask[rows] = above | take_equal
    return mask


def _kept_predictions(P, top_k):
    """Mask of each video's ``top_k`` predictions (all of them for None)."""
    if top_k is None or _check_k(top_k, "top_k") >= P.shape[1]:
        return np.ones(P.shape, dtype=bool)
    return _top_k_mask(P, top_k)


def _at(name, top_k):
    """Name a metric with its cut-off, for messages (``"GAP@20"``)."""
    return name if top_k is None else f"{name}@{top_k}"


def _average_precision(scores, positives, n_positives):
    """Non-interpolated AP of one ranked list (stable sort, descending).

    ``n_positives`` (> 0) counts all positives, also those not in the list.
    """
    order = np.argsort(-scores, kind="stable")
    hits = positives[order]
    ranks = np.flatnonzero(hits) + 1.0
    return float(np.sum(np.arange(1, len(ranks) + 1) / ranks) / n_positives)


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------
def hit_at_k_score(y_true, y_score, *, k=1, labels=None):
    """Hit@k: fraction of videos with at least one true label in their top k.

    With ``k=1`` this is the YouTube-8M Hit@1: the mean over videos of
    ``Y[i, argmax_j P[i, j]]``.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_classes) or \
            (n_samples,)
        Label-indicator matrix (multi-label) or class labels (multi-class).
        1-D labels map onto the columns of ``y_score`` through ``labels``; when
        ``labels`` is None, integer labels in ``[0, n_classes)`` are column
        indices, otherwise the sorted unique labels must number ``n_classes``.
    y_score : array-like of shape (n_samples, n_classes)
        Scores, probabilities or decision values; higher means more likely.
    k : int, default=1
        Number of top-scored classes to consider per video (clipped to
        ``n_classes``). Ties go to the lowest class index.
    labels : array-like of shape (n_classes,), default=None
        Class label of each column of ``y_score`` (1-D ``y_true`` only).

    Returns
    -------
    score : float
        Hit@k in [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` has no positive label at all (every ``y_score`` would
        score 0). See "Inputs without positive labels" in
        :mod:`skvidsage.metrics`; a video without labels among labelled
        ones is valid and counts as a miss.

    Examples
    --------
    >>> from skvidsage.metrics import hit_at_k_score
    >>> y_true = [[0, 1, 0], [1, 0, 1]]
    >>> y_score = [[0.2, 0.7, 0.1], [0.1, 0.8, 0.3]]
    >>> hit_at_k_score(y_true, y_score)
    0.5
    >>> hit_at_k_score(y_true, y_score, k=2)
    1.0
    """
    k = _check_k(k, "k")
    Y, P = _check_targets(y_true, y_score, labels, metric=f"Hit@{k}")
    if k == 1:
        hits = Y[np.arange(len(Y)), np.argmax(P, axis=1)]
    else:
        hits = np.any(Y & _top_k_mask(P, k), axis=1)
    return float(np.mean(hits))


def top_k_accuracy_score(y_true, y_score, *, k=5, labels=None):
    """Top-k accuracy for multi-class problems.

    The fraction of samples whose true class is among the ``k`` highest scores,
    scikit-learn's :func:`sklearn.metrics.top_k_accuracy_score` meaning. Unlike
    scikit-learn's function, ``y_score`` is always 2-D (also for two classes),
    classes missing from ``y_true`` are allowed, and ties go to the lowest
    class index (scikit-learn's go to the highest).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class labels, mapped onto columns as in :func:`hit_at_k_score`.
    y_score : array-like of shape (n_samples, n_classes)
        Scores; higher means more likely.
    k : int, default=5
        Number of top-scored classes that count as correct.
    labels : array-like of shape (n_classes,), default=None
        Class label of each column of ``y_score``.

    Returns
    -------
    score : float
        Top-k accuracy in [0, 1].

    Examples
    --------
    >>> from skvidsage.metrics import top_k_accuracy_score
    >>> top_k_accuracy_score([2, 0], [[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]], k=2)
    0.5
    """
    y = np.asarray(y_true)
    if sp.issparse(y_true) or y.ndim != 1:
        raise ValueError(
            "top_k_accuracy_score takes 1-D multi-class labels; for a "
            "label-indicator y_true use hit_at_k_score."
        )
    return hit_at_k_score(y, y_score, k=k, labels=labels)


def precision_at_equal_recall_rate_score(y_true, y_score, *, labels=None):
    """PERR: precision at equal recall rate, averaged over videos.

    For a video with ``m`` true labels, the precision of its ``m``
    highest-scored classes, where a class counts only if it is a true label
    *and* its score is > 0. A video with no true labels scores 0 and still
    counts in the mean, as in the YouTube-8M reference.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_classes) or \
            (n_samples,)
        Label-indicator matrix or class labels (see :func:`hit_at_k_score`).
    y_score : array-like of shape (n_samples, n_classes)
        Scores; only scores > 0 can count as hits (as in the reference, which
        expects probabilities).
    labels : array-like of shape (n_classes,), default=None
        Class label of each column of ``y_score`` (1-D ``y_true`` only).

    Returns
    -------
    score : float
        PERR in [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` has no positive label at all (every ``y_score`` would
        score 0). See "Inputs without positive labels" in
        :mod:`skvidsage.metrics`; a video without labels among labelled
        ones is valid and scores 0.

    Examples
    --------
    >>> from skvidsage.metrics import perr_score
    >>> y_true = [[1, 1, 0], [0, 0, 0]]
    >>> y_score = [[0.9, 0.1, 0.5], [0.3, 0.2, 0.1]]
    >>> perr_score(y_true, y_score)  # (1/2 + 0) / 2
    0.25
    """
    Y, P = _check_targets(y_true, y_score, labels, metric="PERR")
    n_labels = Y.sum(axis=1)
    top = _top_k_mask(P, n_labels)
    hits = (top & Y & (P > 0)).sum(axis=1)
    per_video = np.divide(
        hits, n_labels, out=np.zeros(len(Y), dtype=np.float64), where=n_labels > 0
    )
    return float(per_video.mean())


perr_score = precision_at_equal_recall_rate_score


def global_average_precision_score(y_true, y_score, *, top_k=20, labels=None):
    """GAP@k: average precision of all videos' top-k predictions pooled.

    Each video keeps its ``min(top_k, n_classes)`` highest (score, label)
    pairs; all are pooled and ranked by score, and

    ``GAP = (1 / N) * sum over pooled positives at rank r of (hits up to r) / r``

    where ``N`` counts *all* positives in ``y_true``, so true labels that fell
    outside a video's top-k cost recall.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_classes) or \
            (n_samples,)
        Label-indicator matrix or class labels (see :func:`hit_at_k_score`).
    y_score : array-like of shape (n_samples, n_classes)
        Scores; higher means more likely.
    top_k : int or None, default=20
        Predictions kept per video; None keeps all.
    labels : array-like of shape (n_classes,), default=None
        Class label of each column of ``y_score`` (1-D ``y_true`` only).

    Returns
    -------
    score : float
        GAP in [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` has no positive label at all (``N = 0``: GAP is
        undefined). See "Inputs without positive labels" in
        :mod:`skvidsage.metrics`.

    Examples
    --------
    >>> from skvidsage.metrics import global_average_precision_score
    >>> y_true = [[1, 0, 0], [0, 0, 1]]
    >>> y_score = [[0.9, 0.5, 0.1], [0.8, 0.3, 0.2]]
    >>> global_average_precision_score(y_true, y_score, top_k=1)  # (1/1) / 2
    0.5
    """
    Y, P = _check_targets(y_true, y_score, labels, metric=_at("GAP", top_k))
    mask = _kept_predictions(P, top_k)
    return _average_precision(P[mask], Y[mask], int(Y.sum()))


def mean_average_precision_score(y_true, y_score, *, top_k=20, labels=None):
    """mAP: mean over classes of the AP of each class's ranked videos.

    For class ``c``, the videos whose top-k predictions contain ``c`` are
    ranked by their score for ``c``; AP uses as denominator all positives of
    ``c`` (a positive outside its video's top-k costs recall). Classes with no
    positive in ``y_true`` are dropped, not scored 0, as in the YouTube-8M
    reference (``filter_empty_classes``).

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_classes) or \
            (n_samples,)
        Label-indicator matrix or class labels (see :func:`hit_at_k_score`).
    y_score : array-like of shape (n_samples, n_classes)
        Scores; higher means more likely.
    top_k : int or None, default=20
        Predictions kept per video; None keeps all, which gives the plain
        macro-averaged AP (with ties broken by video order, unlike
        :func:`sklearn.metrics.average_precision_score`, which averages over
        tied thresholds).
    labels : array-like of shape (n_classes,), default=None
        Class label of each column of ``y_score`` (1-D ``y_true`` only).

    Returns
    -------
    score : float
        mAP in [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` has no positive label at all (no class is left to
        average: mAP is undefined). See "Inputs without positive labels" in
        :mod:`skvidsage.metrics`.

    Examples
    --------
    >>> from skvidsage.metrics import mean_average_precision_score
    >>> y_true = [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    >>> y_score = [[0.9, 0.1, 0.0], [0.6, 0.5, 0.0], [0.3, 0.2, 0.1]]
    >>> # class 0: hits at ranks 1 and 3 -> (1 + 2/3) / 2; class 1: its positive
    >>> # is outside its video's top-1 -> 0; class 2: no positive -> dropped
    >>> round(mean_average_precision_score(y_true, y_score, top_k=1), 4)
    0.4167
    """
    Y, P = _check_targets(y_true, y_score, labels, metric=_at("mAP", top_k))
    n_classes = P.shape[1]
    mask = _kept_predictions(P, top_k)
    n_pos = Y.sum(axis=0)
    kept = n_pos > 0  # not empty: _check_targets saw a positive
    rows, cols = np.nonzero(mask)  # row-major: earlier video first in ties
    scores = P[rows, cols]
    order = np.lexsort((-scores, cols))  # by class, then score descending
    cols = cols[order]
    hits = Y[rows[order], cols]
    starts = np.searchsorted(cols, np.arange(n_classes))
    rank = np.arange(len(cols)) - starts[cols] + 1.0
    cum_hits = np.cumsum(hits)
    cum_before = np.concatenate(([0], cum_hits))[starts]
    precision_at_hit = np.where(hits, (cum_hits - cum_before[cols]) / rank, 0.0)
    ap = np.bincount(cols, weights=precision_at_hit, minlength=n_classes)
    return float(np.mean(ap[kept] / n_pos[kept]))
