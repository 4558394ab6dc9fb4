"""Damage that FFmpeg conceals and logs only at INFO level is reported (issue 11).

FFmpeg's error concealment says "concealing N DC, N AC, N MV errors in P
frame" at INFO level, and it may say nothing else: a lost slice, or damaged
slice data that ends, as decoded, before its picture does. Five files that
came back silent from the full fuzz (docs/results.rst, check 8) logged
nothing more.
"""

import av
import pytest

from skvidsage.video._damage import _is_damage
from skvidsage.video._ffmpeg_log import _capture_ffmpeg_errors
from skvidsage.video._h264 import IntraSliceCheck
from tests._clips import (
    H264,
    VIDEOS,
    encode_clip,
    needs_real_clips,
    needs_x264,
    read_reported,
    remux,
)

GUESSED = "corrupt picture data: FFmpeg guessed the damaged parts of pictures"


def _drop_slice(source, out, packet_index, slice_index=1):
    """Copy ``source`` without one slice of packet ``packet_index``."""
    with av.open(str(source)) as src:
        check = IntraSliceCheck(src.streams.video[0].codec_context)

    def edit(index, packet, data):
        if index != packet_index:
            return data
        units = check._split(data)
        slices = [j for j, u in enumerate(units) if u[0] & 31 in (1, 5)]
        del units[slices[slice_index]]
        return check._join(units)

    return remux(source, out, edit)


@pytest.fixture(scope="module")
def four_slices(tmp_path_factory):
    path = tmp_path_factory.mktemp("concealed") / "four-slices.mp4"
    return encode_clip(path, H264, gop=25, size=(96, 128), slices="4")


def test_only_concealment_and_errors_count_as_damage():
    assert _is_damage(av.logging.ERROR, "error while decoding MB 3 7")
    assert _is_damage(av.logging.INFO, "concealing 8 DC, 8 AC, 8 MV errors in B frame")
    assert not _is_damage(av.logging.INFO, "Reinit context to 128x96")
    assert not _is_damage(av.logging.WARNING, "Discarding excessive bitstream")
    # below INFO, a "concealing" line is debug text, not the decoder's account
    assert not _is_damage(av.logging.DEBUG, "concealing 1 DC, 1 AC, 1 MV errors")


def test_messages_give_the_times_of_their_pictures():
    from skvidsage.video._damage import _summarize

    (one,) = _summarize([("h264: error A", 0.071), ("h264: error B", 0.074)])
    assert "(2 FFmpeg messages at 0.07 s, first: h264: error A)" in one
    # the demuxer's messages have no picture: no time is made up for them
    (cut,) = _summarize([("mov: partial file", None)])
    assert cut.endswith("(1 FFmpeg message, first: mov: partial file)")
    (mixed,) = _summarize([("mov: partial file", None), ("mov: end of file", 2.5)])
    assert "(2 FFmpeg messages at 2.50 s, first: mov: partial file)" in mixed


def test_the_log_level_is_raised_to_info_and_restored():
    before = av.logging.get_level()
    with _capture_ffmpeg_errors():
        assert av.logging.get_level() >= av.logging.INFO
    assert av.logging.get_level() == before


@needs_x264
def test_a_lost_slice_of_a_predicted_picture_is_reported(four_slices, tmp_path):
    # FFmpeg decodes the picture's other slices, conceals the lost one and
    # says so at INFO only: no error, no corrupt flag on a sampled frame
    out = _drop_slice(four_slices, tmp_path / "lost-slice.mp4", packet_index=3)
    _, intact = read_reported(four_slices, sample_rate=2)
    assert intact == ""
    video, message = read_reported(out, sample_rate=2)
    assert GUESSED in message
    with av.open(str(out)) as container:  # the picture whose slice was lost
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.dts is not None]
        lost = float(packets[3].pts * packets[3].time_base)
    # the issue says when, so that the user can find the damage
    assert f"(1 FFmpeg message at {lost:.2f} s, first: h264: concealing " in message
    assert "sampled frame" not in message  # the log is the only sign
    assert len(video.frames) == 10  # every frame is kept, with the warning


@needs_x264
def test_a_concealed_file_is_an_error_in_strict_mode(four_slices, tmp_path):
    from skvidsage.video import VideoDecodeError, read_frames

    out = _drop_slice(four_slices, tmp_path / "lost-slice.mp4", packet_index=3)
    with pytest.raises(VideoDecodeError, match="lost-slice.mp4.*concealing"):
        read_frames(out, sample_rate=2, strict=True)


@needs_real_clips
@pytest.mark.parametrize(
    "name, edits, when",
    [
        # fuzz case 205: bytes 150336-150337 overwritten (a P picture at 0.93 s)
        ("carphone_pristine.mp4", {150336: 0x66, 150337: 0xA3}, "at 0.93 s"),
        # fuzz case 365: the two of its bit flips before the last sampled
        # frame (a P picture at 0.07 s, a B picture at 1.17 s)
        ("carphone_pristine.mp4", {20262: 0x08, 196408: 0xDE}, "at 0.07-1.17 s"),
    ],
    ids=["overwrite", "bit flips"],
)
def test_silent_fuzz_damage_in_carphone_is_reported(tmp_path, name, edits, when):
    data = bytearray((VIDEOS / name).read_bytes())
    for position, value in edits.items():
        data[position] = value
    path = tmp_path / f"damaged-{name}"
    path.write_bytes(bytes(data))
    _, message = read_reported(path, n_frames=3)
    assert GUESSED in message and "concealing" in message
    assert f"FFmpeg message{'s' if '-' in when else ''} {when}, first:" in message
