import pickle
import struct

import crc32c
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skvidsage.datasets._tfrecord import (
    ProtobufDecodeError,
    TFRecordError,
    TFRecordReader,
    TFRecordWarning,
    _encode_varint,
    _signed64,
    _varint,
    encode_example,
    encode_sequence_example,
    masked_crc32c,
    parse_example,
    parse_sequence_example,
    write_tfrecord,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _crc32c_bitwise(data):
    """Slow, table-free CRC32C (reflected polynomial 0x82F63B78), for reference."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked_reference(data):
    crc = _crc32c_bitwise(data)
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rotated + 0xA282EAD8) & 0xFFFFFFFF


def _write(path, payloads):
    write_tfrecord(path, payloads)
    return path


# ------------------------------------------------------------------ CRC and framing


def test_crc32c_check_value():
    # The standard CRC-32C check value (RFC 3720, B.4).
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert _crc32c_bitwise(b"123456789") == 0xE3069283
    # 0xe3069283 rotated right by 15 bits is 0x25074a0d; + 0xa282ead8 = 0xc78ab0e5.
    assert masked_crc32c(b"123456789") == 0xC78AB0E5
    # crc32c(b"") == 0, so its masked value is the mask delta itself.
    assert masked_crc32c(b"") == 0xA282EAD8


def test_masked_crc32c_matches_bitwise_reference():
    rng = np.random.RandomState(0)
    for n in (0, 1, 7, 8, 9, 100, 1031):
        data = rng.randint(0, 256, size=n).astype(np.uint8).tobytes()
        assert masked_crc32c(data) == _masked_reference(data)


def test_write_tfrecord_known_bytes(tmp_path):
    path = tmp_path / "known.tfrecord"
    assert write_tfrecord(path, [b"", b"abc"]) == 2
    # Derived with _masked_reference: masked CRCs of the 8-byte lengths 0 and 3
    # are 0x07980329 and 0x0e4999b0; of b"" 0xa282ead8, of b"abc" 0x21f1576e.
    expected = bytes.fromhex(
        "0000000000000000 29039807 d8ea82a2 0300000000000000 b099490e 616263 6e57f121"
    )
    assert path.read_bytes() == expected
    for length, crc in [(0, 0x07980329), (3, 0x0E4999B0)]:
        assert _masked_reference(struct.pack("<Q", length)) == crc
    assert _masked_reference(b"abc") == 0x21F1576E


def test_reader_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    sizes = [0, 1, 100, 5000, (1 << 20) + 3, 17]  # one record larger than the buffer
    payloads = [rng.randint(0, 256, size=n).astype(np.uint8).tobytes() for n in sizes]
    path = _write(tmp_path / "a.tfrecord", payloads)
    reader = TFRecordReader(path)
    assert reader.count() == len(payloads)
    assert reader.count(limit=2) == 2
    records = list(reader.records())
    assert [data for _, _, data in records] == payloads
    assert [index for index, _, _ in records] == list(range(len(payloads)))
    assert [offset for _, offset, _ in records] == list(
        np.cumsum([0] + [16 + n for n in sizes[:-1]])
    )
    assert len(list(reader.records(limit=3))) == 3


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    reader = TFRecordReader(path)
    assert reader.count() == 0
    assert list(reader.records()) == []


def _flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "cut, expected",
    [
        (5, "expected 12 header bytes, file ends after 5"),
        (12 + 50, "expected 100 bytes of data and a 4-byte CRC, file ends after 50"),
        (
            12 + 100 + 2,
            "expected 100 bytes of data and a 4-byte CRC, file ends after 102",
        ),
    ],
)
def test_truncated_file(tmp_path, cut, expected):
    path = tmp_path / "t.tfrecord"
    _write(path, [b"a" * 100] * 3)
    offset = 2 * 116  # the third record is cut
    path.write_bytes(path.read_bytes()[: offset + cut])
    reader = TFRecordReader(path)
    for call in (reader.count, lambda: list(reader.records())):
        with pytest.raises(
            TFRecordError, match=f"byte offset {offset}: truncated"
        ) as e:
            call()
        assert str(path) in str(e.value) and expected in str(e.value)
        assert (e.value.path, e.value.offset, e.value.index) == (str(path), offset, 2)

    reader = TFRecordReader(path, on_error="skip")
    assert reader.count() == 2
    with pytest.warns(
        TFRecordWarning, match=r"skipped 1 corrupt record: record 2"
    ):
        assert [d for _, _, d in reader.records()] == [b"a" * 100] * 2
    assert [e.offset for e in reader.skipped] == [offset]


def test_flipped_data_byte(tmp_path):
    path = _write(tmp_path / "f.tfrecord", [b"x" * 10, b"y" * 10, b"z" * 10])
    _flip(path, 26 + 12 + 4)  # a data byte of record 1
    with pytest.raises(TFRecordError, match="record 1 at byte offset 26: data CRC"):
        list(TFRecordReader(path).records())
    assert TFRecordReader(path).count() == 3  # headers are fine

    reader = TFRecordReader(path, on_error="skip")
    with pytest.warns(
        TFRecordWarning, match=r"skipped 1 corrupt record: record 1"
    ):
        assert [d for _, _, d in reader.records()] == [b"x" * 10, b"z" * 10]
    unchecked = [d for _, _, d in TFRecordReader(path, verify_crc=False).records()]
    assert unchecked[1] == b"yyyyiyyyyy"


def test_flipped_data_crc(tmp_path):
    path = _write(tmp_path / "f.tfrecord", [b"x" * 10, b"y" * 10])
    _flip(path, 26 + 12 + 10 + 1)  # the data CRC of record 1
    with pytest.raises(TFRecordError, match="data CRC mismatch"):
        list(TFRecordReader(path).records())


@pytest.mark.parametrize("position", [0, 3, 8, 11])  # length bytes, then its CRC
def test_flipped_length_field(tmp_path, position):
    path = _write(tmp_path / "l.tfrecord", [b"x" * 10, b"y" * 10, b"z" * 10])
    _flip(path, 26 + position)
    with pytest.raises(TFRecordError, match="offset 26: length CRC mismatch"):
        TFRecordReader(path).count()
    with pytest.raises(TFRecordError, match="offset 26: length CRC mismatch"):
        list(TFRecordReader(path).records())
    # issue 11.5: the reader resynchronises at the next intact record (offset 52)
    reader = TFRecordReader(path, on_error="skip")
    assert reader.count() == 2
    match = (
        "record 1 at byte offset 26: length CRC mismatch; skipped 26 bytes, "
        "resuming at the next intact record, at byte offset 52"
    )
    with pytest.warns(TFRecordWarning, match=match):
        records = list(reader.records())
    assert [(i, o, d) for i, o, d in records] == [(0, 0, b"x" * 10), (2, 52, b"z" * 10)]


def _damage(data, site, offset, length):
    """Flip one bit of the record at ``offset`` (payload ``length`` bytes)."""
    position = offset + {"length": 2, "length CRC": 9, "payload": 12 + length // 2}.get(
        site,
        12 + length + 1,  # "data CRC"
    )
    data[position] ^= 0x20


@pytest.mark.parametrize("site", ["length", "length CRC", "payload", "data CRC"])
@pytest.mark.parametrize("damaged", [0, 1, 3, 5, 6])  # 3: > the 16 KiB chunk
def test_skip_keeps_every_intact_record(tmp_path, site, damaged):
    # 7 records of varied sizes (one empty, one longer than the first resync chunk)
    rng = np.random.RandomState(0)
    sizes = [100, 0, 5000, 20000, 37, 3000, 64]
    payloads = [rng.bytes(n) for n in sizes]
    path = _write(tmp_path / "d.tfrecord", payloads)
    offsets = np.cumsum([0] + [16 + n for n in sizes[:-1]]).tolist()
    data = bytearray(path.read_bytes())
    _damage(data, site, offsets[damaged], sizes[damaged])
    path.write_bytes(bytes(data))
    reader = TFRecordReader(path, on_error="skip")
    with pytest.warns(TFRecordWarning, match=f"record {damaged} at byte offset"):
        records = list(reader.records())
    intact = [i for i in range(7) if i != damaged]
    assert [d for _, _, d in records] == [payloads[i] for i in intact]
    assert [(i, o) for i, o, _ in records] == [(i, offsets[i]) for i in intact]
    assert [e.offset for e in reader.skipped] == [offsets[damaged]]
    assert reader.count() >= len(records)  # pass 1 of load_youtube8m allocates this


def test_resync_reports_the_skipped_bytes(tmp_path):
    payloads = [b"a" * 50, b"b" * 60, b"c" * 70]
    path = _write(tmp_path / "g.tfrecord", payloads)
    data = path.read_bytes()
    # 1000 bytes of garbage inserted after record 0, and 200 zeros after record 1
    garbage = np.random.RandomState(0).bytes(1000)
    path.write_bytes(data[:66] + garbage + data[66:142] + bytes(200) + data[142:])
    reader = TFRecordReader(path, on_error="skip")
    with pytest.warns(TFRecordWarning, match="skipped 2 corrupt record") as w:
        assert [d for _, _, d in reader.records()] == payloads
    message = str(w[0].message)
    assert str(path) in message
    assert (
        "record 1 at byte offset 66: length CRC mismatch; skipped 1000 bytes" in message
    )
    assert (
        "record 3 at byte offset 1142: length CRC mismatch; skipped 200 bytes"
        in message
    )
    assert reader.count() == 3


def test_resync_without_a_later_record(tmp_path):
    path = _write(tmp_path / "e.tfrecord", [b"x" * 10, b"y" * 10])
    _flip(path, 26 + 2)  # the length of the last record
    reader = TFRecordReader(path, on_error="skip")
    match = (
        "record 1 at byte offset 26: length CRC mismatch; skipped 26 bytes: nothing "
        "intact follows"
    )
    with pytest.warns(TFRecordWarning, match=match):
        assert [d for _, _, d in reader.records()] == [b"x" * 10]
    assert reader.count() == 1


def test_resync_is_linear_in_the_damaged_bytes(tmp_path):
    # 8 MB of damage (random bytes, then zeros) between two intact records: one
    # pass over it. Measured: 0.15 s for 7 MB; a quadratic scan would take hours.
    import time

    rng = np.random.RandomState(0)
    path = tmp_path / "big.tfrecord"
    _write(path, [b"first", b"last"])
    data = path.read_bytes()
    path.write_bytes(data[:21] + rng.bytes(4 << 20) + bytes(4 << 20) + data[21:])
    reader = TFRecordReader(path, on_error="skip")
    start = time.perf_counter()
    with pytest.warns(TFRecordWarning, match=f"skipped {8 << 20} bytes"):
        assert [d for _, _, d in reader.records()] == [b"first", b"last"]
    assert time.perf_counter() - start < 5


def test_flipped_length_without_crc_checks(tmp_path):
    # verify_crc=False cannot see a damaged length: it reads record 1 with the wrong
    # length and yields it altered; the header it then meets (in record 2's data)
    # runs past the end, and resynchronisation, with the CRCs, goes back to record 2
    payloads = [b"x" * 100, b"y" * 100, b"z" * 100, b"w" * 100]
    path = _write(tmp_path / "n.tfrecord", payloads)
    original = path.read_bytes()
    _flip(path, 116)  # record 1's length 100 -> 116: it swallows 16 bytes after it
    reader = TFRecordReader(path, verify_crc=False, on_error="skip")
    match = (
        "record 2 at byte offset 248: truncated.*; resuming at byte offset 232, at "
        r"an intact record that the record before \(damaged too\) ran over"
    )
    with pytest.warns(TFRecordWarning, match=match):
        records = list(reader.records())
    assert [(i, o) for i, o, _ in records] == [(0, 0), (1, 116), (3, 232), (4, 348)]
    assert [d for _, _, d in records[::2]] == payloads[::2]
    assert records[3][2] == payloads[3]
    assert records[1][2] == original[128:244]  # altered, and nothing says so


def test_resync_goes_back_into_a_record_cut_short(tmp_path):
    # found by fuzzing (a swapped chunk): record 1 is cut short, so its data CRC
    # fails and its length runs over records 2 and 3 into 4; the resync starts after
    # record 1's header, not after the bad one its length leads to
    rng = np.random.RandomState(0)
    payloads = [rng.bytes(n) for n in (50, 300, 40, 60, 500)]
    path = _write(tmp_path / "c.tfrecord", payloads)
    data = path.read_bytes()
    path.write_bytes(data[: 66 + 12 + 100] + data[66 + 316 :])  # 100 bytes of 300
    reader = TFRecordReader(path, on_error="skip")
    match = (
        "record 1 at byte offset 66: data CRC mismatch; record 2 at byte offset 382: "
        "length CRC mismatch; resuming at byte offset 178, at an intact record"
    )
    with pytest.warns(TFRecordWarning, match=match):
        kept = [d for _, _, d in reader.records()]
    assert kept == [payloads[0]] + payloads[2:]
    assert reader.count() >= len(kept)  # pass 1 of load_youtube8m allocates this


def test_reader_report_and_errors(tmp_path):
    path = _write(tmp_path / "r.tfrecord", [b"a", b"b"])
    reader = TFRecordReader(path, on_error="skip")
    with pytest.warns(TFRecordWarning, match="record 0 at byte offset 0: bad payload"):
        for index, offset, _ in reader.records():
            if index == 0:
                reader.report(index, offset, "bad payload")
    with pytest.raises(ValueError, match="on_error must be"):
        TFRecordReader(path, on_error="ignore")
    error = TFRecordError("f.tfrecord", 12, 3, "data CRC mismatch")
    assert isinstance(error, ValueError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert str(error) == "f.tfrecord: record 3 at byte offset 12: data CRC mismatch"


# ------------------------------------------------------------------ protobuf


@pytest.mark.parametrize("packed", [True, False])
def test_example_round_trip(packed):
    rng = np.random.RandomState(0)
    floats = rng.randn(37).astype(np.float32)
    ints = np.array([0, 1, -1, 127, 128, -(2**31), INT64_MIN, INT64_MAX])
    features = {
        "id": b"abc",
        "names": ["x", "\u00e9t\u00e9", b"\x00\xff"],
        "floats": floats,
        "ints": ints,
        "flags": np.array([True, False]),
        "empty": [],
    }
    decoded = parse_example(encode_example(features, packed=packed))
    assert decoded["id"] == [b"abc"]
    assert decoded["names"] == [b"x", "\u00e9t\u00e9".encode(), b"\x00\xff"]
    np.testing.assert_array_equal(decoded["floats"], floats)
    assert decoded["floats"].dtype == np.float32 and decoded["floats"].flags.writeable
    np.testing.assert_array_equal(decoded["ints"], ints)
    assert decoded["ints"].dtype == np.int64
    np.testing.assert_array_equal(decoded["flags"], [1, 0])
    assert decoded["empty"].shape == (0,)


def test_packed_and_unpacked_encodings():
    packed = encode_example({"x": [1.5, -2.0], "n": [3, -1]})
    unpacked = encode_example({"x": [1.5, -2.0], "n": [3, -1]}, packed=False)
    assert packed != unpacked
    # packed: FloatList = 0a 08 <8 bytes>; unpacked: (0d <4 bytes>) twice.
    assert bytes.fromhex("0a08 0000c03f 000000c0") in packed
    assert bytes.fromhex("0d 0000c03f 0d 000000c0") in unpacked
    for data in (packed, unpacked):
        decoded = parse_example(data)
        np.testing.assert_array_equal(decoded["x"], [1.5, -2.0])
        np.testing.assert_array_equal(decoded["n"], [3, -1])


def test_negative_int64_wire_format():
    # -1 is the 10-byte varint ff ff ff ff ff ff ff ff ff 01 (two's complement).
    data = encode_example({"n": [-1]})
    assert b"\x0a\x0a" + b"\xff" * 9 + b"\x01" in data
    assert parse_example(data)["n"].tolist() == [-1]
    assert _encode_varint(INT64_MIN) == b"\x80" * 9 + b"\x01"


def test_known_example_bytes():
    # Example{features{feature{key: "x" value{float_list{value: 1.5}}}}}, by hand.
    data = bytes.fromhex("0a0f 0a0d 0a0178 1208 1206 0a04 0000c03f")
    assert encode_example({"x": [1.5]}) == data
    assert parse_example(data)["x"].tolist() == [1.5]


def test_mixed_chunks_and_unknown_fields():
    # A FloatList with a packed chunk, an unpacked value and unknown fields of every
    # wire type, inside a Feature, a map entry, Features and Example with unknowns.
    unknown = (
        bytes.fromhex("1005")  # field 2, varint
        + bytes.fromhex("19" + "00" * 8)  # field 3, fixed64
        + bytes.fromhex("22 02 abcd")  # field 4, length-delimited
        + bytes.fromhex("2d" + "00" * 4)  # field 5, fixed32
        + bytes.fromhex("33 0801 34")  # field 6, group holding a varint
    )
    float_list = (
        bytes.fromhex("0a08 0000803f 00000040")  # packed [1, 2]
        + unknown
        + bytes.fromhex("0d 00004040")  # unpacked 3
    )
    feature = b"\x12" + bytes([len(float_list)]) + float_list + b"\x28\x01"
    entry = unknown + b"\x0a\x01x" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry + unknown
    example = unknown + b"\x0a" + bytes([len(features)]) + features + unknown
    assert parse_example(example)["x"].tolist() == [1.0, 2.0, 3.0]


def test_empty_feature_and_later_oneof_wins():
    # an empty Feature, and a Feature whose bytes_list is overridden by float_list
    assert parse_example(bytes.fromhex("0a05 0a03 0a0161"))["a"] == []
    feature = bytes.fromhex("0a03 0a0161 1206 0a04 0000803f")
    entry = b"\x0a\x01a\x12" + bytes([len(feature)]) + feature
    data = b"\x0a" + bytes([len(entry) + 2]) + b"\x0a" + bytes([len(entry)]) + entry
    assert parse_example(data)["a"].tolist() == [1.0]


@pytest.mark.parametrize(
    "data, match",
    [
        (bytes.fromhex("0a05 0a03"), "runs past"),
        (bytes.fromhex("0a"), "truncated varint"),
        (bytes.fromhex("08" + "ff" * 11), "over-long varint"),
        (bytes.fromhex("0f"), "invalid wire type 7"),
        (bytes.fromhex("00"), "field number 0"),
        (bytes.fromhex("0a07 0a05 0a0178 1200") + b"\x0d\x00", "runs past"),
        (bytes.fromhex("0a0e 0a0c 0a0178 1207 1205 0a03 000000"), "multiple of 4"),
        (bytes.fromhex("0a08 0a06 0a02ff00 1200"), "UTF-8"),
        (bytes.fromhex("33 0801 44"), "mismatched end-group"),
    ],
)
def test_malformed_protobuf(data, match):
    with pytest.raises(ProtobufDecodeError, match=match):
        parse_example(data)


def test_sequence_example_round_trip():
    rng = np.random.RandomState(0)
    frames = rng.randint(0, 256, size=(5, 8)).astype(np.uint8)
    data = encode_sequence_example(
        {"id": "v", "labels": [1, 2]},
        {"rgb": [f.tobytes() for f in frames], "score": [[0.5], [1.0, 2.0]]},
    )
    context, lists = parse_sequence_example(data)
    assert context["id"] == [b"v"] and context["labels"].tolist() == [1, 2]
    assert lists["rgb"] == [[f.tobytes()] for f in frames]
    assert [x.tolist() for x in lists["score"]] == [[0.5], [1.0, 2.0]]


def test_encode_rejects_bad_values():
    with pytest.raises(ValueError, match="1-D"):
        encode_example({"x": np.zeros((2, 2))})
    with pytest.raises(TypeError, match="cannot encode"):
        encode_example({"x": [object()]})


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_varint_int64_round_trip(value):
    encoded = _encode_varint(value)
    assert len(encoded) <= 10
    decoded, end = _varint(encoded, 0, len(encoded))
    assert end == len(encoded)
    assert _signed64(decoded) == value


@given(
    st.lists(st.integers(min_value=INT64_MIN, max_value=INT64_MAX), max_size=20),
    st.lists(st.floats(width=32, allow_nan=False), max_size=20),
    st.booleans(),
)
def test_example_property_round_trip(ints, floats, packed):
    features = {"i": np.array(ints, dtype=np.int64), "f": np.array(floats, "<f4")}
    decoded = parse_example(encode_example(features, packed=packed))
    assert decoded["i"].tolist() == ints
    np.testing.assert_array_equal(decoded["f"], np.array(floats, dtype=np.float32))
