import os
import struct
import time
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from skvidsage.datasets import (
    TFRecordError,
    TFRecordWarning,
    dump_youtube8m,
    load_youtube8m,
)
from skvidsage.datasets._tfrecord import (
    TFRecordReader,
    encode_example,
    encode_sequence_example,
    write_tfrecord,
)
from tests._data import YT8M as YT8M_DIR

N_CLASSES = 3862


# ------------------------------------------------------------------ helpers


def _videos(rng, n, start=0, n_labels=3):
    return [
        {
            "id": f"vid{start + i}",
            "labels": rng.choice(N_CLASSES, size=n_labels, replace=False),
            "mean_rgb": rng.randn(16).astype(np.float32),
            "mean_audio": rng.randn(4).astype(np.float32),
        }
        for i in range(n)
    ]


def _write_videos(path, videos, packed=True):
    records = [encode_example(v, packed=packed) for v in videos]
    write_tfrecord(path, records)
    return path


def _record_offsets(videos):
    sizes = [16 + len(encode_example(v)) for v in videos]
    return [0, *np.cumsum(sizes)[:-1].tolist()]


@pytest.fixture
def video_dir(tmp_path):
    rng = np.random.RandomState(0)
    videos = _videos(rng, 5), _videos(rng, 4, start=5)
    for i, part in enumerate(videos):
        _write_videos(tmp_path / f"train{i:04d}.tfrecord", part)
    return tmp_path, videos[0] + videos[1]


def _dense_labels(videos):
    target = np.zeros((len(videos), N_CLASSES), dtype=np.int32)
    for i, video in enumerate(videos):
        target[i, video["labels"]] = 1
    return target


def _flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x04
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ video level


def test_video_level_round_trip(video_dir):
    path, videos = video_dir
    bunch = load_youtube8m(path, features=("mean_rgb", "mean_audio"))
    expected = np.array([np.r_[v["mean_rgb"], v["mean_audio"]] for v in videos])
    assert bunch.data.dtype == np.float32 and bunch.data.shape == (9, 20)
    np.testing.assert_array_equal(bunch.data, expected)
    assert sp.isspmatrix_csr(bunch.target) and bunch.target.shape == (9, N_CLASSES)
    np.testing.assert_array_equal(bunch.target.toarray(), _dense_labels(videos))
    assert bunch.ids.tolist() == [f"vid{i}" for i in range(9)]
    assert bunch.feature_names.tolist() == [f"mean_rgb_{j}" for j in range(16)] + [
        f"mean_audio_{j}" for j in range(4)
    ]
    np.testing.assert_array_equal(bunch.target_names, np.arange(N_CLASSES))
    assert "9 videos from 2 TFRecord files" in bunch.DESCR

    X, y = load_youtube8m(path, return_X_y=True, dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, expected[:, :16])
    assert (y != bunch.target).nnz == 0


def test_packed_and_unpacked_files_load_the_same(tmp_path):
    videos = _videos(np.random.RandomState(0), 3)
    a = load_youtube8m(_write_videos(tmp_path / "a.tfrecord", videos))
    b = load_youtube8m(_write_videos(tmp_path / "b.tfrecord", videos, packed=False))
    np.testing.assert_array_equal(a.data, b.data)
    assert (a.target != b.target).nnz == 0


def test_classes_subset(video_dir):
    path, videos = video_dir
    classes = np.array([videos[3]["labels"][0], videos[0]["labels"][2], 7])
    bunch = load_youtube8m(path, classes=classes)
    np.testing.assert_array_equal(
        bunch.target.toarray(), _dense_labels(videos)[:, classes]
    )
    np.testing.assert_array_equal(bunch.target_names, classes)
    assert bunch.target.has_sorted_indices


def test_labels_out_of_vocabulary(tmp_path):
    videos = _videos(np.random.RandomState(0), 3)
    videos[1]["labels"] = np.array([5, N_CLASSES])
    videos[2]["labels"] = np.array([-1])
    path = _write_videos(tmp_path / "oov.tfrecord", videos)
    offset = _record_offsets(videos)[1]
    with pytest.raises(
        ValueError, match=f"record 1 at byte offset {offset}: label {N_CLASSES} is"
    ) as excinfo:
        load_youtube8m(path)
    assert str(path) in str(excinfo.value)
    # with an explicit subset, labels outside it (even negative ones) are dropped
    target = load_youtube8m(path, classes=[5]).target.toarray()
    np.testing.assert_array_equal(target, [[int(5 in videos[0]["labels"])], [1], [0]])


def test_duplicate_and_missing_labels(tmp_path):
    videos = _videos(np.random.RandomState(0), 2)
    videos[0]["labels"] = np.array([4, 4, 2])
    del videos[1]["labels"]
    bunch = load_youtube8m(_write_videos(tmp_path / "a.tfrecord", videos))
    assert bunch.target.indices.tolist() == [2, 4]
    assert bunch.target.data.tolist() == [1, 1]
    assert bunch.target.indptr.tolist() == [0, 2, 2]


def test_missing_feature(tmp_path):
    videos = _videos(np.random.RandomState(0), 3)
    del videos[2]["mean_audio"]
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    offset = _record_offsets(videos)[2]
    match = (
        rf"a.tfrecord: record 2 at byte offset {offset}: missing feature "
        r"\['mean_audio'\]; this record has features \['id', 'labels', 'mean_rgb'\]"
    )
    with pytest.raises(TFRecordError, match=match + ", unlike the records before"):
        load_youtube8m(path, features=("mean_rgb", "mean_audio"))
    # issue 11.5: the other records have the feature, so this one is damaged
    with pytest.warns(TFRecordWarning, match=f"record 2 at byte offset {offset}"):
        bunch = load_youtube8m(
            path, features=("mean_rgb", "mean_audio"), on_error="skip"
        )
    assert bunch.ids.tolist() == ["vid0", "vid1"]
    # no record has it: the request is wrong, which skipping would only hide
    match = r"'nope'.*no record of this file matches \(3 tried\)"
    with pytest.raises(ValueError, match=match) as excinfo:
        load_youtube8m(path, features="nope", on_error="skip")
    assert "level=" not in str(excinfo.value)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"mean_rgb": np.zeros(15, np.float32)}, "'mean_rgb' has 15 values, expected"),
        ({"mean_rgb": b"bytes"}, "'mean_rgb' is a bytes_list"),
        ({"id": [b"a", b"b"]}, "'id' must hold one bytes value"),
        ({"labels": [0.5]}, "'labels' must be an int64_list"),
    ],
)
def test_bad_feature_values(tmp_path, change, match):
    rng = np.random.RandomState(0)
    videos = _videos(rng, 2)
    videos[1].update(change)
    path = _write_videos(tmp_path / "a.tfrecord", videos + _videos(rng, 1, start=2))
    with pytest.raises(ValueError, match="record 1 at byte offset .*" + match):
        load_youtube8m(path)
    with pytest.warns(TFRecordWarning, match="record 1 at byte offset .*" + match):
        assert load_youtube8m(path, on_error="skip").ids.tolist() == ["vid0", "vid2"]


def test_int64_features_are_cast(tmp_path):
    videos = [{"id": "a", "mean_rgb": np.array([-(2**40), 3])}]
    bunch = load_youtube8m(_write_videos(tmp_path / "a.tfrecord", videos))
    np.testing.assert_array_equal(bunch.data, [[-(2.0**40), 3.0]])


def test_paths_dir_list_glob(video_dir):
    path, _ = video_dir
    files = sorted(path.glob("*.tfrecord"))
    reference = load_youtube8m(path)
    for paths in ([str(f) for f in files], files, str(path / "train*.tfrecord")):
        bunch = load_youtube8m(paths)
        np.testing.assert_array_equal(bunch.data, reference.data)
        np.testing.assert_array_equal(bunch.ids, reference.ids)
    assert load_youtube8m(files[1]).ids.tolist() == [f"vid{i}" for i in range(5, 9)]
    assert load_youtube8m([files[1], files[0]]).ids[0] == "vid5"


def test_max_records(video_dir):
    path, videos = video_dir
    for n in (1, 5, 7, 100):
        bunch = load_youtube8m(path, max_records=n)
        assert bunch.data.shape == (min(n, 9), 16)
        assert bunch.target.shape == (min(n, 9), N_CLASSES)
        assert bunch.ids.tolist() == [v["id"] for v in videos[:n]]


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.*: no such file"):
        load_youtube8m(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"no files match.*\*\.tfrecord"):
        load_youtube8m(str(tmp_path / "*.tfrecord"))
    with pytest.raises(ValueError, match="no \\*.tfrecord files in directory"):
        load_youtube8m(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        load_youtube8m([])
    with pytest.raises(TypeError, match="expected a path"):
        load_youtube8m([3])
    with pytest.raises(TypeError, match="expected a path"):
        load_youtube8m(b"/data")


def test_wrong_level(video_dir, tmp_path):
    match = r"feature lists \[\] \(it is shaped like a video-level record: is level="
    for on_error in ("raise", "skip"):
        with pytest.raises(ValueError, match=match):
            load_youtube8m(video_dir[0], level="frame", on_error=on_error)
    videos = _frame_videos(np.random.RandomState(0), 1)
    path = _write_frames(tmp_path / "frames.tfrecord", videos)
    match = r"has features \['id', 'labels'\] \(it is shaped like a frame-level"
    with pytest.raises(ValueError, match=match):
        load_youtube8m(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    bunch = load_youtube8m(tmp_path)
    assert bunch.data.shape == (0, 0) and bunch.target.shape == (0, N_CLASSES)
    assert bunch.ids.shape == (0,) and bunch.feature_names.shape == (0,)
    assert load_youtube8m(tmp_path, level="frame").data == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"level": "clip"}, "level must be"),
        ({"features": ()}, "non-empty tuple of str"),
        ({"features": ("a", 1)}, "non-empty tuple of str"),
        ({"features": ("a", "a")}, "repeat"),
        ({"on_error": "ignore"}, "on_error must be"),
        ({"classes": [[1, 2]]}, "1-D array of integer"),
        ({"classes": [1.5]}, "1-D array of integer"),
        ({"classes": []}, "1-D array of integer"),
        ({"classes": [3, N_CLASSES]}, r"classes must lie in \[0, 3862\)"),
        ({"classes": [3, 3]}, "duplicates"),
        ({"max_records": 0}, "max_records must be None or a positive integer"),
        ({"max_records": 2.0}, "max_records must be None or a positive integer"),
        ({"max_frames": 10}, "only used with level='frame'"),
        ({"level": "frame", "max_frames": -1}, "max_frames must be"),
        ({"dtype": np.int32}, "floating point dtype"),
    ],
)
def test_invalid_parameters(video_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_youtube8m(video_dir[0], **kwargs)


# ------------------------------------------------------------------ corruption


def test_truncated_file(video_dir):
    path, videos = video_dir
    first = path / "train0000.tfrecord"
    offsets = _record_offsets(videos[:5])
    first.write_bytes(first.read_bytes()[: offsets[3] + 30])  # inside record 3
    with pytest.raises(TFRecordError, match=f"offset {offsets[3]}: truncated") as e:
        load_youtube8m(path)
    assert str(first) in str(e.value)

    with pytest.warns(TFRecordWarning, match="train0000.tfrecord: skipped 1 corrupt"):
        bunch = load_youtube8m(path, on_error="skip", features=("mean_audio",))
    kept = videos[:3] + videos[5:]
    assert bunch.ids.tolist() == [v["id"] for v in kept]
    np.testing.assert_array_equal(bunch.data, [v["mean_audio"] for v in kept])
    np.testing.assert_array_equal(bunch.target.toarray(), _dense_labels(kept))


def test_flipped_data_byte(video_dir):
    path, videos = video_dir
    first = path / "train0000.tfrecord"
    offsets = _record_offsets(videos[:5])
    payload = encode_example(videos[1])
    _flip(first, offsets[1] + 12 + payload.index(videos[1]["mean_rgb"].tobytes()))
    with pytest.raises(TFRecordError, match=f"offset {offsets[1]}: data CRC mismatch"):
        load_youtube8m(path)
    with pytest.warns(TFRecordWarning, match=f"record 1 at byte offset {offsets[1]}"):
        bunch = load_youtube8m(path, on_error="skip")
    kept = videos[:1] + videos[2:]
    assert bunch.ids.tolist() == [v["id"] for v in kept]
    assert bunch.data.shape == (8, 16) and bunch.data.flags.c_contiguous
    np.testing.assert_array_equal(bunch.data, [v["mean_rgb"] for v in kept])
    np.testing.assert_array_equal(bunch.target.toarray(), _dense_labels(kept))
    # without CRC checks, the flipped bit goes unnoticed
    unchecked = load_youtube8m(path, verify_crc=False).data
    assert unchecked[1, 0] != videos[1]["mean_rgb"][0]
    np.testing.assert_array_equal(unchecked[1, 1:], videos[1]["mean_rgb"][1:])


def test_flipped_length_field(video_dir):
    path, videos = video_dir
    first = path / "train0000.tfrecord"
    offsets = _record_offsets(videos[:5])
    _flip(first, offsets[2] + 1)
    with pytest.raises(TFRecordError, match=f"offset {offsets[2]}: length CRC"):
        load_youtube8m(path)
    # issue 11.5: only the damaged record is lost, not the rest of the file
    skipped = offsets[3] - offsets[2]
    match = (
        f"record 2 at byte offset {offsets[2]}: length CRC mismatch; skipped "
        f"{skipped} bytes, resuming at the next intact record, at byte offset "
        f"{offsets[3]}"
    )
    with pytest.warns(TFRecordWarning, match=match):
        bunch = load_youtube8m(path, on_error="skip")
    kept = videos[:2] + videos[3:]
    assert bunch.ids.tolist() == [v["id"] for v in kept]
    np.testing.assert_array_equal(bunch.data, [v["mean_rgb"] for v in kept])
    # without CRC checks the length (+1024) runs past the end, which is seen
    with pytest.warns(TFRecordWarning, match=f"offset {offsets[2]}: truncated"):
        unchecked = load_youtube8m(path, on_error="skip", verify_crc=False)
    np.testing.assert_array_equal(unchecked.data, bunch.data)


def test_malformed_protobuf_record(tmp_path):
    videos = _videos(np.random.RandomState(0), 2)
    records = [encode_example(videos[0]), b"\x0a\x05\x0a", encode_example(videos[1])]
    path = tmp_path / "a.tfrecord"
    write_tfrecord(path, records)
    offset = 16 + len(records[0])
    with pytest.raises(TFRecordError, match=f"{offset}: malformed protobuf: .*runs"):
        load_youtube8m(path)
    with pytest.warns(TFRecordWarning, match="malformed protobuf"):
        bunch = load_youtube8m(path, on_error="skip")
    assert bunch.ids.tolist() == ["vid0", "vid1"]


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty payload"),
        (b"\x08\x01", r"no 'id' feature, it has no feature at all"),  # a varint
        (encode_example({"x": [1.0]}), r"no 'id' feature, it has features \['x'\]"),
        (b"\x0a\x05\x0a", "malformed protobuf"),
    ],
)
@pytest.mark.parametrize("damaged", [0, 2])
def test_damaged_payload_with_a_valid_crc(tmp_path, payload, reason, damaged):
    # issue 11.5: fuzzing found that such a record lost the whole load
    videos = _videos(np.random.RandomState(0), 4)
    records = [encode_example(v) for v in videos]
    records[damaged] = payload
    path = tmp_path / "a.tfrecord"
    write_tfrecord(path, records)
    offset = sum(16 + len(r) for r in records[:damaged])
    match = (
        f"record {damaged} at byte offset {offset}: {reason}.*"
        "the record's payload is damaged, or is not a YouTube-8M example"
    )
    with pytest.raises(TFRecordError, match="a.tfrecord: " + match) as excinfo:
        load_youtube8m(path)
    assert str(path) in str(excinfo.value) and "level=" not in str(excinfo.value)
    with pytest.warns(TFRecordWarning, match=r"a.tfrecord: skipped 1 .*: " + match):
        bunch = load_youtube8m(path, on_error="skip")
    kept = [v for i, v in enumerate(videos) if i != damaged]
    assert bunch.ids.tolist() == [v["id"] for v in kept]
    np.testing.assert_array_equal(bunch.data, [v["mean_rgb"] for v in kept])
    np.testing.assert_array_equal(bunch.target.toarray(), _dense_labels(kept))


def test_first_record_lacking_a_feature(tmp_path):
    videos = _videos(np.random.RandomState(0), 3)
    del videos[0]["mean_rgb"]
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    # raise: nothing tells yet whether the request or the record is wrong
    match = (
        r"record 0 at byte offset 0: missing feature \['mean_rgb'\]; this "
        r"record has features \['id', 'labels', 'mean_audio'\]; if the other "
        "records differ from it, this one is damaged and on_error='skip' skips it"
    )
    with pytest.raises(ValueError, match=match):
        load_youtube8m(path)
    # skip: record 1 has the feature, so record 0 is the damaged one
    with pytest.warns(TFRecordWarning, match=r"record 0 .*\['mean_rgb'\].*unlike"):
        bunch = load_youtube8m(path, on_error="skip")
    assert bunch.ids.tolist() == ["vid1", "vid2"]
    np.testing.assert_array_equal(bunch.data, [v["mean_rgb"] for v in videos[1:]])


def test_skipped_record_does_not_fix_the_feature_lengths(tmp_path):
    # record 0 has a 'mean_rgb' of 5 values but a malformed 'mean_audio': once it
    # is skipped, the 16 values of the other records' 'mean_rgb' are the length
    videos = _videos(np.random.RandomState(0), 3)
    records = [encode_example(v) for v in videos]
    good = encode_example({"id": "bad", "mean_rgb": np.zeros(5, np.float32)})
    assert good[0] == 0x0A and len(good) == good[1] + 2  # Example{Features{...}}
    entry = b"\x0a\x12\x0a\x0amean_audio\x12\x04\x12\x02\x0a\x07"  # 7 bytes: missing
    features = good[2:] + entry
    records.insert(0, b"\x0a" + bytes([len(features)]) + features)
    path = tmp_path / "a.tfrecord"
    write_tfrecord(path, records)
    with pytest.warns(TFRecordWarning, match="record 0 .*malformed protobuf"):
        bunch = load_youtube8m(
            path, features=("mean_rgb", "mean_audio"), on_error="skip"
        )
    assert bunch.ids.tolist() == ["vid0", "vid1", "vid2"]
    assert bunch.data.shape == (3, 20)


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_non_finite_values_warn(tmp_path, on_error):
    # issue 11.5: inf and NaN are loaded as they are, with a warning, either way
    videos = _videos(np.random.RandomState(0), 300)
    videos[1]["mean_rgb"][3] = np.inf
    videos[299]["mean_audio"][0] = np.nan  # in the second block of 256 rows
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    features = ("mean_rgb", "mean_audio")
    match = (
        r"a.tfrecord: 2 records hold inf or NaN values, loaded as they are: "
        r"record 1 \(data\[1\]\), record 299 \(data\[299\]\)"
    )
    with pytest.warns(TFRecordWarning, match=match):
        bunch = load_youtube8m(path, features=features, on_error=on_error)
    assert bunch.data.shape == (300, 20)
    assert np.isposinf(bunch.data[1, 3]) and np.isnan(bunch.data[299, 16])
    assert np.isfinite(np.delete(bunch.data, [1, 299], axis=0)).all()


def test_non_finite_values_after_the_cast(tmp_path):
    videos = _videos(np.random.RandomState(0), 3)
    videos[2]["mean_rgb"][0] = 1e6  # finite in float32, inf in float16
    path = _write_videos(tmp_path / "a.tfrecord", videos)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_youtube8m(path)
    with pytest.warns(TFRecordWarning, match=r"1 record holds.*record 2 \(data\[2\]\)"):
        assert np.isinf(load_youtube8m(path, dtype=np.float16).data[2, 0])


def test_non_finite_frames_warn(tmp_path):
    frames = np.arange(6, dtype=np.float32).reshape(3, 2)
    frames[1, 0] = np.nan
    records = [
        encode_sequence_example({"id": "a"}, {"x": list(frames[:1])}),
        encode_sequence_example({"id": "b"}, {"x": list(frames)}),
    ]
    write_tfrecord(tmp_path / "a.tfrecord", records)
    with pytest.warns(TFRecordWarning, match=r"1 record holds.*record 1 \(data\[1\]\)"):
        bunch = load_youtube8m(tmp_path, level="frame", features=("x",))
    assert np.isnan(bunch.data[1][1, 0])


def test_memory_is_the_output_size(tmp_path):
    rng = np.random.RandomState(0)
    n, d = 1500, 1024
    record = {"id": "v", "labels": [1, 2], "mean_rgb": rng.randn(d).astype("f4")}
    write_tfrecord(tmp_path / "big.tfrecord", [encode_example(record)] * n)
    tracemalloc.start()
    try:
        data = load_youtube8m(tmp_path).data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.nbytes == n * d * 4  # ~6 MB, as much as the file
    assert peak < data.nbytes + 2_000_000


# ------------------------------------------------------------------ frame level


def _frame_videos(rng, n):
    videos = []
    for i in range(n):
        n_frames = rng.randint(1, 6)
        videos.append(
            {
                "id": f"f{i}",
                "labels": rng.choice(N_CLASSES, size=2, replace=False),
                "rgb": rng.randint(0, 256, size=(n_frames, 8)).astype(np.uint8),
                "audio": rng.randint(0, 256, size=(n_frames, 3)).astype(np.uint8),
            }
        )
    return videos


def _write_frames(path, videos):
    write_tfrecord(
        path,
        [
            encode_sequence_example(
                {"id": v["id"], "labels": v["labels"]},
                {name: [f.tobytes() for f in v[name]] for name in ("rgb", "audio")},
            )
            for v in videos
        ],
    )
    return path


def _dequantize(q):
    # YouTube-8M reference: q * (max - min) / 255 + (max - min) / 512 + min
    return (q * (4.0 / 255.0) + (4.0 / 512.0 - 2.0)).astype(np.float32)


def test_dequantization_values(tmp_path):
    frames = np.array([[0, 255, 128, 1]], dtype=np.uint8)
    video = {"id": "a", "labels": [1], "rgb": frames, "audio": frames[:, :1]}
    bunch = load_youtube8m(
        _write_frames(tmp_path / "a.tfrecord", [video]), level="frame"
    )
    values = bunch.data[0][0]
    assert values[0] == -2 + 4 / 512 == -1.9921875
    assert values[1] == 2 + 4 / 512 == 2.0078125
    assert values[2] == np.float32(128 * 4 / 255 + 4 / 512 - 2)
    np.testing.assert_array_equal(values, _dequantize(frames[0]))


def test_frame_level_round_trip(tmp_path):
    videos = _frame_videos(np.random.RandomState(0), 4)
    path = _write_frames(tmp_path / "a.tfrecord", videos)
    bunch = load_youtube8m(path, level="frame", features=("audio", "rgb"))
    assert isinstance(bunch.data, list) and len(bunch.data) == 4
    for x, v in zip(bunch.data, videos, strict=True):
        assert x.dtype == np.float32 and x.shape == (len(v["rgb"]), 11)
        np.testing.assert_array_equal(x, _dequantize(np.hstack([v["audio"], v["rgb"]])))
    assert bunch.feature_names.tolist() == [f"audio_{j}" for j in range(3)] + [
        f"rgb_{j}" for j in range(8)
    ]
    assert bunch.ids.tolist() == ["f0", "f1", "f2", "f3"]
    np.testing.assert_array_equal(bunch.target.toarray(), _dense_labels(videos))

    short = load_youtube8m(path, level="frame", max_frames=2, dtype=np.float64)
    for x, v in zip(short.data, videos, strict=True):
        assert x.dtype == np.float64
        np.testing.assert_allclose(x, _dequantize(v["rgb"][:2]), rtol=1e-6)


def test_frame_level_float_frames(tmp_path):
    frames = np.arange(6, dtype=np.float32).reshape(3, 2)
    record = encode_sequence_example({"id": "a"}, {"x": list(frames)})
    write_tfrecord(tmp_path / "a.tfrecord", [record])
    bunch = load_youtube8m(tmp_path, level="frame", features=("x",))
    np.testing.assert_array_equal(bunch.data[0], frames)


def test_frame_level_errors(tmp_path):
    videos = _frame_videos(np.random.RandomState(0), 2)
    videos[1]["audio"] = videos[1]["audio"][:-1]
    path = _write_frames(tmp_path / "a.tfrecord", videos)
    with pytest.raises(ValueError, match="record 1 at .* different frame counts"):
        load_youtube8m(path, level="frame", features=("audio", "rgb"))
    match = (
        r"record 0 at byte offset 0: missing feature \['nope'\]; "
        r"this record has feature lists \['audio', 'rgb'\]"
    )
    with pytest.raises(ValueError, match=match):
        load_youtube8m(path, level="frame", features=("rgb", "nope"))
    videos[1]["rgb"] = [np.zeros(8, np.uint8), np.zeros(7, np.uint8)]
    path = _write_frames(tmp_path / "a.tfrecord", videos)
    with pytest.raises(ValueError, match="record 1 at .* frames of 'rgb' differ"):
        load_youtube8m(path, level="frame")


# ------------------------------------------------------------------ real data

needs_yt8m = pytest.mark.skipif(
    not (YT8M_DIR / "validate0000.tfrecord").is_file(),
    reason=f"YouTube-8M files not found in {YT8M_DIR}",
)


@pytest.fixture(scope="module")
def yt8m():
    if not (YT8M_DIR / "validate0000.tfrecord").is_file():
        pytest.skip(f"YouTube-8M files not found in {YT8M_DIR}")
    return load_youtube8m(YT8M_DIR, features=("mean_rgb", "mean_audio"))


def _first_mean_rgb(path):
    """Decode record 0 by hand, independently of the package's protobuf decoder."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(12)[:8])
        data = f.read(length)
    key = b"\x0a\x08mean_rgb\x12"
    # entry: key, then 12 86 20 (Feature, 4102 bytes) 12 83 20 (FloatList) 0a 80 20
    start = data.index(key) + len(key) + 2 + 3 + 3
    return np.frombuffer(data[start : start + 4096], dtype="<f4")


@needs_yt8m
def test_real_single_file():
    path = YT8M_DIR / "validate0000.tfrecord"
    bunch = load_youtube8m(path)
    assert bunch.data.shape == (284, 1024) and bunch.data.dtype == np.float32
    assert bunch.target.shape == (284, N_CLASSES)
    np.testing.assert_array_equal(bunch.data[0], _first_mean_rgb(path))
    assert bunch.ids[0] == "02aa"
    half = load_youtube8m(str(path), max_records=100)
    np.testing.assert_array_equal(half.data, bunch.data[:100])


def test_real_all_files(yt8m):
    n_files = len(list(YT8M_DIR.glob("*.tfrecord")))
    n = yt8m.data.shape[0]
    assert n >= 284 * n_files * 0.9
    assert yt8m.data.shape == (n, 1152) and np.isfinite(yt8m.data).all()
    assert yt8m.feature_names[1023] == "mean_rgb_1023"
    assert yt8m.feature_names[1024] == "mean_audio_0"
    assert yt8m.target.shape == (n, N_CLASSES)
    labels = yt8m.target.indices
    assert labels.min() >= 0 and labels.max() < N_CLASSES
    assert np.all(np.diff(yt8m.target.indptr) >= 1)  # every video has a label
    assert len(set(yt8m.ids)) == n and all(isinstance(i, str) for i in yt8m.ids)


@needs_yt8m
def test_real_paths_and_classes(yt8m):
    files = sorted(YT8M_DIR.glob("validate000[0-2].tfrecord"))
    by_list = load_youtube8m(files, features=("mean_audio",), verify_crc=False)
    by_glob = load_youtube8m(str(YT8M_DIR / "validate000[0-2].tfrecord"))
    n = by_list.data.shape[0]
    assert by_glob.data.shape == (n, 1024) and by_list.data.shape == (n, 128)
    np.testing.assert_array_equal(by_list.data, yt8m.data[:n, 1024:])
    np.testing.assert_array_equal(by_glob.data, yt8m.data[:n, :1024])
    np.testing.assert_array_equal(by_glob.ids, yt8m.ids[:n])

    classes = np.array([3, 0, 100])
    subset = load_youtube8m(files, classes=classes)
    np.testing.assert_array_equal(
        subset.target.toarray(), yt8m.target[:n][:, classes].toarray()
    )


def _record_offsets_of(path):
    return [offset for _, offset, _ in TFRecordReader(path).records()]


@needs_yt8m
@pytest.mark.parametrize("site", ["length", "length CRC", "payload", "data CRC"])
def test_real_flipped_bit_loses_only_its_record(tmp_path, site):
    # issue 11.5: a flipped bit in a header used to lose the rest of the file
    source = YT8M_DIR / "validate0000.tfrecord"
    features = ("mean_rgb", "mean_audio")
    reference = load_youtube8m(source, features=features)
    offsets = _record_offsets_of(source) + [source.stat().st_size]
    k = 3
    length = offsets[k + 1] - offsets[k] - 16
    where = {"length": 1, "length CRC": 10, "payload": 12 + length // 2}
    data = bytearray(source.read_bytes())
    data[offsets[k] + where.get(site, 12 + length + 2)] ^= 0x08
    path = tmp_path / source.name
    path.write_bytes(bytes(data))
    with pytest.warns(TFRecordWarning, match=f"record {k} at byte offset {offsets[k]}"):
        bunch = load_youtube8m(path, features=features, on_error="skip")
    keep = np.arange(len(reference.ids)) != k
    np.testing.assert_array_equal(bunch.data, reference.data[keep])
    np.testing.assert_array_equal(bunch.ids, reference.ids[keep])
    assert (bunch.target != reference.target[keep]).nnz == 0


@needs_yt8m
def test_real_resync_is_fast(tmp_path):
    # 5 real files joined (7 MB), a flipped length bit in record 1. Measured: 56 ms
    # to load against 50 ms intact; one resync (both passes do one) takes 0.2 ms.
    path = tmp_path / "joined.tfrecord"
    files = sorted(YT8M_DIR.glob("validate000[0-4].tfrecord"))
    path.write_bytes(b"".join(f.read_bytes() for f in files))
    start = time.perf_counter()
    reference = load_youtube8m(path)
    intact = time.perf_counter() - start
    offsets = _record_offsets_of(path)
    data = bytearray(path.read_bytes())
    data[offsets[1] + 1] ^= 0x04
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.warns(TFRecordWarning, match=f"skipped {offsets[2] - offsets[1]} b"):
        bunch = load_youtube8m(path, on_error="skip")
    assert time.perf_counter() - start < intact + 1.0
    keep = np.arange(len(offsets)) != 1
    np.testing.assert_array_equal(bunch.data, reference.data[keep])


def test_dump_youtube8m_round_trips(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.rand(7, 5).astype(np.float32)
    labels = [[0], [3, 3861], [], [1, 2], [5], [0, 5], [2]]
    assert dump_youtube8m(X, labels, tmp_path / "a.tfrecord") == 7
    back = load_youtube8m(tmp_path, classes=[0, 1, 2, 3, 5, 3861])
    np.testing.assert_array_equal(back.data, X)
    assert back.ids.tolist() == [f"vid{i}" for i in range(7)]
    expected = [{0}, {3, 3861}, set(), {1, 2}, {5}, {0, 5}, {2}]
    ids = np.array([0, 1, 2, 3, 5, 3861])
    got = [set(ids[row.indices].tolist()) for row in back.target.tocsr()]
    assert got == expected
    # an indicator matrix (dense or sparse) gives the same file
    Y = np.zeros((7, 3862), int)
    for i, row in enumerate(labels):
        Y[i, row] = 1
    for indicator in (Y, sp.csr_matrix(Y)):
        dump_youtube8m(X, indicator, tmp_path / "b.tfrecord")
        assert (tmp_path / "b.tfrecord").read_bytes() == (
            tmp_path / "a.tfrecord"
        ).read_bytes()
    dump_youtube8m(
        X[:2], [[1], [2]], tmp_path / "c.tfrecord", ids=["x", "y"], feature="mean_audio"
    )
    audio = load_youtube8m(tmp_path / "c.tfrecord", features=("mean_audio",))
    assert audio.ids.tolist() == ["x", "y"]


@pytest.mark.parametrize(
    "X, labels, kwargs, match",
    [
        (np.zeros((2, 3)), [[1]], {}, "one entry per video"),
        (np.zeros((2, 3)), [[1], [2]], {"ids": ["a"]}, "one entry per video"),
        (np.zeros((2, 3)), [[1], [3862]], {}, r"labels\[1\] = \[3862\]"),
        (np.zeros((2, 3)), [[1], [-1]], {}, r"labels\[1\]"),
        (np.zeros((2, 3)), [[1], [0.5]], {}, r"labels\[1\]"),
        (np.zeros(3), [[1]], {}, "X must be 2-d"),
    ],
)
def test_dump_youtube8m_rejects_bad_input(tmp_path, X, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dump_youtube8m(X, labels, tmp_path / "x.tfrecord", **kwargs)


def test_special_paths_say_what_they_are(tmp_path):
    # issue 11.4: a FIFO and a symlink loop were "no such file or directory"
    fifo, loop = tmp_path / "pipe.tfrecord", tmp_path / "loop.tfrecord"
    os.mkfifo(fifo)
    loop.symlink_to(loop)
    with pytest.raises(FileNotFoundError, match="pipe.tfrecord.*named pipe"):
        load_youtube8m(fifo)
    with pytest.raises(FileNotFoundError, match="loop.tfrecord.*symlink loop"):
        load_youtube8m(loop)
