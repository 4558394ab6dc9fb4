import math
import os
import pickle
import signal
import time
import warnings
from fractions import Fraction
from pathlib import Path

import av
import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skvidsage._decode as decode
from skvidsage._decode import (
    DecodedVideo,
    VideoDecodeError,
    VideoDecodeWarning,
    iter_decoded,
    read_frames,
    sample_frame_array,
)

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
REAL_CLIPS = sorted(VIDEOS.glob("*")) if VIDEOS.is_dir() else []
needs_real_clips = pytest.mark.skipif(not REAL_CLIPS, reason="../shared absent")

FPS, N_FRAMES = 25, 125  # the generated clips: 5 s at 25 fps
H264 = "libx264" if "libx264" in av.codecs_available else "mpeg4"
CLIPS = {  # name: (codec, keyframe interval)
    "mpeg4.avi": ("mpeg4", 12),
    "h264.mp4": (H264, 25),
    "mjpeg.mkv": ("mjpeg", 1),
}


def stripes(index, size=(240, 320)):
    """An RGB frame whose 8 vertical stripes spell ``index`` in binary."""
    bits = (index >> np.arange(8)) & 1
    row = np.repeat(bits * 255, size[1] // 8).astype(np.uint8)
    return np.broadcast_to(row[None, :, None], (*size, 3)).copy()


def frame_indices(frames):
    """Read back the index that :func:`stripes` drew on each frame."""
    width = frames.shape[2] // 8
    centres = frames[:, :, width // 4 :: width][:, :, :8]
    bits = centres.mean(axis=(1, 3)) > 127
    return (bits * (1 << np.arange(8))).sum(axis=1)


def encode_clip(path, codec="mpeg4", n=N_FRAMES, gop=12, size=(240, 320)):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.height, stream.width = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(stripes(i, size), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        name: encode_clip(root / name, codec, gop=gop)
        for name, (codec, gop) in CLIPS.items()
    }


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, clips):
    """One file per failure kind, and the reason each must give."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.mp4").touch()
    (root / "random.mp4").write_bytes(np.random.RandomState(0).bytes(4000))
    (root / "notes.txt").write_text("FFmpeg opens text as ANSI art.\n" * 50)
    with av.open(str(root / "audio.wav"), "w") as container:  # no video stream
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with av.open(str(root / "garbage.avi"), "w") as container:  # valid container
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = 64, 48
        rng = np.random.RandomState(0)
        for i in range(10):
            packet = av.Packet(rng.bytes(200))
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base, packet.is_keyframe = Fraction(1, FPS), True
            container.mux(packet)
    return {
        root / "missing.mp4": "no such file",
        root: "not a file",
        root / "empty.mp4": "empty file (0 bytes)",
        root / "random.mp4": "not a video: ",
        root / "notes.txt": "not a video: ",
        root / "audio.wav": "no video stream",
        root / "garbage.avi": "no decodable frame",
    }


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, clips):
    """A Matroska clip cut at 60%: its header still says 5 s."""
    path = tmp_path_factory.mktemp("damaged") / "cut.mkv"
    data = clips["mjpeg.mkv"].read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


# -- sampling ----------------------------------------------------------------


def expected_indices(targets):
    """First frame at or after each target (the last frame past the end)."""
    return np.minimum(np.ceil(np.asarray(targets) * FPS - 1e-6), N_FRAMES - 1)


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


@pytest.fixture(scope="module")
def array():
    return np.stack([stripes(i, (24, 32)) for i in range(N_FRAMES)])


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
        (np.zeros((2, 4, 4, 3)), {}, "uint8 array of shape .* got a float64"),
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


# -- many videos ---------------------------------------------------------------


def test_iter_decoded_arrays_in_order(array):
    videos = [array, array[:10], array[:1]]
    out = list(iter_decoded(videos, sample_rate=1, fps=FPS))
    assert [i for i, _ in out] == [0, 1, 2]
    assert [len(v) for _, v in out] == [5, 1, 1]


@pytest.mark.parametrize(
    "videos, match",
    [
        (["a.mp4", np.zeros((1, 2, 2, 3), np.uint8)], r"videos\[1\] is a ndarray"),
        ([np.zeros((1, 2, 2, 3), np.uint8), Path("a.mp4")], r"videos\[1\] is a Posix"),
        (["a.mp4", 3], r"videos\[1\] is a int"),
        ("a.mp4", "list of videos"),
    ],
)
def test_iter_decoded_rejects_mixed_inputs(videos, match):
    with pytest.raises(TypeError, match=match):
        iter_decoded(videos)


def test_iter_decoded_checks_arrays_up_front(array):
    with pytest.raises(ValueError, match=r"videos\[1\] must be a uint8"):
        iter_decoded([array, array.astype(float)])


@pytest.mark.parametrize("n_jobs, isolate", [(2, True), (1, True), (2, False)])
def test_iter_decoded_keeps_order_and_reports_failures(
    clips, bad_files, n_jobs, isolate
):
    good = list(clips.values())
    bad = list(bad_files)
    videos = [good[0], bad[0], good[1], good[2], bad[2], good[0], bad[4], good[1]]
    out = list(
        iter_decoded(
            videos,
            n_frames=4,
            n_jobs=n_jobs,
            isolate=isolate,
            on_error="skip",
            prefetch=3,
        )
    )
    assert [i for i, _ in out] == list(range(len(videos)))
    for path, (_, result) in zip(videos, out, strict=True):
        if path in bad_files:
            assert isinstance(result, VideoDecodeError)
            assert result.reason.startswith(bad_files[path])
        else:
            assert isinstance(result, DecodedVideo) and result.path == str(path)
            expected = expected_indices(np.arange(4) * 5 / 4)
            assert_array_equal(frame_indices(result.frames), expected)


def test_iter_decoded_honours_the_active_joblib_backend(clips):
    videos = list(clips.values()) * 2
    with joblib.parallel_config(backend="threading", n_jobs=2):
        out = list(iter_decoded(videos, sample_rate=1, n_jobs=None))
    assert [v.path for _, v in out] == [str(p) for p in videos]


def test_iter_decoded_on_error_warn(clips, bad_files):
    videos = [clips["mpeg4.avi"], *bad_files]
    with pytest.warns(VideoDecodeWarning) as record:
        out = list(iter_decoded(videos, n_frames=1, n_jobs=2, on_error="warn"))
    assert len(out) == len(videos)
    messages = [str(w.message) for w in record]
    assert all(
        m.startswith(f"skipped {p}: {bad_files[p]}")
        for p, m in zip(bad_files, messages, strict=True)
    )


def test_iter_decoded_relays_damage_warnings_from_workers(damaged):
    with pytest.warns(VideoDecodeWarning, match="cut.mkv: damaged stream"):
        ((_, video),) = list(iter_decoded([damaged], sample_rate=5, n_jobs=2))
    assert video.issues


def _slow_decode(path, read_kwargs):
    time.sleep(0.25)
    return decode._decode_task(path, read_kwargs)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_workers_decode_ahead_of_the_consumer(clips, n_jobs):
    def start_run(paths):
        return decode._start_run(
            paths, {"n_frames": 1}, n_jobs, True, None, _slow_decode
        )

    iterator = decode._iter_paths([clips["mpeg4.avi"]] * 4, 4, start_run, "raise")
    next(iterator)
    time.sleep(1.2)  # meanwhile the workers decode the other three (0.75 s)
    start = time.perf_counter()
    assert len(list(iterator)) == 3
    assert time.perf_counter() - start < 0.3  # not decoded on demand: >= 0.5 s


# -- fuzz ----------------------------------------------------------------------


def mutate(data, rng):
    data = bytearray(data)
    kind = rng.randint(4)
    if kind == 0:  # flip bits
        for offset in rng.randint(len(data), size=rng.randint(1, 60)):
            data[offset] ^= 1 << rng.randint(8)
    elif kind == 1:  # truncate
        data = data[: rng.randint(len(data))]
    elif kind == 2:  # delete a chunk
        start = rng.randint(len(data))
        data = data[:start] + data[start + rng.randint(1, 2000) :]
    else:  # overwrite a chunk with noise
        start = rng.randint(len(data))
        data[start : start + rng.randint(1, 500)] = rng.bytes(500)
    return bytes(data)


def test_fuzzed_clips_give_a_video_or_an_error(tmp_path):
    n_clips, rng = 200, np.random.RandomState(0)
    bases = [
        encode_clip(tmp_path / f"base{ext}", codec, n=25, gop=10, size=(48, 64))
        for codec, ext in [("mpeg4", ".avi"), (H264, ".mp4"), ("mjpeg", ".mkv")]
    ]
    paths = []
    for i in range(n_clips):
        base = bases[i % len(bases)]
        paths.append(tmp_path / f"fuzz{i:03d}{base.suffix}")
        paths[-1].write_bytes(mutate(base.read_bytes(), rng))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoDecodeWarning)
        out = list(
            iter_decoded(paths, sample_rate=5, seek=True, n_jobs=2, on_error="skip")
        )
    assert [i for i, _ in out] == list(range(n_clips))
    for path, (_, result) in zip(paths, out, strict=True):
        assert isinstance(result, DecodedVideo | VideoDecodeError)
        assert result.path == str(path)
        if isinstance(result, DecodedVideo):
            assert len(result) >= 1 and result.frames.dtype == np.uint8


# -- last: these kill workers, which then restart (seconds each) --------------


def test_iter_decoded_on_error_raise(clips, bad_files):
    videos = [clips["mpeg4.avi"], *bad_files]
    with pytest.raises(VideoDecodeError, match="missing.mp4: no such file"):
        list(iter_decoded(videos, n_frames=1, n_jobs=1))


def _crash_on(path, read_kwargs):
    if "crash" in os.fspath(path):
        os.kill(os.getpid(), signal.SIGSEGV)
    return decode._decode_task(path, read_kwargs)


@pytest.mark.parametrize(
    "n_jobs, crash",
    [
        (1, 1),  # one worker: the crash is known to be this video's; resume after
        (2, 2),  # two: retried alone to find whose it is (last, to save a restart)
        pytest.param(2, 1, marks=pytest.mark.slow),
    ],
)
def test_a_worker_crash_costs_only_its_video(clips, n_jobs, crash):
    videos = [clips["mpeg4.avi"], clips["h264.mp4"], clips["mjpeg.mkv"]]
    videos[crash] = "crash.avi"

    def start_run(paths):
        return decode._start_run(paths, {"n_frames": 1}, n_jobs, True, None, _crash_on)

    out = list(decode._iter_paths(videos, 2, start_run, "skip"))
    assert [i for i, _ in out] == [0, 1, 2]
    assert out[crash][1].reason.startswith("decoder crashed (worker process died")
    assert all(isinstance(v, DecodedVideo) for i, v in out if i != crash)


def _hang_on(path, read_kwargs):
    if "hang" in os.fspath(path):
        time.sleep(60)
    return decode._decode_task(path, read_kwargs)


@pytest.mark.slow
def test_a_hanging_decode_times_out(clips):
    videos = [clips["mpeg4.avi"], "hang.avi", clips["h264.mp4"]]

    def start_run(paths):
        return decode._start_run(paths, {"n_frames": 1}, 1, True, 10, _hang_on)

    out = list(decode._iter_paths(videos, 2, start_run, "skip"))
    assert out[1][1].reason.startswith("decoding timed out")
    assert isinstance(out[2][1], DecodedVideo)
