import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvidsage import (
    VideoFeatures,
    VideoGraph,
    VideoGraphBuilder,
    VidSageEmbedder,
    ZeroRowWarning,
    load_youtube8m,
)
from skvidsage.metrics import gap_scorer, hit_at_k_score, map_scorer
from tests._data import YT8M

FAST = dict(hidden_dims=(16, 8), max_epochs=5, random_state=0)


def _clusters(rng, n_per_class=30, n_classes=3, dim=12, noise=0.6):
    centers = rng.randn(n_classes, dim)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = (centers[y] + noise * rng.randn(len(y), dim)).astype(np.float32)
    return X, y


def _objects(y, rng):
    """Object sets that share a class-specific label and a common 'person'."""
    return [
        frozenset({f"obj{c}", "person"} | ({"car"} if rng.rand() < 0.3 else set()))
        for c in y
    ]


@parametrize_with_checks(
    [VidSageEmbedder(hidden_dims=(8, 4), max_epochs=2, random_state=0)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("conv", ["sage", "gat", "gcn"])
@pytest.mark.parametrize("loss", ["sage", "triplet", "contrastive"])
def test_every_conv_and_loss_trains(conv, loss):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    emb = VidSageEmbedder(conv=conv, loss=loss, **FAST).fit(X)
    Z = emb.transform(X)
    assert Z.shape == (len(X), 12 * 3 + 16 + 8) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert emb.n_iter_ == 5 and len(emb.loss_curve_) == 5
    assert np.isfinite(emb.loss_curve_).all()


def test_training_lowers_the_loss():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=60)
    emb = VidSageEmbedder(
        hidden_dims=(32, 16), max_epochs=40, dropout=0.0, random_state=0
    ).fit(X)
    assert np.mean(emb.loss_curve_[-5:]) < 0.8 * np.mean(emb.loss_curve_[:5])


def test_same_seed_same_embeddings_and_global_rng_untouched():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    Z1 = VidSageEmbedder(**FAST).fit_transform(X)
    assert torch.equal(torch.random.get_rng_state(), before)
    Z2 = VidSageEmbedder(**FAST).fit_transform(X)
    np.testing.assert_array_equal(Z1, Z2)
    Z3 = VidSageEmbedder(**{**FAST, "random_state": 1}).fit_transform(X)
    assert not np.array_equal(Z1, Z3)
    assert not torch.are_deterministic_algorithms_enabled()  # restored


def test_same_seed_identical_on_a_larger_graph():
    # big enough for torch's multi-threaded scatter reductions to kick in
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=1000, n_classes=3, dim=256)
    params = dict(hidden_dims=(64, 32), max_epochs=2, random_state=0)
    G = VideoGraphBuilder().fit_transform(X)
    Z1 = VidSageEmbedder(**params).fit_transform(G)
    Z2 = VidSageEmbedder(**params).fit_transform(G)
    np.testing.assert_array_equal(Z1, Z2)


def test_fit_transform_equals_fit_then_transform():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    emb = VidSageEmbedder(**FAST)
    np.testing.assert_allclose(emb.fit_transform(X), emb.transform(X), atol=1e-6)
    builder = VideoGraphBuilder().fit(X)
    graph_emb = VidSageEmbedder(**FAST)
    Z = graph_emb.fit_transform(builder.transform(X))
    np.testing.assert_allclose(Z, graph_emb.transform(builder.transform(X)), atol=1e-6)


def test_transform_is_row_independent():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    X_new = X[:10] + 0.1 * rng.randn(10, X.shape[1]).astype(np.float32)
    emb = VidSageEmbedder(**FAST).fit(X)
    batch = emb.transform(X_new)
    one_by_one = np.vstack([emb.transform(X_new[i : i + 1]) for i in range(10)])
    # bit for bit: a row's embedding does not depend on its batch
    np.testing.assert_array_equal(batch, one_by_one)
    mixed = emb.transform(np.vstack([X_new[:3], X[40:50]]))[:3]
    np.testing.assert_array_equal(batch[:3], mixed)
    for seed in range(5):
        order = np.random.RandomState(seed).permutation(10)
        np.testing.assert_array_equal(emb.transform(X_new[order]), batch[order])


@pytest.mark.parametrize("conv", ["sage", "gat", "gcn"])
def test_unlinked_video_gets_a_defined_embedding(conv):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    builder = VideoGraphBuilder(tau=2.0, n_neighbors=0)  # no link at all
    emb = VidSageEmbedder(conv=conv, **FAST).fit(VideoGraphBuilder().fit_transform(X))
    lonely = builder.fit(X).transform(rng.randn(4, X.shape[1]))
    assert lonely.adjacency.nnz == 0
    Z = emb.transform(lonely)
    assert np.isfinite(Z).all() and np.abs(Z).sum() > 0


def _zero_row_messages(call):
    """Run ``call()``; return its result and its ZeroRowWarning messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    found = [w for w in caught if issubclass(w.category, ZeroRowWarning)]
    assert all(w.filename == __file__ for w in found)  # the caller's line
    return out, [str(w.message) for w in found]


def _with_zero_rows(rng):
    X, _ = _clusters(rng)
    X[[5, 40]] = 0.0
    Q = X[:4] + 0.1
    Q[1] = 0.0
    return X, Q


def test_zero_rows_warn_once_through_the_builder_on_features():
    # plain features: the embedder's graph builder names the rows, and the
    # embedder does not name them a second time
    rng = np.random.RandomState(0)
    X, Q = _with_zero_rows(rng)
    emb = VidSageEmbedder()
    for fit in (emb.fit, emb.fit_transform):
        _, messages = _zero_row_messages(lambda fit=fit: fit(X))
        assert len(messages) == 1
        assert messages[0].startswith(
            "VideoGraphBuilder.fit: 2 rows of X have norm 0 (rows 5, 40)"
        )
    Z, messages = _zero_row_messages(lambda: emb.transform(Q))
    assert len(messages) == 1
    assert messages[0].startswith(
        "VideoGraphBuilder.transform: 1 row of X has norm 0 (row 1)"
    )
    assert np.isfinite(Z).all()


def test_zero_rows_warn_once_on_a_video_graph():
    rng = np.random.RandomState(0)
    X, Q = _with_zero_rows(rng)
    builder = VideoGraphBuilder()
    (G, GQ), _ = _zero_row_messages(
        lambda: (builder.fit_transform(X), builder.transform(Q))
    )
    emb = VidSageEmbedder()
    for fit in (emb.fit, emb.fit_transform):
        _, messages = _zero_row_messages(lambda fit=fit: fit(G))
        assert len(messages) == 1
        assert messages[0].startswith(
            "VidSageEmbedder.fit: 2 rows of the VideoGraph's features have norm "
            "0 (rows 5, 40)"
        )
    _, messages = _zero_row_messages(lambda: emb.transform(GQ))
    assert len(messages) == 1
    assert messages[0].startswith(
        "VidSageEmbedder.transform: 1 row of the VideoGraph's features has "
        "norm 0 (row 1)"
    )
    # a hand-made graph is checked the same way
    hand = VideoGraph(np.zeros((2, X.shape[1])), sp.csr_matrix((2, len(X))))
    _, messages = _zero_row_messages(lambda: emb.transform(hand))
    assert len(messages) == 1 and "(rows 0, 1)" in messages[0]


def test_no_zero_row_warning_on_normal_data():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroRowWarning)
        emb = VidSageEmbedder(**FAST)
        emb.fit_transform(X)
        emb.transform(X[:5] + 0.1)
        G = VideoGraphBuilder().fit_transform(X)
        VidSageEmbedder().fit(G).transform(G)


def _propagated(a, x_rows, A_ref, x_ref):
    """[x, S x, S^2 x] of rows with links ``a``; reference side from A_ref."""
    d = 1.0 + A_ref.sum(axis=1)
    S = (A_ref + np.eye(len(A_ref))) / np.sqrt(np.outer(d, d))
    d_q = 1.0 + a.sum(axis=1)
    S_q = a / np.sqrt(np.outer(d_q, d))
    s1 = S_q @ x_ref + x_rows / d_q[:, None]
    s2 = S_q @ (S @ x_ref) + s1 / d_q[:, None]
    return np.hstack([x_rows, s1, s2])


@pytest.mark.parametrize("symmetrize", [False, True])
def test_propagated_blocks_follow_sgc_row_by_row(symmetrize):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    builder = VideoGraphBuilder(n_neighbors=5)
    G = builder.fit_transform(X)
    emb = VidSageEmbedder(hops=2, symmetrize=symmetrize, random_state=0)
    Z = emb.fit_transform(G)
    A = G.adjacency.toarray().astype(np.float64)
    assert np.diagonal(A).sum() == 0  # the builder owns self links
    A_ref = np.maximum(A, A.T) if symmetrize else A
    x = X / np.linalg.norm(X, axis=1, keepdims=True)
    # every training video by its own links, the reference side from A_ref
    np.testing.assert_allclose(Z, _propagated(A, x, A_ref, x), rtol=1e-5, atol=1e-6)
    if not symmetrize:  # then it is SGC's S^k x on the training graph
        d = 1.0 + A.sum(axis=1)
        S = (A + np.eye(len(A))) / np.sqrt(np.outer(d, d))
        np.testing.assert_allclose(Z[:, -12:], S @ S @ x, rtol=1e-5, atol=1e-6)
    assert emb.module_ is None and emb.n_iter_ == 0
    assert Z.shape[1] == emb.get_feature_names_out().shape[0]
    # an unseen video: its own row of S, from the training videos' degrees
    q = rng.randn(3, X.shape[1]).astype(np.float32)
    Gq = builder.transform(q)
    xq = q / np.linalg.norm(q, axis=1, keepdims=True)
    expected = _propagated(Gq.adjacency.toarray().astype(np.float64), xq, A_ref, x)
    np.testing.assert_allclose(emb.transform(Gq), expected, rtol=1e-5, atol=1e-6)


def test_mean_propagation_and_no_hops():
    X = np.eye(3, dtype=np.float32)
    A = sp.csr_matrix(np.array([[0, 1, 3], [0, 0, 0], [1, 0, 0]], dtype=np.float32))
    emb = VidSageEmbedder(hidden_dims=(), hops=1, propagation="mean")
    Z = emb.fit_transform(VideoGraph(X, A))
    np.testing.assert_allclose(Z[:, 3:], [[0, 0.25, 0.75], [0, 0, 0], [1, 0, 0]])
    emb0 = VidSageEmbedder(hidden_dims=(), hops=0).fit(VideoGraph(X, A))
    np.testing.assert_array_equal(emb0.transform(VideoGraph(X, A)), X)
    with pytest.raises(ValueError, match="jumping_knowledge"):
        VidSageEmbedder(hidden_dims=(), jumping_knowledge=False).fit(X)


def test_tail_hops_average_the_far_hops_into_the_last_block():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=10, dim=6)
    builder = VideoGraphBuilder(n_neighbors=4)
    G, q = builder.fit_transform(X), rng.randn(4, 6).astype(np.float32)
    Gq = builder.transform(q)
    emb = VidSageEmbedder(hops=2, tail_hops=3)
    Z, Zq = emb.fit_transform(G), emb.transform(Gq)
    assert list(emb.blocks_) == ["x", "hop1", "hop2-5"] and Z.shape == (30, 18)
    assert emb.get_feature_names_out()[12] == "hop2-5_0"
    assert len(emb.reference_propagated_) == 4  # S x .. S^4 x for S^5 x of a query
    plain = VidSageEmbedder(hops=5).fit(G)
    for rows, graph in ((Z, G), (Zq, Gq)):
        hops = plain.transform(graph)
        np.testing.assert_array_equal(rows[:, :12], hops[:, :12])
        tail = hops[:, 12:].reshape(len(hops), 4, 6).mean(axis=1)
        np.testing.assert_allclose(rows[:, 12:], tail, rtol=1e-6, atol=1e-7)
    # one row at a time gives the same rows, and the fit pickles
    np.testing.assert_array_equal(emb.transform(builder.transform(q[:1])), Zq[:1])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb)).transform(Gq), Zq)
    with pytest.raises(ValueError, match=r"tail_hops=2 .*\(hops=0"):
        VidSageEmbedder(hops=0, tail_hops=2).fit(G)


def test_edge_weights_reach_the_embedding():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    G = VideoGraphBuilder().fit_transform(X)
    emb = VidSageEmbedder(**FAST).fit(G)
    reweighted = G.adjacency.copy()
    reweighted.data = rng.rand(reweighted.nnz).astype(np.float32) + 0.01
    a = emb.transform(G)
    b = emb.transform(VideoGraph(G.features, reweighted))
    assert not np.allclose(a, b)


def test_mini_batch_and_full_batch_paths():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=100)
    small = VidSageEmbedder(**FAST).fit(X)
    assert small.full_batch_  # 300 nodes: sampling would touch them all
    sampled = VidSageEmbedder(
        **{**FAST, "batch_size": 32, "fanouts": (5, 3), "full_batch": False}
    ).fit(X)
    assert not sampled.full_batch_
    assert np.isfinite(sampled.transform(X)).all()
    assert len(sampled.loss_curve_) == 5


def test_early_stopping_stops():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    emb = VidSageEmbedder(
        hidden_dims=(8,),
        max_epochs=200,
        early_stopping=True,
        tol=1e6,
        n_iter_no_change=3,
        random_state=0,
    ).fit(X)
    assert emb.n_iter_ == 1 + 3  # the first epoch sets the best loss, 3 stall


def test_verbose_shows_progress(capsys):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    VidSageEmbedder(**{**FAST, "verbose": True}).fit(X)
    assert "loss=" in capsys.readouterr().err


def test_errors():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    with pytest.raises(NotFittedError):
        VidSageEmbedder().transform(X)
    with pytest.raises(ValueError, match=r"shape \(n, n\)"):
        VidSageEmbedder(**FAST).fit(VideoGraphBuilder().fit(X[:50]).transform(X))
    fitted_on_graph = VidSageEmbedder(**FAST).fit(VideoGraphBuilder().fit_transform(X))
    with pytest.raises(ValueError, match="fitted on a VideoGraph"):
        fitted_on_graph.transform(X)
    with pytest.raises(ValueError, match="reference videos"):
        fitted_on_graph.transform(VideoGraphBuilder().fit(X[:50]).transform(X[:5]))
    with pytest.raises(ValueError, match="features"):
        VidSageEmbedder(**FAST).fit(X).transform(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        VidSageEmbedder(**FAST).fit(np.where(X > 1, np.nan, X))
    with pytest.raises(ValueError, match="share_weights"):
        VidSageEmbedder(**{**FAST, "share_weights": True}).fit(X)
    with pytest.raises(ValueError, match="fanouts"):
        VidSageEmbedder(**{**FAST, "fanouts": (5, 0)}).fit(X)


def test_paper_configuration_shared_weights_sum_aggregation():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    emb = VidSageEmbedder(
        hidden_dims=(12, 12),
        share_weights=True,
        aggr="sum",
        jumping_knowledge=False,
        max_epochs=3,
        random_state=0,
    )
    Z = emb.fit_transform(X)
    assert Z.shape == (len(X), 12)
    assert emb.module_.layers[0] is emb.module_.layers[1]


def test_pickle_round_trip_and_cuda_fitted_model_loads_on_cpu(tmp_path):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng)
    emb = VidSageEmbedder(**FAST).fit(X)
    expected = emb.transform(X[:7])
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(emb)).transform(X[:7]), expected
    )
    joblib.dump(emb, tmp_path / "emb.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "emb.joblib").transform(X[:7]), expected
    )
    # a model fitted on a GPU keeps its weights on the CPU; on a machine
    # without CUDA it embeds on the CPU
    emb.device_ = torch.device("cuda")
    emb.graph_builder_.device_ = torch.device("cuda")
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="fitted on cuda"):
            loaded = pickle.loads(pickle.dumps(emb))
        np.testing.assert_allclose(loaded.transform(X[:7]), expected, atol=1e-6)


def _pipeline(**embed):
    return Pipeline(
        [
            ("graph", VideoGraphBuilder()),
            ("embed", VidSageEmbedder(**{**FAST, **embed})),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )


def test_pipeline_on_generated_videos_learns_and_pickles():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng, n_per_class=40, n_classes=4, noise=1.0)
    train = rng.rand(len(y)) < 0.7
    pipe = _pipeline().fit(X[train], y[train])
    proba = pipe.predict_proba(X[~train])
    assert hit_at_k_score(y[~train], proba) > 0.8
    loaded = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(loaded.predict_proba(X[~train]), proba)


def test_grid_search_over_tau_alpha_beta_with_object_sets():
    rng = np.random.RandomState(0)
    X, y = _clusters(rng, n_per_class=20, n_classes=3, noise=1.5)
    data = VideoFeatures(X, _objects(y, rng))
    grid = {"graph__tau": [0.0, 0.5], "graph__alpha": [0.7, 1.0], "graph__beta": [0.3]}
    search = GridSearchCV(
        _pipeline(max_epochs=2),
        grid,
        cv=2,
        n_jobs=2,
        error_score="raise",
        scoring={"map": map_scorer, "gap": gap_scorer},
        refit="map",
    ).fit(data, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_map"]))
    assert search.predict_proba(data[:5]).shape == (5, 3)


@pytest.mark.skipif(not YT8M.is_dir(), reason="YouTube-8M files not found")
def test_pipeline_on_real_youtube8m():
    files = sorted(YT8M.glob("*.tfrecord"))
    train = load_youtube8m(files[:3])
    test = load_youtube8m(files[3:4])
    counts = np.asarray(train.target.sum(axis=0)).ravel()
    classes = np.argsort(-counts)[:10]
    Y_train = train.target[:, classes].toarray()
    pipe = Pipeline(
        [
            ("graph", VideoGraphBuilder()),
            (
                "embed",
                VidSageEmbedder(hidden_dims=(64, 32), max_epochs=3, random_state=0),
            ),
            ("clf", OneVsRestClassifier(LogisticRegression(max_iter=300))),
        ]
    ).fit(train.data, Y_train)
    scores = pipe.predict_proba(test.data)
    assert scores.shape == (len(test.data), 10)
    assert pipe.named_steps["embed"].reference_features_.shape == (
        len(train.data),
        1024,
    )
    Y_test = test.target[:, classes].toarray()
    assert map_scorer(pipe, test.data, Y_test) > 0.2


def test_clone_keeps_parameters():
    emb = VidSageEmbedder(conv="gat", heads=2, graph=VideoGraphBuilder(tau=0.1))
    cloned = clone(emb)
    assert cloned.get_params()["graph__tau"] == 0.1 and cloned.conv == "gat"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_matches_cpu_and_pickles_to_cpu_weights():
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=100)
    params = {**FAST, "dropout": 0.0}
    gpu = VidSageEmbedder(device="cuda", **params).fit(X)
    assert gpu.device_.type == "cuda"
    assert all(p.device.type == "cpu" for p in gpu.module_.parameters())
    cpu = VidSageEmbedder(device="cpu", **params).fit(X)
    # different RNG streams on the two devices: compare what does not depend
    # on them (shapes, finiteness) and that the GPU model embeds on the CPU
    Z = gpu.transform(X)
    assert Z.shape == cpu.transform(X).shape and np.isfinite(Z).all()
    blob = pickle.dumps(gpu)
    loaded = pickle.loads(blob)
    loaded.device_ = torch.device("cpu")
    np.testing.assert_allclose(loaded.transform(X), Z, atol=1e-4)


@pytest.mark.parametrize("loss", ["sage", "triplet", "contrastive"])
def test_last_layer_alone_is_a_useful_embedding(loss):
    # with a ReLU after the last layer, the sage loss drove every embedding of
    # this set to zeros within 60 epochs, and with dropout on the output the
    # contrastive loss pulled all videos together; without jumping knowledge
    # the last layer is all the user gets
    X, y = make_blobs(
        n_samples=400, n_features=32, centers=4, cluster_std=4.0, random_state=0
    )
    emb = VidSageEmbedder(
        hidden_dims=(128, 64),
        max_epochs=60,
        jumping_knowledge=False,
        loss=loss,
        random_state=0,
    )
    Z = emb.fit_transform(X.astype(np.float32))
    assert Z.shape == (len(X), 64)
    assert np.mean(np.abs(Z).sum(axis=1) == 0) < 0.01
    # videos of different clusters lie apart (collapsed: 0.08 with contrastive)
    D = np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    assert D[y[:, None] != y[None]].mean() > 0.3
    score = cross_val_score(LogisticRegression(max_iter=1000), Z, y, cv=3).mean()
    assert score > 0.9  # chance: 0.25


def test_train_config_is_typed_and_frozen():
    import dataclasses

    from skvidsage.embed._training import TrainConfig, _EarlyStopping

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    # every field is an estimator parameter (full_batch resolved)
    assert fields <= set(VidSageEmbedder().get_params())
    with pytest.raises(TypeError):
        TrainConfig(lossx="sage")  # a typo fails at once, not in the loop
    stop = _EarlyStopping(tol=0.1, patience=2)
    assert [stop.stop(v) for v in (1.0, 0.95, 0.5, 0.45, 0.44)] == [
        False, False, False, False, True
    ]


# --------------------------------------------------------------------------
# Output names and blocks (issue 15)
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hops, hidden_dims, jumping_knowledge, blocks",
    [
        (0, (), True, ["x"]),
        (1, (), True, ["x", "hop1"]),
        (2, (), True, ["x", "hop1", "hop2"]),
        (0, (8, 4), True, ["x", "layer1", "layer2"]),
        (1, (8, 4), True, ["x", "hop1", "layer1", "layer2"]),
        (2, (8, 4), True, ["x", "hop1", "hop2", "layer1", "layer2"]),
        (2, (8, 4), False, ["layer2"]),
        (0, (5,), False, ["layer1"]),
    ],
)
def test_feature_names_follow_the_output_blocks(
    hops, hidden_dims, jumping_knowledge, blocks
):
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=10, dim=6)
    G = VideoGraphBuilder(n_neighbors=4).fit_transform(X)
    emb = VidSageEmbedder(
        hops=hops,
        hidden_dims=hidden_dims,
        jumping_knowledge=jumping_knowledge,
        max_epochs=2,
        random_state=0,
    )
    Z = emb.fit_transform(G)
    widths = {"x": 6, "hop1": 6, "hop2": 6, "layer1": (hidden_dims or (0,))[0]}
    widths["layer2"] = hidden_dims[-1] if len(hidden_dims) == 2 else 0
    assert list(emb.blocks_) == blocks
    start = 0
    for name, columns in emb.blocks_.items():
        assert columns == slice(start, start + widths[name])
        start = columns.stop
    assert start == Z.shape[1]
    expected = [f"{name}_{i}" for name in blocks for i in range(widths[name])]
    assert list(emb.get_feature_names_out()) == expected
    # each block holds what its name says
    x = X / np.linalg.norm(X, axis=1, keepdims=True)
    if "x" in blocks:
        np.testing.assert_allclose(Z[:, emb.blocks_["x"]], x, rtol=1e-6)
    for k in range(1, hops + 1 if jumping_knowledge else 1):
        alone = VidSageEmbedder(hops=k).fit(G).transform(G)
        np.testing.assert_array_equal(Z[:, emb.blocks_[f"hop{k}"]], alone[:, -6:])
    if jumping_knowledge and hidden_dims:  # the last layer: the JK=False output
        last = VidSageEmbedder(
            hops=hops,
            hidden_dims=hidden_dims,
            jumping_knowledge=False,
            max_epochs=2,
            random_state=0,
        ).fit_transform(G)
        np.testing.assert_allclose(
            Z[:, emb.blocks_[f"layer{len(hidden_dims)}"]], last, rtol=1e-5, atol=1e-6
        )


def test_feature_names_name_the_input_columns_of_a_dataframe():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=10, dim=3)
    df = pd.DataFrame(X, columns=["r", "g", "b"], index=[f"v{i}" for i in range(30)])
    emb = VidSageEmbedder(hops=1, hidden_dims=(2,), max_epochs=2, random_state=0)
    emb.fit(df)
    names = ["x_r", "x_g", "x_b", "hop1_r", "hop1_g", "hop1_b", "layer1_0", "layer1_1"]
    assert list(emb.get_feature_names_out()) == names
    assert list(emb.get_feature_names_out(["r", "g", "b"])) == names
    with pytest.raises(ValueError, match="input_features is not equal"):
        emb.get_feature_names_out(["a", "b", "c"])
    # fitted on an array: numbered, whatever input_features says (the
    # names of transform's DataFrame, which only fit's input decides)
    emb_array = clone(emb).fit(X)
    numbered = ["x_0", "x_1", "x_2", "hop1_0"]
    assert list(emb_array.get_feature_names_out()[:4]) == numbered
    assert list(emb_array.get_feature_names_out(["r", "g", "b"])) == list(
        emb_array.get_feature_names_out()
    )
    with pytest.raises(ValueError, match="input_features should have length"):
        emb_array.get_feature_names_out(["r", "g"])
    # the DataFrame output: named columns, the input's index, the same values
    Z = clone(emb).set_output(transform="pandas").fit(df).transform(df)
    assert list(Z.columns) == names and Z.index.equals(df.index)
    np.testing.assert_allclose(Z.to_numpy(), emb.transform(df), rtol=1e-6)


def test_video_graph_feature_names_reach_the_embedder():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X, _ = _clusters(rng, n_per_class=10, dim=3)
    df = pd.DataFrame(X, columns=["r", "g", "b"])
    builder = VideoGraphBuilder(n_neighbors=4)
    G = builder.fit_transform(df)
    emb = VidSageEmbedder(hops=1).fit(G)
    np.testing.assert_array_equal(emb.feature_names_in_, ["r", "g", "b"])
    assert list(emb.get_feature_names_out()[:4]) == ["x_r", "x_g", "x_b", "hop1_r"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.transform(builder.transform(df))  # the same names: no warning
    renamed = VideoGraph(G.features, G.adjacency, feature_names=["r", "b", "g"])
    with pytest.raises(ValueError, match=r"differ at columns \[1, 2\]"):
        emb.transform(renamed)
    with pytest.warns(UserWarning, match="has no feature names"):
        emb.transform(VideoGraph(G.features, G.adjacency))
    # refitted on a graph without names, the names are gone
    emb.fit(VideoGraph(G.features, G.adjacency))
    assert not hasattr(emb, "feature_names_in_")
    assert emb.get_feature_names_out()[0] == "x_0"
    with pytest.warns(UserWarning, match="has feature names"):
        emb.transform(G)


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_set_output_transform,
        estimator_checks.check_set_output_transform_pandas,
        estimator_checks.check_global_output_transform_pandas,
        estimator_checks.check_transformer_get_feature_names_out,
        estimator_checks.check_transformer_get_feature_names_out_pandas,
        estimator_checks.check_dataframe_column_names_consistency,
    ],
    ids=lambda check: check.__name__,
)
# the checks fit on a DataFrame and transform an array, and the reverse
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.filterwarnings("ignore:X has feature names")
def test_sklearn_set_output_and_feature_names_checks(check):
    # scikit-learn runs these on its own estimators; parametrize_with_checks
    # does not yield them
    pytest.importorskip("pandas")
    for est in (
        VidSageEmbedder(random_state=0),
        VidSageEmbedder(hidden_dims=(4,), hops=1, max_epochs=2, random_state=0),
    ):
        check(type(est).__name__, est)


def test_deterministic_switch_is_restored_when_threads_overlap():
    # Dask's threaded workers embed partitions at once: the last to leave
    # restores the switch (per-thread restores left it on; test_distributed)
    import threading

    from skvidsage.embed._training import deterministic

    cpu = torch.device("cpu")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with deterministic(cpu):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with deterministic(cpu):
            b_in.set()
            a_out.wait(5)
            assert torch.are_deterministic_algorithms_enabled()  # still inside

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not torch.are_deterministic_algorithms_enabled()
