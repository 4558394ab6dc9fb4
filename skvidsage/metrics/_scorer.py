"""Scorer objects for the metrics, for ``cross_val_score`` and ``GridSearchCV``."""

import numpy as np
import scipy.sparse as sp

from skvidsage.metrics._scores import (
    _check_k,
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    precision_at_equal_recall_rate_score,
)

__all__ = [
    "gap_scorer",
    "hit_at_one_scorer",
    "make_youtube8m_scorer",
    "map_scorer",
    "perr_scorer",
    "top_k_scorer",
]


def _response_scores(estimator, X):
    """Scores from ``predict_proba`` (preferred) or ``decision_function``.

    Returns ``(scores, floor)``: a 2-D array and the value that stands for a
    class the estimator never saw (probability 0, or below every decision
    value).
    """
    for method in ("predict_proba", "decision_function"):
        if hasattr(estimator, method):
            scores = getattr(estimator, method)(X)
            break
    else:
        raise TypeError(
            f"{type(estimator).__name__} has neither predict_proba nor "
            "decision_function; YouTube-8M scorers need class scores."
        )
    if isinstance(scores, list):
        raise TypeError(
            f"{type(estimator).__name__}.{method} returned a list (one array per "
            "output); use OneVsRestClassifier for multi-label problems."
        )
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:  # binary decision_function
        scores = np.column_stack([-scores, scores])
    if method == "predict_proba":
        floor = 0.0
    else:
        floor = min(0.0, float(scores.min())) - 1.0
    return scores, floor


class _YouTube8MScorer:
    """Scorer ``(estimator, X, y) -> float`` for a YouTube-8M metric.

    Maps the score columns through the estimator's ``classes_`` so that a CV
    fold whose training part lacks a class, or whose test part lacks one, is
    still scored on the right columns: a test label the estimator never saw
    gets a column with the lowest possible score.
    """

    def __init__(self, score_func, **kwargs):
        self._score_func = score_func
        self._kwargs = kwargs

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self._kwargs.items())
        return f"make_youtube8m_scorer({self._score_func.__name__}{args})"

    def __call__(self, estimator, X, y_true, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("YouTube-8M metrics do not take sample weights.")
        scores, floor = _response_scores(estimator, X)
        classes = getattr(estimator, "classes_", None)
        if sp.issparse(y_true) or np.ndim(y_true) == 2:
            if scores.shape[1] != np.shape(y_true)[1]:
                raise ValueError(
                    f"The estimator scores {scores.shape[1]} classes but y has "
                    f"{np.shape(y_true)[1]} label columns."
                )
            return self._score_func(y_true, scores, **self._kwargs)
        y_true = np.asarray(y_true)
        if classes is None:
            return self._score_func(y_true, scores, **self._kwargs)
        classes = np.asarray(classes)
        if len(classes) != scores.shape[1]:
            raise ValueError(
                f"The estimator has {len(classes)} classes_ but its scores have "
                f"{scores.shape[1]} columns."
            )
        unseen = np.setdiff1d(np.unique(y_true), classes)
        if unseen.size:
            classes = np.concatenate([classes, unseen])
            pad = np.full((len(scores), unseen.size), floor)
            scores = np.hstack([scores, pad])
        return self._score_func(y_true, scores, labels=classes, **self._kwargs)


def make_youtube8m_scorer(score_func, **kwargs):
    """Make a scorer from a metric of this module.

    Parameters
    ----------
    score_func : callable
        ``score_func(y_true, y_score, labels=None, **kwargs) -> float``, e.g.
        :func:`mean_average_precision_score`.
    **kwargs
        Passed to ``score_func`` (e.g. ``top_k=10``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better, usable as
        ``scoring=`` in ``cross_val_score`` and ``GridSearchCV``. It calls
        ``predict_proba`` (or ``decision_function``) and maps the columns
        through the estimator's ``classes_``. On a test fold whose ``y`` has
        no positive label the metric raises, so ``cross_val_score`` and
        ``GridSearchCV`` give that fold their ``error_score``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skvidsage.metrics import make_youtube8m_scorer, hit_at_k_score
    >>> X = [[0.0], [0.1], [1.0], [1.1], [2.0], [2.1]]
    >>> y = [0, 0, 1, 1, 2, 2]
    >>> scorer = make_youtube8m_scorer(hit_at_k_score, k=2)
    >>> cross_val_score(LogisticRegression(), X, y, cv=2, scoring=scorer).shape
    (2,)
    """
    return _YouTube8MScorer(score_func, **kwargs)


map_scorer = make_youtube8m_scorer(mean_average_precision_score)
gap_scorer = make_youtube8m_scorer(global_average_precision_score)
hit_at_one_scorer = make_youtube8m_scorer(hit_at_k_score, k=1)
perr_scorer = make_youtube8m_scorer(precision_at_equal_recall_rate_score)
_SCORER_DOC = """Scorer for {what}, for ``cross_val_score`` and ``GridSearchCV``.

Use as ``scoring={name}``. It calls ``predict_proba`` (else
``decision_function``) and maps the columns through the estimator's
``classes_``, so a fold that lacks a class is scored on the right columns.
A test fold whose ``y`` has no positive label raises, so it gets
``error_score`` (see "Inputs without positive labels" in
:mod:`skvidsage.metrics`).
"""
for _scorer, _name, _what in [
    (map_scorer, "map_scorer", "mAP@20 (:func:`mean_average_precision_score`)"),
    (gap_scorer, "gap_scorer", "GAP@20 (:func:`global_average_precision_score`)"),
    (hit_at_one_scorer, "hit_at_one_scorer", "Hit@1 (:func:`hit_at_k_score`, ``k=1``)"),
    (perr_scorer, "perr_scorer", "PERR (:func:`precision_at_equal_recall_rate_score`)"),
]:
    _scorer.__doc__ = _SCORER_DOC.format(what=_what, name=_name)


def top_k_scorer(k=5):
    """Scorer for top-k accuracy (multi-class) or Hit@k (multi-label).

    Parameters
    ----------
    k : int, default=5
        Number of top-scored classes that count as a hit.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from skvidsage.metrics import top_k_scorer
    >>> top_k_scorer(3)
    make_youtube8m_scorer(hit_at_k_score, k=3)
    """
    return make_youtube8m_scorer(hit_at_k_score, k=_check_k(k, "k"))
