import math
import os
import pickle
import threading
import warnings

import av
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skvidsage.video._decode as decode
from skvidsage.video._decode import VideoDecodeError, VideoDecodeWarning, read_frames
from tests._clips import (
    CLIPS,
    FPS,
    H264,
    N_FRAMES,
    REAL_CLIPS,
    VIDEOS,
    damaged_copy,
    encode_clip,
    encode_image,
    expected_indices,
    frame_indices,
    needs_real_clips,
    needs_x264,
    packet_spans,
    read_reported,
)

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


# -- damage (issue 11) -----------------------------------------------------------



def _frame_times(clip):
    return {i: (pos, size) for i, pos, size in packet_spans(clip)}


def test_cut_avi_is_sampled_by_its_header_and_reported(tmp_path, clips):
    # FFmpeg gives a cut AVI the duration of what is left (2.5 s of 5), so the
    # targets moved into it and nothing was reported
    clip = clips["mpeg4.avi"]
    path = damaged_copy(clip, tmp_path / "cut.avi", cut=clip.stat().st_size // 2)
    video, message = read_reported(path, n_frames=3)
    assert message.startswith(f"{path}: damaged stream (2 frames kept): ")
    assert "the file looks truncated: it should be " in message
    assert "its header gives 125 frames (5.00 s)" in message
    assert "so the frames for 3.33 s could not be reached" in message
    assert_array_equal(frame_indices(video.frames), [0, 42])  # the intact file's
    assert video.duration == pytest.approx(5.0)
    with pytest.raises(VideoDecodeError, match=r"cut.avi: damaged stream: the file"):
        read_frames(path, n_frames=3, strict=True)


@needs_real_clips
def test_cut_megamind_bugy_is_reported(tmp_path):
    # the issue's case: head -c 100000 Megamind_bugy.avi; PyAV says 1.03 s
    path = damaged_copy(VIDEOS / "Megamind_bugy.avi", tmp_path / "t.avi", cut=100_000)
    video, message = read_reported(path, n_frames=3)
    assert f"{path}: damaged stream" in message and "looks truncated" in message
    assert "270 frames (9.00 s)" in message
    assert "the frames for 3.00 s, 6.00 s could not be reached" in message
    intact = read_frames(VIDEOS / "Megamind_bugy.avi", n_frames=3)
    assert_array_equal(video.frames, intact.frames[:1])


def test_cut_mp4_with_its_index_first_is_reported(tmp_path):
    # moov first ("faststart"): FFmpeg still gives 5 s; cut at 90% every
    # target decodes, but the MP4 boxes say the file is shorter than written
    clip = encode_clip(
        tmp_path / "fast.mp4", H264, gop=25, options={"movflags": "faststart"}
    )
    size = clip.stat().st_size
    path = damaged_copy(clip, tmp_path / "cut.mp4", cut=size * 9 // 10)
    video, message = read_reported(path, n_frames=3)
    assert "looks truncated: it should be" in message
    assert f"long by its MP4 box sizes but has {size * 9 // 10}" in message
    assert_array_equal(video.frames, read_frames(clip, n_frames=3).frames)


def test_mp4_cut_before_its_index_says_truncated(tmp_path, clips):
    clip = clips["h264.mp4"]  # moov last: a cut file has none
    path = damaged_copy(clip, tmp_path / "cut.mp4", cut=clip.stat().st_size // 2)
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path)
    assert info.value.reason.startswith(
        "truncated or incomplete file: its index (the MP4 moov atom) is missing; "
        "it should be "
    )
    assert "fetch or copy the file again" in info.value.reason


@needs_x264
@pytest.mark.parametrize("seek", ["auto", False])
def test_frames_that_do_not_decode_are_named_with_the_times(tmp_path, clips, seek):
    # frames 40-47 zeroed: the target 1.67 s (frame 42) got frame 48 silently
    clip = clips["h264.mp4"]
    spans = _frame_times(clip)
    zero = [(spans[i][0], sum(spans[i])) for i in range(40, 48)]
    path = damaged_copy(clip, tmp_path / "holes.mp4", zero=zero)
    video, message = read_reported(path, n_frames=3, seek=seek)
    assert_array_equal(frame_indices(video.frames), [0, 48, 84])
    assert "frames could not be decoded (FFmpeg gave no picture): 1.60-" in message
    assert "1.67 s got the frame at 1.92 s, not the one at 1.68 s" in message
    assert "zero-filled data (as in an unfinished download)" in message
    with pytest.raises(VideoDecodeError, match="damaged stream: .* 1.67 s got"):
        read_frames(path, n_frames=3, seek=seek, strict=True)


@needs_real_clips
def test_zeroed_bikes_reports_the_frame_it_took_instead(tmp_path):
    # the issue's case: bytes 142504-208039 zeroed; 3.33 s got 4.08 s silently
    zero = [(142504, 208040)]
    path = damaged_copy(VIDEOS / "bikes.mp4", tmp_path / "bikes.mp4", zero=zero)
    video, message = read_reported(path, n_frames=3)
    assert_allclose(video.timestamps, [0.0, 4.08, 6.68])
    assert "3.33 s got the frame at 4.08 s, not the one at 3.36 s" in message


@needs_real_clips
def test_zero_filled_data_the_decoder_takes_silently_is_reported(tmp_path):
    # bigbuckbunny.mp4 zeroed at 43349-87263: FFmpeg decodes all 132 frames
    # without an error, yet the featurizer row's cosine to the intact one is 0.6
    zero = [(43349, 87263)]
    path = damaged_copy(VIDEOS / "bigbuckbunny.mp4", tmp_path / "bbb.mp4", zero=zero)
    _, message = read_reported(path, n_frames=3)
    assert "zero-filled data (as in an unfinished download): 1 packet from 0.00 s" in (
        message
    )


def test_damage_between_a_keyframe_and_its_target_counts_after_a_seek(tmp_path, clips):
    # sample_rate=0.5 seeks to the keyframe at frame 48 for the target 2 s
    # (frame 50); frame 49, corrupt, was decoded with its errors muted
    clip = clips["mpeg4.avi"]
    pos, size = _frame_times(clip)[49]
    path = damaged_copy(clip, tmp_path / "flip.avi", flip=[(pos + 8, pos + size - 4)])
    for seek in ("auto", False):
        _, message = read_reported(path, sample_rate=0.5, seek=seek)
        assert "corrupt picture data: FFmpeg guessed the damaged parts" in message


PLAIN = (
    "the file looks truncated",
    "zero-filled data",
    "frame could not be decoded",
    "frames could not be decoded",
    "frames sampled later than asked",
    "sampled frame",
    "corrupt picture data: ",
    "missing reference pictures: ",
    "the data ends early: ",
    "damaged container data: ",
)


def test_ffmpeg_messages_come_in_plain_words(tmp_path, clips):
    data = bytearray(clips["mpeg4.avi"].read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 3000, 97):
        data[offset] ^= 0xFF
    path = tmp_path / "flipped.avi"
    path.write_bytes(bytes(data))
    video, message = read_reported(path)
    assert video.issues and all(
        issue.lstrip("0123456789 ").startswith(PLAIN) for issue in video.issues
    ), video.issues
    # FFmpeg's own text only as one short quote per kind
    assert message.count("first: ") <= len(video.issues)
    assert all(len(issue) < 200 for issue in video.issues)


def _special_files(root):
    """One path per kind of not-a-video-file, and the reason each must give."""
    (root / "loop_a.mp4").symlink_to("loop_b.mp4")
    (root / "loop_b.mp4").symlink_to("loop_a.mp4")
    (root / "dangling.mp4").symlink_to("gone.mp4")
    (root / "folder.mp4").mkdir()
    reasons = {
        root / "loop_a.mp4": "symlink loop: ",
        root / "dangling.mp4": "dangling symlink: it points to 'gone.mp4'",
        root / "folder.mp4": "not a file: a directory",
        encode_image(root / "still.mp4", "png"): "is an image, not a video (one PNG",
        encode_image(root / "photo.jpg", "mjpeg"): "is an image, not a video (one JPE",
    }
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.mp4")
        reasons[root / "pipe.mp4"] = "not a file: a named pipe (FIFO)"
    if os.path.exists("/dev/null"):
        reasons["/dev/null"] = "not a file: a character device"
    return reasons


def test_special_files_get_their_own_reason_and_never_hang(tmp_path):
    for path, reason in _special_files(tmp_path).items():
        errors = []

        def read(path=path, errors=errors):
            try:
                read_frames(path, n_frames=2)
            except VideoDecodeError as exc:
                errors.append(exc)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), f"read_frames({path}) hangs"
        (error,) = errors
        assert error.path == str(path) and error.reason.startswith(reason), error


def test_a_still_image_is_not_a_one_frame_video(tmp_path):
    # a PNG named .mp4 used to give one frame, and a "video" feature from it
    path = encode_image(tmp_path / "clip.mp4", "png")
    with pytest.raises(VideoDecodeError, match="clip.mp4: is an image, not a video"):
        read_frames(path, n_frames=8)


# Encoders whose streams reorder or drop pictures in ways the frame accounting
# must not take for damage: B-frames with an open GOP (x264), packed-free
# MPEG-4 B-frames, VP9's hidden frames, MPEG-2 in a transport stream.
OTHER_CODECS = [
    ("x264_bframes.mp4", H264, {"x264-params": "bframes=3:keyint=30:open-gop=1"}),
    ("mpeg4_bframes.avi", "mpeg4", {"bf": "2"}),
    ("vp9.webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
    ("mpeg2.ts", "mpeg2video", {"bf": "2"}),
]


@pytest.mark.parametrize("name, codec, encoder", OTHER_CODECS, ids=lambda v: v)
def test_intact_clips_of_other_codecs_report_nothing(tmp_path, name, codec, encoder):
    if codec not in av.codecs_available or (codec == H264 and H264 != "libx264"):
        pytest.skip(f"{codec} not available")
    path = encode_clip(tmp_path / name, codec, n=50, gop=12, size=(96, 128), **encoder)
    for sampling in ({"n_frames": 8}, {"sample_rate": 4}, {}):
        for seek in (True, False):
            video, message = read_reported(path, seek=seek, **sampling)
            assert message == "" and video.issues == (), (sampling, seek, message)


@needs_real_clips
@pytest.mark.parametrize("path", REAL_CLIPS, ids=lambda p: p.name)
def test_real_clips_report_no_damage(path):
    # Megamind_bugy.avi and carphone_distorted.mp4 are damaged to the eye
    # only: every frame decodes without an error
    for sampling in ({"n_frames": 3}, {"sample_rate": 1}, {"sample_rate": 30}):
        for seek in ("auto", False):
            video, message = read_reported(path, seek=seek, strict=True, **sampling)
            assert message == "" and video.issues == ()


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
