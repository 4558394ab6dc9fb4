"""The approximate (faiss) search of VideoGraphBuilder (issue 12.1)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

import skvidsage
import skvidsage._ann
from skvidsage.containers import VideoFeatures
from skvidsage.graph import VideoGraphBuilder

pytest.importorskip("faiss")
_CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(3000, n_features=32, centers=30, random_state=0)
    return X.astype(np.float32)


def _links(A):
    return [set(A.indices[A.indptr[i] : A.indptr[i + 1]]) for i in range(A.shape[0])]


@pytest.mark.parametrize("tau, weight", [(0.3, "binary"), (-0.5, "rbf")])
def test_exhaustive_faiss_search_gives_the_brute_force_graph(blobs, tau, weight):
    # a search effort above n visits every reference, so the candidates are
    # exact: the rules must then give brute force's links, on fit and on
    # unseen rows (up to float32 near-ties at the cap)
    train, test = blobs[:2500], blobs[2500:]
    params = dict(tau=tau, n_neighbors=5, max_degree=20, visual_weight=weight)
    brute = VideoGraphBuilder(algorithm="brute", **params)
    exact = VideoGraphBuilder(algorithm="faiss", n_probe=3000, **params)
    unit = train / np.linalg.norm(train, axis=1, keepdims=True).astype(np.float64)
    for queries, a, b in [
        (train, brute.fit_transform(train), exact.fit_transform(train)),
        (test, brute.transform(test), exact.transform(test)),
    ]:
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        differ = 0
        for i, (la, lb) in enumerate(
            zip(_links(a.adjacency), _links(b.adjacency), strict=True)
        ):
            if la != lb:  # only a float32 near-tie at the cap may swap
                differ += 1
                cos = unit[sorted(la ^ lb)] @ q[i]
                assert cos.max() - cos.min() < 1e-5, (i, la ^ lb, cos)
        assert differ <= 0.01 * len(queries)
    degrees = np.diff(exact.transform(test).adjacency.indptr)
    assert degrees.min() >= 5 and degrees.max() <= 20


def test_default_probes_find_nearly_every_link(blobs):
    brute = VideoGraphBuilder(algorithm="brute", n_neighbors=10).fit_transform(blobs)
    ann = VideoGraphBuilder(algorithm="faiss", n_neighbors=10).fit_transform(blobs)
    hits = sum(
        len(a & b)
        for a, b in zip(_links(brute.adjacency), _links(ann.adjacency), strict=True)
    )
    assert hits / brute.adjacency.nnz >= 0.95


def _recall(A, B):
    hits = sum(len(a & b) for a, b in zip(_links(A), _links(B), strict=True))
    return hits / B.nnz


def test_auto_probes_reach_the_recall_target_where_a_fixed_count_does_not():
    # unclustered vectors: the worst case of cells (8 of 77 find ~0.58)
    X = np.random.default_rng(0).standard_normal((6000, 32)).astype(np.float32)
    params = dict(tau=2.0, n_neighbors=10, max_degree=10)
    exact = VideoGraphBuilder(algorithm="brute", **params).fit_transform(X).adjacency
    fixed = VideoGraphBuilder(algorithm="faiss", n_probe=8, **params)
    assert _recall(fixed.fit_transform(X).adjacency, exact) < 0.9
    assert fixed.index_.recall is None
    auto = VideoGraphBuilder(algorithm="faiss", **params)
    recall = _recall(auto.fit_transform(X).adjacency, exact)
    assert recall >= skvidsage._ann.RECALL_TARGET
    assert auto.index_.recall >= skvidsage._ann.RECALL_TARGET
    assert abs(auto.index_.recall - recall) < 0.02
    n_probe = auto.index_.n_probe
    assert n_probe & (n_probe - 1) == 0 or n_probe == len(auto.index_.centroids)
    assert f"n_probe={n_probe}" in repr(auto.index_)
    # fewer probes would have missed the target, on the same estimate
    half = VideoGraphBuilder(algorithm="faiss", n_probe=n_probe // 2, **params)
    assert _recall(half.fit_transform(X).adjacency, exact) < 0.96


def test_auto_probes_are_few_on_clustered_vectors(blobs):
    builder = VideoGraphBuilder(algorithm="faiss", n_neighbors=10).fit(blobs)
    assert builder.index_.n_probe <= 4
    assert builder.index_.recall >= skvidsage._ann.RECALL_TARGET


def test_probe_recall_is_the_search_recall_at_each_probe_count():
    X = np.random.default_rng(1).standard_normal((900, 8)).astype(np.float32)
    index, _ = skvidsage._ann.IVFIndex.build(X, n_probe=1, device=_CPU)
    rng = np.random.default_rng(0)
    recall = skvidsage._ann.probe_recall(index, X, 5, _CPU, rng, sample=900)
    assert len(recall) == 6 and recall[-1] == 1.0  # 30 cells: 1, 2, ..., 32
    assert np.all(np.diff(recall) >= 0)
    every_cell, _ = skvidsage._ann.IVFIndex.build(X, n_probe=30, device=_CPU)
    _, exact, _ = every_cell.search(X, X, 5, device=_CPU)
    for i, r in enumerate(recall):
        index.n_probe = 2**i
        _, found, _ = index.search(X, X, 5, device=_CPU)
        pairs = zip(found, exact, strict=True)
        share = np.mean([len(set(a) & set(b)) / 5 for a, b in pairs])
        assert share == pytest.approx(r, abs=1e-9)


def test_faiss_never_links_a_video_to_itself_or_an_exact_copy(blobs):
    X = np.vstack([blobs[:1000], blobs[:5]])  # rows 1000-1004 copy rows 0-4
    A = (
        VideoGraphBuilder(algorithm="faiss", tau=1.0, n_neighbors=10, n_probe=3000)
        .fit_transform(X)
        .adjacency
    )
    for i, links in enumerate(_links(A)):
        assert i not in links and len(links) == 10
    for i in range(5):
        assert 1000 + i not in _links(A)[i] and i not in _links(A)[1000 + i]


def test_auto_uses_faiss_only_where_it_applies(blobs, monkeypatch):
    assert VideoGraphBuilder().fit(blobs).algorithm_ == "brute"
    monkeypatch.setattr(skvidsage._ann, "FAISS_FROM", 1000)
    assert VideoGraphBuilder().fit(blobs).algorithm_ == "faiss"
    assert VideoGraphBuilder(max_degree=None).fit(blobs).algorithm_ == "brute"
    sets = VideoFeatures(blobs, [frozenset({"a"})] * len(blobs))
    assert VideoGraphBuilder().fit(sets).algorithm_ == "brute"
    with pytest.raises(ValueError, match="needs max_degree .* and no object sets"):
        VideoGraphBuilder(algorithm="faiss").fit(sets)
    with pytest.raises(ValueError, match="max_degree=None"):
        VideoGraphBuilder(algorithm="faiss", max_degree=None).fit(blobs)


def test_a_faiss_builder_pickles_with_its_index(blobs):
    builder = VideoGraphBuilder(algorithm="faiss").fit(blobs[:2000])
    loaded = pickle.loads(pickle.dumps(builder))
    a = builder.transform(blobs[2000:]).adjacency
    b = loaded.transform(blobs[2000:]).adjacency
    assert (a != b).nnz == 0


class _ReadSpy(np.memmap):
    """A memmap that records the most rows read at once (slices, ufuncs)."""

    most = 0

    def __getitem__(self, key):
        out = super().__getitem__(key)
        column_view = isinstance(key, tuple) and key[0] == slice(None)
        if isinstance(out, np.ndarray) and out.ndim == 2 and not column_view:
            _ReadSpy.most = max(_ReadSpy.most, out.shape[0])
        return out

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for x in inputs:
            if isinstance(x, np.ndarray) and x.ndim == 2:
                _ReadSpy.most = max(_ReadSpy.most, x.shape[0])
        inputs = [np.asarray(x) if isinstance(x, _ReadSpy) else x for x in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)


def _memmap(tmp_path, X, cls=np.memmap):
    path = tmp_path / "x.f32"
    X.astype(np.float32).tofile(path)
    return cls(path, dtype=np.float32, mode="r", shape=X.shape)


@pytest.mark.parametrize("algorithm", ["faiss", "brute"])
def test_a_memmap_gives_the_in_memory_graph(blobs, tmp_path, algorithm):
    X = np.vstack([blobs[:1500], blobs[:3], np.zeros((1, 32), np.float32)])
    mm = _memmap(tmp_path, X)
    params = dict(
        algorithm=algorithm,
        tau="auto",
        n_neighbors=5,
        max_degree=12,
        visual_weight="similarity",
    )
    with pytest.warns(skvidsage.ZeroRowWarning, match="row 1503"):
        a = VideoGraphBuilder(**params).fit(X)
    with pytest.warns(skvidsage.ZeroRowWarning, match="row 1503"):
        b = VideoGraphBuilder(**params).fit(mm)
    assert b.reference_ is mm  # kept on disk, not copied
    assert b.tau_ == pytest.approx(a.tau_, abs=1e-6)  # streamed tau="auto"
    with pytest.warns(skvidsage.ZeroRowWarning):
        pairs = [(a.fit_transform(X), b.fit_transform(mm))]
    pairs.append((a.transform(blobs[1500:]), b.transform(blobs[1500:])))
    for ga, gb in pairs:
        assert (ga.adjacency != gb.adjacency).nnz == 0
        np.testing.assert_array_equal(ga.features, gb.features)


def test_faiss_reads_a_memmap_block_by_block(blobs, tmp_path, monkeypatch):
    import skvidsage._blocks

    monkeypatch.setattr(skvidsage._blocks, "BLOCK_VALUES", 32 * 100)
    monkeypatch.setattr(skvidsage._ann, "_GROUP_VALUES", 32 * 200)
    monkeypatch.setattr(skvidsage._ann, "_TRAIN_PER_LIST", 8)  # k-means sample
    X = np.hstack([blobs, blobs[:, :4]])
    spy = _memmap(tmp_path, X, cls=_ReadSpy)
    _ReadSpy.most = 0
    params = dict(algorithm="faiss", n_probe=2)  # (tau="auto" reads 2,000 rows)
    builder = VideoGraphBuilder(columns=slice(0, 32), **params)
    graph = builder.fit_transform(spy)
    assert isinstance(builder.reference_, np.memmap)
    assert np.shares_memory(graph.features, spy)  # the graph does not copy it
    assert 0 < _ReadSpy.most <= 500, _ReadSpy.most  # never the 3,000 rows
    expected = VideoGraphBuilder(**params).fit_transform(blobs)
    assert (graph.adjacency != expected.adjacency).nnz == 0
    with pytest.raises(ValueError, match="NaN or infinity"):
        X[7, 3] = np.nan
        VideoGraphBuilder(algorithm="faiss").fit(_memmap(tmp_path, X))


def test_auto_probes_read_a_memmap_block_by_block(blobs, tmp_path, monkeypatch):
    import skvidsage._blocks

    monkeypatch.setattr(skvidsage._blocks, "BLOCK_VALUES", 32 * 100)
    spy = _memmap(tmp_path, blobs, cls=_ReadSpy)
    _ReadSpy.most = 0
    builder = VideoGraphBuilder(algorithm="faiss", tau=2.0).fit(spy)
    # the recall sample (1,000 rows) is gathered a few rows at a time
    assert 0 < _ReadSpy.most <= 100, _ReadSpy.most
    assert builder.index_.recall >= skvidsage._ann.RECALL_TARGET
    rows = np.arange(0, 3000, 7)
    taken = skvidsage._blocks.take_rows(spy, rows)
    np.testing.assert_array_equal(taken, blobs[rows])
