import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvidsage.video._decode import read_frames
from skvidsage.video._frames import ReadOptions, sample_frame_array
from tests._clips import FPS, frame_indices


@pytest.mark.parametrize(
    "sampling", [{"sample_rate": 1}, {"sample_rate": 30}, {"n_frames": 8}, {}]
)
def test_arrays_sample_like_files(clips, array, sampling):
    from_file = read_frames(clips["mjpeg.mkv"], **sampling)
    from_array = sample_frame_array(array, fps=FPS, **sampling)
    assert_array_equal(
        frame_indices(from_array.frames), frame_indices(from_file.frames)
    )
    assert_allclose(from_array.timestamps, from_file.timestamps)
    assert from_array.path is None and from_array.duration == 5.0


def test_array_without_sampling_is_not_copied(array):
    assert sample_frame_array(array).frames is array
    video = sample_frame_array(array, n_frames=2, resize=(12, 16))
    assert video.frames.shape == (2, 12, 16, 3)
    assert np.isnan(video.timestamps).all() and np.isnan(video.fps)


@pytest.mark.parametrize(
    "frames, kwargs, match",
    [
        (np.zeros((2, 4, 4, 3)), {}, "uint8 RGB array of shape .* got a float64"),
        (np.zeros((4, 4, 3), np.uint8), {}, r"got a uint8 array of shape \(4, 4, 3\)"),
        (np.zeros((2, 4, 4, 4), np.uint8), {}, "shape"),
        (np.zeros((0, 4, 4, 3), np.uint8), {}, "no frames"),
        (np.zeros((2, 4, 4, 3), np.uint8), {"sample_rate": 1}, "pass fps"),
        (np.zeros((2, 4, 4, 3), np.uint8), {"fps": -1}, "fps must be"),
    ],
)
def test_array_validation(frames, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_frame_array(frames, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_rate": 1, "n_frames": 2}, "at most one"),
        ({"sample_rate": 0}, "sample_rate must be a positive number"),
        ({"sample_rate": True}, "sample_rate must be a positive number"),
        ({"n_frames": 0}, "n_frames must be a positive integer"),
        ({"max_frames": 2.0}, "max_frames must be a positive integer"),
        ({"resize": (1, 2, 3)}, "resize must be None"),
        ({"resize": 0}, "resize must be None"),
        ({"seek": "always"}, "seek must be"),
    ],
)
def test_read_options_name_the_bad_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReadOptions(**kwargs)


def test_read_options_are_hashable_and_pickle():
    import pickle

    options = ReadOptions(n_frames=4, resize=(32, 48), strict=True)
    assert options.resize == (32, 48)
    assert pickle.loads(pickle.dumps(options)) == options
    assert hash(options) == hash(ReadOptions(n_frames=4, resize=[32, 48], strict=True))
