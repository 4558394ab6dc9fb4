"""H.264 intra pictures that end before their data does are reported (issue 11).

Damaged CABAC data can send the decoder to a picture's last macroblock before
its slice data ends; FFmpeg says nothing, and the picture is wrong (fuzz:
bikes.mp4 with one bit flipped at byte 266786 decoded without a message,
cosine 0.90). The check cuts each intra slice's last bytes in a second decode
of the picture alone: a picture that comes out the same never read them.
"""

import random

import av
import pytest

from skvidsage.video._h264 import (
    _UNREAD_CUT,
    IntraSliceCheck,
    _slice_header,
    nal_units,
)
from tests._clips import (
    H264,
    VIDEOS,
    encode_clip,
    needs_real_clips,
    needs_x264,
    read_reported,
    remux,
)

UNREAD = "damaged picture data that FFmpeg took for valid: "


def _packets(path):
    """The stream's codec context, NAL length size and (packet, keyframe) pairs."""
    container = av.open(str(path))
    stream = container.streams.video[0]
    packets = [(bytes(p), p.is_keyframe) for p in container.demux(stream) if p.size]
    codec = stream.codec_context
    return container, codec, (codec.extradata[4] & 3) + 1, packets


def _join(units, size):
    return b"".join(len(u).to_bytes(size, "big") + u for u in units)


def _with_tail(data, size, tail, slice_index=0):
    """``data`` with ``tail`` added to the end of its ``slice_index``-th slice."""
    units = nal_units(data, size)
    slices = [i for i, u in enumerate(units) if u[0] & 31 in (1, 5)]
    units[slices[slice_index]] += tail
    return _join(units, size)


def _junk(n, seed=0):
    rng = random.Random(seed)
    return bytes(rng.randrange(1, 256) for _ in range(n))  # no zero bytes


@pytest.fixture(scope="module", params=["1", "4"], ids=["1 slice", "4 slices"])
def clip(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("slices") / f"slices{request.param}.mp4"
    return encode_clip(path, H264, gop=25, size=(96, 128), slices=request.param)


@needs_x264
def test_slice_types_are_read_from_the_slice_header(clip):
    container, _, size, packets = _packets(clip)
    seen = set()
    with container:
        for data, keyframe in packets:
            units = nal_units(data, size)
            types = {_slice_header(u)[0] for u in units if u[0] & 31 in (1, 5)}
            assert types == {2} if keyframe else types in ({0}, {1}), types
            seen |= types
    assert seen == {0, 1, 2}  # P, B and I


@needs_x264
def test_intact_intra_pictures_read_their_data_to_the_end(clip):
    container, codec, size, packets = _packets(clip)
    check = IntraSliceCheck(codec)
    assert (check.length_size, check.cabac) == (size, {0: True})
    with container:
        keyframes = [data for data, keyframe in packets if keyframe]
        assert len(keyframes) >= 5  # every 25 frames, and at scene cuts
        assert not any(check.unread(d) for d in keyframes)
        # cabac_zero_words (escaped 0x0000 words) after the data are padding
        padded = _with_tail(keyframes[0], size, b"\x00\x00\x03" * 20)
        assert not check.unread(padded)
        # P pictures are not checked
        assert not any(check.unread(d) for d, k in packets if not k)


@needs_x264
def test_slice_data_left_unread_is_found_in_any_slice(clip):
    container, codec, size, packets = _packets(clip)
    check = IntraSliceCheck(codec)
    with container:
        data = packets[0][0]
        n_slices = sum(u[0] & 31 in (1, 5) for u in nal_units(data, size))
        for i in range(n_slices):
            longer = _with_tail(data, size, _junk(_UNREAD_CUT + 8, i), i)
            assert check.unread(longer), i
        # data that does not split into NAL units, or does not decode: no claim
        assert not check.unread(data[:-1])
        assert not check.unread(b"\x00\x00\x00\x02\x65\xff")


@needs_x264
@pytest.mark.parametrize("layout", ["mp4", "ts"])
def test_damaged_packets_never_raise(clip, tmp_path, layout):
    # random bytes, and intra packets with random bytes changed, cut or
    # without start codes: no claim or a claim, never an exception
    source = clip
    if layout == "ts":
        source = tmp_path / "intact.ts"
        _copy(clip, source, format="mpegts")
    rng = random.Random(0)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        check = IntraSliceCheck(stream.codec_context)
        data = next(bytes(p) for p in container.demux(stream) if p.is_keyframe)
        inputs = [b"", b"\x00" * 8, b"\x00\x00\x01", data[: len(data) // 2]]
        inputs += [rng.randbytes(rng.randrange(1, 300)) for _ in range(200)]
        for _ in range(200):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            inputs.append(bytes(damaged[: rng.randrange(1, len(damaged) + 1)]))
        for packet in inputs:
            assert check.unread(packet) in (True, False)


@needs_x264
def test_cavlc_slices_are_not_checked(tmp_path):
    # CAVLC's decoder may take a cut slice silently (a black picture cut by
    # up to 256 bytes decodes the same), and damage that stops it short is
    # CABAC's: the check keeps to CABAC parameter sets
    path = encode_clip(tmp_path / "cavlc.mp4", H264, gop=25, size=(96, 128), coder="0")
    container, codec, size, packets = _packets(path)
    check = IntraSliceCheck(codec)
    with container:
        assert check.cabac == {0: False}
        assert not check.unread(_with_tail(packets[0][0], size, _junk(100)))


def _copy(source, out, damaged=(), format=None):
    """Copy ``source``'s video packets to ``out``, with 100 bytes of junk after
    the first slice of the keyframes numbered in ``damaged`` (from 1); return
    the times of those keyframes."""
    times, keyframes = [], []
    with av.open(str(source)) as src:
        check = IntraSliceCheck(src.streams.video[0].codec_context)
        start = src.streams.video[0].start_time or 0  # TS times start at 1.4 s

    def edit(index, packet, data):
        keyframes.append(packet.is_keyframe)
        if packet.is_keyframe and sum(keyframes) in damaged:
            units = check._split(data)
            first = next(i for i, u in enumerate(units) if u[0] & 31 in (1, 5))
            units[first] += _junk(100)
            times.append(float((packet.pts - start) * packet.time_base))
            return check._join(units)
        return data

    remux(source, out, edit, format=format)
    return times


@needs_x264
@pytest.mark.parametrize("layout", ["mp4", "ts", "h264"])  # avcC, Annex-B, raw
@pytest.mark.parametrize(
    "damaged, words",
    [
        ((3,), "1 intra picture ({}) ends before its data does"),
        ((3, 4), "2 intra pictures ({}) end before their data does"),
    ],
)
def test_a_file_with_unread_slice_data_is_reported(
    clip, tmp_path, layout, damaged, words
):
    source = clip
    if layout != "mp4":  # Annex-B: in a transport stream, or raw
        source = tmp_path / "intact.ts"
        _copy(clip, source, format="mpegts")
    out = tmp_path / f"unread.{layout}"
    formats = {"mp4": None, "ts": "mpegts", "h264": "h264"}
    times = _copy(source, out, damaged, format=formats[layout])
    when = f"the first at {times[0]:.2f} s"
    if layout == "h264":  # raw H.264 packets carry no times
        source = tmp_path / "intact.h264"
        _copy(tmp_path / "intact.ts", source, format="h264")
        when = "the stream gives no times"
    _, intact = read_reported(source, sample_rate=2)
    assert intact == ""
    video, message = read_reported(out, sample_rate=2)
    it, them = ("it", "it") if len(damaged) == 1 else ("they", "them")
    assert (
        UNREAD + words.format(when) + f" (the last {_UNREAD_CUT} "
        "bytes of a slice are never read, which intact H.264 data never "
        f"leaves), so {it} and the pictures predicted from {them} may be wrong"
    ) in message
    assert len(video.frames) == 10  # every frame is kept, with the warning


@needs_real_clips
def test_the_fuzz_bit_flip_in_bikes_is_reported(tmp_path):
    data = bytearray((VIDEOS / "bikes.mp4").read_bytes())
    data[266786] ^= 1 << 5
    path = tmp_path / "bikes-flipped.mp4"
    path.write_bytes(bytes(data))
    _, message = read_reported(path, sample_rate=1)
    assert UNREAD + "1 intra picture (the first at 5.48 s) ends" in message


@needs_real_clips
@pytest.mark.parametrize(
    "name", ["bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"]
)
def test_intact_real_clips_leave_no_slice_data_unread(name):
    _, message = read_reported(VIDEOS / name)
    assert UNREAD not in message
