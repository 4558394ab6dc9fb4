"""An MP4 whose index (moov) is damaged says so (issue 11).

Of the full fuzz run's errors, 26 said only "no video stream" or "no
decodable frame": damaged boxes of the index that describe no stream,
streams without packets, or an edit list that hides every packet, while
the media data is all there.
"""

import av
import numpy as np
import pytest

from skvidsage.video import VideoDecodeError, read_frames
from skvidsage.video._container import _damaged_index, _mp4_boxes
from tests._clips import H264, VIDEOS, encode_clip, needs_real_clips, needs_x264

INDEX = "its index (the MP4 moov box) accounts for 0 of the "


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("mp4-index") / "clip.mp4"
    return encode_clip(path, "mpeg4", n=25, size=(96, 128))


def _edited(clip, out, box, offset, value):
    """Copy ``clip`` with ``value`` written ``offset`` bytes into its first ``box``."""
    data = bytearray(clip.read_bytes())
    at = data.find(box) + offset
    data[at : at + len(value)] = value
    out.write_bytes(bytes(data))
    return out


def _reason(path):
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path, n_frames=3)
    assert str(path) in str(info.value)
    return info.value.reason


def test_the_top_level_boxes_cover_the_file(clip):
    size = clip.stat().st_size
    with open(clip, "rb") as file:
        boxes = list(_mp4_boxes(file, size))
    assert {b"ftyp", b"moov", b"mdat"} <= {kind for kind, *_ in boxes}
    assert sum(n for _, _, n, _ in boxes) == size
    assert _damaged_index(clip) == ""  # intact: the index holds every byte


def test_an_index_without_sample_sizes_is_named(clip, tmp_path):
    # stsz: version and flags, one size for all samples, the sample count
    out = _edited(clip, tmp_path / "stsz.mp4", b"stsz", 8, bytes(8))
    reason = _reason(out)
    assert reason.startswith("no decodable frame: " + INDEX)
    assert "bytes of media data (mdat), so it looks damaged" in reason
    # not "corrupt picture data", as FFmpeg's "broken header" gave before
    assert "picture" not in reason


def test_an_index_without_its_track_is_named(clip, tmp_path):
    out = _edited(clip, tmp_path / "trak.mp4", b"trak", 0, b"xrak")
    assert _reason(out).startswith("no video stream: " + INDEX)


@needs_x264
def test_an_edit_list_that_hides_every_packet_is_named(tmp_path):
    clip = encode_clip(tmp_path / "b.mp4", H264, n=25, size=(96, 128), bf="2")
    # elst: version and flags, the entry count, then the first segment's duration
    out = _edited(clip, tmp_path / "elst.mp4", b"elst", 12, bytes(4))
    reason = _reason(out)
    assert reason.startswith("no decodable frame: its edit list")
    assert "hides every one of its packets" in reason


def test_an_audio_only_mp4_has_no_video_stream_and_no_damage(tmp_path):
    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        tone = np.sin(np.arange(44100) / 44100 * 2 * np.pi * 440) * 0.3
        tone = tone.astype(np.float32)[None]
        for start in range(0, tone.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[:, start : start + 1024], format="flt", layout="mono"
            )
            frame.sample_rate = 44100
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert _reason(path) == "no video stream"


def test_a_fragmented_mp4_is_left_to_ffmpeg(tmp_path):
    # its index is built as the fragments are read: no count to compare
    path = encode_clip(
        tmp_path / "frag.mp4",
        "mpeg4",
        n=25,
        size=(96, 128),
        options={"movflags": "frag_keyframe+empty_moov"},
    )
    assert _damaged_index(path) == ""
    assert len(read_frames(path, n_frames=3).frames) == 3


def test_a_demuxer_message_is_damaged_container_data(clip, tmp_path):
    # mdhd: version and flags, creation and modification times, the time scale
    out = _edited(clip, tmp_path / "mdhd.mp4", b"mdhd", 16, bytes(4))
    with pytest.warns(UserWarning, match="mdhd.mp4") as caught:
        read_frames(out, n_frames=3)
    message = str(caught[0].message)
    assert "damaged container data" in message and "time scale 0" in message


@needs_real_clips
@pytest.mark.parametrize(
    "name", ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
)
def test_the_real_clips_indexes_are_whole(name):
    assert _damaged_index(VIDEOS / name) == ""
