r"""Out-of-core features: load_youtube8m(out=) and VidSageEmbedder.transform on memmaps.

Each measurement runs in a fresh process and reports its wall time and peak
RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: it counts the touched
pages of a mapped file too). Steps:

- ``read``: read a ``--rows`` x ``--dim`` float32 memmap through by blocks of
  16,384 rows, as plain copies, then with ``skvidsage._ondisk.read_rows``
  (copy, then release the pages);
- ``transform``: ``VidSageEmbedder().fit(references).transform(memmap,
  out=path)`` (the default embedder: [x, S x, S^2 x], brute-force links to
  ``--references`` videos of the same clusters);
- ``load``: ``load_youtube8m(dir, out=dir2)`` of ``--rows`` synthetic
  video-level records (``mean_rgb`` of ``--dim`` values, two labels each).

The files go to ``--tmp`` and are deleted at the end.

Usage::

    python benchmarks/bench_outofcore.py --rows 1000000 --dim 1024 \\
        --references 10000 --steps read transform load
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BLOCK = 16_384


def _clustered(rng, centres, n):
    X = centres[rng.randint(len(centres), size=n)]
    X += 0.5 * rng.standard_normal(X.shape).astype(np.float32)
    return X


def make_features(path, rows, dim, seed=0):
    """Write ``rows`` clustered float32 rows to ``path`` (.npy) by blocks."""
    from skvidsage._ondisk import NpyWriter

    rng = np.random.RandomState(seed)
    centres = rng.standard_normal((100, dim)).astype(np.float32)
    with NpyWriter(path, dim) as writer:
        for start in range(0, rows, BLOCK):
            writer.append(_clustered(rng, centres, min(BLOCK, rows - start)))
    return centres


def child(step, args):
    """Run one step in this process; return what to print."""
    start = time.perf_counter()
    extra = {}
    if step == "imports":  # what the other steps' imports alone cost
        import skvidsage.datasets._tfrecord  # noqa: F401
        from skvidsage import VidSageEmbedder, load_youtube8m  # noqa: F401
    elif step in ("read-plain", "read-release"):
        from skvidsage._ondisk import read_rows

        X = np.load(args.tmp / "x.npy", mmap_mode="r")
        total = 0.0
        for a in range(0, len(X), BLOCK):
            if step == "read-plain":
                rows = np.array(X[a : a + BLOCK])
            else:
                rows = read_rows(X, a, a + BLOCK)
            total += float(rows[:, 0].sum())
    elif step == "transform":
        from skvidsage import VidSageEmbedder

        rng = np.random.RandomState(1)
        centres = np.load(args.tmp / "centres.npy")
        emb = VidSageEmbedder(random_state=0).fit(
            _clustered(rng, centres, args.references)
        )
        fitted = time.perf_counter()
        X = np.load(args.tmp / "x.npy", mmap_mode="r")
        Z = emb.transform(X, out=args.tmp / "z.npy")
        extra = {
            "fit_s": round(fitted - start, 1),
            "out_shape": list(Z.shape),
            "rows_per_s": round(len(X) / (time.perf_counter() - fitted)),
        }
    elif step == "load":
        from skvidsage import load_youtube8m

        bunch = load_youtube8m(args.tmp / "records", out=args.tmp / "loaded")
        extra = {"shape": list(bunch.data.shape), "type": type(bunch.data).__name__}
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"step": step, "seconds": round(seconds, 1), "peak_rss_gib": rss, **extra}


def write_records(directory, rows, dim, seed=0):
    """Write ``rows`` video-level records, 100,000 a file."""
    from skvidsage.datasets._tfrecord import encode_example, write_tfrecord

    rng = np.random.RandomState(seed)
    directory.mkdir(parents=True, exist_ok=True)
    centres = rng.standard_normal((100, dim)).astype(np.float32)
    # 10,000 distinct feature payloads, cycled (encoding is the slow part),
    # each record with its own id
    X = _clustered(rng, centres, min(rows, 10_000))
    labels = rng.randint(3862, size=(len(X), 2))
    bodies = [
        _entries(encode_example({"labels": y, "mean_rgb": x}))
        for x, y in zip(X, labels, strict=True)
    ]
    per_file = 100_000
    for f, first in enumerate(range(0, rows, per_file)):
        write_tfrecord(
            directory / f"train{f:04d}.tfrecord",
            (
                _with_id(f"v{i}", bodies[i % len(bodies)])
                for i in range(first, min(first + per_file, rows))
            ),
        )


def _entries(example):
    """Return the map entries of an Example: past its field tag and length."""
    from skvidsage.datasets._tfrecord import _varint

    return example[_varint(example, 1, len(example))[1] :]


def _with_id(video_id, body):
    """Return an Example whose Features are ``body``'s entries and an ``id``."""
    from skvidsage.datasets._tfrecord import _encode_varint, encode_example

    entries = _entries(encode_example({"id": video_id})) + body
    return b"\x0a" + _encode_varint(len(entries)) + entries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--references", type=int, default=10_000)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp/skvidsage_outofcore"))
    parser.add_argument(
        "--steps",
        nargs="+",
        default=["read", "transform", "load"],
        choices=["read", "transform", "load"],
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    args.tmp.mkdir(parents=True, exist_ok=True)
    results = []

    def run(step):
        command = [
            sys.executable,
            __file__,
            "--child",
            step,
            "--rows",
            str(args.rows),
            "--dim",
            str(args.dim),
            "--references",
            str(args.references),
            "--tmp",
            str(args.tmp),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)

    try:
        run("imports")
        if "read" in args.steps or "transform" in args.steps:
            start = time.perf_counter()
            centres = make_features(args.tmp / "x.npy", args.rows, args.dim)
            np.save(args.tmp / "centres.npy", centres)
            print(
                f"wrote {args.rows} x {args.dim} in "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )
        if "read" in args.steps:
            run("read-plain")
            run("read-release")
        if "transform" in args.steps:
            run("transform")
            (args.tmp / "z.npy").unlink()
        (args.tmp / "x.npy").unlink(missing_ok=True)
        if "load" in args.steps:
            start = time.perf_counter()
            write_records(args.tmp / "records", args.rows, args.dim)
            print(
                f"wrote {args.rows} records in {time.perf_counter() - start:.0f} s",
                flush=True,
            )
            run("load")
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    print(
        f"\n{args.rows} x {args.dim} float32 ({args.rows * args.dim * 4 / 2**30:.2f}"
        f" GiB); transform: {args.references} reference videos"
    )
    print("| step | seconds | peak RSS (GiB) | note |\n|---|---|---|---|")
    for r in results:
        note = {
            k: v for k, v in r.items() if k not in ("step", "seconds", "peak_rss_gib")
        }
        print(f"| {r['step']} | {r['seconds']} | {r['peak_rss_gib']:.2f} | {note} |")


if __name__ == "__main__":
    main()
