"""Video clips the decoding tests encode themselves, and the real ones."""


import av
import numpy as np

from tests._data import VIDEOS

REAL_CLIPS = sorted(VIDEOS.glob("*")) if VIDEOS.is_dir() else []

FPS, N_FRAMES = 25, 125  # the generated clips: 5 s at 25 fps
H264 = "libx264" if "libx264" in av.codecs_available else "mpeg4"
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


def encode_clip(path, codec="mpeg4", n=N_FRAMES, gop=12, size=(240, 320)):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.height, stream.width = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(stripes(i, size), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def expected_indices(targets):
    """First frame at or after each target (the last frame past the end)."""
    return np.minimum(np.ceil(np.asarray(targets) * FPS - 1e-6), N_FRAMES - 1)
