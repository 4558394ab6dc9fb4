"""VideoIndex: "more like this" retrieval in the kneighbors convention (issue 14)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import skvidsage._ann
from skvidsage import VideoGraphBuilder, VideoIndex, VidSageEmbedder, ZeroRowWarning


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(600, n_features=16, centers=6, random_state=0)
    return X.astype(np.float32), y


def _sklearn_kneighbors(C, Q, k):
    """Reference: scikit-learn on the L2-normalised rows."""
    nn = NearestNeighbors(n_neighbors=k).fit(normalize(C))
    return nn.kneighbors(None if Q is None else normalize(Q))


@parametrize_with_checks([VideoIndex(n_neighbors=1)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------
# the kneighbors convention
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 7])
def test_matches_nearest_neighbors_on_normalised_rows(blobs, k):
    X, _ = blobs
    C, Q = X[:500], X[500:]
    index = VideoIndex(n_neighbors=k).fit(C)
    for queries in (Q, None):
        dist, idx = index.kneighbors(queries)
        ref_dist, ref_idx = _sklearn_kneighbors(C, queries, k)
        assert dist.shape == idx.shape == (len(Q) if queries is not None else 500, k)
        assert idx.dtype == np.int64 and dist.dtype == np.float32
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
        assert np.all(np.diff(dist, axis=1) >= 0)


def test_return_distance_and_n_neighbors_argument(blobs):
    X, _ = blobs
    index = VideoIndex(n_neighbors=3).fit(X[:500])
    idx = index.kneighbors(X[500:], return_distance=False)
    assert isinstance(idx, np.ndarray) and idx.shape == (100, 3)
    dist, idx5 = index.kneighbors(X[500:], n_neighbors=5)
    assert idx5.shape == dist.shape == (100, 5)
    np.testing.assert_array_equal(idx5[:, :3], idx)
    assert index.kneighbors(X[:1], return_distance=False).dtype == np.int64


def test_n_neighbors_larger_than_the_catalogue_errors(blobs):
    X, _ = blobs
    index = VideoIndex().fit(X[:5])
    assert index.kneighbors(X[5:8], n_neighbors=5)[1].shape == (3, 5)
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        index.kneighbors(X[5:8], n_neighbors=6)
    # the catalogue's own queries exclude themselves: one fewer is available
    assert index.kneighbors(n_neighbors=4)[1].shape == (5, 4)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        index.kneighbors(n_neighbors=5)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        index.kneighbors()  # the default n_neighbors=10
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_neighbors > 0"):
            index.kneighbors(X[5:8], n_neighbors=bad)
    with pytest.raises(InvalidParameterError):
        VideoIndex(n_neighbors=0).fit(X)


def test_self_excluded_duplicates_kept(blobs):
    X, _ = blobs
    C = np.vstack([X[:50], X[:5], X[7:8]])  # 0-4 and 7 twice
    index = VideoIndex(n_neighbors=4).fit(C)
    dist, idx = index.kneighbors()
    assert not np.any(idx == np.arange(len(C))[:, None])
    # a duplicate is another video: returned first, at distance 0
    copies = {0: 50, 1: 51, 2: 52, 3: 53, 4: 54, 7: 55}
    for a, b in copies.items():
        assert idx[a, 0] == b and idx[b, 0] == a
        assert dist[a, 0] == 0.0 and dist[b, 0] == 0.0
    # as scikit-learn, whose order among equal distances is arbitrary (ours:
    # the lower index first)
    ref_dist, ref_idx = _sklearn_kneighbors(C, None, 4)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(ref_idx, axis=1))
    tied = np.diff(dist, axis=1) == 0
    assert np.all(np.diff(idx, axis=1)[tied] > 0)
    # the same rows as explicit queries: now they find themselves
    dist_q, idx_q = index.kneighbors(C[:5], n_neighbors=2)
    np.testing.assert_array_equal(idx_q, [[0, 50], [1, 51], [2, 52], [3, 53], [4, 54]])
    np.testing.assert_array_equal(dist_q, 0.0)


def test_ties_go_to_the_lower_index():
    C = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]], dtype=np.float32)
    index = VideoIndex(n_neighbors=3).fit(C)
    assert index.kneighbors([[1.0, 0.1]], return_distance=False).tolist() == [[0, 1, 2]]
    assert index.kneighbors(return_distance=False)[:4].tolist() == [
        [1, 2, 3],
        [0, 2, 3],
        [0, 1, 3],
        [0, 1, 2],
    ]


def test_batch_size_does_not_change_the_result(blobs):
    X, _ = blobs
    a = VideoIndex(n_neighbors=5).fit(X[:500])
    b = VideoIndex(n_neighbors=5, batch_size=7).fit(X[:500])
    for queries in (X[500:], None):
        for ra, rb in zip(a.kneighbors(queries), b.kneighbors(queries), strict=True):
            np.testing.assert_array_equal(ra, rb)


def test_zero_rows_warn_and_lie_at_distance_one(blobs):
    X, _ = blobs
    C = X[:100].copy()
    C[3] = 0.0
    with pytest.warns(ZeroRowWarning, match=r"VideoIndex.fit: 1 row .* \(row 3\)"):
        index = VideoIndex(n_neighbors=100).fit(C)
    with pytest.warns(ZeroRowWarning, match="VideoIndex.kneighbors"):
        dist, idx = index.kneighbors(np.zeros((1, 16), np.float32))
    assert idx[0, 0] == 3 and dist[0, 0] == 0.0
    np.testing.assert_allclose(dist[0, 1:], 1.0, atol=1e-6)
    # a unit query ranks the zero row by its distance, 1
    dist, idx = index.kneighbors(X[:1])
    pos = int(np.flatnonzero(idx[0] == 3)[0])
    assert abs(dist[0, pos] - 1.0) < 1e-6
    assert np.all(np.diff(dist[0]) >= 0)


# --------------------------------------------------------------------------
# a transformer: inductive queries, blocks, pipelines, frozen models
# --------------------------------------------------------------------------
def _block_unit(Z, blocks):
    return np.hstack([normalize(Z[:, s]) for s in blocks.values()]) / np.sqrt(
        len(blocks)
    )


def test_embedder_queries_are_embedded_and_blocks_normalised(blobs):
    X, _ = blobs
    C, Q = X[:500], X[500:]
    index = VideoIndex(VidSageEmbedder(), n_neighbors=6).fit(C)
    assert index.normalize_ == "blocks" and list(index.blocks_) == ["x", "hop1", "hop2"]
    emb = index.transformer_
    Zc_raw, Zq_raw = emb.transform(C), emb.transform(Q)
    Zc, Zq = _block_unit(Zc_raw, emb.blocks_), _block_unit(Zq_raw, emb.blocks_)
    np.testing.assert_allclose(index.embedding_, Zc, atol=1e-6)
    dist, idx = index.kneighbors(Q)
    ref = NearestNeighbors(n_neighbors=6).fit(Zc).kneighbors(Zq)
    np.testing.assert_allclose(dist, ref[0], atol=1e-5)
    assert (idx == ref[1]).mean() > 0.99  # float32 near-ties may swap
    # the similarity 1 - d^2 / 2 is the mean of the three blocks' cosines
    i, j = 0, idx[0, 0]
    cosines = [
        (normalize(Zq_raw[[i], s]) @ normalize(Zc_raw[[j], s]).T).item()
        for s in emb.blocks_.values()
    ]
    assert abs((1 - dist[0, 0] ** 2 / 2) - np.mean(cosines)) < 1e-5
    rows = VideoIndex(VidSageEmbedder(), normalize="rows").fit(C)
    assert rows.normalize_ == "rows" and rows.blocks_ is None
    np.testing.assert_allclose(rows.embedding_, normalize(emb.transform(C)), atol=1e-6)


def test_blocks_need_a_transformer_with_blocks(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="normalize='blocks' needs"):
        VideoIndex(normalize="blocks").fit(X)
    with pytest.raises(ValueError, match="normalize='blocks' needs"):
        VideoIndex(StandardScaler(), normalize="blocks").fit(X)
    assert VideoIndex(StandardScaler()).fit(X).normalize_ == "rows"


def test_pipeline_and_frozen_model(blobs):
    X, _ = blobs
    C, Q = X[:400], X[400:]
    own = VideoIndex(VidSageEmbedder(), n_neighbors=5).fit(C)
    pipe = make_pipeline(VideoGraphBuilder(), VidSageEmbedder())
    index = VideoIndex(pipe, n_neighbors=5).fit(C)
    assert index.normalize_ == "blocks"
    assert index.transformer is pipe and index.transformer_ is not pipe
    assert index.n_features_in_ == 16
    for a, b in zip(own.kneighbors(Q), index.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    # a model fitted once indexes another catalogue without refitting
    fitted = clone(pipe).fit(C)
    frozen = VideoIndex(FrozenEstimator(fitted), n_neighbors=5).fit(X)
    assert frozen.transformer_.estimator is fitted and frozen.normalize_ == "blocks"
    assert frozen.n_samples_fit_ == len(X)
    np.testing.assert_allclose(
        frozen.embedding_[:400], index.embedding_, rtol=0, atol=1e-6
    )
    dist, idx = frozen.kneighbors(Q)
    assert np.all(idx[:, 0] == np.arange(400, 600)) and np.all(dist[:, 0] < 1e-3)


def test_a_graph_is_not_a_representation(blobs):
    X, _ = blobs
    with pytest.raises(TypeError, match="returned a VideoGraph"):
        VideoIndex(VideoGraphBuilder()).fit(X)


def test_not_fitted_clone_and_pickle(blobs):
    X, _ = blobs
    index = VideoIndex(VidSageEmbedder(), n_neighbors=4)
    with pytest.raises(NotFittedError):
        index.kneighbors(X)
    fitted = index.fit(X[:500])
    twin = clone(fitted)
    assert repr(twin.get_params()) == repr(index.get_params())
    with pytest.raises(NotFittedError):
        twin.kneighbors(X)
    loaded = pickle.loads(pickle.dumps(fitted))
    for queries in (X[500:], None):
        for a, b in zip(
            fitted.kneighbors(queries), loaded.kneighbors(queries), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    assert "VideoIndex" in fitted._repr_html_()


# --------------------------------------------------------------------------
# faiss
# --------------------------------------------------------------------------
def _recall(a, b):
    return np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)])


@pytest.fixture(scope="module")
def catalogue():
    X, _ = make_blobs(3000, n_features=32, centers=30, random_state=0)
    return X.astype(np.float32)


def test_faiss_and_exact_agree(catalogue):
    pytest.importorskip("faiss")
    C, Q = catalogue[:1000], catalogue[2500:]
    exact = VideoIndex(n_neighbors=10, algorithm="brute").fit(C)
    # an effort of n visits every node: the hits are the exact ones
    ann = VideoIndex(n_neighbors=10, algorithm="faiss", ef_search=1000).fit(C)
    assert exact.algorithm_ == "brute" and ann.algorithm_ == "faiss"
    for queries in (Q, None):
        d_exact, i_exact = exact.kneighbors(queries)
        d_ann, i_ann = ann.kneighbors(queries)
        assert (i_exact == i_ann).mean() > 0.99  # float32 near-ties may swap
        np.testing.assert_allclose(d_ann, d_exact, atol=1e-5)
        if queries is None:
            assert not np.any(i_ann == np.arange(1000)[:, None])
    # the default effort, and one changed on the fitted index
    C = catalogue[:2500]
    truth = VideoIndex(n_neighbors=10, algorithm="brute").fit(C).kneighbors(Q)[1]
    ann = VideoIndex(n_neighbors=10, algorithm="faiss").fit(C)
    assert _recall(ann.kneighbors(Q, return_distance=False), truth) >= 0.95
    ann.set_params(ef_search=2500)
    assert _recall(ann.kneighbors(Q, return_distance=False), truth) > 0.999


def test_faiss_pickles_and_finds_every_neighbour_of_tiny_catalogues(catalogue):
    pytest.importorskip("faiss")
    index = VideoIndex(n_neighbors=5, algorithm="faiss").fit(catalogue[:2000])
    loaded = pickle.loads(pickle.dumps(index))
    for a, b in zip(
        index.kneighbors(catalogue[2000:]),
        loaded.kneighbors(catalogue[2000:]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    tiny = VideoIndex(algorithm="faiss").fit(catalogue[:6])
    dist, idx = tiny.kneighbors(n_neighbors=5)
    assert np.all(idx >= 0) and np.all(
        np.sort(idx, axis=1) == [sorted(set(range(6)) - {i}) for i in range(6)]
    )


def test_auto_follows_the_graph_builders_rule(monkeypatch, catalogue):
    pytest.importorskip("faiss")
    assert VideoIndex().fit(catalogue).algorithm_ == "brute"
    monkeypatch.setattr(skvidsage._ann, "FAISS_FROM", 1000)
    assert VideoIndex().fit(catalogue[:999]).algorithm_ == "brute"
    assert VideoIndex().fit(catalogue[:1000]).algorithm_ == "faiss"
    builder = VideoGraphBuilder().fit(catalogue[:1000])
    assert builder.algorithm_ == "faiss"
