import re
import subprocess
import sys
from pathlib import Path

import pytest

import skvidsage
import skvidsage.metrics


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(dev|a|b|rc)\d+)?", skvidsage.__version__)


def test_public_names_exist():
    for name in skvidsage.__all__:
        assert hasattr(skvidsage, name), name
    estimators = {"VidSageEmbedder", "VideoFeaturizer", "VideoGraphBuilder"}
    assert estimators | {"VideoFeatures", "VideoGraph", "load_youtube8m"} <= set(
        skvidsage.__all__
    )
    # every metric and scorer of the metrics module is exported at the top
    assert set(skvidsage.metrics.__all__) <= set(skvidsage.__all__)
    assert "no_such_name" not in dir(skvidsage)


def test_importing_the_decoding_workers_does_not_load_torch():
    code = "import sys, skvidsage.video._workers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_video_input_names_are_public():
    import skvidsage
    import skvidsage.video
    from skvidsage.video import _backbones, _decode, _detectors

    assert skvidsage.read_frames is _decode.read_frames
    assert skvidsage.VideoDecodeError is _decode.VideoDecodeError
    assert skvidsage.VideoDecodeWarning is _decode.VideoDecodeWarning
    assert skvidsage.ImagePreprocess is _backbones.ImagePreprocess
    assert skvidsage.Detector is _detectors.Detector
    # the type of VideoFeaturizer(detector="imagenet").detector_, public too
    assert skvidsage.ImageNetTagger is _detectors.ImageNetTagger
    assert skvidsage.video.ImageNetTagger is _detectors.ImageNetTagger
    names = {"read_frames", "Detector", "ImageNetTagger", "ImagePreprocess"}
    assert names <= set(skvidsage.__all__)


def test_subpackages_export_the_top_level_names():
    import skvidsage.datasets
    import skvidsage.embed
    import skvidsage.video

    for package in (skvidsage.video, skvidsage.embed, skvidsage.datasets):
        for name in package.__all__:
            if name in skvidsage.__all__:
                assert getattr(skvidsage, name) is getattr(package, name), name
    assert skvidsage.VideoFeaturizer is skvidsage.video.VideoFeaturizer
    assert skvidsage.VidSageEmbedder is skvidsage.embed.VidSageEmbedder
    with pytest.raises(AttributeError, match="skvidsage.video.*no_such_name"):
        skvidsage.video.no_such_name  # noqa: B018


def test_importing_the_video_package_does_not_load_torch():
    code = "import sys, skvidsage.video; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_no_module_is_over_600_lines():
    # issue 10: the file list shows the flow, and no module hides two
    root = Path(skvidsage.__file__).parent
    sizes = {
        str(p.relative_to(root)): len(p.read_text().splitlines())
        for p in root.rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > 600} == {}
