"""AVI packets whose times disagree with the file's index are reported (issue 11).

A demuxer that loses its place in damaged AVI data numbers the chunks after
it anew: their frames come out at wrong times with no FFmpeg error, so a
sampled frame was silently another one (three clean fuzz rows below cosine
0.95 before: tree.avi zeroed, Megamind.avi overwritten).
"""


import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvidsage.video._decode import VideoDecodeError, read_frames
from tests._clips import (
    VIDEOS,
    damaged_copy,
    encode_clip,
    frame_indices,
    needs_real_clips,
    packet_spans,
    read_reported,
)

MISPLACED = "came out at other times than the file's index gives"



def test_a_lost_avi_chunk_header_is_reported(tmp_path):
    # frame 40's chunk header zeroed: the demuxer skips that chunk and gives
    # frame 39's picture the time 1.68 s, so the target 1.67 s (frame 42)
    # got frame 39 without a word
    clip = encode_clip(tmp_path / "clip.avi", "mpeg4", gop=12)
    intact = read_frames(clip, n_frames=3)
    assert_array_equal(frame_indices(intact.frames), [0, 42, 84])
    pos = {i: p for i, p, _ in packet_spans(clip)}[40]
    path = damaged_copy(clip, tmp_path / "header.avi", zero=[(pos - 8, pos + 16)])
    video, message = read_reported(path, n_frames=3)
    assert_array_equal(frame_indices(video.frames), [0, 39, 84])
    assert message.startswith(f"{path}: damaged stream (3 frames kept): 3 packets ")
    assert (
        f"{MISPLACED} (the demuxer lost its place in damaged data; the first, "
        "which the index puts at 1.64 s, came out at 1.60 s): sampled frames may "
        "be the wrong ones"
    ) in message
    with pytest.raises(VideoDecodeError, match="damaged stream: 3 packets came out"):
        read_frames(path, n_frames=3, strict=True)


@needs_real_clips
@pytest.mark.parametrize(
    "name, start, stop, fill, first",
    [
        # the fuzz rows: cosine 0.902 and 0.941 to the intact clips' rows
        ("tree.avi", 490232, 798180, "zero", "19.47 s, came out at 11.87 s"),
        ("Megamind.avi", 19092, 26620, "random", "0.04 s, came out at 0.00 s"),
    ],
)
def test_damaged_real_avi_is_reported(tmp_path, name, start, stop, fill, first):
    data = bytearray((VIDEOS / name).read_bytes())
    n = stop - start
    data[start:stop] = bytes(n) if fill == "zero" else np.random.default_rng(0).bytes(n)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    _, message = read_reported(path, n_frames=3)
    assert f"{MISPLACED} (the demuxer lost its place" in message
    assert f"the first, which the index puts at {first})" in message


@pytest.mark.parametrize("sampling", [{"n_frames": 3}, {"sample_rate": 4}, {}])
@pytest.mark.parametrize("seek", ["auto", False])
def test_intact_avi_packets_agree_with_the_index(tmp_path, sampling, seek):
    # B-frames too: FFmpeg's MPEG-4 in AVI reorders times, not positions
    clip = encode_clip(tmp_path / "b.avi", "mpeg4", n=50, gop=12, bf="2")
    video, message = read_reported(clip, seek=seek, strict=True, **sampling)
    assert message == "" and video.issues == ()


def test_an_impossible_frame_rate_is_reported(tmp_path):
    # one flipped bit in the AVI stream header's rate field: 2**31 + 25 fps,
    # every frame at 0 s and the sampled ones silently others (the full fuzz
    # run: Megamind_bugy.avi, byte 135, cosine 0.42)
    clip = encode_clip(tmp_path / "clip.avi", "mpeg4", n=50, gop=12)
    data = bytearray(clip.read_bytes())
    rate = data.index(b"strh") + 8 + 24  # fccType, handler, flags, ..., scale
    assert int.from_bytes(data[rate : rate + 4], "little") == 25
    data[rate + 3] ^= 0x80
    path = tmp_path / "rate.avi"
    path.write_bytes(bytes(data))
    _, message = read_reported(path, n_frames=3)
    assert (
        f"{path}: damaged stream (3 frames kept): impossible frame rate: the "
        "header gives 2147483647 frames per second (damaged header data)"
    ) in message
    assert read_frames(clip, n_frames=3).issues == ()
