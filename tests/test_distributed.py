"""Inference over Dask arrays (issue 12.4): equal to in-memory, exactly."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skvidsage import GraphSmoothingClassifier, VideoGraphBuilder, VidSageEmbedder
from skvidsage.distributed import dask_apply

da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 16)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    pipe = GraphSmoothingClassifier(
        make_pipeline(VidSageEmbedder(), LogisticRegression(max_iter=500))
    ).fit(X[:400], y[:400])
    return pipe, X[400:]


@pytest.mark.parametrize("method", ["predict_proba", "predict"])
def test_blocks_on_a_cluster_equal_in_memory(fitted, method):
    distributed = pytest.importorskip("distributed")
    pipe, X = fitted
    lazy = dask_apply(pipe, da.from_array(X, chunks=37), method=method)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = client.compute(lazy).result()
    np.testing.assert_array_equal(out, getattr(pipe, method)(X))


def test_transformers_and_graph_features(fitted):
    _, X = fitted
    embedder = VidSageEmbedder().fit(X[:100])
    lazy = dask_apply(embedder, da.from_array(X, chunks=50), method="transform")
    np.testing.assert_array_equal(lazy.compute(), embedder.transform(X))
    builder = VideoGraphBuilder().fit(X[:100])
    with pytest.raises(TypeError, match="VideoGraph"):
        # a graph is not an array: apply the step that consumes it instead
        dask_apply(builder, da.from_array(X, chunks=50), method="transform")


def test_bad_inputs_say_what_to_do(fitted):
    pipe, X = fitted
    with pytest.raises(TypeError, match="dask.array.from_array"):
        dask_apply(pipe, X)
    with pytest.raises(ValueError, match=r"rechunk\(\{1: -1\}\)"):
        dask_apply(pipe, da.from_array(X, chunks=(50, 8)))
    with pytest.raises(AttributeError, match="no method 'transform'"):
        head = LogisticRegression().fit(X, X[:, 0] > 0)
        dask_apply(head, da.from_array(X), "transform")
