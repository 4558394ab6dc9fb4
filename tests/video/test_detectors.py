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


def test_detection_module_top_k_keeps_the_best_labels():
    # scores: person 0.9, car 0.5, car 0.2, N/A 0.95, background 0.99, bicycle 0.5
    det = Detector(FixedDetections(), categories=COCO, score_threshold=0.0, top_k=1)
    assert det.detect(_frames(1)) == [frozenset({"person"})]  # not N/A, not bg
    det.top_k = 2  # car and bicycle tie near 0.5: the higher score wins
    assert det.detect(_frames(1)) == [frozenset({"person", "car"})]
    det.top_k = 10
    assert det.detect(_frames(1)) == [frozenset({"person", "car", "bicycle"})]
    assert "top_k=10" in repr(det)
    assert load_detector(SSD, None, top_k=3).top_k == 3


def test_detector_is_itself_a_callable_detector():
    det = Detector(FixedDetections(), categories=COCO)
    assert det(_frames(2, 20, 30)) == det.detect(_frames(2, 20, 30))
    assert load_detector(det) is det


# --------------------------------------------------------------------------
# Detector files: TorchScript (torch.jit.save) and ONNX
# --------------------------------------------------------------------------

# torch 2.14 deprecates TorchScript; saving the test files says so
JIT_SAVE = pytest.mark.filterwarnings(
    "ignore:`torch.jit.save` is deprecated:FutureWarning"
)


class ScriptableDetections(torch.nn.Module):
    """torchvision's interface, scriptable: labels by the image's mean colour."""

    def __init__(self):
        super().__init__()
        self.score_thresh = 0.05

    def forward(self, images: list[torch.Tensor]):
        losses: dict[str, torch.Tensor] = {}
        out: list[dict[str, torch.Tensor]] = []
        for image in images:
            means = image.mean(dim=(1, 2))  # red, green, blue in [0, 1]
            out.append(
                {
                    "boxes": torch.zeros(3, 4),
                    "labels": torch.tensor([1, 2, 3]),
                    "scores": means,
                }
            )
        return losses, out  # what a scripted torchvision detector returns


def _colour_batch():
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[0, ..., 0] = 255  # red
    frames[1, ..., 1:] = 204  # green and blue at 0.8
    return frames


@JIT_SAVE
def test_torchscript_detector_file(tmp_path):
    scripted = torch.jit.script(ScriptableDetections())
    names = "__background__\nred\ngreen\nblue"
    torch.jit.save(scripted, tmp_path / "det.pt", {"categories.txt": names})
    det = load_detector(tmp_path / "det.pt", score_threshold=0.7)
    assert isinstance(det.module, torch.jit.ScriptModule) and det.name == "det.pt"
    assert det.categories == ("__background__", "red", "green", "blue")
    assert det.detect(_colour_batch()) == [{"red"}, {"green", "blue"}]
    assert det.module.score_thresh < 0.7  # the model's own cut-off follows ours
    # the same file named by a string; explicit names win over the file's
    det = load_detector(str(tmp_path / "det.pt"), categories=["x", "r", "g", "b"])
    assert det.video_objects(_colour_batch()) == {"r", "g", "b"}
    # without names the labels stay integers
    torch.jit.save(scripted, tmp_path / "plain.ts")
    assert load_detector(tmp_path / "plain.ts").detect(_colour_batch()[:1]) == [{1}]


@JIT_SAVE
def test_torchscript_detector_pickles_as_its_archive(tmp_path):
    torch.jit.save(
        torch.jit.script(ScriptableDetections()),
        tmp_path / "det.pt",
        {"categories.txt": "bg\nred\ngreen\nblue"},
    )
    det = load_detector(tmp_path / "det.pt", score_threshold=0.7)
    clone = pickle.loads(pickle.dumps(det))
    assert isinstance(clone.module, torch.jit.ScriptModule)
    assert clone.detect(_colour_batch()) == det.detect(_colour_batch())
    (tmp_path / "det.pt").unlink()  # the pickle does not need the file
    assert pickle.loads(pickle.dumps(clone)).categories == det.categories


@JIT_SAVE
def test_scripted_torchvision_detector_file(ssd, tmp_path):
    path = tmp_path / "ssd.pt"
    torch.jit.save(
        torch.jit.script(ssd.module), path, {"categories.txt": "\n".join(COCO)}
    )
    det = load_detector(path, score_threshold=0.0)
    frames = _frames(2, 60, 80)
    eager = Detector(ssd.module, categories=COCO, score_threshold=0.0)
    assert det.detect(frames) == eager.detect(frames)  # same labels, same model
    assert det.detect(frames)[0] and det.categories == tuple(COCO)


def test_detector_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_detector(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_detector("models/detector.torchscript")
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(ValueError, match="not a TorchScript file"):
        load_detector(tmp_path / "notes.pt")


def test_onnx_detector_needs_onnxruntime(tmp_path, monkeypatch):
    (tmp_path / "det.onnx").write_bytes(b"\x08\x07")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        load_detector(tmp_path / "det.onnx")


class OnnxDetections(torch.nn.Module):
    """One image in; boxes, scores, labels out (torchvision's export order)."""

    def forward(self, image):
        means = image.mean(dim=(1, 2))
        return torch.zeros(3, 4), means, torch.tensor([1, 2, 3])


def test_onnx_detector_file(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")  # torch.onnx.export needs it
    path = tmp_path / "det.onnx"
    torch.onnx.export(
        OnnxDetections(),
        (torch.rand(3, 8, 8),),
        path,
        dynamo=False,
        input_names=["images"],
        output_names=["boxes", "scores", "labels"],
        dynamic_axes={"images": {1: "h", 2: "w"}},
    )
    names = ["__background__", "red", "green", "blue"]
    det = load_detector(path, score_threshold=0.7, categories=names)
    assert det.detect(_colour_batch()) == [{"red"}, {"green", "blue"}]
    assert pickle.loads(pickle.dumps(det)).detect(_colour_batch()[:1]) == [{"red"}]


def test_featurizer_takes_a_detector_instance():
    from skvidsage import VideoFeaturizer

    det = Detector(FixedDetections(), categories=COCO, top_k=1)
    out = VideoFeaturizer(n_frames=2, detector=det).fit_transform([_frames(3, 32, 32)])
    assert out.object_sets == [frozenset({"person"})]
