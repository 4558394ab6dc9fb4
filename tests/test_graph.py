import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvidsage import ZeroRowWarning
from skvidsage.containers import VideoFeatures, VideoGraph
from skvidsage.graph import VideoGraphBuilder

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
# 16-d unit vectors with entries +-1/4: every product, sum, norm and square
# root below is exact in float32. Flipping k signs of `_BASE` gives cosine
# 1 - k/8 with it, so g = 1 - sqrt(2 - 2 cos) = 1 - sqrt(k/4):
#   k=0: g=1,  k=1: g=0.5,  k=4: g=0,  k=8: g=1-sqrt(2).
_BASE = np.full(16, 0.25)


def _flip(k):
    v = _BASE.copy()
    v[:k] *= -1
    return v


_R = np.stack([_flip(0), _flip(1), _flip(4), _flip(8)])  # g to _BASE: 1, .5, 0, <0
# A query at g = 1 from _R[0] that is not a copy of it (the builder never
# links identical videos): the same direction, twice as long, exactly.
_Q = 2 * _BASE[None, :]


def _assert_same_graph(G1, G2, exact=True):
    assert isinstance(G1, VideoGraph) and isinstance(G2, VideoGraph)
    assert G1.shape == G2.shape
    np.testing.assert_array_equal(G1.features, G2.features)
    np.testing.assert_array_equal(G1.adjacency.indptr, G2.adjacency.indptr)
    np.testing.assert_array_equal(G1.adjacency.indices, G2.adjacency.indices)
    if exact:
        np.testing.assert_array_equal(G1.adjacency.data, G2.adjacency.data)
    else:
        np.testing.assert_allclose(G1.adjacency.data, G2.adjacency.data, rtol=1e-5)


def _reference_graph(
    Q,
    R,
    q_sets=None,
    r_sets=None,
    *,
    tau=0.3,
    n_neighbors=10,
    max_degree=50,
    alpha=0.7,
    beta=0.3,
    visual_weight="binary",
):
    """The builder's rule, written out densely in float64, row by row."""
    Qn, Rn = normalize(Q), normalize(R)
    g = 1 - np.sqrt(((Qn[:, None, :] - Rn[None, :, :]) ** 2).sum(-1))
    # a video is never linked to an identical one (itself, or a copy)
    copy = np.all(
        np.float32(Q)[:, None, :] == np.float32(R)[None, :, :], axis=-1
    )
    g[copy] = -np.inf
    n_q, n_r = g.shape
    A = np.zeros((n_q, n_r))
    index = np.arange(n_r)
    for i in range(n_q):
        by_similarity = np.lexsort((index, -g[i]))
        visual = g[i] >= tau
        visual[by_similarity[: min(n_neighbors, n_r - copy[i].sum())]] = True
        s = np.ones(n_r) if visual_weight == "binary" else (1 + g[i]) / 2
        if q_sets is None:
            w = np.where(visual, s, 0.0)
        else:
            inter = np.array([len(q_sets[i] & o) for o in r_sets])
            union = np.array([len(q_sets[i] | o) for o in r_sets])
            jaccard = np.divide(inter, union, out=np.zeros(n_r), where=union > 0)
            jaccard[copy[i]] = 0.0
            w = alpha * jaccard + beta * visual * s
        keep = np.flatnonzero(w > 0)
        if max_degree is not None:
            keep = keep[np.lexsort((keep, -g[i, keep], -w[keep]))][:max_degree]
        A[i, keep] = w[keep]
    return A


def _random_sets(rng, n, labels="abcde", max_size=3):
    return [
        set(rng.choice(list(labels), size=rng.randint(0, max_size + 1), replace=False))
        for _ in range(n)
    ]


def _zero_row_warnings(call):
    """Run ``call()``; return its result and its ZeroRowWarnings (all shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, [w for w in caught if issubclass(w.category, ZeroRowWarning)]


def _blobs(rng, n, d=8, centers=4):
    C = rng.randn(centers, d)
    return C[rng.randint(centers, size=n)] + 0.5 * rng.randn(n, d)


# --------------------------------------------------------------------------
# The equations, pinned with hand-computed numbers
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tau, linked",
    [
        (0.5, [0, 1]),  # g == tau exactly links
        (np.nextafter(0.5, 1.0), [0]),  # g just below tau does not
        (0.0, [0, 1, 2]),
        (np.nextafter(0.0, 1.0), [0, 1]),
        (1.0, [0]),  # self: g == 1
        (np.nextafter(1.0, 2.0), []),
        (-1.0, [0, 1, 2, 3]),
    ],
)
def test_visual_threshold_at_the_boundary(tau, linked):
    builder = VideoGraphBuilder(tau=tau, n_neighbors=0).fit(_R)
    G = builder.transform(_Q)
    np.testing.assert_array_equal(G.adjacency.indices, linked)
    np.testing.assert_array_equal(G.adjacency.data, np.ones(len(linked)))


def test_visual_similarity_weight_is_one_plus_g_over_two():
    builder = VideoGraphBuilder(tau=-1.0, n_neighbors=0, visual_weight="similarity")
    G = builder.fit(_R).transform(_Q)
    g = np.array([1.0, 0.5, 0.0, 1.0 - np.sqrt(2.0)])
    np.testing.assert_array_equal(G.toarray()[0, :3], [1.0, 0.75, 0.5])  # exact
    np.testing.assert_allclose(G.toarray()[0], (1 + g) / 2, rtol=1e-6)


def test_rbf_weight_is_the_heat_kernel_of_the_distance():
    builder = VideoGraphBuilder(tau=-1.0, n_neighbors=0, visual_weight="rbf", gamma=3.0)
    G = builder.fit(_R).transform(_Q)
    d = np.linalg.norm(
        _R / np.linalg.norm(_R, axis=1, keepdims=True) - _BASE[None], axis=1
    )
    np.testing.assert_allclose(G.toarray()[0], np.exp(-3.0 * d**2), rtol=1e-6)
    assert G.toarray()[0, 0] == 1.0  # the same direction: distance 0
    far = VideoGraphBuilder(n_neighbors=1, visual_weight="rbf", gamma=1e6)
    G = far.fit(_R[1:]).transform(-_R[1:2])
    assert G.adjacency.nnz == 1 and G.adjacency.data[0] > 0  # stays a link


def test_features_scale_does_not_matter():
    # g is computed on L2-normalised rows; the output keeps the raw features
    X = _R * np.array([[1.0], [3.0], [0.01], [1e20]])
    G = VideoGraphBuilder(tau=0.0, n_neighbors=0).fit(X).transform(_BASE[None] * 7)
    np.testing.assert_array_equal(G.adjacency.indices, [0, 1, 2])
    np.testing.assert_array_equal(G.features, _BASE[None] * 7)


def test_jaccard_weights():
    # no visual link at all (tau > 1, no floor): w = alpha * Jaccard
    r_sets = [{"a", "b"}, {"a", "b", "c"}, {"d"}, set()]
    builder = VideoGraphBuilder(tau=2.0, n_neighbors=0, alpha=0.7, beta=0.3)
    builder.fit(VideoFeatures(_R, r_sets))
    q_sets = [{"a", "b"}, {"a", "z"}, set(), {"c", "d"}]
    G = builder.transform(VideoFeatures(2 * _R, q_sets))  # not copies of _R
    expected = 0.7 * np.array(
        [
            [1, 2 / 3, 0, 0],
            [1 / 3, 1 / 4, 0, 0],  # "z" is unseen in fit but counts in the union
            [0, 0, 0, 0],  # empty vs empty: 0 / 0 = 0, no link
            [0, 1 / 4, 1 / 2, 0],
        ]
    )
    np.testing.assert_allclose(G.toarray(), expected, rtol=1e-6)
    assert G.adjacency.nnz == np.count_nonzero(expected)


@pytest.mark.parametrize("alpha, beta", [(0.7, 0.3), (0.2, 0.5)])
def test_alpha_beta_mix(alpha, beta):
    # query = _BASE with objects {a, b}; tau = 0 makes refs 0, 1, 2 visual links
    r_sets = [{"a", "b"}, {"a", "b", "c"}, {"d"}, set()]
    builder = VideoGraphBuilder(tau=0.0, n_neighbors=0, alpha=alpha, beta=beta)
    builder.fit(VideoFeatures(_R, r_sets))
    G = builder.transform(VideoFeatures(_Q, [{"a", "b"}]))
    expected = [alpha * 1 + beta, alpha * 2 / 3 + beta, beta, 0.0]
    np.testing.assert_allclose(G.toarray()[0], expected, rtol=1e-6)

    builder.set_params(visual_weight="similarity").fit(VideoFeatures(_R, r_sets))
    G = builder.transform(VideoFeatures(_Q, [{"a", "b"}]))
    expected = [alpha + beta * 1.0, alpha * 2 / 3 + beta * 0.75, beta * 0.5, 0.0]
    np.testing.assert_allclose(G.toarray()[0], expected, rtol=1e-6)


def test_semantic_link_without_visual_link_and_beta_zero():
    r_sets = [{"a"}, {"x"}, {"x"}, {"b"}]
    q = VideoFeatures(_Q, [{"b"}])
    # ref 3 is visually far (g < 0) but shares "b": a semantic link only
    G = VideoGraphBuilder(tau=0.4).fit(VideoFeatures(_R, r_sets)).transform(q)
    np.testing.assert_allclose(G.toarray()[0], [0.3, 0.3, 0.3, 0.7 + 0.3], rtol=1e-6)
    G = VideoGraphBuilder(tau=0.4, n_neighbors=0).fit(VideoFeatures(_R, r_sets))
    np.testing.assert_allclose(G.transform(q).toarray()[0], [0.3, 0.3, 0, 0.7])
    # beta = 0: visual links weigh 0, so only shared objects link
    G = VideoGraphBuilder(tau=0.4, beta=0.0).fit(VideoFeatures(_R, r_sets))
    np.testing.assert_allclose(G.transform(q).toarray()[0], [0, 0, 0, 0.7])


# --------------------------------------------------------------------------
# Floor, cap and ties
# --------------------------------------------------------------------------
def test_floor_links_an_isolated_query_to_its_nearest():
    rng = np.random.RandomState(0)
    R = rng.randn(30, 5)
    q = rng.randn(1, 5)
    G = VideoGraphBuilder(tau=0.999, n_neighbors=4).fit(R).transform(q)
    distances = np.linalg.norm(normalize(R) - normalize(q), axis=1)
    np.testing.assert_array_equal(
        G.adjacency.indices, np.sort(np.argsort(distances)[:4])
    )
    np.testing.assert_array_equal(G.adjacency.data, np.ones(4))


def test_floor_larger_than_reference_links_everything():
    G = VideoGraphBuilder(tau=2.0, n_neighbors=10).fit(_R[:3]).transform(_R)
    # every other reference video: the first three queries are copies of one
    np.testing.assert_array_equal(np.diff(G.adjacency.indptr), [2, 2, 2, 3])
    G = VideoGraphBuilder(tau=2.0, n_neighbors=10).fit(_R[:3]).transform(2 * _R)
    np.testing.assert_array_equal(np.diff(G.adjacency.indptr), [3, 3, 3, 3])


def test_zero_floor_can_leave_a_query_without_links():
    G = VideoGraphBuilder(tau=0.9, n_neighbors=0).fit(_R[1:]).transform(2 * _R[3:])
    # _flip(8) is the last ref; it is the only one at g >= 0.9
    np.testing.assert_array_equal(G.adjacency.indices, [2])
    # ... and an exact copy of the query, which is never linked
    G = VideoGraphBuilder(tau=0.9, n_neighbors=0).fit(_R[1:]).transform(_R[3:])
    assert G.adjacency.nnz == 0
    G = VideoGraphBuilder(tau=0.9, n_neighbors=0).fit(_R[:3]).transform(_R[3:])
    assert G.adjacency.nnz == 0
    assert G.shape == (1, 3)


def test_cap_keeps_the_most_similar():
    # every visual link weighs 1: the cap keeps the largest g
    G = VideoGraphBuilder(tau=-1.0, n_neighbors=1, max_degree=2)
    G = G.fit(_R[::-1]).transform(_Q)
    np.testing.assert_array_equal(G.adjacency.indices, [2, 3])  # g = 0.5, 1


def test_cap_keeps_the_strongest_weights_then_similarity():
    # tau = -0.5: all four are visual links (g >= 1 - sqrt(2) > -0.5), so
    # w = .3 + .7 * Jaccard = [.3, .3, .3 + .7 / 2, .3 + .7]
    r_sets = [{"x"}, {"x"}, {"a"}, {"a", "b"}]
    builder = VideoGraphBuilder(tau=-0.5, n_neighbors=0, max_degree=3)
    builder.fit(VideoFeatures(_R, r_sets))
    G = builder.transform(VideoFeatures(_Q, [{"a", "b"}]))
    # ref0 and ref1 tie on w = 0.3; ref0 is more similar (g = 1 > 0.5)
    np.testing.assert_array_equal(G.adjacency.indices, [0, 2, 3])
    np.testing.assert_allclose(G.adjacency.data, [0.3, 0.3 + 0.35, 1.0], rtol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2, "auto"])
def test_exact_ties_go_to_the_lower_index(batch_size):
    R = np.stack([_flip(8), _BASE, _flip(1), _BASE, _BASE, _flip(1)])
    builder = VideoGraphBuilder(tau=2.0, n_neighbors=2, batch_size=batch_size)
    G = builder.fit(R).transform(2 * np.stack([_BASE, _flip(1), _flip(8)]))
    np.testing.assert_array_equal(G.adjacency.indices, [1, 3, 2, 5, 0, 2])
    # same with weights that tie too (every ref has the same objects)
    sets = [{"a"}] * 6
    builder = VideoGraphBuilder(
        tau=0.9, n_neighbors=0, max_degree=2, batch_size=batch_size
    )
    builder.fit(VideoFeatures(R, sets))
    G = builder.transform(VideoFeatures(_Q, [{"a"}]))
    np.testing.assert_array_equal(G.adjacency.indices, [1, 3])


@pytest.mark.parametrize("visual_weight", ["binary", "similarity"])
@pytest.mark.parametrize(
    "tau, n_neighbors, max_degree",
    [(0.3, 5, 8), (0.0, 3, None), (-0.2, 2, 6), (2.0, 4, 4), (0.5, 0, 3)],
)
@pytest.mark.parametrize("with_sets", [False, True])
def test_matches_dense_reference(
    visual_weight, tau, n_neighbors, max_degree, with_sets
):
    rng = np.random.RandomState(0)
    R = _blobs(rng, 60)
    Q = _blobs(rng, 25)
    params = dict(
        tau=tau,
        n_neighbors=n_neighbors,
        max_degree=max_degree,
        visual_weight=visual_weight,
    )
    if with_sets:
        r_sets, q_sets = _random_sets(rng, 60), _random_sets(rng, 25, labels="abcdef")
        builder = VideoGraphBuilder(**params, batch_size=7).fit(
            VideoFeatures(R, r_sets)
        )
        G = builder.transform(VideoFeatures(Q, q_sets))
        expected = _reference_graph(Q, R, q_sets, r_sets, **params)
    else:
        G = VideoGraphBuilder(**params, batch_size=7).fit(R).transform(Q)
        expected = _reference_graph(Q, R, **params)
    A = G.toarray()
    np.testing.assert_array_equal(A > 0, expected > 0)
    np.testing.assert_allclose(A, expected, rtol=1e-5, atol=1e-6)
    degree = np.diff(G.adjacency.indptr)
    if max_degree is not None:
        assert degree.max() <= max_degree
    if not with_sets:
        assert degree.min() >= n_neighbors


def test_kneighbors_graph_consistency():
    # tau > 1: no threshold link, so the graph is the plain k-NN graph
    rng = np.random.RandomState(0)
    X, Q = rng.randn(300, 16), rng.randn(40, 16)
    nn = NearestNeighbors(n_neighbors=7).fit(normalize(X))
    builder = VideoGraphBuilder(tau=1.5, n_neighbors=7, max_degree=7).fit(X)
    A = builder.transform(Q).adjacency
    assert (A != nn.kneighbors_graph(normalize(Q))).nnz == 0
    # the training videos: like sklearn's kneighbors_graph() without X, each
    # video's 7 nearest *other* videos
    graphs = (builder.transform(X), clone(builder).fit_transform(X))
    for A in (G.adjacency for G in graphs):
        assert (A != nn.kneighbors_graph()).nnz == 0


# --------------------------------------------------------------------------
# Blocking, fit_transform, self links, zero rows
# --------------------------------------------------------------------------
def test_fit_transform_equals_fit_then_transform():
    rng = np.random.RandomState(0)
    X = _blobs(rng, 80)
    for params in ({}, {"visual_weight": "similarity", "tau": 0.0}):
        builder = VideoGraphBuilder(**params)
        _assert_same_graph(builder.fit_transform(X), clone(builder).fit(X).transform(X))
        Xs = VideoFeatures(X, _random_sets(rng, 80))
        _assert_same_graph(
            builder.fit_transform(Xs), clone(builder).fit(Xs).transform(Xs)
        )


@pytest.mark.parametrize("with_sets", [False, True])
@pytest.mark.parametrize("visual_weight", ["binary", "similarity"])
def test_blocking_does_not_change_the_graph(with_sets, visual_weight):
    rng = np.random.RandomState(1)
    X = _blobs(rng, 50)
    if with_sets:
        X = VideoFeatures(X, _random_sets(rng, 50))
    graphs = [
        VideoGraphBuilder(
            tau=0.3,
            n_neighbors=3,
            max_degree=6,
            batch_size=b,
            visual_weight=visual_weight,
        ).fit_transform(X)
        for b in (1, 7, 1000, "auto")
    ]
    for G in graphs[1:]:
        # BLAS rounds the similarity products in a shape-dependent order, which
        # could only swap near-tied neighbours (none here); the weights are
        # recomputed per link from the two rows, so they match exactly
        _assert_same_graph(graphs[0], G)


def test_rows_are_independent_of_each_other():
    rng = np.random.RandomState(2)
    X, Q = _blobs(rng, 40), _blobs(rng, 12)
    builder = VideoGraphBuilder(tau=0.3, n_neighbors=3, max_degree=5).fit(X)
    full = builder.transform(Q)
    order = rng.permutation(12)
    _assert_same_graph(
        VideoGraph(full.features[order], full.adjacency[order]),
        builder.transform(Q[order]),
    )
    for i in range(12):  # one query at a time (transform(X[[i]]))
        _assert_same_graph(
            VideoGraph(full.features[[i]], full.adjacency[[i]]),
            builder.transform(Q[[i]]),
        )


def test_no_self_links_on_the_training_graph():
    rng = np.random.RandomState(3)
    X = rng.randn(30, 6)
    G = VideoGraphBuilder(tau=2.0, n_neighbors=1).fit_transform(X)
    assert G.adjacency.diagonal().sum() == 0
    nearest_other = NearestNeighbors(n_neighbors=1).fit(normalize(X)).kneighbors()[1]
    np.testing.assert_array_equal(G.adjacency.indices, nearest_other.ravel())
    G = VideoGraphBuilder(
        tau=0.3, n_neighbors=3, visual_weight="similarity"
    ).fit_transform(X)
    assert G.adjacency.diagonal().sum() == 0
    assert (np.diff(G.adjacency.indptr) >= 3).all()  # 3 real neighbours each


@pytest.mark.parametrize("with_sets", [False, True])
def test_a_training_video_and_an_unseen_one_get_as_many_neighbours(with_sets):
    rng = np.random.RandomState(4)
    X, Q = _blobs(rng, 40), _blobs(rng, 15)
    if with_sets:
        X = VideoFeatures(X, [set()] * 40)
        Q = VideoFeatures(Q, [set()] * 15)
    builder = VideoGraphBuilder(tau=2.0, n_neighbors=4, max_degree=4).fit(X)
    assert set(np.diff(builder.transform(X).adjacency.indptr)) == {4}
    assert set(np.diff(builder.transform(Q).adjacency.indptr)) == {4}


def test_exact_copies_are_never_linked():
    rng = np.random.RandomState(5)
    X = _blobs(rng, 20)
    X[7] = X[3]  # a duplicated video
    builder = VideoGraphBuilder(tau=2.0, n_neighbors=2, max_degree=2)
    A = builder.fit_transform(X).adjacency.toarray()
    assert A[3, 7] == 0 and A[7, 3] == 0 and A[3, 3] == 0
    assert (np.count_nonzero(A, axis=1) == 2).all()  # the next nearest instead
    # the same rule for an unseen video that is a copy of a reference video
    q = builder.transform(X[[3]]).adjacency.toarray()
    np.testing.assert_array_equal(q, A[[3]])
    # a scaled copy is a distinct video at g = 1: linked
    q = builder.transform(2 * X[[3]]).adjacency
    assert set(q.indices) == {3, 7}
    # only identical rows are left out: a query with every reference a copy
    # of it has no link at all
    G = VideoGraphBuilder(tau=-1.0, n_neighbors=3).fit(np.ones((4, 3)))
    assert G.transform(np.ones((2, 3))).adjacency.nnz == 0


def test_output_features_and_dtypes():
    X = _blobs(np.random.RandomState(0), 20).astype(np.float64)
    G = VideoGraphBuilder().fit_transform(X)
    assert G.features.dtype == np.float32 and G.adjacency.dtype == np.float32
    np.testing.assert_array_equal(G.features, X.astype(np.float32))  # not normalised
    assert G.adjacency.has_sorted_indices and G.adjacency.has_canonical_format
    assert (G.adjacency.data > 0).all()
    assert G.shape == (20, 20) and len(G) == 20


def test_zero_rows_stay_zero():
    # a zero row is at distance 1 (g = 0) from unit rows, 0 (g = 1) from zero rows
    R = np.array([[1.0, 0.0], [0.0, 0.0]])
    builder = VideoGraphBuilder(tau=-1.0, n_neighbors=0, visual_weight="similarity")
    with pytest.warns(ZeroRowWarning, match=r"fit: 1 row of X has norm 0 \(row 1\)"):
        builder.fit(R)
    with pytest.warns(ZeroRowWarning, match=r"transform: 1 row .* \(row 0\)"):
        G = builder.transform(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]]))
    # (two zero rows are identical videos: never linked)
    np.testing.assert_allclose(
        G.toarray(), [[0.5, 0.0], [1.0, 0.5], [1 - np.sqrt(2) / 2, 0.5]], rtol=1e-6
    )


@pytest.mark.parametrize("with_sets", [False, True])
def test_zero_rows_warn_naming_them_on_fit_and_on_unseen_videos(with_sets):
    rng = np.random.RandomState(0)
    X, Q = _blobs(rng, 20), _blobs(rng, 6)
    X[[4, 11]] = 0.0
    Q[5] = 0.0
    if with_sets:  # VidSage: the object sets do not give a zero row a direction
        X = VideoFeatures(X, _random_sets(rng, 20))
        Q = VideoFeatures(Q, _random_sets(rng, 6))
    builder = VideoGraphBuilder(n_neighbors=3)
    _, caught = _zero_row_warnings(lambda: builder.fit(X))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(
        "VideoGraphBuilder.fit: 2 rows of X have norm 0 (rows 4, 11)"
    )
    assert "Drop or fix those videos" in message
    assert caught[0].filename == __file__  # attributed to the caller
    _, caught = _zero_row_warnings(lambda: builder.transform(Q))
    assert len(caught) == 1 and caught[0].filename == __file__
    assert str(caught[0].message).startswith(
        "VideoGraphBuilder.transform: 1 row of X has norm 0 (row 5)"
    )
    # the zero query is linked all the same (its floor of 3)
    G, _ = _zero_row_warnings(lambda: builder.transform(Q))
    assert G.adjacency[5].nnz == 3


def test_fit_transform_warns_once_and_equals_fit_then_transform():
    rng = np.random.RandomState(1)
    X = _blobs(rng, 15)
    X[2] = 0.0
    builder = VideoGraphBuilder(n_neighbors=2)
    G, caught = _zero_row_warnings(lambda: builder.fit_transform(X))
    assert len(caught) == 1 and caught[0].filename == __file__
    assert str(caught[0].message).startswith("VideoGraphBuilder.fit: 1 row of X")
    expected, _ = _zero_row_warnings(lambda: clone(builder).fit(X).transform(X))
    _assert_same_graph(G, expected)
    # in a Pipeline too: once, pointed at the caller's line
    _, caught = _zero_row_warnings(
        lambda: Pipeline([("graph", clone(builder))]).fit_transform(X)
    )
    assert len(caught) == 1 and caught[0].filename == __file__


def test_zero_rows_are_checked_on_the_similarity_columns():
    rng = np.random.RandomState(2)
    X = _blobs(rng, 12)
    X[3, :4] = 0.0  # zero in the similarity columns only
    X[7, 4:] = 0.0  # zero outside them: has a direction for the graph
    builder = VideoGraphBuilder(n_neighbors=2, columns=slice(0, 4))
    _, caught = _zero_row_warnings(lambda: builder.fit(X))
    assert len(caught) == 1
    assert str(caught[0].message).startswith(
        "VideoGraphBuilder.fit: 1 row of X[:, columns] has norm 0 (row 3)"
    )
    _, caught = _zero_row_warnings(lambda: VideoGraphBuilder(n_neighbors=2).fit(X))
    assert caught == []  # no row is zero in all its columns


def test_no_zero_row_warning_on_normal_data():
    rng = np.random.RandomState(3)
    X, Q = _blobs(rng, 30), _blobs(rng, 5)
    tiny = np.float32(1e-30) * Q  # small but not zero: a direction
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroRowWarning)
        builder = VideoGraphBuilder(tau="auto", n_neighbors=3)
        builder.fit(X).transform(Q)
        builder.fit_transform(X)
        builder.transform(tiny)


def test_large_values_do_not_overflow():
    X = np.array([[3e38, 0.0], [3e38, 3e38], [-3e38, 1.0]], dtype=np.float32)
    builder = VideoGraphBuilder(tau=-1.0, visual_weight="similarity")
    G = builder.fit_transform(X)
    assert np.isfinite(G.adjacency.data).all()
    # the same weights as for the rows scaled down (only directions matter)
    np.testing.assert_array_equal(
        G.toarray(), builder.fit_transform(X / np.float32(1e38)).toarray()
    )
    G = builder.fit(X).transform(X * np.float32(0.5))  # g = 1 to the same row
    np.testing.assert_array_equal(G.adjacency.diagonal(), 1.0)


def test_object_vocabulary():
    X = VideoFeatures(_R, [{"dog", "cat"}, {"ant"}, set(), {"cat"}])
    builder = VideoGraphBuilder().fit(X)
    assert builder.object_vocabulary_ == {"ant": 0, "cat": 1, "dog": 2}
    assert builder.object_sets_ == X.object_sets
    mixed = VideoGraphBuilder().fit(VideoFeatures(_R[:2], [{1, "a"}, {2}]))
    assert set(mixed.object_vocabulary_) == {1, 2, "a"}
    assert sorted(mixed.object_vocabulary_.values()) == [0, 1, 2]
    plain = VideoGraphBuilder().fit(_R)
    assert plain.object_sets_ is None and plain.object_vocabulary_ is None


def test_fitted_attributes():
    builder = VideoGraphBuilder(device="cpu").fit(_R)
    assert builder.reference_.dtype == np.float32
    np.testing.assert_array_equal(builder.reference_, _R)
    assert builder.n_features_in_ == 16
    assert builder.device_ == torch.device("cpu")
    if not torch.cuda.is_available():
        assert VideoGraphBuilder().fit(_R).device_ == torch.device("cpu")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[np.inf, 1.0]]), "infinity"),
        (np.array([[1e300, 1.0]]), "infinity or a value too large"),
        (np.empty((0, 2)), "0 sample"),
        (np.array([1.0, 2.0]), "2D array"),
    ],
)
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        VideoGraphBuilder().fit(bad)
    builder = VideoGraphBuilder().fit(np.eye(2))
    with pytest.raises(ValueError, match=match):
        builder.transform(bad)


def test_wrong_width_at_transform():
    builder = VideoGraphBuilder().fit(np.eye(4))
    with pytest.raises(ValueError, match="X has 3 features, but VideoGraphBuilder is"):
        builder.transform(np.eye(3))


def test_object_set_mismatch_errors():
    with_sets = VideoGraphBuilder().fit(VideoFeatures(_R, [{"a"}] * 4))
    with pytest.raises(ValueError, match="fitted with object sets"):
        with_sets.transform(_R)
    with pytest.raises(ValueError, match="fitted with object sets"):
        with_sets.transform(VideoFeatures(_R))
    without = VideoGraphBuilder().fit(_R)
    with pytest.raises(ValueError, match="fitted without them"):
        without.transform(VideoFeatures(_R, [{"a"}] * 4))


def test_parameter_errors():
    with pytest.raises(ValueError, match="max_degree=3 must be >= n_neighbors=5"):
        VideoGraphBuilder(n_neighbors=5, max_degree=3).fit(_R)
    with pytest.raises(ValueError, match="not a valid torch device"):
        VideoGraphBuilder(device="tpu9").fit(_R)
    for params in (
        {"visual_weight": "cosine"},
        {"n_neighbors": -1},
        {"alpha": -0.1},
        {"batch_size": 0},
        {"max_degree": 0},
        {"tau": np.nan},
    ):
        with pytest.raises(InvalidParameterError):
            VideoGraphBuilder(**params).fit(_R)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        VideoGraphBuilder(device="cuda").fit(_R)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        VideoGraphBuilder().transform(_R)


# --------------------------------------------------------------------------
# Persistence and composition
# --------------------------------------------------------------------------
def test_pickle_round_trip():
    rng = np.random.RandomState(0)
    X = VideoFeatures(_blobs(rng, 30), _random_sets(rng, 30))
    builder = VideoGraphBuilder(tau=0.2).fit(X)
    restored = pickle.loads(pickle.dumps(builder))
    _assert_same_graph(builder.transform(X), restored.transform(X))
    G = restored.transform(X)
    _assert_same_graph(G, pickle.loads(pickle.dumps(G)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU fallback")
def test_unpickle_cuda_fitted_builder_on_cpu():
    builder = VideoGraphBuilder(device="cpu").fit(_R)
    builder.device_ = torch.device("cuda")  # as if fitted on a GPU machine
    with pytest.warns(UserWarning, match="VideoGraphBuilder was fitted on cuda"):
        restored = pickle.loads(pickle.dumps(builder))
    assert restored.device_ == torch.device("cpu")
    # set by hand, not unpickled: remapped (and said) at the point of use
    builder.device_ = torch.device("cuda")
    with pytest.warns(UserWarning, match="runs on the CPU"):
        builder.transform(_R)
    _assert_same_graph(
        restored.transform(_R), VideoGraphBuilder().fit(_R).transform(_R)
    )


class _GraphConsumer(TransformerMixin, BaseEstimator):
    """Stands in for the embedder: features, degree and neighbour mean."""

    def fit(self, graph, y=None):
        assert isinstance(graph, VideoGraph)
        self.reference_ = graph.features
        self.n_features_in_ = graph.features.shape[1]
        return self

    def transform(self, graph):
        assert isinstance(graph, VideoGraph)
        assert graph.shape[1] == len(self.reference_)
        A = graph.adjacency
        degree = np.asarray(A.sum(axis=1))
        mean = (A @ self.reference_) / np.maximum(degree, 1e-12)
        return np.hstack([graph.features, mean, degree])


def test_pipeline_and_cross_validation(tmp_path):
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=60)
    X = VideoFeatures(rng.randn(60, 4) + y[:, None], _random_sets(rng, 60))
    pipe = Pipeline(
        [
            ("graph", VideoGraphBuilder(tau=0.5, n_neighbors=3)),
            ("consume", _GraphConsumer()),
            ("clf", LogisticRegression()),
        ]
    )
    Z = pipe[:-1].fit_transform(X)
    assert Z.shape == (60, 9)
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.6
    # plain arrays too (LiteVidSage)
    assert cross_val_score(pipe, X.features, y, cv=3).shape == (3,)
    # cached steps (joblib.Memory pickles the VideoGraph)
    pipe.set_params(memory=str(tmp_path))
    np.testing.assert_array_equal(cross_val_score(pipe, X, y, cv=3), scores)
    np.testing.assert_array_equal(cross_val_score(pipe, X, y, cv=3), scores)
    # the pipeline's graph step equals the estimator alone
    G1 = pipe[:1].fit_transform(X)
    G2 = VideoGraphBuilder(tau=0.5, n_neighbors=3).fit_transform(X)
    _assert_same_graph(G1, G2)


def test_readonly_memmap_input(tmp_path):
    X = _blobs(np.random.RandomState(0), 20).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    _assert_same_graph(
        VideoGraphBuilder().fit_transform(Xm), VideoGraphBuilder().fit_transform(X)
    )


def test_list_input():
    X = _blobs(np.random.RandomState(0), 20)
    _assert_same_graph(
        VideoGraphBuilder().fit_transform(X.tolist()),
        VideoGraphBuilder().fit_transform(X),
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.RandomState(0)
    X = VideoFeatures(_blobs(rng, 200), _random_sets(rng, 200))
    for x in (X, X.features):
        on_cpu = VideoGraphBuilder(
            device="cpu", visual_weight="similarity"
        ).fit_transform(x)
        on_gpu = VideoGraphBuilder(
            device="cuda", visual_weight="similarity"
        ).fit_transform(x)
        _assert_same_graph(on_cpu, on_gpu, exact=False)


# --------------------------------------------------------------------------
# scikit-learn's common checks
# --------------------------------------------------------------------------
# These checks compare two transform outputs with numpy's ``assert_allclose``
# (``assert_allclose_dense_sparse``), which needs an array or a scipy.sparse
# matrix. Our output is a VideoGraph (features + sparse adjacency), which is
# deliberately not array-like: its dense form is n_queries x n_reference. Each
# property is instead tested above on VideoGraph objects, and the same checks
# run, and pass, on the adjacency alone (``_AdjacencyView`` below).
_COMPARES_OUTPUTS = {
    "check_transformer_general": "test_fit_transform_equals_fit_then_transform",
    "check_transformer_data_not_an_array": "test_list_input",
    "check_pipeline_consistency": "test_pipeline_and_cross_validation",
    "check_estimators_pickle": "test_pickle_round_trip",
    "check_methods_subset_invariance": "test_rows_are_independent_of_each_other",
    "check_methods_sample_order_invariance": "test_rows_are_independent_of_each_other",
    "check_fit_idempotent": "test_fit_is_idempotent",
}


def _expected_failed_checks(estimator):
    if isinstance(estimator, _AdjacencyView):
        return {}
    return {
        check: f"compares outputs as arrays; VideoGraph is not array-like ({test})"
        for check, test in _COMPARES_OUTPUTS.items()
    }


class _AdjacencyView(VideoGraphBuilder):
    """The builder with ``transform`` returning only the sparse adjacency."""

    def transform(self, X):
        return super().transform(X).adjacency

    def fit_transform(self, X, y=None):  # the builder's own, warning once
        return super().fit_transform(X).adjacency


@parametrize_with_checks(
    [
        VideoGraphBuilder(),
        _AdjacencyView(),
        _AdjacencyView(
            tau=0.9, n_neighbors=2, max_degree=4, visual_weight="similarity"
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_fit_is_idempotent():
    rng = np.random.RandomState(0)
    X, Q = _blobs(rng, 30), _blobs(rng, 10)
    builder = VideoGraphBuilder(tau=0.2, n_neighbors=3)
    first = builder.fit(X).transform(Q)
    builder.fit(_blobs(rng, 15))
    _assert_same_graph(first, builder.fit(X).transform(Q))


def test_tau_auto_is_the_median_kth_neighbour_similarity():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 16).astype(np.float32)
    builder = VideoGraphBuilder(tau="auto", n_neighbors=5).fit(X)
    F = X / np.linalg.norm(X, axis=1, keepdims=True)
    g = 1 - np.linalg.norm(F[:, None] - F[None], axis=-1)
    np.fill_diagonal(g, -np.inf)
    fifth = -np.sort(-g, axis=1)[:, 4]
    assert builder.tau_ == pytest.approx(np.median(fifth), abs=1e-5)
    # half of the training videos have their 5th other neighbour above it:
    # 5+ threshold links; the others get the floor of 5
    degree = np.diff(builder.transform(X).adjacency.indptr)
    above = (g >= builder.tau_).sum(axis=1)
    np.testing.assert_array_equal(degree, np.clip(above, 5, 50))
    assert 0.45 <= np.mean(above >= 5) <= 0.55
    # the learned threshold builds the graph the number would
    fixed = VideoGraphBuilder(tau=builder.tau_, n_neighbors=5).fit(X)
    Q = rng.randn(20, 16).astype(np.float32)
    assert (builder.transform(Q).adjacency != fixed.transform(Q).adjacency).nnz == 0
    assert VideoGraphBuilder(tau=0.3).fit(X).tau_ == 0.3


def test_tau_auto_on_a_large_set_uses_a_sample():
    rng = np.random.RandomState(1)
    X = rng.randn(5000, 8).astype(np.float32)
    tau = VideoGraphBuilder(tau="auto", n_neighbors=3).fit(X).tau_
    F = X / np.linalg.norm(X, axis=1, keepdims=True)
    rows = F[::10]  # an independent estimate from every 10th video
    g = 1 - np.linalg.norm(rows[:, None] - F[None], axis=-1)
    third = -np.sort(-g, axis=1)[:, 3]  # [:, 0] is the video itself
    assert tau == pytest.approx(np.median(third), abs=0.01)


@pytest.mark.parametrize("n_neighbors, n", [(0, 10), (3, 1)])
def test_tau_auto_needs_a_neighbour(n_neighbors, n):
    X = np.random.RandomState(0).randn(n, 4).astype(np.float32)
    with pytest.raises(ValueError, match="tau='auto'"):
        VideoGraphBuilder(tau="auto", n_neighbors=n_neighbors).fit(X)


def test_tau_auto_skips_copies_and_says_when_every_video_is_the_same():
    with pytest.raises(ValueError, match="identical features"):
        VideoGraphBuilder(tau="auto").fit(np.ones((5, 4), dtype=np.float32))
    # a video's own copy is not one of its neighbours, the others' copies are:
    # with every video twice, the 3 nearest others are (j, j', k), and the
    # third is the second nearest of the set without copies
    rng = np.random.RandomState(0)
    X = rng.randn(40, 6).astype(np.float32)
    with_copies = VideoGraphBuilder(tau="auto", n_neighbors=3).fit(np.vstack([X, X]))
    alone = VideoGraphBuilder(tau="auto", n_neighbors=2).fit(X)
    assert with_copies.tau_ == pytest.approx(alone.tau_, abs=1e-6)


def test_columns_choose_the_similarity_features_only():
    rng = np.random.RandomState(0)
    visual = rng.randn(30, 5).astype(np.float32)
    X = np.hstack([visual, 100 * rng.randn(30, 3).astype(np.float32)])
    Q = np.hstack([visual[:4] + 0.01, rng.randn(4, 3).astype(np.float32)])
    expected = VideoGraphBuilder(n_neighbors=3).fit(visual).transform(Q[:, :5])
    for columns in (slice(0, 5), [0, 1, 2, 3, 4], np.arange(5)):
        builder = VideoGraphBuilder(n_neighbors=3, columns=columns).fit(X)
        G = builder.transform(Q)
        assert (G.adjacency != expected.adjacency).nnz == 0
        np.testing.assert_array_equal(G.features, Q)  # every column kept
        assert builder.n_features_in_ == 8 and builder.reference_.shape == (30, 5)
    for bad, match in ((slice(8, None), "selects none"), ([0, 9], "out of range"),
                       ([[0, 1]], "1-d array")):
        with pytest.raises(ValueError, match=match):
            VideoGraphBuilder(columns=bad).fit(X)


# --------------------------------------------------------------------------
# set_output and feature names (issue 15)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("transform", ["default", "pandas", "polars", None])
def test_set_output_is_accepted_and_the_graph_is_unchanged(transform):
    rng = np.random.RandomState(0)
    X = _blobs(rng, 20)
    expected = VideoGraphBuilder(n_neighbors=3).fit_transform(X)
    builder = VideoGraphBuilder(n_neighbors=3)
    assert builder.set_output(transform=transform) is builder
    _assert_same_graph(builder.fit_transform(X), expected)
    _assert_same_graph(builder.transform(X), expected)
    # Pipeline.set_output passes the call to every step
    pipe = Pipeline([("graph", VideoGraphBuilder(n_neighbors=3))])
    assert pipe.set_output(transform=transform) is pipe
    _assert_same_graph(pipe.fit_transform(X), expected)
    with pytest.raises(ValueError, match="'numpy' is not an output setting"):
        builder.set_output(transform="numpy")


def test_global_transform_output_leaves_the_graph_a_video_graph():
    pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = _blobs(rng, 20)
    expected = VideoGraphBuilder(n_neighbors=3).fit_transform(X)
    with config_context(transform_output="pandas"):
        builder = VideoGraphBuilder(n_neighbors=3)
        _assert_same_graph(builder.fit_transform(X), expected)
        _assert_same_graph(builder.fit(X).transform(X), expected)


def test_feature_names_pass_through_to_the_graph():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = _blobs(rng, 20)[:, :4]
    builder = VideoGraphBuilder(n_neighbors=3).fit(X)
    assert list(builder.get_feature_names_out()) == ["x0", "x1", "x2", "x3"]
    assert builder.transform(X).feature_names is None
    columns = ["a", "b", "c", "d"]
    builder.fit(pd.DataFrame(X, columns=columns))
    names = builder.get_feature_names_out()
    assert names.dtype == object and list(names) == columns
    assert list(builder.get_feature_names_out(columns)) == columns
    with pytest.raises(ValueError, match="input_features is not equal"):
        builder.get_feature_names_out(["a", "b", "d", "c"])
    G = builder.transform(pd.DataFrame(X, columns=columns))
    assert G.feature_names.dtype == object and list(G.feature_names) == columns
    # columns= restricts the similarity, not the graph's features
    builder = VideoGraphBuilder(n_neighbors=3, columns=[0, 1])
    G = builder.fit_transform(pd.DataFrame(X, columns=columns))
    assert list(G.feature_names) == columns and G.features.shape[1] == 4
    with pytest.raises(NotFittedError):
        VideoGraphBuilder().get_feature_names_out()


def test_video_graph_feature_names_are_checked():
    A = np.ones((2, 3), dtype=np.float32)
    G = VideoGraph(np.ones((2, 2)), sp.csr_matrix(A), feature_names=["u", "v"])
    assert G.feature_names.dtype == object and list(G.feature_names) == ["u", "v"]
    with pytest.raises(ValueError, match="one name per column"):
        VideoGraph(np.ones((2, 2)), sp.csr_matrix(A), feature_names=["u"])
    with pytest.raises(TypeError, match="must be strings"):
        VideoGraph(np.ones((2, 2)), sp.csr_matrix(A), feature_names=[0, 1])


def test_link_distances_do_not_depend_on_the_chunk_of_pairs():
    # issue 9: distances in chunks that stay in the cache, the same values
    from skvidsage._neighbors import _pair_distance

    rng = np.random.RandomState(0)
    unit = torch.nn.functional.normalize
    Qn = unit(torch.tensor(rng.randn(30, 1024), dtype=torch.float32), dim=1)
    Rn = unit(torch.tensor(rng.randn(200, 1024), dtype=torch.float32), dim=1)
    rows = torch.arange(30).repeat_interleave(200)
    cols = torch.arange(200).repeat(30)
    whole = _pair_distance(Qn, Rn, rows, cols, max_values=2**30)
    for values in (2**20, 5000, 1):
        np.testing.assert_array_equal(
            _pair_distance(Qn, Rn, rows, cols, max_values=values), whole
        )
    exact = np.linalg.norm(
        Qn.double().numpy()[rows] - Rn.double().numpy()[cols], axis=1
    )
    assert np.abs(whole.numpy() - exact).max() < 1e-6


def test_shared_blocks_are_reused_only_for_the_same_arrays(monkeypatch):
    import skvidsage._neighbors as neighbors

    rng = np.random.RandomState(0)
    # float32 already: a float64 Q would be converted, a new array each call
    X, Q = _blobs(rng, 40), _blobs(rng, 9).astype(np.float32)
    a = VideoGraphBuilder(n_neighbors=3, max_degree=5).fit(X)
    b = VideoGraphBuilder(n_neighbors=6, max_degree=6, visual_weight="rbf")
    b.fit(X)
    b.reference_ = a.reference_  # as when both were fitted on one array
    expected = [a.transform(Q).toarray(), b.transform(Q).toarray()]
    calls, product = [], neighbors._cosine_block
    monkeypatch.setattr(
        neighbors, "_cosine_block", lambda *args: calls.append(1) or product(*args)
    )
    with neighbors.shared_blocks():
        got = [a.transform(Q).toarray(), b.transform(Q).toarray()]
        assert len(calls) == 1
        other = Q + 0.5  # another array: computed, not taken
        np.testing.assert_array_equal(
            b.transform(other).toarray(), clone(b).fit(X).transform(other).toarray()
        )
        assert len(calls) == 3
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    a.transform(Q), a.transform(Q)  # outside: nothing kept
    assert len(calls) == 5
