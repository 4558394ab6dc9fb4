"""Damaged MP4 presentation times are reported (issue 11).

An MP4 takes each packet's presentation time from its ctts box; a damaged
one decodes without any FFmpeg error, but pictures come out of time order or
are stamped seconds after they are decoded, so frames sampled by time were
silently the wrong ones (fuzz: carphone_distorted.mp4 with 38 bytes of its
ctts swapped, cosine 0.94).
"""

import struct

import pytest

from skvidsage.video._decode import VideoDecodeError, read_frames
from tests._clips import (
    H264,
    VIDEOS,
    encode_clip,
    frame_indices,
    needs_real_clips,
    needs_x264,
    read_reported,
)

TIMES = "damaged presentation times: "
TABLE = (
    "; the file's table of them (its MP4 ctts box) is damaged, so frames "
    "sampled by time may be the wrong ones"
)


def _ctts_entries(data):
    """Return the byte offset of the ctts box's first entry and its count."""
    at = data.index(b"ctts")  # the box type, after its 4-byte size
    count = struct.unpack(">I", data[at + 8 : at + 12])[0]
    return at + 12, count


def _shift_offsets(path, out, entries, shift):
    """Copy ``path`` to ``out`` with ``shift`` added to some ctts entries."""
    data = bytearray(path.read_bytes())
    first, count = _ctts_entries(data)
    for i in entries:
        assert i < count
        at = first + 8 * i + 4  # (sample count, offset) pairs of uint32
        (offset,) = struct.unpack(">I", data[at : at + 4])
        data[at : at + 4] = struct.pack(">I", (offset + shift) % 2**32)
    out.write_bytes(bytes(data))
    return out


def _frame_ticks(path):
    """The duration of one frame in the MP4's media time base (its stts)."""
    data = path.read_bytes()
    at = data.index(b"stts")
    return struct.unpack(">I", data[at + 16 : at + 20])[0]


@pytest.fixture(scope="module")
def b_frame_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("times") / "bframes.mp4"
    return encode_clip(path, H264, gop=25, bf="2")


@needs_x264
@pytest.mark.parametrize("sampling", [{"n_frames": 3}, {"sample_rate": 4}, {}])
@pytest.mark.parametrize("seek", ["auto", False])
def test_intact_b_frames_come_out_in_time_order(b_frame_clip, sampling, seek):
    video, message = read_reported(b_frame_clip, seek=seek, **sampling)
    assert message == ""
    assert (frame_indices(video.frames)[1:] > frame_indices(video.frames)[:-1]).all()


@needs_x264
def test_pictures_out_of_time_order_are_reported(b_frame_clip, tmp_path):
    # three frames stamped 3 intervals late: each now comes out after the
    # picture shown next, whose time is earlier
    ticks = _frame_ticks(b_frame_clip)
    path = _shift_offsets(b_frame_clip, tmp_path / "late.mp4", [20, 21, 22], 3 * ticks)
    video, message = read_reported(path)
    assert message.startswith(f"{path}: damaged stream (125 frames kept): {TIMES}")
    assert "pictures came out of the decoder out of time order (the first, at" in (
        message
    )
    assert message.endswith(TABLE)
    with pytest.raises(VideoDecodeError, match="damaged stream: damaged presentation"):
        read_frames(path, strict=True)


@needs_x264
def test_pictures_shown_long_after_decoding_are_reported(b_frame_clip, tmp_path):
    # 40 intervals added to the offsets of packets 60-69 (decoding order): a
    # decoder never holds a picture back that long; their times now lie past
    # the target 3.33 s, which got a later frame
    ticks = _frame_ticks(b_frame_clip)
    path = _shift_offsets(
        b_frame_clip, tmp_path / "delayed.mp4", range(60, 70), 40 * ticks
    )
    video, message = read_reported(path, n_frames=3)
    assert f"{TIMES}" in message
    assert "would be shown long after they are decoded (the first is shown at" in (
        message
    )
    assert "a decoder holds a picture back for at most 16 frames)" in message
    assert TABLE in message
    assert "3.33 s got the frame at 4.52 s" in message


@needs_x264
def test_one_packet_shown_long_after_decoding_is_named_in_the_singular(
    b_frame_clip, tmp_path
):
    ticks = _frame_ticks(b_frame_clip)
    path = _shift_offsets(b_frame_clip, tmp_path / "one.mp4", [60], 40 * ticks)
    _, message = read_reported(path)
    assert "1 packet would be shown long after it is decoded (the first" in message


@needs_x264
def test_a_negative_offset_is_named_by_its_delay(b_frame_clip, tmp_path):
    # an offset 1000 intervals below zero (a damaged signed ctts entry):
    # FFmpeg moves every decoding time back by it, below 0 s, so the message
    # gives the delay, not a decoding time of -40 s
    ticks = _frame_ticks(b_frame_clip)
    path = _shift_offsets(b_frame_clip, tmp_path / "neg.mp4", [60], -1000 * ticks)
    _, message = read_reported(path, n_frames=3)
    assert (
        "packets would be shown long after they are decoded (the first is shown "
        "at 0.00 s, 40.04 s after its decoding time;"
    ) in message
    assert TABLE in message


@needs_real_clips
@pytest.mark.parametrize("sampling", [{"n_frames": 3}, {}])
def test_real_mp4_clips_have_ordered_times(sampling):
    for path in sorted(VIDEOS.glob("*.mp4")):
        _, message = read_reported(path, **sampling)
        assert message == "", path


@needs_real_clips
def test_the_fuzz_ctts_swap_is_reported(tmp_path):
    # the fuzz row: bytes 5632-5669 and 5774-5811 of carphone_distorted.mp4
    # (inside its ctts box) swapped; cosine 0.939 to the intact row, no warning
    data = bytearray((VIDEOS / "carphone_distorted.mp4").read_bytes())
    a, b, n = 5632, 5774, 38
    data[a : a + n], data[b : b + n] = data[b : b + n], data[a : a + n]
    path = tmp_path / "swapped.mp4"
    path.write_bytes(bytes(data))
    video, message = read_reported(path, n_frames=3)
    assert len(video.frames) == 3
    assert message.startswith(f"{path}: damaged stream (3 frames kept): {TIMES}")
    assert "(the first is shown at 3.02 s, 2.18 s after its decoding time;" in message
