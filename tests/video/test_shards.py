"""Resumable, sharded featurisation (issue 12.3): featurize_to_folder and the CLI."""

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest

from skvidsage import VideoDecodeWarning, VideoFeaturizer
from skvidsage.video import featurize_to_folder, load_featurized

RUN = {"shard_size": 2, "verbose": False}


@pytest.fixture(scope="module")
def videos(clips, bad_files, damaged):
    """Good clips, one unreadable file and one damaged (truncated) file."""
    good = [str(p) for _, p in sorted(clips.items())]
    missing = next(str(p) for p, why in bad_files.items() if why == "no such file")
    return [*good[:2], missing, str(damaged), good[2], good[0], good[1]]


def _featurizer():
    # 4 frames: the last target (3.75 s) lies past the cut of the damaged clip
    return VideoFeaturizer(n_frames=4, on_error="warn")


def test_writes_shards_with_status_and_matches_transform(tmp_path, videos):
    with pytest.warns(VideoDecodeWarning):
        expected = _featurizer().fit_transform(videos)
    summary = featurize_to_folder(videos, tmp_path, _featurizer(), **RUN)
    assert summary.n_shards == 4 and summary.shards_done == 4
    assert (summary.ok, summary.warned, summary.failed) == (5, 1, 1)
    out = load_featurized(tmp_path)
    assert out.paths == videos
    np.testing.assert_allclose(out.features, expected, atol=1e-5, equal_nan=True)
    assert out.status.tolist() == ["ok"] * 2 + ["failed", "warned"] + ["ok"] * 3
    assert "no such file" in out.reason[2] and "damaged stream" in out.reason[3]
    assert out.reason[0] == "" and len(out.object_sets) == len(videos)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        *(f"shard-{k:05d}.npz" for k in range(4)),
    ]


def test_a_rerun_skips_complete_shards_and_redoes_missing_ones(tmp_path, videos):
    featurize_to_folder(videos, tmp_path, _featurizer(), **RUN)
    first = load_featurized(tmp_path).features
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("shard-*")}
    (tmp_path / "shard-00002.npz").unlink()
    with pytest.raises(ValueError, match="incomplete: 1 of 4 shards missing"):
        load_featurized(tmp_path)
    summary = featurize_to_folder(videos, tmp_path, _featurizer(), **RUN)
    assert (summary.shards_done, summary.shards_skipped) == (1, 3)
    for p, stamp in stamps.items():
        if p.name != "shard-00002.npz":
            assert p.stat().st_mtime_ns == stamp, p
    np.testing.assert_array_equal(load_featurized(tmp_path).features, first)


def test_another_job_in_the_same_folder_is_an_error(tmp_path, videos):
    featurize_to_folder(videos[:2], tmp_path, _featurizer(), **RUN)
    with pytest.raises(ValueError, match="videos_sha256"):
        featurize_to_folder(videos[:3], tmp_path, _featurizer(), **RUN)
    with pytest.raises(ValueError, match=r"featurizer params \['n_frames'\]"):
        featurize_to_folder(
            videos[:2], tmp_path, _featurizer().set_params(n_frames=3), **RUN
        )
    with pytest.raises(ValueError, match="shard_size: folder has 2"):
        featurize_to_folder(videos[:2], tmp_path, _featurizer(), shard_size=1)
    with pytest.raises(TypeError, match="video files"):
        featurize_to_folder([np.zeros((2, 8, 8, 3), np.uint8)], tmp_path)


def _die_once(frames, marker):
    """A detector that kills its worker process the first time it runs."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(13)
    return [set() for _ in frames]


def test_a_killed_worker_costs_only_its_shard(tmp_path, videos):
    good = videos[:2] + videos[4:]
    marker = tmp_path / "died"
    detector = functools.partial(_die_once, marker=str(marker))
    featurizer = VideoFeaturizer(n_frames=2, detector=detector)
    with pytest.warns(VideoDecodeWarning, match="a worker died"):
        summary = featurize_to_folder(
            good, tmp_path / "out", featurizer, shard_size=1, n_jobs=2, verbose=False
        )
    assert marker.exists()
    assert summary.shards_done == len(good) and summary.shards_missing == 0
    assert summary.ok == len(good)


def _die_in_workers(frames, parent):
    """A detector that kills every worker process it runs in (never the test's)."""
    if os.getpid() != parent:
        os._exit(13)
    return [set() for _ in frames]


def test_a_shard_whose_workers_always_die_is_named(tmp_path, videos):
    detector = functools.partial(_die_in_workers, parent=os.getpid())
    featurizer = VideoFeaturizer(n_frames=2, detector=detector)
    with pytest.warns(VideoDecodeWarning) as caught:
        summary = featurize_to_folder(
            videos[:1], tmp_path, featurizer, shard_size=1, n_jobs=2, retries=1,
            verbose=False,
        )
    assert (summary.shards_done, summary.shards_missing) == (0, 1)
    messages = [str(w.message) for w in caught]
    assert any("a worker died" in m and "shard [0] of" in m and "has no file and "
               "is redone." in m for m in messages), messages
    assert messages[-1] == (
        "featurize_to_folder: 1 shard [0] has no file: its workers died in every "
        "round. Rerun the same call to redo it."
    )


def _cli(*args):
    return [sys.executable, "-m", "skvidsage", "featurize", *map(str, args)]


def test_cli_killed_mid_run_loses_at_most_one_shard(tmp_path, clips):
    paths = [str(p) for p in clips.values()] * 2
    listing = tmp_path / "videos.txt"
    listing.write_text("\n".join(paths))
    out = tmp_path / "out"
    cmd = _cli(f"@{listing}", "--out", out, "--shard-size", 1, "--n-frames", 2)
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("shard-*.npz"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    kept = sorted(p.name for p in out.glob("shard-*.npz"))
    assert 2 <= len(kept) < len(paths), kept
    done = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(kept)} already complete" in done.stdout
    assert f"{len(paths) - len(kept)} featurised now" in done.stdout
    Z = VideoFeaturizer(n_frames=2).fit_transform(paths)
    np.testing.assert_allclose(load_featurized(out).features, Z, atol=1e-5)


def test_cli_reports_bad_arguments(tmp_path, clips):
    path = str(next(iter(clips.values())))
    out = tmp_path / "out"
    assert subprocess.run(_cli(path, "--out", out, "--quiet")).returncode == 0
    bad = subprocess.run(
        _cli(path, "--out", out, "--shard-size", 5, "--quiet"),
        capture_output=True, text=True,
    )
    assert bad.returncode == 2 and "holds shards of another job" in bad.stderr


def test_runs_on_a_dask_cluster_of_two_worker_processes(tmp_path, videos):
    distributed = pytest.importorskip("distributed")
    with pytest.warns(VideoDecodeWarning):
        expected = _featurizer().fit_transform(videos)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        summary = featurize_to_folder(videos, tmp_path, _featurizer(), n_jobs=2, **RUN)
    assert summary.shards_done == 4 and summary.failed == 1
    out = load_featurized(tmp_path)
    np.testing.assert_allclose(out.features, expected, atol=1e-5, equal_nan=True)
    assert out.status.tolist() == ["ok"] * 2 + ["failed", "warned"] + ["ok"] * 3
