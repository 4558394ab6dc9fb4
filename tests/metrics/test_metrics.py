import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import average_precision_score
from sklearn.metrics import top_k_accuracy_score as sk_top_k_accuracy
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvidsage.metrics import (
    gap_scorer,
    global_average_precision_score,
    hit_at_k_score,
    hit_at_one_scorer,
    map_scorer,
    mean_average_precision_score,
    perr_score,
    perr_scorer,
    top_k_accuracy_score,
    top_k_scorer,
)

from . import _yt8m_reference as ref

METRICS = {
    "hit@1": (hit_at_k_score, ref.hit_at_one),
    "perr": (perr_score, ref.perr),
    "gap": (global_average_precision_score, ref.gap),
    "map": (mean_average_precision_score, ref.mean_ap),
}


def _random_problem(rng, n, c, density=0.1, empty_rows=True):
    y_score = rng.rand(n, c)  # continuous: no exact ties
    y_true = (rng.rand(n, c) < density).astype(int)
    if not empty_rows:
        y_true[np.arange(n), rng.randint(c, size=n)] = 1
    return y_true, y_score


# ---------------------------------------------------------------- hand cases
def test_hit_at_one_ties_go_to_lowest_index():
    y_score = [[0.5, 0.5, 0.1], [0.2, 0.7, 0.7]]
    assert hit_at_k_score([[1, 0, 0], [0, 1, 0]], y_score) == 1.0
    assert hit_at_k_score([[0, 1, 0], [0, 0, 1]], y_score) == 0.0


def test_hit_at_k_counts_any_label_in_top_k():
    y_true = [[0, 0, 1], [1, 0, 0]]
    y_score = [[0.5, 0.3, 0.4], [0.1, 0.9, 0.8]]
    assert hit_at_k_score(y_true, y_score, k=1) == 0.0
    assert hit_at_k_score(y_true, y_score, k=2) == 0.5
    assert hit_at_k_score(y_true, y_score, k=3) == 1.0
    assert hit_at_k_score(y_true, y_score, k=50) == 1.0  # clipped to n_classes


def test_perr_video_without_labels_scores_zero_and_counts():
    y_true = [[1, 1, 0], [0, 0, 0]]
    y_score = [[0.9, 0.1, 0.5], [0.3, 0.2, 0.1]]
    assert perr_score(y_true, y_score) == pytest.approx(0.25)  # (1/2 + 0) / 2


def test_perr_only_positive_scores_count():
    y_true = [[1, 0], [1, 0]]
    assert perr_score(y_true, [[0.0, -1.0], [0.2, -1.0]]) == pytest.approx(0.5)
    assert perr_score(y_true, [[-0.5, -1.0], [-0.2, -1.0]]) == 0.0


def test_perr_uses_as_many_predictions_as_labels():
    y_true = [[1, 1, 1, 0]]
    # top-3 = classes 3, 0, 1 -> two of them labelled
    assert perr_score(y_true, [[0.8, 0.7, 0.1, 0.9]]) == pytest.approx(2 / 3)


def test_gap_denominator_counts_positives_outside_top_k():
    y_true = [[1, 0, 1]]
    assert global_average_precision_score(
        y_true, [[0.9, 0.5, 0.1]], top_k=1
    ) == pytest.approx(0.5)
    assert global_average_precision_score(
        y_true, [[0.9, 0.5, 0.1]], top_k=None
    ) == pytest.approx((1 + 2 / 3) / 2)


def test_gap_pools_videos():
    y_true = [[1, 0, 0], [0, 0, 1]]
    # pooled top-2: 0.95(+) 0.9(+) 0.8 0.7 -> AP 1
    assert global_average_precision_score(
        y_true, [[0.9, 0.8, 0.1], [0.7, 0.6, 0.95]], top_k=2
    ) == pytest.approx(1.0)
    # second video's label falls outside its top-2: pooled 0.9(+) .8 .7 .6
    assert global_average_precision_score(
        y_true, [[0.9, 0.8, 0.1], [0.7, 0.6, 0.5]], top_k=2
    ) == pytest.approx(0.5)
    # interleaved: 0.9(+) 0.85(-) 0.8(+)  -> (1/1 + 2/3) / 2
    assert global_average_precision_score(
        y_true, [[0.9, 0.2, 0.1], [0.85, 0.1, 0.8]], top_k=2
    ) == pytest.approx((1 + 2 / 3) / 2)


def test_map_drops_classes_without_positives():
    y_true = [[1, 0, 0], [0, 1, 0]]
    y_score = [[0.9, 0.2, 0.3], [0.1, 0.8, 0.5]]
    # classes 0 and 1 are ranked perfectly; class 2 has no positive
    assert mean_average_precision_score(y_true, y_score) == pytest.approx(1.0)


def test_map_per_class_lists_are_top_k_filtered():
    y_true = [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    y_score = [[0.9, 0.1, 0.0], [0.6, 0.5, 0.0], [0.3, 0.2, 0.1]]
    # top-1: class 0 list .9(+) .6(-) .3(+) -> 5/6; class 1 positive not in
    # any top-1 -> 0
    assert mean_average_precision_score(y_true, y_score, top_k=1) == pytest.approx(
        (5 / 6 + 0) / 2
    )
    # top-2: class 1 list .5(+) .2(-) .1(-) -> 1
    assert mean_average_precision_score(y_true, y_score, top_k=2) == pytest.approx(
        (5 / 6 + 1) / 2
    )


# ------------------------------------------------- no positive label at all
@pytest.mark.parametrize(
    "metric, kwargs, name",
    [
        (hit_at_k_score, {}, "Hit@1"),
        (hit_at_k_score, {"k": 2}, "Hit@2"),
        (perr_score, {}, "PERR"),
        (global_average_precision_score, {}, "GAP@20"),
        (global_average_precision_score, {"top_k": None}, "GAP"),
        (mean_average_precision_score, {}, "mAP@20"),
        (mean_average_precision_score, {"top_k": 1}, "mAP@1"),
    ],
)
@pytest.mark.parametrize("kind", ["dense", "sparse", "column"])
def test_no_positive_label_raises_for_every_metric(metric, kwargs, name, kind):
    y_true = {
        "dense": np.zeros((3, 2), dtype=int),
        "sparse": sp.csr_matrix((3, 2)),
        "column": np.zeros((3, 1), dtype=int),
    }[kind]
    y_score = np.array([[0.3, 0.2], [0.1, 0.9], [0.5, 0.5]])
    if kind == "column":
        y_score = y_score[:, :1]
    with pytest.raises(
        ValueError,
        match=rf"^{name} is undefined: y_true has no positive label \(none of "
        r"its 3 videos has a label\).*at least one labelled video.*error_score",
    ):
        metric(y_true, y_score, **kwargs)


def test_no_positive_label_is_checked_before_the_metric():
    # one place decides: the rule applies whatever the scores are, and the
    # message names a single video in the singular
    for metric, _ in METRICS.values():
        with pytest.raises(ValueError, match="none of its 1 video has a label"):
            metric([[0, 0, 0]], [[-1.0, 0.0, 2.0]])


def test_videos_without_labels_among_labelled_ones_keep_reference_meaning():
    y_true = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1]])
    y_score = np.array(
        [[0.9, 0.5, 0.1], [0.8, 0.3, 0.2], [0.2, 0.7, 0.4], [0.4, 0.6, 0.3]]
    )
    assert hit_at_k_score(y_true, y_score) == pytest.approx(0.5)  # 2 misses of 4
    # unlabelled videos score 0 and count: (0 + 1 + 0 + 1/2) / 4
    assert perr_score(y_true, y_score) == pytest.approx((1 + 0.5) / 4)
    for metric, reference in METRICS.values():
        assert metric(y_true, y_score) == pytest.approx(
            reference(y_score, y_true), abs=1e-12
        )


def test_top_k_accuracy_labels_always_have_a_positive():
    # 1-D labels give each sample a positive, so the rule never fires, even
    # for a single sample or a single class present
    assert top_k_accuracy_score([1], [[0.2, 0.5, 0.3]], k=1) == 1.0
    assert top_k_accuracy_score([2, 2], [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], k=2) == 0.5
    with pytest.raises(ValueError, match="hit_at_k_score"):
        top_k_accuracy_score(np.zeros((2, 3)), np.ones((2, 3)))


def test_multiclass_labels_map_to_columns():
    y_score = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    onehot = np.eye(3)[[1, 0, 0]]
    for metric, _ in METRICS.values():
        expected = metric(onehot, y_score)
        assert metric([1, 0, 0], y_score) == pytest.approx(expected)
        with pytest.raises(ValueError, match="pass labels="):
            metric(["b", "a", "a"], y_score)  # 2 string labels, 3 columns
        assert metric(
            ["b", "a", "a"], y_score, labels=["a", "b", "c"]
        ) == pytest.approx(expected)
        # labels= in another order permutes the columns
        assert metric(
            ["b", "a", "a"], y_score[:, [2, 0, 1]], labels=["c", "a", "b"]
        ) == pytest.approx(expected)


def test_sparse_y_true_equals_dense():
    rng = np.random.RandomState(0)
    y_true, y_score = _random_problem(rng, 40, 7)
    for metric, _ in METRICS.values():
        assert metric(sp.csr_matrix(y_true), y_score) == metric(y_true, y_score)


def test_top_k_accuracy_matches_scikit_learn():
    rng = np.random.RandomState(0)
    y_score = rng.rand(60, 5)
    y_true = rng.randint(5, size=60)
    for k in (1, 2, 3):
        assert top_k_accuracy_score(y_true, y_score, k=k) == pytest.approx(
            sk_top_k_accuracy(y_true, y_score, k=k, labels=np.arange(5))
        )


def test_map_with_all_predictions_matches_scikit_learn_macro_ap():
    rng = np.random.RandomState(1)
    y_true, y_score = _random_problem(rng, 80, 6, density=0.3, empty_rows=False)
    y_true[0] = 1  # every class has a positive
    assert mean_average_precision_score(y_true, y_score, top_k=None) == pytest.approx(
        average_precision_score(y_true, y_score, average="macro"), abs=1e-12
    )


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize(
    "y_true, y_score, match",
    [
        ([[1, 0]], [[0.1, 0.2, 0.3]], "shape"),
        ([[1, 0, 0]], [[0.1, np.nan, 0.3]], "NaN"),
        ([[1, 0, 0]], [[0.1, np.inf, 0.3]], "infinity"),
        ([[1, 0, 2]], [[0.1, 0.2, 0.3]], "0 and 1"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "0 sample"),
        ([0, 1], [[0.1, 0.2, 0.3]], "samples"),
        ([[1, 0, 0]], [0.1, 0.2, 0.3], "2-D"),
        (["x", "y"], [[0.1, 0.9], [0.3, 0.7]], None),
    ],
)
def test_bad_input_raises_clear_error(name, y_true, y_score, match):
    metric, _ = METRICS[name]
    if match is None:  # valid: two string labels, two columns
        metric(y_true, y_score)
        return
    with pytest.raises(ValueError, match=match):
        metric(y_true, y_score)


def test_label_not_in_labels_raises():
    with pytest.raises(ValueError, match=r"not in labels: \['z'\].*row 1"):
        hit_at_k_score(["a", "z"], [[0.1, 0.9], [0.3, 0.7]], labels=["a", "b"])
    with pytest.raises(ValueError, match="pass labels="):
        hit_at_k_score([5, 7, 9], [[0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])
    with pytest.raises(ValueError, match="one entry per column"):
        hit_at_k_score([0, 1], [[0.1, 0.9], [0.3, 0.7]], labels=[0, 1, 2])


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="positive integer"):
        hit_at_k_score([[1, 0]], [[0.5, 0.2]], k=k)
    with pytest.raises(ValueError, match="positive integer"):
        global_average_precision_score([[1, 0]], [[0.5, 0.2]], top_k=k)


def test_top_k_accuracy_rejects_indicator():
    with pytest.raises(ValueError, match="hit_at_k_score"):
        top_k_accuracy_score([[1, 0]], [[0.5, 0.2]])


# ------------------------------------------------- agreement with reference
@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize(
    "n, c, density", [(50, 3, 0.4), (200, 30, 0.05), (120, 64, 0.03), (7, 25, 0.2)]
)
def test_agrees_with_youtube8m_reference(name, n, c, density):
    rng = np.random.RandomState(n + c)
    y_true, y_score = _random_problem(rng, n, c, density)
    y_true[:, -1] = 0  # a class without positives
    ours, theirs = METRICS[name]
    assert abs(ours(y_true, y_score) - theirs(y_score, y_true)) < 1e-9


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 30),
    c=st.integers(2, 30),
    top_k=st.integers(1, 25),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_agrees_with_reference_property(n, c, top_k, density, seed):
    rng = np.random.RandomState(seed)
    y_score = rng.permutation(n * c).reshape(n, c) / (n * c)  # no ties
    y_true = (rng.rand(n, c) < density).astype(int)
    if not y_true.any():  # no positive at all: every metric raises
        for metric, _ in METRICS.values():
            with pytest.raises(ValueError, match="no positive label"):
                metric(y_true, y_score)
        return
    assert abs(hit_at_k_score(y_true, y_score) - ref.hit_at_one(y_score, y_true)) < 1e-9
    assert abs(perr_score(y_true, y_score) - ref.perr(y_score, y_true)) < 1e-9
    assert abs(
        global_average_precision_score(y_true, y_score, top_k=top_k)
        - ref.gap(y_score, y_true, top_k)
    ) < 1e-9
    assert abs(
        mean_average_precision_score(y_true, y_score, top_k=top_k)
        - ref.mean_ap(y_score, y_true, top_k)
    ) < 1e-9


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 25), c=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_invariant_to_video_order_and_bounded(n, c, seed):
    rng = np.random.RandomState(seed)
    y_score = rng.permutation(n * c).reshape(n, c) / (n * c) - 0.3
    y_true = (rng.rand(n, c) < 0.3).astype(int)
    y_true[0, 0] = 1
    perm = rng.permutation(n)
    for metric, _ in METRICS.values():
        value = metric(y_true, y_score)
        assert 0.0 <= value <= 1.0
        assert metric(y_true[perm], y_score[perm]) == pytest.approx(value, abs=1e-12)


def test_perfect_scores_give_one():
    rng = np.random.RandomState(0)
    y_true = (rng.rand(30, 8) < 0.3).astype(int)
    y_true[np.arange(30), rng.randint(8, size=30)] = 1
    y_score = y_true + 0.01 * rng.rand(30, 8)
    for metric, _ in METRICS.values():
        assert metric(y_true, y_score) == pytest.approx(1.0)


def test_float32_scores_are_accepted():
    rng = np.random.RandomState(0)
    y_true, y_score = _random_problem(rng, 30, 6, 0.3)
    for metric, _ in METRICS.values():
        assert metric(y_true, y_score.astype(np.float32)) == pytest.approx(
            metric(y_true, y_score.astype(np.float32).astype(np.float64))
        )


# ------------------------------------------------------------------ scorers
SCORERS = {
    "map": (map_scorer, mean_average_precision_score),
    "gap": (gap_scorer, global_average_precision_score),
    "hit@1": (hit_at_one_scorer, hit_at_k_score),
    "perr": (perr_scorer, perr_score),
}


def _blobs(rng, n_per_class, n_classes, n_features=4):
    centers = rng.randn(n_classes, n_features) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centers[y] + rng.randn(len(y), n_features)
    return X, y


@pytest.mark.parametrize("name", list(SCORERS))
def test_scorer_equals_metric_on_predict_proba(name):
    rng = np.random.RandomState(0)
    X, y = _blobs(rng, 20, 4)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    scorer, metric = SCORERS[name]
    assert scorer(clf, X, y) == pytest.approx(metric(y, clf.predict_proba(X)))


def test_scorer_maps_string_classes():
    rng = np.random.RandomState(0)
    X, y = _blobs(rng, 15, 3)
    names = np.array(["cat", "dog", "eel"])[y]
    clf = LogisticRegression().fit(X, names)
    assert hit_at_one_scorer(clf, X, names) == pytest.approx(
        np.mean(clf.predict(X) == names)
    )


def test_scorers_in_cross_val_score_with_fold_missing_a_class():
    rng = np.random.RandomState(0)
    X, y = _blobs(rng, 12, 4)
    # class 3 only in the first 6 rows of the data: with KFold(2) the second
    # fold trains without class 3 and the first tests on it untrained
    order = np.concatenate([np.flatnonzero(y == 3)[:6], np.flatnonzero(y != 3)])
    X, y = X[order][:30], y[order][:30]
    y[6:] = np.where(y[6:] == 3, 0, y[6:])
    cv = KFold(2)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    for name, (scorer, metric) in SCORERS.items():
        scores = cross_val_score(pipe, X, y, cv=cv, scoring=scorer, error_score="raise")
        for (train, test), got in zip(cv.split(X), scores, strict=False):
            model = pipe.fit(X[train], y[train])
            proba = model.predict_proba(X[test])
            classes = model.classes_
            missing = np.setdiff1d(np.unique(y[test]), classes)
            full = np.hstack([proba, np.zeros((len(test), len(missing)))])
            labels = np.concatenate([classes, missing])
            assert got == pytest.approx(metric(y[test], full, labels=labels)), name
    assert 3 in y[:15] and 3 not in y[15:]  # the setting really occurred


def test_scorer_unseen_class_is_a_miss_not_an_error():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    clf = LogisticRegression().fit(X[:2], [0, 1])
    # label 7 was never seen: its column scores 0, so Hit@1 counts a miss
    assert hit_at_one_scorer(clf, X[2:], np.array([7, 7])) == 0.0
    assert 0.0 <= map_scorer(clf, X, np.array([0, 1, 7, 7])) <= 1.0


def test_scorers_multilabel_ovr_sparse_y():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 5)
    Y = (X[:, :4] + 0.5 * rng.randn(60, 4) > 0.8).astype(int)
    Y[:, 3] = 0
    Y[:2, 3] = 1  # class 3 absent from the second fold's test and train parts
    clf = OneVsRestClassifier(LogisticRegression())
    for scorer, metric in SCORERS.values():
        scores = cross_val_score(
            clf, X, Y, cv=KFold(3), scoring=scorer, error_score="raise"
        )  # (cross_val_score's y must be dense; the scorer itself takes sparse)
        assert np.all((scores >= 0) & (scores <= 1))
        fitted = clf.fit(X[:40], Y[:40])
        assert scorer(fitted, X[40:], sp.csr_matrix(Y[40:])) == pytest.approx(
            metric(Y[40:], fitted.predict_proba(X[40:]))
        )


def _multilabel_with_empty_last_fold(rng):
    X = rng.randn(30, 4)
    Y = (X[:, :3] > 0).astype(int)
    Y[20:] = 0  # KFold(3): the last test fold has no positive label
    return X, Y


@pytest.mark.parametrize("name", list(SCORERS))
def test_scorer_raises_on_y_without_positives(name):
    rng = np.random.RandomState(0)
    X, Y = _multilabel_with_empty_last_fold(rng)
    fitted = OneVsRestClassifier(LogisticRegression()).fit(X[:20], Y[:20])
    scorer, _ = SCORERS[name]
    with pytest.raises(ValueError, match="no positive label"):
        scorer(fitted, X[20:], Y[20:])
    with pytest.raises(ValueError, match="no positive label"):
        top_k_scorer(2)(fitted, X[20:], sp.csr_matrix(Y[20:]))


@pytest.mark.parametrize("name", list(SCORERS))
def test_cv_fold_without_positives_gets_error_score(name):
    rng = np.random.RandomState(0)
    X, Y = _multilabel_with_empty_last_fold(rng)
    clf = OneVsRestClassifier(LogisticRegression())
    scorer, _ = SCORERS[name]
    with pytest.warns(UserWarning, match="(?s)Scoring failed.*no positive label"):
        scores = cross_val_score(clf, X, Y, cv=KFold(3), scoring=scorer)
    assert np.all(np.isfinite(scores[:2])) and np.isnan(scores[2])
    with pytest.raises(ValueError, match="no positive label"):
        cross_val_score(clf, X, Y, cv=KFold(3), scoring=scorer, error_score="raise")
    with pytest.warns(UserWarning, match="Scoring failed"):
        scores = cross_val_score(
            clf, X, Y, cv=KFold(3), scoring=scorer, error_score=-1
        )
    assert scores[2] == -1


def test_grid_search_fold_without_positives_is_nan_not_zero():
    rng = np.random.RandomState(0)
    X, Y = _multilabel_with_empty_last_fold(rng)
    search = GridSearchCV(
        OneVsRestClassifier(LogisticRegression()),
        {"estimator__C": [0.1, 1.0]},
        scoring={"gap": gap_scorer, "perr": perr_scorer},
        refit=False,
        cv=KFold(3),
    )
    with pytest.warns(UserWarning, match="Scoring failed"):
        search.fit(X, Y)
    for key in ("split2_test_gap", "split2_test_perr"):
        assert np.all(np.isnan(search.cv_results_[key]))
    assert np.all(np.isfinite(search.cv_results_["split0_test_gap"]))


def test_scorer_uses_decision_function_when_no_proba():
    rng = np.random.RandomState(0)
    X, y = _blobs(rng, 10, 3)
    clf = RidgeClassifier().fit(X, y)
    assert not hasattr(clf, "predict_proba")
    assert hit_at_one_scorer(clf, X, y) == pytest.approx(
        hit_at_k_score(y, clf.decision_function(X))
    )
    binary = RidgeClassifier().fit(X[y < 2], y[y < 2])
    d = binary.decision_function(X[y < 2])
    assert d.ndim == 1
    assert top_k_scorer(1)(binary, X[y < 2], y[y < 2]) == pytest.approx(
        np.mean(binary.predict(X[y < 2]) == y[y < 2])
    )


def test_grid_search_with_scorers_in_parallel_and_pickle():
    rng = np.random.RandomState(0)
    X, y = _blobs(rng, 15, 3)
    scoring = {"map": map_scorer, "gap": gap_scorer, "top2": top_k_scorer(2)}
    search = GridSearchCV(
        LogisticRegression(), {"C": [0.01, 1.0]}, scoring=scoring, refit="map",
        cv=3, n_jobs=2, error_score="raise",
    ).fit(X, y)
    assert set(search.cv_results_) >= {"mean_test_map", "mean_test_gap"}
    clone = pickle.loads(pickle.dumps(map_scorer))
    best = search.best_estimator_
    assert clone(best, X, y) == map_scorer(best, X, y)
    assert repr(top_k_scorer(2)) == "make_youtube8m_scorer(hit_at_k_score, k=2)"


def test_scorer_rejects_sample_weight_and_non_classifiers():
    from sklearn.linear_model import LinearRegression

    X, y = np.arange(8.0).reshape(-1, 1), np.array([0, 1] * 4)
    with pytest.raises(TypeError, match="class scores"):
        map_scorer(LinearRegression().fit(X, y), X, y)
    with pytest.raises(ValueError, match="sample weights"):
        map_scorer(LogisticRegression().fit(X, y), X, y, sample_weight=np.ones(8))
