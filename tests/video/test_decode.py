import math
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skvidsage.video._decode as decode
from skvidsage.video._decode import VideoDecodeError, VideoDecodeWarning, read_frames
from tests._clips import (
    CLIPS,
    FPS,
    N_FRAMES,
    REAL_CLIPS,
    VIDEOS,
    encode_clip,
    expected_indices,
    frame_indices,
)

needs_real_clips = pytest.mark.skipif(not REAL_CLIPS, reason="../shared absent")


# -- sampling ----------------------------------------------------------------


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("rate", [0.5, 1, 4, 30])
def test_sample_rate_takes_first_frame_at_or_after_each_target(clips, name, rate):
    video = read_frames(clips[name], sample_rate=rate)
    expected = expected_indices(np.arange(math.ceil(5 * rate)) / rate)
    assert_array_equal(frame_indices(video.frames), expected)
    assert_allclose(video.timestamps, expected / FPS)
    assert video.frames.dtype == np.uint8 and video.frames.shape[1:] == (240, 320, 3)
    assert video.fps == FPS and video.duration == pytest.approx(5.0)
    assert video.path == str(clips[name]) and video.issues == ()


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("n_frames", [1, 5, 8, 200])
def test_n_frames_start_equal_intervals(clips, name, n_frames):
    video = read_frames(clips[name], n_frames=n_frames)
    expected = expected_indices(np.arange(n_frames) * 5.0 / n_frames)
    assert len(video) == n_frames
    assert_array_equal(frame_indices(video.frames), expected)


def test_all_frames_and_max_frames(clips):
    video = read_frames(clips["mpeg4.avi"])
    assert_array_equal(frame_indices(video.frames), np.arange(N_FRAMES))
    assert_allclose(video.timestamps, np.arange(N_FRAMES) / FPS)
    video = read_frames(clips["mpeg4.avi"], max_frames=10)
    assert_array_equal(frame_indices(video.frames), np.arange(10))
    video = read_frames(clips["mpeg4.avi"], sample_rate=4, max_frames=3)
    assert_array_equal(frame_indices(video.frames), [0, 7, 13])


@pytest.mark.parametrize(
    "sampling, index",
    [({"sample_rate": 1}, 0), ({"sample_rate": 0.1}, 0), ({"n_frames": 1}, 0)],
)
def test_clip_shorter_than_the_sampling_interval_gives_a_frame(
    tmp_path, sampling, index
):
    path = encode_clip(tmp_path / "short.avi", n=5)  # 0.2 s; n_frames=1 -> 0.1 s
    video = read_frames(path, **sampling)
    assert len(video) == 1
    assert frame_indices(video.frames)[0] == index


def test_resize(clips):
    video = read_frames(clips["mpeg4.avi"], sample_rate=1, resize=(60, 80))
    assert video.frames.shape == (5, 60, 80, 3)
    assert_array_equal(frame_indices(video.frames), [0, 25, 50, 75, 100])
    video = read_frames(clips["h264.mp4"], n_frames=2, resize=120)
    assert video.frames.shape == (2, 120, 160, 3)


SEEK_SAMPLINGS = [
    {"sample_rate": 0.5},
    {"sample_rate": 1},
    {"sample_rate": 4},
    {"n_frames": 3},
]


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("sampling", SEEK_SAMPLINGS)
def test_seeking_gives_the_frames_of_a_sequential_decode(clips, name, sampling):
    plain = read_frames(clips[name], seek=False, **sampling)
    for seek in (True, "auto"):
        video = read_frames(clips[name], seek=seek, **sampling)
        assert_array_equal(video.frames, plain.frames)
        assert_array_equal(video.timestamps, plain.timestamps)


def test_seeking_happens(clips, monkeypatch):
    calls = []
    seek = decode._FrameSource.seek
    monkeypatch.setattr(
        decode._FrameSource, "seek", lambda self, t: calls.append(t) or seek(self, t)
    )
    read_frames(clips["mpeg4.avi"], sample_rate=0.5, seek=False)
    assert calls == []
    read_frames(clips["mpeg4.avi"], sample_rate=0.5, seek="auto")
    assert calls == [2.0, 4.0]


@needs_real_clips
@pytest.mark.parametrize("path", REAL_CLIPS, ids=lambda p: p.name)
def test_seeking_equals_sequential_on_real_clips(path):
    for sampling in ({"sample_rate": 0.5}, {"sample_rate": 2}, {"n_frames": 8}):
        plain = read_frames(path, seek=False, **sampling)
        video = read_frames(path, seek=True, **sampling)
        assert_array_equal(video.frames, plain.frames)
        assert_array_equal(video.timestamps, plain.timestamps)
        assert np.all(np.diff(plain.timestamps) >= 0)


@needs_real_clips
def test_megamind_bugy_decodes_in_full():
    # Its damage is visual (a lossy re-encode with artefacts); FFmpeg decodes
    # every frame without an error, so there is nothing to report.
    path = VIDEOS / "Megamind_bugy.avi"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        video = read_frames(path, strict=True)
    assert video.frames.shape == (270, 528, 720, 3)
    assert video.fps == 30 and video.duration == pytest.approx(9.0)


# -- errors --------------------------------------------------------------------


def test_every_error_names_the_file_and_the_reason(bad_files):
    for path, reason in bad_files.items():
        with pytest.raises(VideoDecodeError) as info:
            read_frames(path, sample_rate=1)
        assert str(info.value).startswith(f"{path}: {reason}")
        assert info.value.path == str(path)
        assert info.value.reason.startswith(reason)


def test_damaged_stream_warns_or_raises_when_strict(damaged):
    with pytest.warns(VideoDecodeWarning, match=f"{damaged}: damaged stream"):
        video = read_frames(damaged, sample_rate=5)
    assert 10 <= len(video) < 25  # the frames before the cut
    assert any("truncated" in issue for issue in video.issues)
    with pytest.raises(VideoDecodeError, match=f"{damaged}: damaged stream: "):
        read_frames(damaged, sample_rate=5, strict=True)


def test_corrupt_bytes_are_reported(tmp_path, clips):
    data = bytearray(clips["mpeg4.avi"].read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 3000, 97):
        data[offset] ^= 0xFF
    path = tmp_path / "flipped.avi"
    path.write_bytes(bytes(data))
    with pytest.warns(VideoDecodeWarning, match="flipped.avi: damaged stream"):
        video = read_frames(path)
    assert len(video) > N_FRAMES // 2 and video.issues


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_rate": 1, "n_frames": 2}, "at most one"),
        ({"sample_rate": 0}, "sample_rate must be"),
        ({"sample_rate": True}, "sample_rate must be"),
        ({"n_frames": 2.5}, "n_frames must be"),
        ({"max_frames": 0}, "max_frames must be"),
        ({"resize": (10,)}, "resize must be"),
        ({"resize": (0, 4)}, "resize must be"),
        ({"seek": "always"}, "seek must be"),
    ],
)
def test_parameter_errors(clips, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read_frames(clips["mpeg4.avi"], **kwargs)


def test_errors_pickle():
    error = VideoDecodeError("a/b.mp4", "not a video: Invalid data")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is VideoDecodeError and isinstance(clone, ValueError)
    assert (clone.path, clone.reason, str(clone)) == (
        "a/b.mp4",
        "not a video: Invalid data",
        "a/b.mp4: not a video: Invalid data",
    )


# -- in-memory arrays ----------------------------------------------------------
