import os
import signal
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import skvidsage.video._workers as workers
from skvidsage.video._decode import VideoDecodeError, VideoDecodeWarning
from skvidsage.video._frames import DecodedVideo, ReadOptions
from skvidsage.video._workers import iter_decoded
from tests._clips import (
    FPS,
    H264,
    damaged_copy,
    encode_clip,
    expected_indices,
    frame_indices,
)

# -- many videos ---------------------------------------------------------------


def test_iter_decoded_arrays_in_order(array):
    videos = [array, array[:10], array[:1]]
    out = list(iter_decoded(videos, sample_rate=1, fps=FPS))
    assert [i for i, _ in out] == [0, 1, 2]
    assert [len(v) for _, v in out] == [5, 1, 1]


@pytest.mark.parametrize(
    "videos, match",
    [
        (["a.mp4", np.zeros((1, 2, 2, 3), np.uint8)], r"videos\[1\] is a frames item"),
        ([np.zeros((1, 2, 2, 3), np.uint8), Path("a.mp4")], r"\[1\] is a path item"),
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


def test_iter_decoded_runs_on_a_dask_cluster(clips, bad_files):
    distributed = pytest.importorskip("distributed")
    videos = [*clips.values(), *bad_files]
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        out = list(iter_decoded(videos, n_frames=4, n_jobs=2, on_error="skip"))
    assert [i for i, _ in out] == list(range(len(videos)))
    for (_, result), path in zip(out, videos, strict=True):
        assert result.path == str(path)
    assert [len(v) for _, v in out[: len(clips)]] == [4] * len(clips)
    reasons = [v.reason for _, v in out[len(clips) :]]
    for reason, path in zip(reasons, bad_files, strict=True):
        assert reason.startswith(bad_files[path]), (path, reason)


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


def test_iter_decoded_reports_a_cut_file_as_damage_or_an_error_when_strict(
    tmp_path, clips
):
    # issue 11.1: a cut AVI used to decode as a shorter clip, with no word
    clip = clips["mpeg4.avi"]
    cut = damaged_copy(clip, tmp_path / "cut.avi", cut=clip.stat().st_size // 2)
    with pytest.warns(VideoDecodeWarning, match=r"cut.avi: damaged stream .*truncated"):
        ((_, video),) = list(iter_decoded([cut], n_frames=3, n_jobs=2))
    assert len(video) == 2
    out = list(iter_decoded([cut, clip], n_frames=3, strict=True, on_error="skip"))
    assert out[0][1].reason.startswith("damaged stream: the file looks truncated")
    assert isinstance(out[1][1], DecodedVideo)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_iter_decoded_never_waits_on_a_fifo_or_a_link_loop(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    videos = [tmp_path / "pipe.mp4", tmp_path / "loop.mp4"]
    out = list(iter_decoded(videos, on_error="skip", timeout=60))
    assert out[0][1].reason.startswith("not a file: a named pipe (FIFO)")
    assert out[1][1].reason.startswith("symlink loop")


def _slow_decode(path, options):
    time.sleep(0.25)
    return workers._decode_task(path, options)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_workers_decode_ahead_of_the_consumer(clips, n_jobs):
    def start_run(paths):
        return workers._start_run(
            paths, ReadOptions(n_frames=1), n_jobs, True, None, _slow_decode
        )

    iterator = workers._iter_paths([clips["mpeg4.avi"]] * 4, 4, start_run, "raise")
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


def _crash_on(path, options):
    if "crash" in os.fspath(path):
        os.kill(os.getpid(), signal.SIGSEGV)
    return workers._decode_task(path, options)


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
        options = ReadOptions(n_frames=1)
        return workers._start_run(paths, options, n_jobs, True, None, _crash_on)

    out = list(workers._iter_paths(videos, 2, start_run, "skip"))
    assert [i for i, _ in out] == [0, 1, 2]
    assert out[crash][1].reason.startswith("decoder crashed (worker process died")
    assert all(isinstance(v, DecodedVideo) for i, v in out if i != crash)


def _hang_on(path, options):
    if "hang" in os.fspath(path):
        time.sleep(60)
    return workers._decode_task(path, options)


@pytest.mark.slow
def test_a_hanging_decode_times_out(clips):
    videos = [clips["mpeg4.avi"], "hang.avi", clips["h264.mp4"]]

    def start_run(paths):
        return workers._start_run(paths, ReadOptions(n_frames=1), 1, True, 10, _hang_on)

    out = list(workers._iter_paths(videos, 2, start_run, "skip"))
    assert out[1][1].reason.startswith("decoding timed out")
    assert isinstance(out[2][1], DecodedVideo)
