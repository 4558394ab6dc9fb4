import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvidsage import (
    GraphSmoothingClassifier,
    VideoGraphBuilder,
    VidSageEmbedder,
    ZeroRowWarning,
    gap_scorer,
    hit_at_one_scorer,
)
from skvidsage.metrics import global_average_precision_score


def _clusters(rng, n_per_class=40, n_classes=4, dim=10, noise=1.2):
    centers = 2.0 * rng.randn(n_classes, dim)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = (centers[y] + noise * rng.randn(len(y), dim)).astype(np.float32)
    return X, y


def _multilabel(rng, n=240, dim=10, n_labels=5):
    X, y = _clusters(rng, n_per_class=n // 4, dim=dim)
    Y = np.zeros((len(y), n_labels), dtype=np.int64)
    Y[np.arange(len(y)), y] = 1
    Y[:, 4] = (y % 2 == 0) & (rng.rand(len(y)) < 0.8)  # a second, shared label
    return X, Y


def _head():
    return OneVsRestClassifier(LogisticRegression(max_iter=500))


@parametrize_with_checks([GraphSmoothingClassifier()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_the_formula_mean_normalisation():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng)
    graph = VideoGraphBuilder(
        n_neighbors=5, max_degree=5, visual_weight="rbf", gamma=2.0
    )
    clf = GraphSmoothingClassifier(graph=graph, smoothing=0.3).fit(X, y)
    Xq = rng.randn(6, X.shape[1]).astype(np.float32)
    P = clf.estimator_.predict_proba(Xq)
    A = clone(graph).fit(X).transform(Xq).toarray()
    vote = (A / A.sum(axis=1, keepdims=True)) @ np.eye(4)[y]
    np.testing.assert_allclose(clf.predict_proba(Xq), 0.7 * P + 0.3 * vote, rtol=1e-6)


def test_the_formula_symmetric_with_correction():
    rng = np.random.RandomState(1)
    X, y = _clusters(rng)
    graph = VideoGraphBuilder(n_neighbors=4, max_degree=4)
    clf = GraphSmoothingClassifier(
        graph=graph, smoothing=0.5, correction=0.5, normalization="symmetric"
    ).fit(X, y)
    A = clone(graph).fit(X).transform(X).toarray().astype(np.float64)
    assert np.diagonal(A).sum() == 0
    d = 1 + A.sum(axis=1)
    Y = np.eye(4)[y]
    targets = Y + 0.5 * (Y - clf.estimator_.predict_proba(X))
    Xq = X[:5] + 0.01
    Aq = clone(graph).fit(X).transform(Xq).toarray().astype(np.float64)
    dq = 1 + Aq.sum(axis=1)
    Pq = clf.estimator_.predict_proba(Xq)
    step = Pq / dq[:, None] + (Aq / np.sqrt(np.outer(dq, d))) @ targets
    expected = np.clip(0.5 * Pq + 0.5 * step, 0, None)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(Xq), expected, rtol=1e-5, atol=1e-9)


def test_the_formula_log_odds_multilabel_and_multiclass():
    from scipy.special import expit, logit

    rng = np.random.RandomState(2)
    graph = VideoGraphBuilder(n_neighbors=5, max_degree=5, visual_weight="rbf")
    X, Y = _multilabel(rng)
    Xq = rng.randn(8, X.shape[1]).astype(np.float32)
    clf = GraphSmoothingClassifier(
        _head(), graph=graph, smoothing=0.7, combine="log_odds"
    ).fit(X, Y)
    np.testing.assert_allclose(clf.class_prior_, Y.mean(axis=0))
    P = clf.estimator_.predict_proba(Xq)
    A = clone(graph).fit(X).transform(Xq).toarray()
    g = (A / A.sum(axis=1, keepdims=True)) @ Y
    ratio = np.log((g + 0.05) / (Y.mean(axis=0) + 0.05))
    expected = expit(logit(np.clip(P, 1e-6, 1 - 1e-6)) + 0.7 * ratio)
    np.testing.assert_allclose(clf.predict_proba(Xq), expected, rtol=1e-6)
    # a label the neighbours hold more often than its prior goes up
    assert np.all((clf.predict_proba(Xq) > P) == (g > Y.mean(axis=0)))
    # multi-class: p (g + eps)^a / (prior + eps)^a, rows summing to 1
    X, y = _clusters(rng)
    clf = GraphSmoothingClassifier(graph=graph, smoothing=1.0, combine="log_odds")
    clf.fit(X, y)
    P = clf.estimator_.predict_proba(Xq)
    A = clone(graph).fit(X).transform(Xq).toarray()
    g = (A / A.sum(axis=1, keepdims=True)) @ np.eye(4)[y]
    expected = P * (g + 0.05) / (np.bincount(y) / len(y) + 0.05)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(Xq), expected, rtol=1e-6)


@pytest.mark.parametrize("combine", ["linear", "log_odds"])
def test_smoothing_zero_is_the_estimator_and_unlinked_rows_keep_it(combine):
    rng = np.random.RandomState(0)
    X, y = _clusters(rng)
    clf = GraphSmoothingClassifier(smoothing=0.0, combine=combine).fit(X, y)
    # the head's float32 scores, recomputed in float64: equal to its rounding
    np.testing.assert_allclose(
        clf.predict_proba(X), clf.estimator_.predict_proba(X), rtol=1e-6, atol=1e-7
    )
    lonely = GraphSmoothingClassifier(
        graph=VideoGraphBuilder(tau=2.0, n_neighbors=0),
        smoothing=0.8,
        combine=combine,
    ).fit(X, y)
    np.testing.assert_allclose(
        lonely.predict_proba(X),
        lonely.estimator_.predict_proba(X),
        rtol=1e-6,
        atol=1e-7,
    )


def _zero_row_messages(call):
    """Run ``call()``; return its result and its ZeroRowWarning messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    found = [w for w in caught if issubclass(w.category, ZeroRowWarning)]
    assert all(w.filename == __file__ for w in found)  # the caller's line
    return out, [str(w.message) for w in found]


def test_zero_rows_warn_once_through_the_graph_builder():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng)
    X[[3, 50]] = 0.0
    clf = GraphSmoothingClassifier()
    _, messages = _zero_row_messages(lambda: clf.fit(X, y))
    assert len(messages) == 1
    assert messages[0].startswith(
        "VideoGraphBuilder.fit: 2 rows of X have norm 0 (rows 3, 50)"
    )
    Xq = X[:6] + 0.1
    Xq[4] = 0.0
    for method in (clf.predict_proba, clf.predict):
        P, messages = _zero_row_messages(lambda method=method: method(Xq))
        assert len(messages) == 1
        assert messages[0].startswith(
            "VideoGraphBuilder.transform: 1 row of X has norm 0 (row 4)"
        )
        assert len(P) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroRowWarning)
        clf.predict_proba(X[:6] + 0.1)  # normal rows: silent
        GraphSmoothingClassifier().fit(X[X.any(axis=1)], y[X.any(axis=1)])


def _count_similarity_products(monkeypatch):
    import skvidsage._neighbors as neighbors

    calls, product = [], neighbors._cosine_block

    def counted(Qb, *args):
        calls.append(len(Qb))
        return product(Qb, *args)

    monkeypatch.setattr(neighbors, "_cosine_block", counted)
    return calls


def test_the_embedder_and_the_label_graph_share_their_similarities(monkeypatch):
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    clf = GraphSmoothingClassifier(
        make_pipeline(VidSageEmbedder(hidden_dims=(), random_state=0), _head())
    ).fit(X, Y)
    Xq = rng.randn(20, X.shape[1]).astype(np.float32)
    # the two graphs one by one, outside predict_proba: two products
    emb = clf.estimator_[0]
    A_emb = emb.graph_builder_.transform(Xq).adjacency
    A_vote = clf.graph_builder_.transform(Xq).adjacency
    expected = clf.predict_proba(Xq)
    calls = _count_similarity_products(monkeypatch)
    P = clf.predict_proba(Xq)
    assert calls == [20]  # one block of similarities, for both graphs
    np.testing.assert_array_equal(P, expected)
    # what each graph is made of is unchanged by the sharing
    from skvidsage._neighbors import shared_blocks

    with shared_blocks():
        np.testing.assert_array_equal(
            emb.graph_builder_.transform(Xq).adjacency.toarray(), A_emb.toarray()
        )
        np.testing.assert_array_equal(
            clf.graph_builder_.transform(Xq).adjacency.toarray(), A_vote.toarray()
        )
    assert calls == [20, 20]  # inside shared_blocks, the second one is shared


def test_prediction_by_blocks_equals_one_block_and_names_zero_rows_once(
    monkeypatch,
):
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    small = VideoGraphBuilder(
        n_neighbors=20, max_degree=20, visual_weight="rbf", batch_size=7
    )
    emb_graph = VideoGraphBuilder(batch_size=7)
    pipe = make_pipeline(
        VidSageEmbedder(graph=emb_graph, hidden_dims=(), random_state=0), _head()
    )
    blocked = GraphSmoothingClassifier(pipe, graph=small).fit(X, Y)
    whole = GraphSmoothingClassifier(
        clone(pipe).set_params(vidsageembedder__graph__batch_size=1000),
        graph=clone(small).set_params(batch_size=1000),
    ).fit(X, Y)
    Xq = rng.randn(30, X.shape[1]).astype(np.float32)
    Xq[[3, 12, 29]] = 0.0
    calls = _count_similarity_products(monkeypatch)
    P, messages = _zero_row_messages(lambda: blocked.predict_proba(Xq))
    assert calls == [7, 7, 7, 7, 2]  # 5 blocks of 7 rows, each computed once
    np.testing.assert_allclose(P, whole.predict_proba(Xq), rtol=1e-6, atol=1e-9)
    # one warning per graph, naming the rows of the whole input
    assert len(messages) == 2
    for m in messages:
        assert m.startswith(
            "VideoGraphBuilder.transform: 3 rows of X have norm 0 (rows 3, 12, 29)"
        )


def test_smoothing_layers_smooth_the_training_labels():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng)
    y_noisy = y.copy()
    y_noisy[::7] = (y_noisy[::7] + 1) % 4  # some wrong labels
    plain = GraphSmoothingClassifier(smoothing=0.5).fit(X, y_noisy)
    smoothed = GraphSmoothingClassifier(smoothing=0.5, smoothing_layers=3).fit(
        X, y_noisy
    )
    assert not np.allclose(plain.reference_targets_, smoothed.reference_targets_)
    assert smoothed.reference_targets_.min() >= 0
    # propagated over the graph, the wrong labels move toward their cluster's
    wrong = np.arange(0, len(y), 7)
    right = smoothed.reference_targets_[wrong, y[wrong]]
    assert (right > plain.reference_targets_[wrong, y[wrong]]).mean() > 0.8


def test_the_graph_helps_where_the_estimator_is_weak():
    # two interleaved moons-like clusters per class: a linear head is weak,
    # the training videos' labels nearby are not
    rng = np.random.RandomState(0)
    t = rng.rand(600) * 4 * np.pi
    y = (np.sin(t) > 0).astype(int)
    X = np.column_stack([t, np.sin(t) * 0.1 + 0.05 * rng.randn(600), np.ones(600)])
    X = X.astype(np.float32)
    tr, te = np.arange(0, 600, 2), np.arange(1, 600, 2)
    base = LogisticRegression().fit(X[tr], y[tr]).score(X[te], y[te])
    clf = GraphSmoothingClassifier(
        smoothing=0.8,
        graph=VideoGraphBuilder(
            n_neighbors=5, max_degree=5, visual_weight="similarity"
        ),
    )
    assert clf.fit(X[tr], y[tr]).score(X[te], y[te]) > base + 0.1


def test_multilabel_pipeline_gridsearch_and_pickle():
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    pipe = make_pipeline(
        VidSageEmbedder(hidden_dims=(), random_state=0),
        GraphSmoothingClassifier(_head()),
    )
    search = GridSearchCV(
        pipe,
        {"graphsmoothingclassifier__smoothing": [0.0, 0.4]},
        scoring={"gap": gap_scorer, "hit": hit_at_one_scorer},
        refit="gap",
        cv=3,
    ).fit(X, Y)
    assert set(search.cv_results_) >= {"mean_test_gap", "mean_test_hit"}
    P = search.predict_proba(X[:10])
    assert P.shape == (10, 5) and P.min() >= 0 and P.max() <= 1
    assert search.predict(X[:10]).shape == (10, 5)
    again = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(again.predict_proba(X[:10]), P)


def test_multilabel_targets_dense_sparse_and_small_ints_agree():
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    ref = GraphSmoothingClassifier(_head()).fit(X, Y).predict_proba(X)
    for target in (sp.csr_matrix(Y), Y.astype(np.int8), Y.astype(bool)):
        P = GraphSmoothingClassifier(_head()).fit(X, target).predict_proba(X)
        np.testing.assert_allclose(P, ref, rtol=1e-6, atol=1e-9)
    assert global_average_precision_score(Y, ref) > 0.8


@pytest.mark.parametrize("kind", ["ovr", "multinomial", "binary", "pipeline"])
def test_rows_are_scored_independently_to_the_last_bit(kind):
    # BLAS products change a row's last bits with the rows it comes with;
    # Dask inference (block by block) must equal in-memory inference exactly
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    head, y = _head(), Y
    if kind != "ovr":
        head, y = LogisticRegression(max_iter=500), Y.argmax(axis=1)
    if kind == "binary":
        y = y % 2
    if kind == "pipeline":
        head = make_pipeline(VidSageEmbedder(random_state=0), head)
    clf = GraphSmoothingClassifier(head).fit(X, y)
    Xq = rng.randn(300, X.shape[1]).astype(np.float32)
    batch = clf.predict_proba(Xq)
    one_by_one = np.vstack([clf.predict_proba(Xq[i : i + 1]) for i in range(12)])
    np.testing.assert_array_equal(one_by_one, batch[:12])
    blocks = np.vstack([clf.predict_proba(Xq[i : i + 37]) for i in range(0, 300, 37)])
    np.testing.assert_array_equal(blocks, batch)
    order = rng.permutation(300)
    np.testing.assert_array_equal(clf.predict_proba(Xq[order]), batch[order])
    # and the same scores as the head's own predict_proba, to its rounding
    zero = clone(clf).set_params(smoothing=0.0).fit(X, y)
    np.testing.assert_allclose(
        zero.predict_proba(Xq), zero.estimator_.predict_proba(Xq), atol=1e-6
    )


@pytest.mark.parametrize("pipeline", [False, True])
def test_an_ovr_logistic_head_is_scored_in_one_product(pipeline):
    from sklearn import config_context

    from skvidsage.classify import _logistic_proba

    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    base = _head()
    if pipeline:
        base = make_pipeline(VidSageEmbedder(hidden_dims=(), random_state=0), base)
    clf = GraphSmoothingClassifier(base).fit(X, Y)
    Xq = rng.randn(9, X.shape[1]).astype(np.float32)
    with config_context(assume_finite=True):
        fast = _logistic_proba(clf.estimator_, Xq)
        slow = clf.estimator_.predict_proba(Xq)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
    # a label constant in training gets a constant predictor: the usual path
    Y_const = Y.copy()
    Y_const[:, 2] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Label 2 is present in all"
        const = GraphSmoothingClassifier(base).fit(X, Y_const)
    assert _logistic_proba(const.estimator_, Xq) is None
    assert const.predict_proba(Xq).shape == (9, 5)
    # multi-class OvR normalises its rows: the usual path too
    y = Y.argmax(axis=1)
    multiclass = GraphSmoothingClassifier(_head()).fit(X, y)
    assert _logistic_proba(multiclass.estimator_, Xq) is None

def test_an_estimator_with_one_score_array_per_label():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    P = GraphSmoothingClassifier(forest).fit(X, Y).predict_proba(X[:7])
    assert P.shape == (7, 5)


def test_bad_targets_and_estimators_say_what_is_wrong():
    rng = np.random.RandomState(0)
    X, Y = _multilabel(rng)
    with pytest.raises(ValueError, match="continuous"):
        GraphSmoothingClassifier().fit(X, rng.rand(len(X)))
    with pytest.raises(ValueError, match="smoothing"):
        GraphSmoothingClassifier(smoothing=1.5).fit(X, Y[:, 0])


class _NaNAfterFit(LogisticRegression):
    """A classifier whose scores go NaN for rows with a large first feature."""

    def predict_proba(self, X):
        P = super().predict_proba(X)
        P[X[:, 0] > 100] = np.nan
        return P


def test_non_finite_scores_of_the_estimator_are_an_error_naming_the_rows():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng)
    clf = GraphSmoothingClassifier(_NaNAfterFit()).fit(X, y)
    Xq = X[:5].copy()
    Xq[3, 0] = 1000.0
    with pytest.raises(ValueError, match=r"1 of 5 videos \(rows \[3\]"):
        clf.predict_proba(Xq)
    Xq[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(Xq)  # the input itself is checked
