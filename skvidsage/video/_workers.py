"""Decode many videos in joblib workers, ahead of the consumer, in input order.

:func:`iter_decoded` feeds :class:`skvidsage.VideoFeaturizer`. File paths are
decoded by :func:`skvidsage.video._decode.read_frames` in worker processes (loky, or
any backend from ``joblib.parallel_config`` such as Dask), each result is a
:class:`~skvidsage.video._frames.DecodedVideo` or a
:class:`~skvidsage.VideoDecodeError`, so a corrupt file or a crashing
decoder costs one row, never the whole run or the user's process.
"""

import multiprocessing
import re
import threading
import warnings

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from joblib.externals.loky import BrokenProcessPool, ProcessPoolExecutor

from skvidsage.video._decode import (
    VideoDecodeError,
    VideoDecodeWarning,
    _read_video,
    _warn_issues,
)
from skvidsage.video._frames import (
    DecodedVideo,
    ReadOptions,
    _sample_array,
    check_videos,
)

__all__ = ["iter_decoded"]


def _decode_task(path, options):
    """Worker body: a DecodedVideo or the VideoDecodeError, never a raise."""
    try:
        return _read_video(path, options)
    except VideoDecodeError as exc:
        return exc
    except Exception as exc:  # a bug or an unforeseen FFmpeg failure
        return VideoDecodeError(path, f"unexpected error: {type(exc).__name__}: {exc}")


class _WorkerDied(Exception):
    """The worker died while decoding the video whose result this is."""


class _RunFailed(Exception):
    """A worker died or timed out while the ``index``-th video was due."""

    def __init__(self, index, cause):
        super().__init__(index, cause)
        self.index, self.cause = index, cause


def _start_run(paths, options, n_jobs, isolate, timeout, task=_decode_task):
    """Start ``task(path, options)`` on ``paths`` now; iterate the results."""
    if effective_n_jobs(n_jobs) != 1:
        return Parallel(
            n_jobs=n_jobs,
            prefer=None if isolate else "threads",
            return_as="generator",
            batch_size=1,
            pre_dispatch="all",
            timeout=timeout,
        )(delayed(task)(p, options) for p in paths)
    if not isolate:
        return (task(p, options) for p in paths)
    # joblib runs n_jobs=1 in-process; one loky worker keeps the isolation
    try:
        futures = [_isolated_executor().submit(task, p, options) for p in paths]
    except (BrokenProcessPool, RuntimeError):  # broken by a crash, or shut down
        executor = _isolated_executor(renew=True)
        futures = [executor.submit(task, p, options) for p in paths]

    def results():
        try:
            for future in futures:
                yield future.result(timeout=timeout)
        except GeneratorExit:  # the caller stopped early
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # crash or timeout: kill the stuck or broken worker
            for future in futures:
                future.cancel()
            _isolated_executor(renew=True)
            if isinstance(exc, BrokenProcessPool):
                # one worker, first in first out: the first future without a
                # result is the one its worker died on
                raise _WorkerDied(exc) from exc
            raise

    return results()


_executor_lock = threading.Lock()
_executor = [None]  # our own one-worker pool, apart from joblib's shared one


def _isolated_executor(renew=False):
    """Return our one-worker loky pool; ``renew`` kills it and starts another."""
    with _executor_lock:
        if renew and _executor[0] is not None:
            _executor[0].shutdown(wait=False, kill_workers=True)
        if renew or _executor[0] is None:
            _executor[0] = ProcessPoolExecutor(max_workers=1, timeout=300)
        return _executor[0]


def _close(run):
    """Stop a run early (the caller left, or a video failed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joblib's "tasks ... not used" warning
        if hasattr(run, "close"):
            run.close()


def _pipeline(paths, begin, chunk, start_run):
    """Yield ``(i, result)`` for ``paths[begin:]``, decoded in runs of ``chunk``.

    Only one run is active at a time (joblib backends shared through
    ``parallel_config`` break when two Parallel calls overlap); the next run
    starts as the last video of the current one is handed out, so it decodes
    while the caller works on that video.
    """
    n = len(paths)
    run = start_run(paths[begin : begin + chunk])
    try:
        for lo in range(begin, n, chunk):
            hi = min(lo + chunk, n)
            for i in range(lo, hi):
                try:
                    result = next(run)
                except Exception as exc:  # worker crash, timeout, broken pool
                    raise _RunFailed(i, exc) from exc
                if i == hi - 1:
                    try:  # let joblib finish and release its backend
                        next(run, None)
                    except Exception:  # every result is in already
                        pass
                    run = start_run(paths[hi : hi + chunk]) if hi < n else None
                yield i, result
    finally:
        _close(run)


def iter_decoded(
    videos,
    *,
    sample_rate=None,
    n_frames=None,
    max_frames=None,
    resize=None,
    fps=None,
    strict=False,
    seek="auto",
    n_jobs=1,
    on_error="raise",
    prefetch=None,
    isolate=True,
    timeout=None,
):
    """Decode many videos in worker processes, yielding them in input order.

    File paths are decoded by :func:`~skvidsage.video._decode.read_frames` in joblib
    workers (the loky backend unless a ``joblib.parallel_config`` backend such
    as Dask or Ray is active), ahead of the consumer, so decoding overlaps with
    whatever the caller does with each video. A worker that dies (an FFmpeg
    segfault) or hangs past ``timeout`` costs only its video, reported as
    ``"decoder crashed"`` / ``"decoding timed out"``; decoding resumes after
    it. (With several workers it is not known which video killed one, so the
    video the caller waits for is first retried alone.) In-memory arrays are
    sampled in the caller by :func:`~skvidsage.video._frames.sample_frame_array` (no
    decoder, nothing to isolate).

    Parameters
    ----------
    videos : list of (str or os.PathLike) or list of ndarray
        All file paths or all ``(T, H, W, 3)`` uint8 arrays.
    sample_rate, n_frames, max_frames, resize, strict, seek
        As in :func:`~skvidsage.video._decode.read_frames` (``strict`` and ``seek``
        apply to files).
    fps : float, default=None
        Frame rate of in-memory arrays (needed for ``sample_rate``).
    n_jobs : int, default=1
        Decode workers (joblib semantics: -1 uses all cores).
    on_error : {"raise", "skip", "warn"}, default="raise"
        On a file that fails: raise its :class:`VideoDecodeError` in the
        caller; or yield ``(i, error)`` in its place, silently ("skip") or with
        a :class:`VideoDecodeWarning` ("warn"). Damaged streams that still
        gave frames warn in every mode unless ``strict=True``.
    prefetch : int, default=None
        Videos decoded per run of the workers, ahead of the caller: a run of
        ``prefetch`` videos starts when the caller takes the last video of the
        previous run, so at most ``prefetch + 1`` decoded videos are held.
        Defaults to ``2 * n_workers`` (at least 2).
    isolate : bool, default=True
        Decode in worker processes even when ``n_jobs=1`` (one worker: a
        crash-proof caller and decoding overlapped with the consumer, for the
        start of a worker process, a few seconds as workers import skvidsage
        and torch, and a copy of each decoded video between processes).
        False decodes in the caller (``n_jobs=1``, no overlap) or in threads
        (FFmpeg releases the GIL): fastest to start and easy to debug, but a
        decoder crash kills the process. An active threading backend in
        ``joblib.parallel_config`` also gives no isolation.
    timeout : float, default=None
        Seconds to wait for one video once the caller asks for it (worker
        start-up included) before the workers are killed and the video is
        retried alone.

    Yields
    ------
    index : int
        Position in ``videos``.
    video : DecodedVideo or VideoDecodeError
        The error only with ``on_error="skip"`` or ``"warn"``.

    Raises
    ------
    VideoDecodeError
        With ``on_error="raise"``, the first failing video's error.
    TypeError
        When ``videos`` mixes paths and arrays (names the first offending
        index and type).

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage.video._workers import iter_decoded
    >>> clips = [np.zeros((50, 8, 8, 3), np.uint8), np.zeros((5, 8, 8, 3), np.uint8)]
    >>> [(i, len(v)) for i, v in iter_decoded(clips, sample_rate=1, fps=25)]
    [(0, 2), (1, 1)]
    >>> videos = iter_decoded(["nope.mp4"], on_error="skip", isolate=False)
    >>> [(i, str(v)) for i, v in videos]
    [(0, 'nope.mp4: no such file')]
    """
    options = ReadOptions(
        sample_rate=sample_rate,
        n_frames=n_frames,
        max_frames=max_frames,
        resize=resize,
        strict=strict,
        seek=seek,
    )
    if on_error not in ("raise", "skip", "warn"):
        raise ValueError(
            f"on_error must be 'raise', 'skip' or 'warn', got {on_error!r}."
        )
    if prefetch is not None and not (
        isinstance(prefetch, int | np.integer) and prefetch >= 1
    ):
        raise ValueError(f"prefetch must be a positive integer, got {prefetch!r}.")
    kind, videos = check_videos(videos)
    if kind == "frames":
        if sample_rate is not None and fps is None:
            raise ValueError("sample_rate on frame arrays needs their fps.")
        return ((i, _sample_array(a, options, fps)) for i, a in enumerate(videos))
    chunk = prefetch or max(2, 2 * effective_n_jobs(n_jobs))
    if isolate and multiprocessing.current_process().daemon:
        # a daemonic process (a Dask worker, a multiprocessing pool's) may
        # not start processes: decode in it, so that a crash costs that worker
        isolate = False

    def start_run(paths):
        return _start_run(paths, options, n_jobs, isolate, timeout)

    return _iter_paths(videos, chunk, start_run, on_error)


def _iter_paths(videos, chunk, start_run, on_error):
    begin = 0
    while begin < len(videos):
        try:
            for i, result in _pipeline(videos, begin, chunk, start_run):
                begin = i + 1
                yield i, _apply_policy(result, on_error)
        except _RunFailed as failed:
            i, cause = failed.index, failed.cause
            try:  # alone, so a crash can only be this video's
                if isinstance(cause, _WorkerDied):
                    raise cause.__cause__
                (result,) = list(start_run([videos[i]]))
            except Exception as exc:
                result = VideoDecodeError(videos[i], _failure_reason(exc))
            begin = i + 1
            yield i, _apply_policy(result, on_error)


def _failure_reason(exc):
    """Say why a worker gave no result (joblib and loky exception types)."""
    if isinstance(exc, TimeoutError | multiprocessing.TimeoutError):
        return "decoding timed out (its worker was killed)"
    codes = re.search(r"exit codes of the workers are \{(.*?)\}", str(exc))
    detail = f"exit code {codes.group(1)}" if codes else f"{type(exc).__name__}"
    return f"decoder crashed (worker process died: {detail})"


def _apply_policy(result, on_error):
    if isinstance(result, DecodedVideo):
        _warn_issues(result, stacklevel=3)
    elif on_error == "raise":
        raise result
    elif on_error == "warn":
        warnings.warn(f"skipped {result}", VideoDecodeWarning, stacklevel=3)
    return result
