import pickle
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skvidsage import (
    VideoDecodeError,
    VideoDecodeWarning,
    VideoFeatures,
    VideoFeaturizer,
    VideoGraphBuilder,
    VidSageEmbedder,
    ZeroRowWarning,
)
from tests._data import VIDEOS


def _write_clip(path, colors, fps=5, size=(48, 64)):
    """Encode one solid-colour frame per entry of ``colors`` (RGB triples)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for color in colors:
            img = np.empty((*size, 3), np.uint8)
            img[:] = color
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope="module")
def colour_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    red = _write_clip(d / "red.mp4", [(200, 30, 30)] * 10)
    blue = _write_clip(d / "blue.avi", [(30, 30, 200)] * 10)
    mixed = _write_clip(d / "mixed.mkv", [(200, 30, 30)] * 5 + [(30, 30, 200)] * 5)
    return red, blue, mixed


def _arrays(rng, n=4):
    return [rng.randint(0, 255, (6, 40, 40, 3)).astype(np.uint8) for _ in range(n)]


def test_files_give_normalised_rows_in_order(colour_clips):
    feat = VideoFeaturizer(sample_rate=2.0)
    Z = feat.fit_transform(list(colour_clips))
    assert Z.shape == (3, 1280) and Z.dtype == np.float32
    assert np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    # same content, different container: near-identical; other colour: not
    red, blue = feat.transform([colour_clips[0]]), feat.transform([colour_clips[1]])
    np.testing.assert_allclose(Z[0], red[0], atol=1e-6)
    assert Z[0] @ Z[1] < 0.99 and red[0] @ blue[0] < 0.99
    # the half-red half-blue clip lies between them
    assert Z[2] @ Z[0] > Z[1] @ Z[0]


def test_mean_of_frames_then_l2(colour_clips):
    feat = VideoFeaturizer(n_frames=4).fit(colour_clips[:1])
    rng = np.random.RandomState(0)
    frames = rng.randint(0, 255, (4, 40, 40, 3)).astype(np.uint8)
    per_frame = feat.backbone_.features(frames)
    expected = per_frame.mean(axis=0)
    expected /= np.linalg.norm(expected)
    array_feat = VideoFeaturizer().fit([frames])  # arrays: every frame
    np.testing.assert_allclose(array_feat.transform([frames])[0], expected, atol=1e-5)


def test_mean_plus_std_and_pca():
    rng = np.random.RandomState(0)
    videos = _arrays(rng, 6)
    Z = VideoFeaturizer(aggregation="mean+std").fit_transform(videos)
    assert Z.shape == (6, 2560)
    feat = VideoFeaturizer(n_components=5, random_state=0)
    Z = feat.fit_transform(videos)
    assert Z.shape == (6, 5) and feat.pca_.n_components_ == 5
    np.testing.assert_allclose(feat.transform(videos), Z, atol=1e-5)
    assert list(feat.get_feature_names_out()) == [
        f"videofeaturizer{i}" for i in range(5)
    ]


def test_precomputed_frame_features_skip_the_cnn():
    rng = np.random.RandomState(0)
    frames = [rng.randn(t, 16).astype(np.float32) for t in (3, 8, 1)]
    feat = VideoFeaturizer(backbone=None)
    Z = feat.fit_transform(frames)
    expected = frames[1].mean(0) / np.linalg.norm(frames[1].mean(0))
    np.testing.assert_allclose(Z[1], expected, rtol=1e-5)
    assert VideoFeaturizer(backbone=None, n_frames=2).fit_transform(frames).shape == (
        3,
        16,
    )
    with pytest.raises(ValueError, match="backbone=None"):
        VideoFeaturizer().fit(frames)
    with pytest.raises(ValueError, match="backbone=None takes"):
        VideoFeaturizer(backbone=None).fit(_arrays(rng, 2))


def test_non_finite_frame_features_are_damage_never_a_silent_nan_row():
    # issue 11.6: a NaN frame gave a NaN row with no warning; 1e300 (inf in
    # float32) gave one with only numpy's "invalid value" RuntimeWarning
    rng = np.random.RandomState(0)
    good = rng.rand(6, 8)
    nan, inf, huge = good.copy(), good.copy(), good.copy()
    nan[2] = np.nan
    inf[0, 3] = np.inf
    huge[4, 1] = 1e300
    feat = VideoFeaturizer(backbone=None)
    with pytest.warns(VideoDecodeWarning) as record:
        Z = feat.fit_transform([good, nan, inf, huge])
    messages = [str(w.message) for w in record]
    assert len(messages) == 3
    for name, row in [("videos[1]", 2), ("videos[2]", 0), ("videos[3]", 4)]:
        (m,) = [m for m in messages if m.startswith(name)]
        assert "damaged frame features (5 rows kept): 1 of 6" in m
        assert f"(rows {row})" in m
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(
        Z[1], feat.transform([np.delete(good, 2, axis=0)])[0], rtol=1e-6
    )
    strict = VideoFeaturizer(backbone=None, on_damage="error")
    with pytest.raises(VideoDecodeError, match=r"videos\[1\]: 1 of 6 frame-feature"):
        strict.fit_transform([good, nan])
    with pytest.warns(VideoDecodeWarning, match=r"skipped videos\[1\]: 1 of 6"):
        Z = VideoFeaturizer(
            backbone=None, on_damage="error", on_error="warn"
        ).fit_transform([good, nan])
    assert np.isnan(Z).any(axis=1).tolist() == [False, True]
    # no finite frame at all: the video is unreadable, whatever on_damage says
    with pytest.raises(VideoDecodeError, match=r"videos\[1\]: 2 of 2"):
        feat.transform([good, np.full((2, 8), np.nan)])


def test_frame_features_far_from_one_keep_their_direction():
    # float32 sums of squares overflow near 1e19: the row was all zero
    rng = np.random.RandomState(0)
    good = rng.rand(5, 8).astype(np.float32)
    feat = VideoFeaturizer(backbone=None)
    Z = feat.fit_transform([good, good * np.float32(1e30), good * np.float32(1e-30)])
    np.testing.assert_allclose(Z[1], Z[0], rtol=1e-5)
    np.testing.assert_allclose(Z[2], Z[0], rtol=1e-5)


def test_all_zero_frame_features_warn_naming_the_video():
    rng = np.random.RandomState(0)
    videos = [rng.rand(3, 8), np.zeros((4, 8)), rng.rand(2, 8)]
    with pytest.warns(ZeroRowWarning, match=r"1 row of the videos .* \(row 1\)"):
        Z = VideoFeaturizer(backbone=None).fit_transform(videos)
    assert (Z[1] == 0).all() and np.isfinite(Z).all()


def test_frame_features_of_the_wrong_width_name_the_video():
    rng = np.random.RandomState(0)
    feat = VideoFeaturizer(backbone=None).fit([rng.rand(3, 8)])
    with pytest.raises(ValueError, match=r"videos\[1\] has .* width 9, but fit saw"):
        feat.transform([rng.rand(3, 8), rng.rand(3, 9)])
    with pytest.raises(ValueError, match=r"videos\[1\] .* 9, but videos\[0\]"):
        VideoFeaturizer(backbone=None).fit([rng.rand(3, 8), rng.rand(3, 9)])


def test_on_damage_error_treats_a_damaged_stream_as_unreadable(damaged, colour_clips):
    # issue 11.3: the decoder's strict mode, exposed on the featurizer
    videos = [colour_clips[0], str(damaged)]
    with pytest.warns(VideoDecodeWarning, match="cut.mkv: damaged stream"):
        Z = VideoFeaturizer(sample_rate=5).fit_transform(videos)
    assert np.isfinite(Z).all()
    strict = VideoFeaturizer(sample_rate=5, on_damage="error")
    with pytest.raises(VideoDecodeError, match="cut.mkv: damaged stream"):
        strict.fit_transform(videos)
    with pytest.warns(VideoDecodeWarning, match="skipped .*cut.mkv: damaged stream"):
        Z = strict.set_params(on_error="warn").fit_transform(videos)
    assert np.isnan(Z).any(axis=1).tolist() == [False, True]


def _color_detector(frames):
    """Deterministic detector: 'red' / 'blue' by the dominant channel."""
    return [
        frozenset({"red"} if f[..., 0].mean() > f[..., 2].mean() else {"blue"})
        for f in frames
    ]


def test_callable_detector_gives_object_sets_for_the_graph(colour_clips):
    feat = VideoFeaturizer(sample_rate=2.0, detector=_color_detector)
    out = feat.fit_transform(list(colour_clips))
    assert isinstance(out, VideoFeatures)
    assert out.object_sets == [
        frozenset({"red"}),
        frozenset({"blue"}),
        frozenset({"red", "blue"}),
    ]
    graph = VideoGraphBuilder(tau=2.0, n_neighbors=0).fit_transform(out)
    A = graph.adjacency.toarray()
    # alpha * Jaccard only (no visual links): red~mixed 1/2, blue~red 0
    assert A[0, 2] == pytest.approx(0.7 * 0.5) and A[0, 1] == 0


def test_detection_rate_subsamples_frames(colour_clips):
    seen = []

    def counting(frames):
        seen.append(len(frames))
        return [frozenset()] * len(frames)

    VideoFeaturizer(
        sample_rate=5.0, detector=counting, detection_rate=1.0
    ).fit_transform([colour_clips[0]])
    assert sum(seen) == 2  # a 2-s clip at 1 detection per second


def test_real_torchvision_detector_plumbing():
    rng = np.random.RandomState(0)
    feat = VideoFeaturizer(
        n_frames=2,
        detector="ssdlite320_mobilenet_v3_large",
        detector_weights=None,
        score_threshold=0.0,
    )
    out = feat.fit_transform(_arrays(rng, 2))
    assert isinstance(out, VideoFeatures) and len(out.object_sets) == 2
    assert all(isinstance(s, frozenset) for s in out.object_sets)


def test_bad_files_raise_or_warn_keeping_rows(tmp_path, colour_clips):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    videos = [
        colour_clips[0],
        str(tmp_path / "missing.mp4"),
        str(empty),
        str(text),
        colour_clips[1],
    ]
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        VideoFeaturizer().fit_transform(videos)
    with pytest.warns(VideoDecodeWarning) as record:
        Z = VideoFeaturizer(on_error="warn").fit_transform(videos)
    messages = " ".join(str(w.message) for w in record)
    for name in ("missing.mp4", "empty.mp4", "notes.mp4"):
        assert name in messages
    assert Z.shape == (5, 1280)
    assert np.isnan(Z).any(axis=1).tolist() == [False, True, True, True, False]


@pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared videos not found")
def test_real_clips_and_the_damaged_one():
    # Megamind_bugy.avi has a damaged stream that this FFmpeg still decodes
    # (every frame, no decoder error): it must featurise like the others.
    paths = sorted(str(p) for p in VIDEOS.iterdir())
    Z = VideoFeaturizer(n_frames=3).fit_transform(paths)
    assert Z.shape == (len(paths), 1280) and np.isfinite(Z).all()
    names = [Path(p).name for p in paths]
    same = Z[names.index("Megamind.avi")] @ Z[names.index("Megamind_bugy.avi")]
    other = Z[names.index("Megamind.avi")] @ Z[names.index("bikes.mp4")]
    assert same > other


def test_input_errors_name_the_item():
    rng = np.random.RandomState(0)
    good = _arrays(rng, 1)[0]
    with pytest.raises(TypeError, match=r"videos\[1\]"):
        VideoFeaturizer().fit([good, 3.5])
    with pytest.raises(TypeError, match="mixes"):
        VideoFeaturizer().fit([good, "clip.mp4"])
    with pytest.raises(ValueError, match=r"videos\[0\].*uint8"):
        VideoFeaturizer().fit([good.astype(np.float32)])
    with pytest.raises(TypeError, match="list of videos"):
        VideoFeaturizer().fit("clip.mp4")
    with pytest.raises(ValueError, match="empty"):
        VideoFeaturizer().fit([])
    feat = VideoFeaturizer().fit([good])
    with pytest.raises(TypeError, match="fit saw frames"):
        feat.transform(["clip.mp4"])


def test_estimator_basics_by_hand():
    rng = np.random.RandomState(0)
    videos = _arrays(rng, 3)
    feat = VideoFeaturizer(n_frames=2, batch_size=4)
    assert clone(feat).get_params() == feat.get_params()
    with pytest.raises(NotFittedError):
        feat.transform(videos)
    assert feat.fit(videos) is feat
    Z = feat.transform(videos)
    loaded = pickle.loads(pickle.dumps(feat))
    np.testing.assert_array_equal(loaded.transform(videos), Z)
    # batches span videos: the batch size does not change the features
    np.testing.assert_allclose(
        VideoFeaturizer(n_frames=2, batch_size=1).fit_transform(videos), Z, atol=1e-5
    )
    with pytest.raises(ValueError):
        VideoFeaturizer(aggregation="max").fit(videos)


def test_full_pipeline_on_generated_videos():
    rng = np.random.RandomState(0)
    colors = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220]])
    y = np.repeat(np.arange(3), 8)
    videos = [
        np.clip(colors[c] + rng.randint(-30, 30, (4, 32, 32, 3)), 0, 255).astype(
            np.uint8
        )
        for c in y
    ]
    pipe = Pipeline(
        [
            ("features", VideoFeaturizer(n_frames=2)),
            ("graph", VideoGraphBuilder(n_neighbors=3)),
            (
                "embed",
                VidSageEmbedder(hidden_dims=(32, 16), max_epochs=3, random_state=0),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(videos, y)
    assert (pipe.predict(videos) == y).mean() > 0.9


def test_frame_features_are_sampled_like_frames():
    # row i is (1, i): the mean says which rows were kept
    rows = np.stack([np.ones(10), np.arange(10)], axis=1).astype(np.float32)
    Z = VideoFeaturizer(backbone=None, n_frames=4).fit_transform([rows])
    kept = rows[[0, 3, 5, 8]].mean(0)  # interval starts, as for decoded frames
    np.testing.assert_allclose(Z[0], kept / np.linalg.norm(kept), rtol=1e-6)
    Z = VideoFeaturizer(backbone=None, n_frames=20, max_frames=3).fit_transform(
        [rows]
    )  # more targets than rows: each row once, then the first max_frames
    kept = rows[:3].mean(0)
    np.testing.assert_allclose(Z[0], kept / np.linalg.norm(kept), rtol=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only case")
def test_gpu_fitted_featurizer_runs_on_the_cpu_after_unpickling(colour_clips):
    feat = VideoFeaturizer(sample_rate=2.0, detector=_color_detector).fit(colour_clips)
    expected = feat.transform(list(colour_clips))
    feat.device_ = torch.device("cuda")  # as if fitted on a GPU machine
    with pytest.warns(UserWarning, match="VideoFeaturizer was fitted on cuda"):
        loaded = pickle.loads(pickle.dumps(feat))
    out = loaded.transform(list(colour_clips))
    np.testing.assert_array_equal(out.features, expected.features)
    assert out.object_sets == expected.object_sets


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_features_match_cpu_and_pickle_to_cpu(colour_clips):
    params = dict(sample_rate=2.0, detector="ssdlite320_mobilenet_v3_large")
    gpu = VideoFeaturizer(device="cuda", **params).fit(list(colour_clips))
    assert gpu.device_.type == "cuda"
    out = gpu.transform(list(colour_clips))
    cpu = VideoFeaturizer(device="cpu", sample_rate=2.0).fit(list(colour_clips))
    # cuDNN kernels differ from the CPU's in the last bits
    np.testing.assert_allclose(
        out.features, cpu.transform(list(colour_clips)), atol=1e-3
    )
    assert all(isinstance(s, frozenset) for s in out.object_sets)
    # the pickle holds CPU tensors: it loads where CUDA is absent
    state = pickle.loads(pickle.dumps(gpu)).backbone_.module.state_dict()
    assert all(t.device.type == "cpu" for t in state.values())
