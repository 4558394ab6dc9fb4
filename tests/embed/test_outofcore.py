"""VidSageEmbedder.transform over memmaps and into out= (issue 12.2)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skvidsage import VideoGraphBuilder, VidSageEmbedder, ZeroRowWarning
from skvidsage.containers import VideoGraph
from skvidsage.embed import _outofcore


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    # blocks of 64 rows, so that the 250 query rows take four, the last short
    monkeypatch.setattr(_outofcore, "BLOCK_ROWS", 64)


def _data(n_ref=200, n_query=250, d=12):
    rng = np.random.RandomState(0)
    centres = rng.randn(5, d)
    X = centres[rng.randint(5, size=n_ref)] + 0.3 * rng.randn(n_ref, d)
    Q = centres[rng.randint(5, size=n_query)] + 0.3 * rng.randn(n_query, d)
    return X.astype(np.float32), Q.astype(np.float32)


def _memmap(tmp_path, array, name="q.npy"):
    path = tmp_path / name
    np.save(path, array)
    return np.load(path, mmap_mode="r")


@pytest.fixture(scope="module", params=[(), (8, 4)], ids=["propagated", "trained"])
def fitted(request):
    X, Q = _data()
    emb = VidSageEmbedder(
        hidden_dims=request.param, max_epochs=2, batch_size=64, random_state=0
    )
    return emb.fit(X), Q


def test_memmap_input_equals_in_memory(fitted, tmp_path):
    emb, Q = fitted
    expected = emb.transform(Q)
    Z = emb.transform(_memmap(tmp_path, Q))
    assert type(Z) is np.ndarray and Z.dtype == np.float32
    np.testing.assert_array_equal(Z, expected)


def test_out_path_and_out_memmap(fitted, tmp_path):
    emb, Q = fitted
    expected = emb.transform(Q)
    Z = emb.transform(_memmap(tmp_path, Q), out=tmp_path / "z.npy")
    assert isinstance(Z, np.memmap) and Z.mode == "r"
    np.testing.assert_array_equal(Z, expected)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), expected)
    out = np.lib.format.open_memmap(
        tmp_path / "w.npy", mode="w+", dtype=np.float32, shape=expected.shape
    )
    assert emb.transform(Q, out=out) is out
    np.testing.assert_array_equal(out, expected)
    del out
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), expected)
    plain = np.empty_like(expected)
    assert emb.transform(pd.DataFrame(Q), out=plain) is plain  # in memory, copied
    np.testing.assert_array_equal(plain, expected)


def test_graph_with_memmap_features(tmp_path):
    X, Q = _data()
    builder = VideoGraphBuilder().fit(X)
    emb = VidSageEmbedder(hidden_dims=(8,), max_epochs=2, random_state=0)
    emb.fit(builder.transform(X))
    G = builder.transform(Q)
    on_disk = VideoGraph(_memmap(tmp_path, G.features), G.adjacency)
    np.testing.assert_array_equal(emb.transform(on_disk), emb.transform(G))
    wrong = VideoGraph(on_disk.features, G.adjacency[:, :100])
    with pytest.raises(ValueError, match="links to 100 reference videos"):
        emb.transform(wrong)


@pytest.mark.parametrize("graph_input", [False, True])
def test_zero_rows_warn_once_with_global_rows(tmp_path, graph_input):
    X, Q = _data()
    Q[[3, 200]] = 0
    builder = VideoGraphBuilder().fit(X)
    emb = VidSageEmbedder(random_state=0)
    emb.fit(builder.transform(X) if graph_input else X)
    source = Q
    if graph_input:
        with pytest.warns(ZeroRowWarning, match="VideoGraphBuilder.transform"):
            source = builder.transform(Q)
    with warnings.catch_warnings(record=True) as memory:
        warnings.simplefilter("always")
        expected = emb.transform(source)
    if graph_input:
        source = VideoGraph(_memmap(tmp_path, source.features), source.adjacency)
    else:
        source = _memmap(tmp_path, source)
    with warnings.catch_warnings(record=True) as blocks:
        warnings.simplefilter("always")
        Z = emb.transform(source)
    np.testing.assert_array_equal(Z, expected)
    memory = [w for w in memory if w.category is ZeroRowWarning]
    blocks = [w for w in blocks if w.category is ZeroRowWarning]
    assert len(memory) == len(blocks) == 1
    assert str(blocks[0].message) == str(memory[0].message)
    assert "(rows 3, 200)" in str(blocks[0].message)
    assert blocks[0].filename == __file__


def test_bad_out(fitted, tmp_path):
    emb, Q = fitted
    n_out = emb.transform(Q[:1]).shape[1]
    with pytest.raises(ValueError, match=r"float32 array of shape \(250, "):
        emb.transform(Q, out=np.empty((250, n_out + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="float32 array"):
        emb.transform(Q, out=np.empty((250, n_out)))
    with pytest.raises(TypeError, match="out must be None, a path"):
        emb.transform(Q, out=[])
    with pytest.raises(ValueError, match="out is read-only"):
        emb.transform(Q, out=_memmap(tmp_path, np.zeros((250, n_out), "f4")))


def test_a_failed_transform_leaves_no_file(fitted, tmp_path):
    emb, Q = fitted
    Q = Q.copy()
    Q[100, 0] = np.nan  # the second block fails validation
    with pytest.raises(ValueError, match="NaN"):
        emb.transform(_memmap(tmp_path, Q), out=tmp_path / "z.npy")
    assert not (tmp_path / "z.npy").exists()
    assert not list(tmp_path.glob("*.part"))


def test_set_output_pandas_with_a_memmap(fitted, tmp_path):
    emb, Q = fitted
    expected = emb.transform(Q)
    try:
        frame = emb.set_output(transform="pandas").transform(_memmap(tmp_path, Q))
    finally:
        emb.set_output(transform="default")
    assert list(frame.columns) == list(emb.get_feature_names_out())
    np.testing.assert_array_equal(frame.to_numpy(), expected)
