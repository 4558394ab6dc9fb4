"""Featurisation latency: one 5-second 320x240 clip, with and without detection.

The paper needed 2.3 s (LiteVidSage) and 4.1 s (VidSage) per 5-second video on
a V100; the project's CPU targets are 0.5 s and 1.5 s. Also videos per minute
over a folder of such clips, with the decode workers overlapping inference.
The detector runs with random weights (COCO weights need a download; speed
does not depend on the weights beyond non-maximum suppression, which random
weights make cheaper).

Usage::

    python benchmarks/bench_featurize.py [--sample-rate 1] [--n-clips 12]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from skvidsage import VideoFeaturizer


def write_clip(path, seconds=5, fps=25, size=(240, 320), seed=0):
    """Encode a moving-gradient clip with PyAV (H.264 when available)."""
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 255, (*size, 3)).astype(np.uint8)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(seconds * fps):
            img = np.roll(base, 4 * i, axis=1)
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24"))
            )
        container.mux(stream.encode())
    return str(path)


def latency(featurizer, clip, repeats=5):
    """Median seconds to featurise one clip (models loaded beforehand)."""
    featurizer.fit([clip])
    featurizer.transform([clip])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        featurizer.transform([clip])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    """Print the latency and throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=1.0)
    parser.add_argument("--n-clips", type=int, default=12)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            write_clip(Path(tmp) / f"clip{i}.mp4", seed=i) for i in range(args.n_clips)
        ]
        configs = {
            "LiteVidSage (no detector)": {},
            "VidSage (ssdlite320 detector)": {
                "detector": "ssdlite320_mobilenet_v3_large",
                "detector_weights": None,
            },
        }
        print(
            f"5-s 320x240 clip, sample_rate={args.sample_rate:g} fps, "
            "EfficientNet-Lite0, CPU\n"
        )
        print(
            "| configuration | one clip (s, median of 5) | clips/min over "
            f"{args.n_clips} clips, n_jobs={args.n_jobs} |"
        )
        print("|---|---|---|")
        for name, extra in configs.items():
            common = dict(sample_rate=args.sample_rate, **extra)
            one = latency(VideoFeaturizer(**common), clips[0])
            feat = VideoFeaturizer(**common, n_jobs=args.n_jobs).fit(clips[:1])
            feat.transform(clips[:2])  # start the workers
            t0 = time.perf_counter()
            feat.transform(clips)
            per_min = 60 * len(clips) / (time.perf_counter() - t0)
            print(f"| {name} | {one:.2f} | {per_min:.0f} |")


if __name__ == "__main__":
    main()
