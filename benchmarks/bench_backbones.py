"""Benchmark the frame backbones and object detectors.

Backbones: images/s of :meth:`Backbone.features` on batches of ``--batch``
random 240 x 320 uint8 frames (preprocessing included: shorter side to 256,
centre crop to 224 px), and of the module alone on ready 224 x 224 tensors.
The default backbone (EfficientNet-Lite0, ImageNet weights) is always run;
``--compare`` adds torchvision models with random weights (same speed as
trained ones) for the CPU figures in DESIGN.md.

Detectors: frames/s of :meth:`Detector.detect` on 320 x 240 frames, batch 8,
score threshold 0.5, random weights (``weights=None``): with random weights
almost no box passes the threshold, so non-maximum suppression costs less
than with trained weights on busy scenes.

Each figure is given as the median / the best of ``--repeats`` timed runs,
after one warm-up run.

Usage::

    python benchmarks/bench_backbones.py
    python benchmarks/bench_backbones.py --compare mobilenet_v3_large resnet18
    python benchmarks/bench_backbones.py --device cuda --batches 10
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skvidsage.video._backbones import load_backbone
from skvidsage.video._detectors import load_detector

DETECTORS = ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn"]


def _median_rate(fn, n_items, repeats, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return f"{n_items / statistics.median(times):.1f} / {n_items / min(times):.1f}"


def bench_backbone(name, weights, args, device, rng):
    bb = load_backbone(name, weights)
    n = args.batch * args.batches
    frames = rng.integers(0, 256, size=(n, 240, 320, 3), dtype=np.uint8)
    size = bb.input_size
    x = torch.rand(
        args.batch, 3, size, size, generator=torch.Generator().manual_seed(0)
    )
    x = x.to(device)
    module = bb.module.to(device)

    def module_only():
        with torch.inference_mode():
            for _ in range(args.batches):
                module(x)

    full = _median_rate(
        lambda: bb.features(frames, device, args.batch), n, args.repeats, device
    )
    bare = _median_rate(module_only, n, args.repeats, device)
    label = "ImageNet" if weights == "DEFAULT" else "random"
    return [name, label, f"{size}", f"{args.batch}", full, bare]


def bench_detector(name, args, device, rng):
    det = load_detector(name, weights=None, weights_backbone=None)
    n = 8 * args.batches
    frames = rng.integers(0, 256, size=(n, 240, 320, 3), dtype=np.uint8)
    rate = _median_rate(lambda: det.detect(frames, device, 8), n, args.repeats, device)
    return [name, "random", "320x240", "8", rate]


def _print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line.format(*row))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=2, help="batches per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", nargs="*", default=[], help="torchvision names")
    parser.add_argument("--detectors", nargs="*", default=DETECTORS)
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    print(
        f"torch {torch.__version__}, device {device}, "
        f"{torch.get_num_threads()} CPU threads\n"
    )

    rows = [bench_backbone("efficientnet_lite0", "DEFAULT", args, device, rng)]
    rows += [bench_backbone(name, None, args, device, rng) for name in args.compare]
    _print_table(
        ["backbone", "weights", "px", "batch", "features img/s", "module img/s"],
        rows,
    )
    if args.detectors:
        print()
        rows = [bench_detector(name, args, device, rng) for name in args.detectors]
        _print_table(["detector", "weights", "frames", "batch", "frames/s"], rows)
    print("\nrates: median / best of the timed runs (the best is the least")
    print("disturbed by other processes on a shared machine)")


if __name__ == "__main__":
    main()
