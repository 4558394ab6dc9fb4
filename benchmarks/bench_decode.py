"""Decode speed of ``skvidsage.video._decode.read_frames``: seeking versus not.

For generated 5-s 320x240 clips (mpeg4/AVI and H.264/MP4 at two keyframe
intervals) and the real clips in ``../shared/data/videos`` (when present), this
prints the CPU time (best of ``--repeats``; decoding is single-threaded, so it
is the wall time on an idle core) to read each clip at ``sample_rate=1``,
``sample_rate=4`` and every frame, with ``seek=False`` (decode everything up to
each target), ``seek=True`` (seek whenever a keyframe lies between) and
``seek="auto"``, and the frames/s that implies for every-frame decoding.
``--slice-check`` prints instead, for the H.264 clips, the cost of the check
for intra slices that leave their data's end unread
(:class:`skvidsage.video._h264.IntraSliceCheck`, which decodes each intra
picture again alone, once per slice): the time with it and with it switched
off in the same run, the time spent inside it, and that time's share.

Run: ``python benchmarks/bench_decode.py [--repeats 7] [--slice-check]``.
"""

import argparse
import math
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import av
import numpy as np

from skvidsage.video._decode import read_frames
from skvidsage.video._h264 import IntraSliceCheck

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def make_clip(path, codec, gop, seconds=5, fps=25, size=(240, 320), options=None):
    rng = np.random.RandomState(0)
    base = rng.randint(0, 256, (size[0] // 8, size[1] // 8, 3)).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(seconds * fps):  # a drifting texture: real motion
            image = np.roll(base, i, axis=1).repeat(8, 0).repeat(8, 1)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def best_time(path, repeats, **kwargs):
    """CPU seconds of the fastest of ``repeats`` reads (robust on a busy box)."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        video = read_frames(path, **kwargs)
        times.append(time.process_time() - start)
    return min(times), len(video)


@contextmanager
def slice_check(on, spent):
    """Run with the unread-slice check switched off, or on and timed.

    ``spent`` collects the CPU seconds of each call of the check.
    """
    check = IntraSliceCheck.unread

    def timed(self, data):
        start = time.process_time()
        try:
            return check(self, data)
        finally:
            spent.append(time.process_time() - start)

    replacement = timed if on else (lambda self, data: False)
    with mock.patch.object(IntraSliceCheck, "unread", replacement):
        yield


def slice_check_cost(clips, repeats):
    """Print the unread-slice check's cost on the H.264 MP4 clips.

    Besides the best times with the check off and on, the CPU time spent
    inside the check in the best run: on a shared machine the difference of
    two best times is noisy, the time inside the check much less so.
    """
    print(
        f"{'clip':24} {'sampling':14} {'frames':>6} {'check off':>10} "
        f"{'check on':>9} {'in check':>9} {'share':>6}  "
        f"(CPU ms, best of {repeats}, seek auto)"
    )
    for clip in clips:
        if clip.suffix != ".mp4":
            continue
        for name, kwargs in [
            ("n_frames=3", {"n_frames": 3}),
            ("sample_rate=1", {"sample_rate": 1}),
            ("all frames", {}),
        ]:
            row, inside = {}, math.inf
            for on in (False, True):
                runs = []
                for _ in range(repeats):
                    spent = []
                    with slice_check(on, spent):
                        runs.append((*best_time(clip, 1, **kwargs), sum(spent)))
                row[on], n, check = min(runs)
                inside = check if on else inside
            print(
                f"{clip.name[:24]:24} {name:14} {n:6d} {row[False] * 1e3:10.1f} "
                f"{row[True] * 1e3:9.1f} {inside * 1e3:9.1f} "
                f"{inside / row[True]:6.0%}"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--slice-check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            make_clip(Path(tmp) / "mpeg4_gop12.avi", "mpeg4", 12),
            make_clip(Path(tmp) / "h264_gop25.mp4", "libx264", 25),
            make_clip(Path(tmp) / "h264_gop250.mp4", "libx264", 250),
        ]
        clips += sorted(VIDEOS.glob("*")) if VIDEOS.is_dir() else []
        if args.slice_check:
            hd = {"seconds": 3, "fps": 30, "size": (1080, 1920)}
            clips[1:1] = [  # 1080p, one slice and 8 (as hardware encoders write)
                make_clip(
                    Path(tmp) / f"h264_1080p_{n}slice.mp4",
                    "libx264",
                    30,
                    options={"slices": str(n), "preset": "veryfast"},
                    **hd,
                )
                for n in (1, 8)
            ]
            slice_check_cost(clips, args.repeats)
            return
        print(
            f"{'clip':24} {'sampling':14} {'frames':>6} {'no seek':>9} "
            f"{'seek':>9} {'auto':>9}  (CPU ms, best of {args.repeats})"
        )
        for clip in clips:
            for name, kwargs in [
                ("sample_rate=1", {"sample_rate": 1}),
                ("sample_rate=4", {"sample_rate": 4}),
                ("all frames", {}),
            ]:
                row = {}
                for seek in (False, True, "auto"):
                    row[seek], n = best_time(clip, args.repeats, seek=seek, **kwargs)
                extra = f"  {n / row[False]:7.0f} frames/s" if not kwargs else ""
                print(
                    f"{clip.name[:24]:24} {name:14} {n:6d} {row[False] * 1e3:9.1f} "
                    f"{row[True] * 1e3:9.1f} {row['auto'] * 1e3:9.1f}{extra}"
                )


if __name__ == "__main__":
    main()
