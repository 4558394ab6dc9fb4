"""Command line: ``python -m skvidsage featurize VIDEOS... --out DIR``.

Runs :func:`skvidsage.video.featurize_to_folder`; ``@list.txt`` reads the
video paths from a file, one per line. A rerun into the same folder resumes.
"""

import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m skvidsage",
        description="skvidsage command line tools.",
        fromfile_prefix_chars="@",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    feat = commands.add_parser(
        "featurize",
        help="featurise video files shard by shard into a folder (resumable)",
        fromfile_prefix_chars="@",
        description=(
            "Featurise video files into DIR, shard by shard. A rerun with the "
            "same videos and settings skips the complete shards, so a killed "
            "job loses at most the shards it was working on. @FILE reads paths "
            "from FILE, one per line."
        ),
    )
    feat.add_argument("videos", nargs="+", help="video files (or @FILE)")
    feat.add_argument("--out", required=True, help="output folder")
    feat.add_argument("--shard-size", type=int, default=1000)
    feat.add_argument("--n-jobs", type=int, default=1, help="shards at once")
    feat.add_argument("--backbone", default="efficientnet_lite0")
    rate = feat.add_mutually_exclusive_group()
    rate.add_argument("--n-frames", type=int, default=None)
    rate.add_argument("--sample-rate", type=float, default=1.0)
    feat.add_argument("--max-frames", type=int, default=300)
    feat.add_argument("--on-damage", choices=["warn", "error"], default="warn")
    feat.add_argument("--device", default="auto")
    feat.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 when every shard is written (failed videos are recorded in their
        shard, not an error), 1 when shards are missing, 2 on bad arguments.
    """
    args = _parser().parse_args(argv)
    from skvidsage.video import VideoFeaturizer, featurize_to_folder

    featurizer = VideoFeaturizer(
        backbone=args.backbone,
        n_frames=args.n_frames,
        sample_rate=args.sample_rate,
        max_frames=args.max_frames,
        on_damage=args.on_damage,
        device=args.device,
    )
    paths = [p.strip() for p in args.videos if p.strip()]
    try:
        s = featurize_to_folder(
            paths,
            args.out,
            featurizer,
            shard_size=args.shard_size,
            n_jobs=args.n_jobs,
            verbose=not args.quiet,
        )
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{s.n_videos} videos in {s.n_shards} shards ({s.shards_done} featurised "
        f"now, {s.shards_skipped} already complete, {s.shards_missing} missing) "
        f"in {s.seconds:.1f} s: {s.ok} ok, {s.warned} warned, {s.failed} failed. "
        f"Output: {args.out}"
    )
    return 1 if s.shards_missing else 0


if __name__ == "__main__":
    sys.exit(main())
