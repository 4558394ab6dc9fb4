"""A cut MPEG-TS file is reported as truncated (issue 11), though TS states no length.

Before, a cut transport stream looked like a shorter clip: FFmpeg takes its
duration from the last time stamps left, so the sampled frames moved into
what remained and nothing was reported (26 of 60 cut copies in a fuzz run).
"""


import av
import pytest
from numpy.testing import assert_array_equal

from skvidsage.video._container import _cut_text
from skvidsage.video._decode import VideoDecodeError, read_frames
from tests._clips import (
    VIDEOS,
    damaged_copy,
    encode_clip,
    needs_real_clips,
    read_reported,
)

LAYOUTS = [
    ("clip.ts", {}, 188, "MPEG-TS"),
    ("clip.m2ts", {"mpegts_m2ts_mode": "1"}, 192, "M2TS"),
]



def _ts_clip(path, options):
    # MPEG-2 video, what broadcast TS carries; FFmpeg's muxer gives its PES
    # packets no length, so only the packet size tells a cut
    return encode_clip(
        path, "mpeg2video", n=125, gop=12, size=(96, 128), options=options
    )


def _remux(source, out):
    """Copy the streams of ``source`` into an MPEG-TS file ``out`` (no re-encoding)."""
    with av.open(str(source)) as src, av.open(str(out), "w", format="mpegts") as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    return out


@pytest.mark.parametrize("name, options, stride, kind", LAYOUTS, ids=lambda v: str(v))
def test_ts_cut_inside_a_packet_is_reported(tmp_path, name, options, stride, kind):
    clip = _ts_clip(tmp_path / name, options)
    size = clip.stat().st_size
    assert size % stride == 0
    cut = size // 2 + 100  # inside a packet
    path = damaged_copy(clip, tmp_path / f"cut-{name}", cut=cut)
    video, message = read_reported(path, n_frames=3)
    assert message.startswith(f"{path}: damaged stream (3 frames kept): ")
    assert (
        f"the file looks truncated: it ends inside a {stride}-byte {kind} packet "
        f"({cut % stride} of its {stride} bytes are there)"
    ) in message
    with pytest.raises(VideoDecodeError, match=r"damaged stream: the file looks trunc"):
        read_frames(path, n_frames=3, strict=True)


@pytest.mark.parametrize("name, options, stride, kind", LAYOUTS, ids=lambda v: str(v))
def test_intact_ts_reports_nothing(tmp_path, name, options, stride, kind):
    clip = _ts_clip(tmp_path / name, options)
    assert _cut_text(clip, clip.stat().st_size) == ""
    for sampling in ({"n_frames": 3}, {"sample_rate": 4}, {}):
        video, message = read_reported(clip, strict=True, **sampling)
        assert message == "" and video.issues == ()


def test_a_gif_is_no_transport_stream(tmp_path):
    # "GIF89a" starts with 0x47, the TS sync byte: one such byte is no evidence
    path = tmp_path / "a.gif"
    path.write_bytes(b"GIF89a" + bytes(400))
    assert _cut_text(path, 406) == ""


def _audio_pes_cut(data):
    """A packet boundary inside an AAC PES packet (its header gives its length)."""
    for at in range(len(data) // 2 - len(data) // 2 % 188, len(data), 188):
        packet = data[at : at + 188]
        has_field = packet[3] & 0x20
        payload = packet[5 + packet[4] :] if has_field else packet[4:]
        if packet[1] & 0x40 and payload[:4] == b"\x00\x00\x01\xc0":
            stated = int.from_bytes(payload[4:6], "big")
            if 6 + stated > len(payload):  # it goes on in a later packet
                return at + 188, 6 + stated, len(payload)
    raise AssertionError("no AAC PES packet spans two TS packets")


@needs_real_clips
def test_real_clip_as_ts_cut_is_reported(tmp_path):
    # bigbuckbunny.mp4 (H.264 and AAC) copied into MPEG-TS as is: intact, the
    # same frames as the MP4 and no issue; cut, it used to give 3 frames of a
    # shorter clip without a word
    ts = _remux(VIDEOS / "bigbuckbunny.mp4", tmp_path / "bbb.ts")
    intact, message = read_reported(ts, n_frames=3)
    assert message == "" and intact.issues == ()
    mp4 = read_frames(VIDEOS / "bigbuckbunny.mp4", n_frames=3)
    assert_array_equal(intact.frames, mp4.frames)
    data = ts.read_bytes()
    cut = len(data) * 2 // 3 + 57
    path = damaged_copy(ts, tmp_path / "cut.ts", cut=cut)
    video, message = read_reported(path, n_frames=3)
    assert f"{path}: damaged stream" in message
    assert f"it ends inside a 188-byte MPEG-TS packet ({cut % 188} of its" in message
    assert video.duration < intact.duration  # sampled over what is left
    # cut on a packet boundary: the audio PES packet there is short of the
    # bytes its header gives
    cut, need, got = _audio_pes_cut(data)
    path = damaged_copy(ts, tmp_path / "cut-pes.ts", cut=cut)
    _, message = read_reported(path, n_frames=3)
    assert (
        "the file looks truncated: its last PES packet of stream 0x101 should "
        f"hold {need} bytes by its header but the file ends after {got}"
    ) in message


def _video_packets(data, pid=0x100):
    """Offsets of the TS packets of ``pid`` and whether each starts a PES packet."""
    return [
        (at, bool(data[at + 1] & 0x40))
        for at in range(0, len(data), 188)
        if (data[at + 1] & 0x1F) << 8 | data[at + 2] == pid
    ]


@needs_real_clips
def test_real_clip_as_ts_cut_inside_a_picture_is_reported(tmp_path):
    # the full fuzz run's miss: bigbuckbunny.ts cut at 318472, a packet
    # boundary inside a picture whose PES packet states no length; clean, cosine
    # 0.902 to the intact row. Decoded alone, the picture's data fails.
    ts = _remux(VIDEOS / "bigbuckbunny.mp4", tmp_path / "bbb.ts")
    data = ts.read_bytes()
    path = damaged_copy(ts, tmp_path / "cut.ts", cut=318472)
    video, message = read_reported(path, n_frames=3)
    assert (
        f"{path}: damaged stream (3 frames kept): the file looks truncated: it ends "
        "inside its last picture (stream 0x100: 898 bytes of it are there, which "
        "do not decode)"
    ) in message
    with pytest.raises(VideoDecodeError, match="it ends inside its last picture"):
        read_frames(path, n_frames=3, strict=True)
    # cut where a picture ends (the next packet starts one): whole pictures,
    # nothing to say about them
    packets = _video_packets(data)
    ends = [
        a + 188
        for (a, _), (_, start) in zip(packets, packets[1:], strict=False)
        if start
    ]
    for cut in ends[-40::10]:
        path = damaged_copy(ts, tmp_path / "between.ts", cut=cut)
        _, message = read_reported(path, n_frames=3)
        assert "last picture" not in message, cut


def test_ts_packets_the_demuxer_marks_damaged_are_reported(tmp_path):
    # one video packet zeroed: its PES packet misses data, which the TS
    # continuity counters show and FFmpeg marks on the packet
    clip = encode_clip(tmp_path / "clip.ts", "mpeg2video", n=125, gop=12)
    data = bytearray(clip.read_bytes())
    video = [at for at, _ in _video_packets(bytes(data))]
    at = video[len(video) // 3]
    data[at : at + 188] = bytes(188)
    path = tmp_path / "zeroed.ts"
    path.write_bytes(bytes(data))
    _, message = read_reported(path, n_frames=3)
    assert "1 packet that the demuxer marks as damaged (parts of the data " in message


@needs_real_clips
def test_real_clip_as_ts_zeroed_is_reported(tmp_path):
    # the full fuzz run's case: bigbuckbunny.ts zeroed at 309542-343480 lost
    # 3 pictures without a decoder error: clean, cosine below 0.95
    ts = _remux(VIDEOS / "bigbuckbunny.mp4", tmp_path / "bbb.ts")
    path = damaged_copy(ts, tmp_path / "zeroed.ts", zero=[(309542, 309542 + 33938)])
    _, message = read_reported(path, n_frames=3)
    assert "1 packet that the demuxer marks as damaged (parts of the data " in message
    assert "missing), from 1.04 s on" in message
