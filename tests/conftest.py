"""Fixtures shared by the frame, decoding and worker tests."""

from fractions import Fraction

import av
import numpy as np
import pytest

from tests._clips import CLIPS, FPS, N_FRAMES, encode_clip, stripes


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        name: encode_clip(root / name, codec, gop=gop)
        for name, (codec, gop) in CLIPS.items()
    }


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, clips):
    """One file per failure kind, and the reason each must give."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.mp4").touch()
    (root / "random.mp4").write_bytes(np.random.RandomState(0).bytes(4000))
    (root / "notes.txt").write_text("FFmpeg opens text as ANSI art.\n" * 50)
    with av.open(str(root / "audio.wav"), "w") as container:  # no video stream
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with av.open(str(root / "garbage.avi"), "w") as container:  # valid container
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = 64, 48
        rng = np.random.RandomState(0)
        for i in range(10):
            packet = av.Packet(rng.bytes(200))
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base, packet.is_keyframe = Fraction(1, FPS), True
            container.mux(packet)
    return {
        root / "missing.mp4": "no such file",
        root: "not a file",
        root / "empty.mp4": "empty file (0 bytes)",
        root / "random.mp4": "not a video: ",
        root / "notes.txt": "not a video: ",
        root / "audio.wav": "no video stream",
        root / "garbage.avi": "no decodable frame",
    }


@pytest.fixture(scope="session")
def damaged(tmp_path_factory, clips):
    """A Matroska clip cut at 60%: its header still says 5 s."""
    path = tmp_path_factory.mktemp("damaged") / "cut.mkv"
    data = clips["mjpeg.mkv"].read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


@pytest.fixture(scope="session")
def array():
    """The stripes clip as an in-memory (T, 24, 32, 3) uint8 array."""
    return np.stack([stripes(i, (24, 32)) for i in range(N_FRAMES)])
