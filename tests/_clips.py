"""Video clips the decoding tests encode themselves, and the real ones."""

import warnings
from fractions import Fraction

import av
import numpy as np
import pytest

from skvidsage.video._decode import VideoDecodeWarning, read_frames
from tests._data import VIDEOS

REAL_CLIPS = sorted(VIDEOS.glob("*")) if VIDEOS.is_dir() else []

FPS, N_FRAMES = 25, 125  # the generated clips: 5 s at 25 fps
H264 = "libx264" if "libx264" in av.codecs_available else "mpeg4"
needs_real_clips = pytest.mark.skipif(not REAL_CLIPS, reason="../shared absent")
needs_x264 = pytest.mark.skipif(H264 != "libx264", reason="needs libx264")
CLIPS = {  # name: (codec, keyframe interval)
    "mpeg4.avi": ("mpeg4", 12),
    "h264.mp4": (H264, 25),
    "mjpeg.mkv": ("mjpeg", 1),
}


def stripes(index, size=(240, 320)):
    """An RGB frame whose 8 vertical stripes spell ``index`` in binary."""
    bits = (index >> np.arange(8)) & 1
    row = np.repeat(bits * 255, size[1] // 8).astype(np.uint8)
    return np.broadcast_to(row[None, :, None], (*size, 3)).copy()


def frame_indices(frames):
    """Read back the index that :func:`stripes` drew on each frame."""
    width = frames.shape[2] // 8
    centres = frames[:, :, width // 4 :: width][:, :, :8]
    bits = centres.mean(axis=(1, 3)) > 127
    return (bits * (1 << np.arange(8))).sum(axis=1)


def encode_clip(
    path, codec="mpeg4", n=N_FRAMES, gop=12, size=(240, 320), options=None, **encoder
):
    """Encode the stripes clip; ``options`` go to the muxer (e.g. movflags),
    keyword arguments to the encoder (e.g. ``bf="2"`` for B-frames)."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=FPS, options=encoder)
        stream.height, stream.width = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(stripes(i, size), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def remux(source, out, edit, format=None):
    """Copy ``source``'s video packets to ``out`` (``format``: the muxer's,
    from ``out``'s name if None), each packet's bytes replaced by
    ``edit(index, packet, data)``; packets without a decoding time are left
    out."""
    with av.open(str(source)) as src, av.open(str(out), "w", format=format) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.dts is not None]
        for index, packet in enumerate(packets):
            copy = av.Packet(edit(index, packet, bytes(packet)))
            copy.pts, copy.dts = packet.pts, packet.dts
            copy.time_base = packet.time_base
            copy.is_keyframe, copy.stream = packet.is_keyframe, stream
            dst.mux(copy)
    return out


def expected_indices(targets):
    """First frame at or after each target (the last frame past the end)."""
    return np.minimum(np.ceil(np.asarray(targets) * FPS - 1e-6), N_FRAMES - 1)


def encode_image(path, codec="png", size=(48, 64)):
    """Write one still picture (``codec`` "png" or "mjpeg") to ``path``."""
    context = av.CodecContext.create(codec, "w")
    context.height, context.width = size
    context.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
    context.time_base = Fraction(1, FPS)
    frame = av.VideoFrame.from_ndarray(stripes(5, size), format="rgb24")
    packets = context.encode(frame.reformat(format=context.pix_fmt))
    path.write_bytes(b"".join(bytes(p) for p in packets + context.encode(None)))
    return path


def packet_spans(path):
    """``(frame index, pos, size)`` of each video packet of a clip, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (round(float(p.pts * stream.time_base) * FPS), p.pos, p.size)
            for p in container.demux(stream)
            if p.size > 0
        ]


def damaged_copy(path, out, *, cut=None, zero=None, flip=None):
    """Copy ``path`` to ``out`` cut to ``cut`` bytes, with the byte ranges
    ``zero`` set to 0 and ``flip`` inverted (lists of ``(start, stop)``)."""
    data = bytearray(path.read_bytes())
    for start, stop in zero or ():
        data[start:stop] = bytes(len(data[start:stop]))
    for start, stop in flip or ():
        data[start:stop] = bytes(b ^ 0xFF for b in data[start:stop])
    out.write_bytes(bytes(data[:cut]))
    return out


def read_reported(path, **kwargs):
    """Return read_frames' video and its VideoDecodeWarning's message ('' if none)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        video = read_frames(path, **kwargs)
    messages = [str(w.message) for w in record if w.category is VideoDecodeWarning]
    assert len(messages) <= 1, messages
    return video, messages[0] if messages else ""
