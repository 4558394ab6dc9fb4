"""The "imagenet" tagger: object sets from the backbone's own classifier head.

VidSage (paper 3.3) links videos that show the same objects. With
``detector="imagenet"`` the objects are the ImageNet classes that the default
backbone's classifier ranks high on the sampled frames, read from the same
forward pass as the features: no second network, no download.
"""

import pickle
import warnings

import numpy as np
import pytest
from torch import nn

from skvidsage import VideoFeatures, VideoFeaturizer, VideoGraphBuilder
from skvidsage.video._backbones import (
    ImagePreprocess,
    imagenet_categories,
    load_backbone,
)
from skvidsage.video._decode import VideoDecodeWarning, read_frames
from skvidsage.video._detectors import (
    TAGGER_THRESHOLD,
    TAGGER_TOP_K,
    ImageNetTagger,
    load_detector,
)
from tests._data import VIDEOS

IMAGENET = imagenet_categories()
ANIMALS = frozenset(IMAGENET[:398])  # ImageNet's classes 0-397 are animals
REAL = [
    "Megamind.avi",
    "Megamind_bugy.avi",
    "bigbuckbunny.mp4",
    "bikes.mp4",
    "carphone_distorted.mp4",
    "carphone_pristine.mp4",
    "tree.avi",
]


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


def _frames(n, h=96, w=128, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _logits(*rows):
    """(n, 1000) logits whose softmax puts ``{class: probability}`` per row."""
    out = np.full((len(rows), 1000), -np.inf, np.float64)
    for i, row in enumerate(rows):
        rest = 1 - sum(row.values())
        out[i] = np.log(rest / (1000 - len(row)))
        for j, p in row.items():
            out[i, j] = np.log(p)
    return out.astype(np.float32)


# --------------------------------------------------------------------------
# Tagging rule: top_k classes whose probability is >= score_threshold
# --------------------------------------------------------------------------


def test_tag_threshold_and_top_k(lite0):
    logits = _logits({1: 0.6, 2: 0.25, 3: 0.1}, {7: 0.05}, {4: 0.3, 5: 0.3})
    names = IMAGENET
    tagger = ImageNetTagger(lite0, score_threshold=0.2, top_k=None)
    assert tagger.tag(logits) == [
        {names[1], names[2]},
        frozenset(),  # nothing reaches 0.2: an empty frame
        {names[4], names[5]},
    ]
    tagger.top_k = 1  # the most probable only; a tie goes to the lower index
    assert tagger.tag(logits) == [{names[1]}, frozenset(), {names[4]}]
    tagger.top_k, tagger.score_threshold = 3, 0.0  # pure top-k
    assert [len(s) for s in tagger.tag(logits)] == [3, 3, 3]
    tagger.top_k, tagger.score_threshold = 5, 0.25  # >=: the boundary counts
    assert tagger.tag(logits)[0] == {names[1], names[2]}
    assert tagger.video_objects_from_logits(logits) == {names[i] for i in (1, 2, 4, 5)}
    assert tagger.tag(np.zeros((0, 1000))) == []
    with pytest.raises(ValueError, match=r"shape \(n_frames, 1000\)"):
        tagger.tag(np.zeros((2, 10)))


def test_defaults_and_load_detector(lite0):
    tagger = load_detector("imagenet", backbone=lite0)
    assert isinstance(tagger, ImageNetTagger) and tagger.backbone is lite0
    assert (tagger.score_threshold, tagger.top_k) == (TAGGER_THRESHOLD, TAGGER_TOP_K)
    assert (TAGGER_THRESHOLD, TAGGER_TOP_K) == (0.1, 2)
    assert tagger.categories == IMAGENET and tagger.name == "imagenet"
    tagger = load_detector("imagenet", backbone=lite0, score_threshold=0.3, top_k=None)
    assert (tagger.score_threshold, tagger.top_k) == (0.3, None)
    assert load_detector(tagger) is tagger
    with pytest.raises(ValueError, match="Did you mean 'imagenet'"):
        load_detector("imagenett")


def test_detect_runs_the_backbone_on_frames(lite0):
    tagger = ImageNetTagger(lite0, score_threshold=0.0, top_k=3)
    frames = _frames(4)
    _, logits = lite0.features(frames, logits=True)
    assert tagger.detect(frames, batch_size=3) == tagger.tag(logits)
    assert tagger(frames) == tagger.tag(logits)
    assert tagger.video_objects(frames) == frozenset().union(*tagger.tag(logits))
    assert all(len(s) == 3 for s in tagger.detect(frames))


def test_tagger_needs_a_classifier_head():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))
    bb = load_backbone(module, preprocess=ImagePreprocess(32, 32))
    with pytest.raises(ValueError, match="has none"):
        ImageNetTagger(bb)
    feat = VideoFeaturizer(
        backbone=module, preprocess=ImagePreprocess(32, 32), detector="imagenet"
    )
    with pytest.raises(ValueError, match="classification head"):
        feat.fit([_frames(2)])
    with pytest.raises(ValueError, match="top_k"):
        ImageNetTagger(load_backbone("resnet18", None), top_k=0)


# --------------------------------------------------------------------------
# Inside VideoFeaturizer: the same forward pass as the features
# --------------------------------------------------------------------------


def test_featurizer_tags_from_the_feature_pass():
    videos = [_frames(3, seed=0), _frames(5, seed=1), _frames(2, 64, 64, seed=2)]
    lite = VideoFeaturizer(batch_size=4).fit(videos)
    feat = VideoFeaturizer(detector="imagenet", batch_size=4).fit(videos)
    assert feat.detector_.backbone is feat.backbone_  # one network
    assert (feat.detector_.score_threshold, feat.detector_.top_k) == (0.1, 2)
    assert feat.get_params()["score_threshold"] == "auto"  # the user's value
    frames_seen = []
    hook = feat.backbone_.module.register_forward_hook(
        lambda m, i, o: frames_seen.append(len(o))
    )
    out = feat.transform(videos)
    hook.remove()
    assert sum(frames_seen) == 10  # every frame through the CNN once, no more
    assert isinstance(out, VideoFeatures)
    np.testing.assert_array_equal(out.features, lite.transform(videos))
    for video, objects in zip(videos, out.object_sets, strict=True):
        assert objects == feat.detector_.video_objects(video)
        assert objects <= set(IMAGENET)


def test_featurizer_threshold_and_top_k_parameters():
    videos = [_frames(2, seed=3)]
    feat = VideoFeaturizer(detector="imagenet", score_threshold=0.0, top_k=4)
    out = feat.fit_transform(videos)
    assert (feat.detector_.score_threshold, feat.detector_.top_k) == (0.0, 4)
    assert 4 <= len(out.object_sets[0]) <= 8  # 4 per frame, union of 2 frames
    feat.set_params(score_threshold=1.01, top_k=None).fit(videos)
    assert feat.transform(videos).object_sets == [frozenset()]
    with pytest.raises(ValueError, match="top_k"):
        VideoFeaturizer(detector="imagenet", top_k=0).fit(videos)


def test_featurizer_tagger_follows_detection_rate(tmp_path):
    from tests._clips import encode_clip

    path = encode_clip(tmp_path / "clip.avi", n=50)  # 2 s at 25 fps
    feat = VideoFeaturizer(
        detector="imagenet",
        sample_rate=4.0,
        detection_rate=1.0,
        score_threshold=0.0,
        top_k=1,
    )
    out = feat.fit_transform([path])
    video = read_frames(path, sample_rate=4.0, max_frames=300)
    assert len(video.frames) == 8
    seen = feat.detector_.detect(video.frames[[0, 4]])  # the frames at 0 s, 1 s
    assert out.object_sets == [frozenset().union(*seen)]


def test_featurizer_with_tagger_pickles():
    videos = [_frames(2, seed=4), _frames(3, seed=5)]
    feat = VideoFeaturizer(detector="imagenet").fit(videos)
    expected = feat.transform(videos)
    clone = pickle.loads(pickle.dumps(feat))
    assert clone.detector_.backbone is clone.backbone_  # still one network
    out = clone.transform(videos)
    np.testing.assert_array_equal(out.features, expected.features)
    assert out.object_sets == expected.object_sets


def test_public_tagger_instance_in_the_featurizer():
    from sklearn.base import clone

    import skvidsage

    tagger = skvidsage.ImageNetTagger(score_threshold=0.0, top_k=3)  # default CNN
    assert tagger.backbone.name == "efficientnet_lite0"
    videos = [_frames(2, seed=6), _frames(3, seed=7)]
    named = VideoFeaturizer(detector="imagenet", score_threshold=0.0, top_k=3)
    given = VideoFeaturizer(detector=tagger)
    expected = named.fit_transform(videos)
    out = clone(given).fit_transform(videos)  # its own backbone: a second pass
    assert out.object_sets == expected.object_sets
    assert all(len(s) >= 3 for s in out.object_sets)


def test_auto_threshold_of_a_torchvision_detector():
    feat = VideoFeaturizer(
        detector="ssdlite320_mobilenet_v3_large", detector_weights=None
    ).fit([_frames(1)])
    assert (feat.detector_.score_threshold, feat.detector_.top_k) == (0.5, None)


# --------------------------------------------------------------------------
# The real clips: real objects, and the VidSage graph they make
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_objects():
    paths = [VIDEOS / name for name in REAL]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"the real clips are not in {VIDEOS}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoDecodeWarning)  # Megamind_bugy
        out = VideoFeaturizer(detector="imagenet").fit_transform(paths)
    return dict(zip(REAL, out.object_sets, strict=True)), out


def test_real_clips_get_sensible_object_sets(real_objects):
    sets, _ = real_objects
    assert all(sets.values()), sets  # every clip gets objects
    assert all(len(s) <= 10 for s in sets.values()), sets
    ties = {"Windsor tie", "bow tie", "suit"}
    # a man in a suit and bow tie on the back seat of a car
    assert sets["carphone_pristine.mp4"] & ties, sets["carphone_pristine.mp4"]
    assert sets["carphone_distorted.mp4"] & ties, sets["carphone_distorted.mp4"]
    # Big Buck Bunny: cartoon animals on a meadow, tagged as animals only
    assert sets["bigbuckbunny.mp4"] <= ANIMALS, sets["bigbuckbunny.mp4"]
    # a cyclist in a street, a taxi
    wheels = {
        "unicycle",
        "mountain bike",
        "bicycle-built-for-two",
        "tricycle",
        "jinrikisha",
        "moped",
        "motor scooter",
        "horse cart",
    }
    assert sets["bikes.mp4"] & wheels, sets["bikes.mp4"]
    # an animated dinner by candlelight
    assert "candle" in sets["Megamind.avi"] & sets["Megamind_bugy.avi"]

    # the same footage shares objects; different footage shares few
    def jaccard(a, b):
        return len(sets[a] & sets[b]) / len(sets[a] | sets[b])

    assert jaccard("Megamind.avi", "Megamind_bugy.avi") >= 0.5
    assert jaccard("carphone_pristine.mp4", "carphone_distorted.mp4") >= 0.3
    assert not sets["bigbuckbunny.mp4"] & (sets["bikes.mp4"] | sets["Megamind.avi"])


def _jaccard_matrix(object_sets):
    n = len(object_sets)
    J = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            union = object_sets[i] | object_sets[j]
            if i != j and union:
                J[i, j] = len(object_sets[i] & object_sets[j]) / len(union)
    return J


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_vidsage_graph_differs_from_litevidsage_where_objects_overlap(
    real_objects, beta
):
    _, out = real_objects
    params = dict(tau=0.9, n_neighbors=2, max_degree=None)
    lite = VideoGraphBuilder(**params).fit_transform(out.features).toarray()
    vid = VideoGraphBuilder(alpha=0.7, beta=beta, **params).fit_transform(out)
    vid = vid.toarray()
    J = _jaccard_matrix(out.object_sets)
    overlap = J > 0
    assert overlap.sum() >= 4  # the two pairs of copies, both ways, at least
    # w = alpha J + beta 1[visual link]: LiteVidSage's links weigh 1
    np.testing.assert_allclose(vid, 0.7 * J + beta * lite, rtol=1e-6, atol=1e-7)
    changed = ~np.isclose(vid, beta * lite, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(changed, overlap)
    # the objects add links the features alone do not make, e.g. the damaged
    # copy of Megamind, whose frames look unlike the original's
    assert ((vid > 0) & (lite == 0)).any()
