import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from skvidsage.video._detectors import Detector, load_detector

SSD = "ssdlite320_mobilenet_v3_large"
COCO = torchvision.models.get_model_weights(SSD).DEFAULT.meta["categories"]


def _frames(n, h=240, w=320, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def ssd():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return load_detector(SSD, weights=None, weights_backbone=None)


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


# --------------------------------------------------------------------------
# torchvision detectors (random weights: plumbing only)
# --------------------------------------------------------------------------


def test_torchvision_detector_plumbing(ssd):
    assert ssd.name == SSD and ssd.categories == tuple(COCO)
    frames = _frames(2, 60, 80)
    ssd.score_threshold = 0.0  # every box counts
    sets = ssd.detect(frames, torch.device("cpu"), batch_size=1)
    assert len(sets) == 2 and all(isinstance(s, frozenset) and s for s in sets)
    assert all(isinstance(label, str) for s in sets for label in s)
    assert frozenset().union(*sets) <= set(COCO) - {"__background__", "N/A"}
    assert ssd.video_objects(frames[:1], "cpu") == sets[0]
    ssd.score_threshold = 1.01  # no box counts
    assert ssd.detect(frames, "cpu") == [frozenset()] * 2
    assert ssd.video_objects(frames, "cpu") == frozenset()
    assert ssd.detect(frames[:0], "cpu") == []


class FixedDetections(torch.nn.Module):
    """torchvision's detection interface, with fixed boxes per image."""

    def __init__(self):
        super().__init__()
        self.score_thresh = 0.05  # as in RetinaNet/FCOS/SSD
        self.calls = []

    def forward(self, images):
        self.calls.append([tuple(im.shape) for im in images])
        assert all(im.dtype == torch.float32 and im.max() <= 1 for im in images)
        out = {
            "labels": torch.tensor([1, 3, 3, 12, 0, 2]),
            "scores": torch.tensor([0.9, 0.5, 0.2, 0.95, 0.99, 0.49999]),
        }
        return [out for _ in images]


def test_detection_module_threshold_and_names():
    module = FixedDetections()
    det = Detector(module, categories=COCO, score_threshold=0.5)
    sets = det.detect(_frames(3, 20, 30), batch_size=2)
    assert module.calls == [[(3, 20, 30)] * 2, [(3, 20, 30)]]
    assert module.score_thresh < 0.5  # the model's own cut-off follows ours
    # labels 1/3 are person/car; 12 is "N/A" and 0 background: never reported
    assert sets == [frozenset({"person", "car"})] * 3
    det.score_threshold = float(torch.tensor(0.49999))  # >=: the boundary counts
    assert det.video_objects(_frames(1)) == {"person", "car", "bicycle"}
    det.score_threshold = 0.9
    assert det.video_objects(_frames(1)) == {"person"}
    det.score_threshold = 0.91
    assert det.detect(_frames(1)) == [frozenset()]
    assert Detector(FixedDetections(), score_threshold=0.9).detect(_frames(1)) == [
        frozenset({1, 12, 0})
    ]


def test_fasterrcnn_detector_by_name():
    det = load_detector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, score_threshold=0.0
    )
    sets = det.detect(_frames(1, 60, 80))
    assert len(sets) == 1 and sets[0] <= set(COCO)
    assert det.module.roi_heads.score_thresh < 0  # follows score_threshold


def test_detector_weights_offline_and_from_file(offline_hub, tmp_path):
    weights = torchvision.models.get_model_weights(SSD).DEFAULT
    builder = torchvision.models.get_model_builder(SSD)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        state = builder(weights=None, weights_backbone=None).state_dict()
    key = "head.classification_head.module_list.0.1.weight"
    offline_hub.mkdir(parents=True)
    torch.save(state, offline_hub / Path(weights.url).name)
    det = load_detector(SSD, "COCO_V1")
    torch.testing.assert_close(det.module.state_dict()[key], state[key])
    assert det.categories == tuple(weights.meta["categories"])
    torch.save(state, tmp_path / "ssd.pth")
    det = load_detector(SSD, tmp_path / "ssd.pth")
    torch.testing.assert_close(det.module.state_dict()[key], state[key])


def test_detector_download_failure(offline_hub):
    with pytest.raises(ConnectionError, match="no network") as info:
        load_detector(SSD, "DEFAULT")
    assert "ssdlite320_mobilenet_v3_large_coco-a79551df.pth" in str(info.value)
    # the backbone's ImageNet weights are downloaded too when asked for
    with pytest.raises(ConnectionError, match="mobilenet_v3_large-5c1a4163.pth"):
        load_detector(SSD, None, weights_backbone="DEFAULT")
    with pytest.raises(ValueError, match="'IMAGENET1K_V1', 'IMAGENET1K_V2'"):
        load_detector(SSD, None, weights_backbone="COCO_V1")


# --------------------------------------------------------------------------
# Callables (deterministic semantics)
# --------------------------------------------------------------------------


def colour_labels(frames):
    """Label each frame by which channels are bright."""
    names = ("red", "green", "blue")
    return [
        {n for n, v in zip(names, f.mean(axis=(0, 1)), strict=True) if v > 127}
        for f in frames
    ]


def _colour_frames():
    frames = np.zeros((4, 6, 6, 3), np.uint8)
    frames[0, ..., 0] = 255
    frames[2, ..., 1:] = 255
    return frames


def test_callable_detector_semantics():
    det = load_detector(colour_labels, score_threshold=0.9)
    assert isinstance(det, Detector) and det.name == "colour_labels"
    expected = [{"red"}, set(), {"green", "blue"}, set()]
    for batch_size in (1, 3, 8):
        assert det.detect(_colour_frames(), batch_size=batch_size) == expected
    assert det.video_objects(_colour_frames()) == {"red", "green", "blue"}
    assert det.video_objects(_colour_frames()[[1, 3]]) == frozenset()


def test_callable_drops_background_labels():
    det = load_detector(lambda frames: [["N/A", "cat", "__background__"]] * len(frames))
    assert det.detect(_frames(2, 4, 4)) == [frozenset({"cat"})] * 2


def test_callable_must_return_one_set_per_frame():
    det = load_detector(lambda frames: [{"cat"}])
    with pytest.raises(ValueError, match="one per frame"):
        det.detect(_frames(2, 4, 4), batch_size=2)


def test_load_detector_passthrough_and_errors(ssd):
    assert load_detector(None) is None
    assert load_detector(ssd) is ssd
    with pytest.raises(ValueError, match="Did you mean") as info:
        load_detector("ssdlite320_mobilenet")
    assert "fasterrcnn_mobilenet_v3_large_320_fpn" in str(info.value)
    with pytest.raises(TypeError, match="categories"):
        load_detector(ssd.module)
    with pytest.raises(TypeError, match="callable"):
        load_detector(3)
    with pytest.raises(ValueError, match="'COCO_V1', 'DEFAULT'"):
        load_detector(SSD, "IMAGENET1K_V1")
    with pytest.raises(ValueError, match="uint8"):
        ssd.detect(np.zeros((1, 8, 8, 3)))


# --------------------------------------------------------------------------
# Pickling
# --------------------------------------------------------------------------


def test_detectors_pickle(ssd):
    ssd.score_threshold = 0.0
    frames = _frames(1, 60, 80)
    clone = pickle.loads(pickle.dumps(ssd))
    assert clone.categories == ssd.categories
    assert clone.detect(frames) == ssd.detect(frames)
    det = pickle.loads(pickle.dumps(load_detector(colour_labels)))
    assert det.video_objects(_colour_frames()) == {"red", "green", "blue"}
