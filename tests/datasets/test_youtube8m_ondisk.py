"""load_youtube8m(..., out=DIR): features written to disk by blocks (issue 12.2)."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from skvidsage.datasets import TFRecordError, TFRecordWarning, load_youtube8m
from skvidsage.datasets._tfrecord import (
    encode_example,
    encode_sequence_example,
    write_tfrecord,
)
from tests._data import YT8M as YT8M_DIR
from tests.datasets.test_youtube8m import (
    _flip,
    _frame_videos,
    _record_offsets,
    _videos,
    _write_frames,
    _write_videos,
)

FEATURES = ("mean_rgb", "mean_audio")


def _same_bunch(memory, disk, out):
    assert isinstance(disk.data, np.memmap) and disk.data.mode == "r"
    assert Path(disk.data.filename) == (out / "data.npy").resolve()
    np.testing.assert_array_equal(disk.data, memory.data)
    assert disk.data.dtype == memory.data.dtype
    assert disk.ids.tolist() == memory.ids.tolist()
    assert (disk.target != memory.target).nnz == 0
    assert disk.feature_names.tolist() == memory.feature_names.tolist()
    reopened = np.load(out / "data.npy", mmap_mode="r")
    np.testing.assert_array_equal(reopened, memory.data)
    assert not list(out.glob("*.part"))


def test_video_level_on_disk_equals_in_memory(tmp_path):
    # 9,000 rows: two full blocks of 4,096 and a partial one
    rng = np.random.RandomState(0)
    videos = _videos(rng, 9000)
    videos[5000]["mean_audio"][1] = np.nan  # in the second block
    _write_videos(tmp_path / "a.tfrecord", videos[:4000])
    _write_videos(tmp_path / "b.tfrecord", videos[4000:])
    match = r"b.tfrecord: 1 record holds .*record 1000 \(data\[5000\]\)"
    with pytest.warns(TFRecordWarning, match=match):
        memory = load_youtube8m(tmp_path, features=FEATURES)
    out = tmp_path / "arrays"
    with pytest.warns(TFRecordWarning, match=match):
        disk = load_youtube8m(tmp_path, features=FEATURES, out=out)
    _same_bunch(memory, disk, out)
    assert disk.data.shape == (9000, 20)
    X, y = load_youtube8m(tmp_path / "a.tfrecord", out=str(out), return_X_y=True)
    assert isinstance(X, np.memmap) and X.shape == (4000, 16)  # replaced
    assert y.shape == (4000, 3862)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skipped_records_shrink_the_file(tmp_path, dtype):
    videos = _videos(np.random.RandomState(0), 6)
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    _flip(path, _record_offsets(videos)[2] + 40)  # record 2's data CRC fails
    with pytest.warns(TFRecordWarning, match="skipped 1 corrupt record"):
        memory = load_youtube8m(path, on_error="skip", dtype=dtype)
    with pytest.warns(TFRecordWarning, match="skipped 1 corrupt record"):
        disk = load_youtube8m(path, on_error="skip", dtype=dtype, out=tmp_path / "o")
    _same_bunch(memory, disk, tmp_path / "o")
    assert disk.data.shape == (5, 16)


def test_a_failed_load_leaves_no_file(tmp_path):
    videos = _videos(np.random.RandomState(0), 6)
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    _flip(path, _record_offsets(videos)[4] + 40)
    out = tmp_path / "o"
    with pytest.raises(TFRecordError, match="data CRC mismatch"):
        load_youtube8m(path, out=out)
    assert list(out.iterdir()) == []


def test_no_record_on_disk(tmp_path):
    write_tfrecord(tmp_path / "a.tfrecord", [])
    disk = load_youtube8m(tmp_path, out=tmp_path / "o")
    assert disk.data.shape == (0, 0) and disk.ids.size == 0
    assert np.load(tmp_path / "o" / "data.npy").shape == (0, 0)


def test_out_must_be_a_path(tmp_path):
    write_tfrecord(tmp_path / "a.tfrecord", [encode_example({"id": "a"})])
    with pytest.raises(TypeError, match="out must be None or a directory path"):
        load_youtube8m(tmp_path, out=np.empty(3))


def test_frame_level_on_disk(tmp_path):
    videos = _frame_videos(np.random.RandomState(0), 7)
    path = _write_frames(tmp_path / "a.tfrecord", videos)
    memory = load_youtube8m(path, level="frame", features=("audio", "rgb"))
    out = tmp_path / "o"
    disk = load_youtube8m(path, level="frame", features=("audio", "rgb"), out=out)
    assert isinstance(disk.data, list) and len(disk.data) == 7
    for a, b in zip(memory.data, disk.data, strict=True):
        assert isinstance(b, np.memmap)
        np.testing.assert_array_equal(a, b)
    offsets = np.load(out / "frame_offsets.npy")
    assert offsets.tolist() == np.cumsum([0] + [len(v["rgb"]) for v in videos]).tolist()
    frames = np.load(out / "data.npy", mmap_mode="r")
    np.testing.assert_array_equal(frames[offsets[3] : offsets[4]], memory.data[3])
    assert disk.ids.tolist() == memory.ids.tolist()


def test_frame_level_nonfinite_on_disk(tmp_path):
    frames = np.arange(6, dtype=np.float32).reshape(3, 2)
    frames[1, 0] = np.nan
    records = [
        encode_sequence_example({"id": "a"}, {"x": list(frames[:1])}),
        encode_sequence_example({"id": "b"}, {"x": list(frames)}),
    ]
    write_tfrecord(tmp_path / "a.tfrecord", records)
    with pytest.warns(TFRecordWarning, match=r"record 1 \(data\[1\]\)"):
        bunch = load_youtube8m(
            tmp_path, level="frame", features=("x",), out=tmp_path / "o"
        )
    assert np.isnan(bunch.data[1][1, 0]) and bunch.data[0].shape == (1, 2)


def test_memory_on_disk_is_one_block(tmp_path):
    # in memory the peak is the output (80 MB here); on disk one block of
    # 4,096 rows (16 MB at 1024 columns) and its isfinite mask (4 MB),
    # whatever the number of videos
    rng = np.random.RandomState(0)
    n, d = 20_000, 1024
    record = {"id": "v", "labels": [1, 2], "mean_rgb": rng.randn(d).astype("f4")}
    write_tfrecord(tmp_path / "big.tfrecord", [encode_example(record)] * n)
    tracemalloc.start()
    try:
        data = load_youtube8m(tmp_path, out=tmp_path / "o").data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.shape == (n, d)
    assert peak < 4096 * d * 5 + 2_000_000 < n * d * 4 / 3
    np.testing.assert_array_equal(data[n - 1], record["mean_rgb"])


@pytest.mark.skipif(
    not (YT8M_DIR / "validate0000.tfrecord").is_file(),
    reason=f"YouTube-8M files not found in {YT8M_DIR}",
)
def test_real_files_on_disk_equal_in_memory(tmp_path):
    memory = load_youtube8m(YT8M_DIR, features=FEATURES)
    disk = load_youtube8m(YT8M_DIR, features=FEATURES, out=tmp_path)
    _same_bunch(memory, disk, tmp_path)
    assert disk.data.shape == (14547, 1152)
