"""Featurisation latency: one 5-second 320x240 clip, with and without object sets.

The paper needed 2.3 s (LiteVidSage) and 4.1 s (VidSage) per 5-second video on
a V100; the project's CPU targets are 0.5 s for both with the "imagenet"
tagger (it reads the backbone's own classifier: no second network) and 1.5 s
with a detector. Also videos per minute over a folder of such clips, with the
decode workers overlapping inference.

The rows: no detector (LiteVidSage); ``detector="imagenet"``; torchvision
detectors by name; the same SSDlite saved as a TorchScript file
(``torch.jit.save(torch.jit.script(model))``) and, when onnxruntime and onnx
are installed, as an ONNX file. Detectors run with random weights (COCO
weights need a download; speed does not depend on the weights beyond
non-maximum suppression, which random weights make cheaper).

With ``--videos DIR`` it also tags every clip in DIR with the "imagenet"
tagger and prints each clip's object set, the vocabulary seen and the
latency per clip.

Usage::

    python benchmarks/bench_featurize.py [--sample-rate 1] [--n-clips 12]
    python benchmarks/bench_featurize.py --videos ../shared/data/videos
"""

import argparse
import importlib.util
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import av
import numpy as np
import torch

from skvidsage import VideoFeaturizer
from skvidsage.video._decode import read_frames
from skvidsage.video._detectors import load_detector

SSD = "ssdlite320_mobilenet_v3_large"
FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"


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


def detector_files(directory):
    """SSDlite (random weights) as a TorchScript file and, if possible, ONNX."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_detector(SSD, None).module
        files = {"TorchScript": Path(directory) / "ssdlite.pt"}
        torch.jit.save(torch.jit.script(model), files["TorchScript"])
        if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
            files["ONNX"] = Path(directory) / "ssdlite.onnx"
            torch.onnx.export(
                model,
                ([torch.rand(3, 240, 320)],),
                files["ONNX"],
                dynamo=False,
                input_names=["images"],
                dynamic_axes={"images": {1: "height", 2: "width"}},
            )
    return files


def latency(featurizer, clip, repeats=5):
    """Median and fastest wall seconds to featurise one clip (models loaded).

    On a busy shared machine the fastest of the repeats is the better
    estimate of the time on an idle one.
    """
    featurizer.fit([clip])
    featurizer.transform([clip])  # warm-up
    wall = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        featurizer.transform([clip])
        wall.append(time.perf_counter() - t0)
    return statistics.median(wall), min(wall)


def tagger_overhead(clip, sample_rate, repeats=200):
    """Time the CNN pass on one clip's frames, and what tagging adds to it.

    Tagging is the classifier head (one ``(n, 1280) @ (1280, 1000)``
    product) on the pass's features, then a softmax and a top-k: timed on
    its own, since it is far below the noise of the CNN pass on a busy
    machine.
    """
    frames = read_frames(clip, sample_rate=sample_rate, max_frames=300).frames
    feat = VideoFeaturizer(detector="imagenet").fit([frames])
    backbone, tagger = feat.backbone_, feat.detector_
    cnn = []
    for _ in range(10):
        t0 = time.perf_counter()
        features = backbone.features(frames)
        cnn.append(time.perf_counter() - t0)
    features = torch.tensor(features)
    tagging = []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            tagger.video_objects_from_logits(backbone.head(features).numpy())
            tagging.append(time.perf_counter() - t0)
    return len(frames), min(cnn), statistics.median(tagging)


def tag_folder(directory, sample_rate):
    """Object sets of real clips from the "imagenet" tagger, and its cost."""
    paths = sorted(p for p in Path(directory).iterdir() if p.is_file())
    feat = VideoFeaturizer(detector="imagenet", sample_rate=sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged clip warns
        out = feat.fit_transform(paths)
        lite = VideoFeaturizer(sample_rate=sample_rate).fit(paths[:1])
        print(f"\n{len(paths)} clips in {directory}, sample_rate={sample_rate:g}\n")
        print(
            "| clip | frames | object set (imagenet tagger) | s, LiteVidSage "
            "| s, tagger (fastest of 3) |"
        )
        print("|---|---|---|---|---|")
        for path, objects in zip(paths, out.object_sets, strict=True):
            _, t_lite = latency(lite, str(path), repeats=3)
            _, t_tag = latency(feat, str(path), repeats=3)
            n = len(read_frames(path, sample_rate=sample_rate, max_frames=300).frames)
            print(
                f"| {path.name} | {n} | {', '.join(sorted(objects))} "
                f"| {t_lite:.2f} | {t_tag:.2f} |",
                flush=True,
            )
    vocabulary = set().union(*out.object_sets)
    sizes = [len(s) for s in out.object_sets]
    print(
        f"\nvocabulary seen: {len(vocabulary)} ImageNet classes; "
        f"{min(sizes)}-{max(sizes)} per clip (mean {np.mean(sizes):.1f})"
    )


def bench_generated(args):
    """Print the latency and throughput table on generated 5-s clips."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            write_clip(Path(tmp) / f"clip{i}.mp4", seed=i) for i in range(args.n_clips)
        ]
        files = detector_files(tmp)
        configs = {
            "LiteVidSage (no detector)": {},
            'VidSage, detector="imagenet" (tagger)': {"detector": "imagenet"},
            f"VidSage, {SSD}": {"detector": SSD, "detector_weights": None},
            f"VidSage, {FRCNN}": {"detector": FRCNN, "detector_weights": None},
            **{
                f"VidSage, {SSD} as a {kind} file": {"detector": str(path)}
                for kind, path in files.items()
            },
        }
        if "ONNX" not in files:
            print("(no ONNX row: onnxruntime and onnx are not installed)")
        print(
            f"5-s 320x240 clip, sample_rate={args.sample_rate:g} fps, "
            f"EfficientNet-Lite0, CPU, {torch.get_num_threads()} threads\n"
        )
        print(
            "| configuration | one clip (s, median of 7) | fastest of 7 (s) "
            f"| clips/min over {args.n_clips} clips, n_jobs={args.n_jobs} |"
        )
        print("|---|---|---|---|")
        for name, extra in configs.items():
            common = dict(sample_rate=args.sample_rate, **extra)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecations of TorchScript
                one, fastest = latency(VideoFeaturizer(**common), clips[0], 7)
                feat = VideoFeaturizer(**common, n_jobs=args.n_jobs).fit(clips[:1])
                feat.transform(clips[:2])  # start the workers
                t0 = time.perf_counter()
                feat.transform(clips)
                per_min = 60 * len(clips) / (time.perf_counter() - t0)
            print(f"| {name} | {one:.2f} | {fastest:.2f} | {per_min:.0f} |", flush=True)
        n, cnn, tagging = tagger_overhead(clips[0], args.sample_rate)
        print(
            f"\none clip's {n} frames: the CNN pass {1e3 * cnn:.0f} ms (fastest of "
            f"10); what tagging adds (head, softmax, top-k; median of 200) "
            f"{1e3 * tagging:.2f} ms"
        )


def main(argv=None):
    """Print the latency and throughput table (and the real clips' objects)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=1.0)
    parser.add_argument("--n-clips", type=int, default=12)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--videos", type=Path, help="also tag these real clips")
    parser.add_argument(
        "--only-videos", action="store_true", help="skip the generated-clip table"
    )
    args = parser.parse_args(argv)
    if not args.only_videos:
        bench_generated(args)
    if args.videos is not None:
        tag_folder(args.videos, args.sample_rate)


if __name__ == "__main__":
    main()
