import dataclasses
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_consistent_length

from skvidsage.containers import VideoFeatures, VideoGraph


def _features(n=5, d=3):
    rng = np.random.RandomState(0)
    sets = [{"person"}, {"person", "dog"}, set(), {"car"}, {"dog", 3}][:n]
    return VideoFeatures(rng.rand(n, d), sets)


# --------------------------------------------------------------------------
# VideoFeatures
# --------------------------------------------------------------------------
def test_video_features_basic():
    X = _features()
    assert X.shape == (5, 3)
    assert len(X) == 5
    assert X.object_sets[1] == frozenset({"person", "dog"})
    assert all(isinstance(s, frozenset) for s in X.object_sets)
    assert repr(X) == "VideoFeatures(n_videos=5, n_features=3, object_sets=5)"
    plain = VideoFeatures(np.zeros((2, 4)))
    assert plain.object_sets is None
    assert repr(plain) == "VideoFeatures(n_videos=2, n_features=4, object_sets=None)"


def test_video_features_accepts_lists_and_keeps_array():
    features = np.ones((2, 2), dtype=np.float32)
    X = VideoFeatures(features, [["a", "b", "a"], ()])
    assert X.features is features  # no copy
    assert X.object_sets == [frozenset({"a", "b"}), frozenset()]
    assert VideoFeatures([[1, 2], [3, 4]]).features.shape == (2, 2)


def test_video_features_is_frozen():
    X = _features()
    with pytest.raises(dataclasses.FrozenInstanceError):
        X.features = np.zeros((5, 3))


@pytest.mark.parametrize(
    "key, rows",
    [
        (np.array([3, 0]), [3, 0]),
        ([1, 1], [1, 1]),
        (np.array([True, False, False, True, False]), [0, 3]),
        (slice(1, 4), [1, 2, 3]),
        (slice(None, None, -2), [4, 2, 0]),
        (np.array([], dtype=int), []),
        ([], []),
        ((np.array([2]), Ellipsis), [2]),  # how _safe_indexing calls it
    ],
)
def test_video_features_getitem(key, rows):
    X = _features()
    sub = X[key]
    assert isinstance(sub, VideoFeatures)
    np.testing.assert_array_equal(sub.features, X.features[rows])
    assert sub.object_sets == [X.object_sets[i] for i in rows]


def test_video_features_getitem_without_sets():
    X = VideoFeatures(np.arange(6.0).reshape(3, 2))
    sub = X[[2]]
    assert sub.object_sets is None
    np.testing.assert_array_equal(sub.features, [[4.0, 5.0]])


@pytest.mark.parametrize(
    "key, error, match",
    [
        (0, TypeError, r"X\[\[0\]\]"),
        (np.int64(2), TypeError, "single row"),
        (np.array([True, False]), IndexError, "boolean mask"),
        (np.array([0.5]), IndexError, "integer array"),
        (np.array([[0, 1]]), IndexError, "1-D"),
        ((slice(None), 0), IndexError, "only be indexed by rows"),
        (np.array([7]), IndexError, None),
    ],
)
def test_video_features_getitem_errors(key, error, match):
    with pytest.raises(error, match=match):
        _features()[key]


def test_video_features_sklearn_splitting():
    X = _features()
    y = np.arange(5)
    assert _num_samples(X) == 5
    check_consistent_length(X, y)
    sub = _safe_indexing(X, np.array([4, 1]))
    assert isinstance(sub, VideoFeatures)
    assert sub.object_sets == [X.object_sets[4], X.object_sets[1]]
    mask = _safe_indexing(X, np.array([True, False, True, False, False]))
    np.testing.assert_array_equal(mask.features, X.features[[0, 2]])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=2, random_state=0)
    assert isinstance(X_tr, VideoFeatures) and len(X_tr) == 3 and len(X_te) == 2
    for part, labels in ((X_tr, y_tr), (X_te, y_te)):
        assert part.object_sets == [X.object_sets[i] for i in labels]
    for train, _ in KFold(n_splits=2).split(X):
        assert len(_safe_indexing(X, train)) == len(train)


@pytest.mark.parametrize("features", [np.zeros(3), np.zeros((2, 3, 4)), 1.0])
def test_video_features_needs_2d(features):
    with pytest.raises(ValueError, match="2-D"):
        VideoFeatures(features)


def test_video_features_set_errors_name_the_row():
    with pytest.raises(ValueError, match="2 entries but features has 3 rows"):
        VideoFeatures(np.zeros((3, 2)), [{"a"}, {"b"}])
    with pytest.raises(TypeError, match=r"object_sets\[1\] is a string"):
        VideoFeatures(np.zeros((2, 2)), [{"a"}, "dog"])
    with pytest.raises(TypeError, match=r"object_sets\[0\] must be an iterable"):
        VideoFeatures(np.zeros((2, 2)), [3, {"a"}])
    with pytest.raises(TypeError, match=r"object_sets\[1\] must be an iterable"):
        VideoFeatures(np.zeros((2, 2)), [{"a"}, [["unhashable"]]])
    with pytest.raises(TypeError, match="one set of labels per row"):
        VideoFeatures(np.zeros((2, 2)), "ab")


def test_video_features_pickle():
    X = _features()
    X2 = pickle.loads(pickle.dumps(X))
    np.testing.assert_array_equal(X2.features, X.features)
    assert X2.object_sets == X.object_sets


# --------------------------------------------------------------------------
# VideoGraph
# --------------------------------------------------------------------------
def _graph():
    adjacency = sp.csr_matrix(np.array([[1.0, 0, 0.5], [0, 0, 0]]))
    return VideoGraph(np.arange(8.0).reshape(2, 4), adjacency)


def test_video_graph_basic():
    G = _graph()
    assert G.shape == (2, 3)
    assert len(G) == 2
    assert G.dtype == np.float32
    assert G.features.dtype == np.float32
    assert G.adjacency.dtype == np.float32
    assert sp.isspmatrix_csr(G.adjacency)
    np.testing.assert_array_equal(G.toarray(), [[1.0, 0, 0.5], [0, 0, 0]])
    assert G.toarray().dtype == np.float32
    assert repr(G) == "VideoGraph(n_queries=2, n_reference=3, n_features=4, n_edges=2)"


def test_video_graph_is_not_array_like():
    # a dense view of a 100k x 100k graph must never be built implicitly
    assert not hasattr(VideoGraph, "__array__")
    assert not hasattr(VideoGraph, "__getitem__")


def test_video_graph_accepts_other_sparse_formats_and_tidies():
    # COO input with an explicit zero and a duplicate entry
    coo = sp.coo_matrix(([0.5, 0.25, 0.0, 0.5], ([0, 0, 1, 1], [2, 2, 0, 1])), (2, 3))
    G = VideoGraph(np.zeros((2, 1)), coo)
    assert sp.isspmatrix_csr(G.adjacency)
    assert G.adjacency.has_canonical_format
    np.testing.assert_array_equal(G.toarray(), [[0, 0, 0.75], [0, 0.5, 0]])
    assert G.adjacency.nnz == 2


def test_video_graph_does_not_modify_callers_matrix():
    A = sp.csr_matrix(
        (np.array([1.0, 2.0], dtype=np.float32), np.array([2, 0]), np.array([0, 2])),
        shape=(1, 3),
    )
    VideoGraph(np.zeros((1, 1)), A)
    np.testing.assert_array_equal(A.indices, [2, 0])


def test_video_graph_errors():
    with pytest.raises(TypeError, match="scipy.sparse"):
        VideoGraph(np.zeros((2, 2)), np.eye(2))
    with pytest.raises(ValueError, match="adjacency has 3 rows but features has 2"):
        VideoGraph(np.zeros((2, 2)), sp.eye(3, format="csr"))
    with pytest.raises(ValueError, match="2-D"):
        VideoGraph(np.zeros(2), sp.eye(2, format="csr"))
    with pytest.raises(ValueError, match="non-negative"):
        VideoGraph(np.zeros((1, 1)), sp.csr_matrix([[-1.0]]))
    with pytest.raises(ValueError, match="finite"):
        VideoGraph(np.zeros((1, 1)), sp.csr_matrix([[np.inf]]))


def test_video_graph_pickle():
    G = _graph()
    G2 = pickle.loads(pickle.dumps(G))
    np.testing.assert_array_equal(G2.features, G.features)
    assert (G2.adjacency != G.adjacency).nnz == 0
    assert G2.shape == G.shape
