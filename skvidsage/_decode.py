"""Read and sample video frames with PyAV, in worker processes.

Three entry points feed :class:`skvidsage.VideoFeaturizer`:

- :func:`read_frames` decodes one file (any container and codec FFmpeg reads)
  and samples it uniformly in time, seeking past unused stretches when the
  container has an index;
- :func:`sample_frame_array` applies the same sampling rule to an in-memory
  ``(T, H, W, 3)`` uint8 array;
- :func:`iter_decoded` decodes many videos in joblib workers, ahead of the
  consumer, and yields them in input order, each as a :class:`DecodedVideo` or a
  :class:`VideoDecodeError`, so a corrupt file (or a crashing decoder) costs one
  row, never the whole run or the user's process.

**Sampling rule.** The targets are ``t_k = k / sample_rate`` for ``t_k <
duration`` (at least ``t_0 = 0``), or, for ``n_frames``, ``t_k = k * duration /
n_frames`` (the starts of ``n_frames`` equal intervals: frame 0 is always taken,
and no frame twice while ``n_frames`` <= the frame count). Each target
takes the first frame whose presentation time is ``>= t_k``; a target after the
last frame takes the last frame if it falls within that frame's display
interval. Targets may share a frame (``sample_rate`` above the frame rate), so
``n_frames`` gives exactly ``n_frames`` frames unless the stream ends before
the duration its container reports. Times are seconds from the stream's start.
"""

import math
import multiprocessing
import os
import re
import threading
import warnings
from bisect import bisect_left, bisect_right
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count

import av
import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from joblib.externals.loky import BrokenProcessPool, ProcessPoolExecutor

__all__ = [
    "DecodedVideo",
    "VideoDecodeError",
    "VideoDecodeWarning",
    "iter_decoded",
    "read_frames",
    "sample_frame_array",
]

# Seek (``seek="auto"``) only when the keyframe before the next target lies at
# least this many seconds past the last decoded frame. Measured on the clips in
# ../shared/data/videos and generated 320x240 clips: a seek costs about as
# much as decoding 2-5 frames, so skipping half a second already pays.
_SEEK_MIN_SKIP_S = 0.5
_EPS = 1e-6  # seconds; tolerance when comparing frame times with targets
_NOT_VIDEO_FORMATS = {"tty"}  # FFmpeg renders any *.txt file as ANSI "video"
_MAX_ISSUES = 5


class VideoDecodeError(ValueError):
    """A video file could not be read.

    The message is ``"<path>: <reason>"``. ``reason`` starts with one of
    ``"no such file"``, ``"not a file"``, ``"empty file (0 bytes)"``,
    ``"cannot read"``, ``"not a video"``, ``"no video stream"``,
    ``"no decodable frame"``,
    ``"damaged stream"``, ``"decoder crashed"``, ``"decoding timed out"`` or
    ``"unexpected error"``, often followed by FFmpeg's own message.

    Parameters
    ----------
    path : str
        The file, as given.
    reason : str
        What went wrong.

    Attributes
    ----------
    path : str
        The file, as given.
    reason : str
        What went wrong.

    Examples
    --------
    >>> err = VideoDecodeError("clip.mp4", "no such file")
    >>> str(err), err.reason
    ('clip.mp4: no such file', 'no such file')
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class VideoDecodeWarning(UserWarning):
    """A video decoded only partly (damaged stream), or was skipped on error."""


@dataclass(frozen=True, eq=False, repr=False)
class DecodedVideo:
    """Frames sampled from one video.

    Attributes
    ----------
    frames : ndarray of shape (n_frames, height, width, 3), dtype uint8
        RGB frames in presentation order.
    timestamps : ndarray of shape (n_frames,), dtype float64
        Presentation time of each frame in seconds from the stream's start
        (nan for an in-memory array given without ``fps``).
    fps : float
        The stream's average frame rate (nan when unknown).
    duration : float
        The stream's duration in seconds (nan when unknown).
    path : str or None
        The file decoded; None for an in-memory array.
    issues : tuple of str
        Decoder errors met on a damaged stream whose other frames decoded
        (empty for a clean decode); see ``strict`` in :func:`read_frames`.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float = math.nan
    duration: float = math.nan
    path: str | None = None
    issues: tuple = ()

    def __len__(self):
        return len(self.frames)

    def __repr__(self):
        return (
            f"DecodedVideo(path={self.path!r}, frames={self.frames.shape}, "
            f"fps={self.fps:.4g}, duration={self.duration:.4g}, "
            f"issues={len(self.issues)})"
        )


# --------------------------------------------------------------------------
# parameters and targets


def _check_sampling(sample_rate, n_frames, max_frames):
    if sample_rate is not None and n_frames is not None:
        raise ValueError("Give at most one of sample_rate and n_frames, not both.")
    if sample_rate is not None and not (
        isinstance(sample_rate, int | float | np.number)
        and not isinstance(sample_rate, bool)
        and math.isfinite(sample_rate)
        and sample_rate > 0
    ):
        raise ValueError(f"sample_rate must be a positive number, got {sample_rate!r}.")
    for name, value in (("n_frames", n_frames), ("max_frames", max_frames)):
        if value is not None and not (
            isinstance(value, int | np.integer)
            and not isinstance(value, bool)
            and value >= 1
        ):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_resize(resize):
    if resize is None:
        return None
    if isinstance(resize, int | np.integer) and not isinstance(resize, bool):
        sizes = (int(resize),)
    elif isinstance(resize, tuple | list) and len(resize) == 2:
        sizes = tuple(resize)
    else:
        sizes = ()
    if not sizes or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1
        for s in sizes
    ):
        raise ValueError(
            "resize must be None, a positive int (shorter side) or a pair of "
            f"positive ints (height, width), got {resize!r}."
        )
    return tuple(int(s) for s in sizes)


def _output_size(resize, height, width):
    """Return the (height, width) of the output frames."""
    if resize is None:
        return height, width
    if len(resize) == 2:
        return resize
    scale = resize[0] / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _targets(duration, sample_rate, n_frames):
    """Return an iterator of target times (seconds), or None for every frame."""
    if n_frames is not None:
        # interval starts: with "first frame at or after the target" this
        # takes frame 0 and never repeats a frame when n_frames <= n_total
        return iter(np.arange(n_frames) * (duration / n_frames))
    if sample_rate is None:
        return None
    if not math.isfinite(duration):
        return (k / sample_rate for k in count())
    n = max(1, math.ceil(duration * sample_rate - _EPS))
    return iter(np.arange(n) / sample_rate)


# --------------------------------------------------------------------------
# FFmpeg logs (decoder errors that FFmpeg conceals are only logged)

_log_lock = threading.Lock()
_log_state = {"users": 0, "level": None, "skip_repeated": True}


@contextmanager
def _capture_ffmpeg_errors():
    """Collect this thread's FFmpeg messages; PyAV's log level is restored."""
    with _log_lock:
        if _log_state["users"] == 0:
            _log_state["level"] = av.logging.get_level()
            _log_state["skip_repeated"] = av.logging.get_skip_repeated()
            if _log_state["level"] is None or _log_state["level"] < av.logging.ERROR:
                av.logging.set_level(av.logging.ERROR)
            # else "repeated n times" arrives with the next file's messages
            av.logging.set_skip_repeated(False)
        _log_state["users"] += 1
    try:
        with av.logging.Capture(local=True) as logs:
            yield logs
    finally:
        with _log_lock:
            _log_state["users"] -= 1
            if _log_state["users"] == 0:
                av.logging.set_level(_log_state["level"])
                av.logging.set_skip_repeated(_log_state["skip_repeated"])


def _ffmpeg_message(exc):
    """FFmpeg's reason for ``exc`` without the file name PyAV appends."""
    message = getattr(exc, "strerror", None) or str(exc)
    log = getattr(exc, "log", None)
    if log and log[2].strip() and log[2].strip() not in message:
        message = f"{message} ({log[2].strip()})"
    return message


# --------------------------------------------------------------------------
# decoding


class _FrameSource:
    """Decoded frames of one stream with best-effort times; seekable.

    Times follow FFmpeg's ``best_effort_timestamp`` rule: use ``pts`` unless
    it went backwards more often than ``dts`` (AVI files with packed
    B-frames). Decoder errors are recorded and decoding goes on with the next
    packet; a demuxer error ends the stream.
    """

    def __init__(self, container, stream, fps, logs):
        self.container, self.stream, self.fps = container, stream, fps
        self.tb = (stream.time_base.numerator, stream.time_base.denominator)
        self.start = stream.start_time or 0
        self.errors, self.logs, self.muted = [], logs, None
        self._packets = container.demux(stream)
        self._ready = deque()
        self._faulty_pts = self._faulty_dts = 0
        self._last_pts = self._last_dts = None
        self._last_t = self.end = self._returned = None
        self.done = False

    def seconds(self, ts):
        return (ts - self.start) * self.tb[0] / self.tb[1]

    def _time(self, frame):
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self._faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        if pts is not None:
            self._faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        if pts is not None and (self._faulty_pts <= self._faulty_dts or dts is None):
            t = self.seconds(pts)
        elif dts is not None:
            t = self.seconds(dts)
        elif self._last_t is None:
            t = 0.0
        else:  # no time stamp at all: one frame interval after the last one
            t = self._last_t + (1 / self.fps if self.fps > 0 else 0.0)
        self._last_t = t
        return t

    def _fill(self):
        try:
            packet = next(self._packets)
        except StopIteration:
            self.done = True
            return
        except av.FFmpegError as exc:
            self.errors.append(f"demuxing: {_ffmpeg_message(exc)}")
            self.done = True
            packet = None  # flush the decoder for the frames it still holds
        try:
            frames = packet.decode() if packet else self.stream.decode(None)
        except av.FFmpegError as exc:
            if self.muted is None:
                self.errors.append(f"decoding: {_ffmpeg_message(exc)}")
            return
        self._ready.extend((self._time(frame), frame) for frame in frames)

    def next(self):
        """Return the next ``(time, frame)``, or None at the end."""
        while not self._ready and not self.done:
            self._fill()
        if not self._ready:
            self.end = self._returned  # time of the stream's last frame
            return None
        item = self._ready.popleft()
        self._returned = item[0]
        return item

    def seek(self, t):
        """Go to the keyframe at or before ``t`` seconds (fault counts kept).

        Decoder errors are muted until :meth:`unmute`: frames that follow a
        keyframe in decoding order but precede it on screen may refer to
        frames before the seek point (open GOPs), which FFmpeg reports.
        """
        if self.muted is None:
            self.muted = len(self.logs)
        offset = self.start + math.floor(t * self.tb[1] / self.tb[0])
        self.container.seek(offset, stream=self.stream, backward=True)
        self._packets = self.container.demux(self.stream)
        self._ready.clear()
        self._last_pts = self._last_dts = self._last_t = None
        self.done = False

    def unmute(self):
        """Drop the decoder errors logged since the first unmuted seek."""
        if self.muted is not None:
            del self.logs[self.muted :]
            self.muted = None


def _keyframe_times(source):
    """Sorted keyframe times (s) from the container's index; [] if none."""
    try:
        entries = source.stream.index_entries
        times = [source.seconds(e.timestamp) for e in entries if e.is_keyframe]
    except (AttributeError, av.FFmpegError):
        return []
    return sorted(times)


class _SeekMisled(Exception):
    """Seeking cannot reach a target's frame; decode without seeking."""


def _select(source, targets, frames, times, *, max_frames, convert, min_skip):
    """Append to ``frames``/``times`` the frames for ``targets`` (None: all).

    With ``min_skip`` (seconds) not None, seek to the keyframe before the next
    target when it lies more than ``min_skip`` past the last decoded frame.
    After a seek the first frame must not be later than the target (decoders
    with a delay, e.g. packed B-frames, hold frames back); if it is, seek to
    the keyframe before, so the frames equal those of a sequential decode.
    """
    limit = max_frames or math.inf

    def take(t, frame):
        if frame.is_corrupt:
            source.errors.append(f"corrupt frame at {t:.3f} s")
        return convert(frame)

    if targets is None:
        while len(frames) < limit and (item := source.next()) is not None:
            frames.append(take(*item))
            times.append(item[0])
        return
    keyframes = _keyframe_times(source) if min_skip is not None else []
    target = next(targets, None)
    last = None  # last (time, frame) decoded
    sought_target = seek_time = landing = None
    while target is not None and len(frames) < limit:
        position = last[0] if last is not None else 0.0
        i = bisect_right(keyframes, target + _EPS) - 1
        if (
            target != sought_target
            and i >= 0
            and keyframes[i] > position + min_skip
            and math.isfinite(target)
        ):
            sought_target, seek_time, landing = target, target, position
            source.seek(seek_time)
        item = source.next()
        if item is None:
            break
        t, frame = item
        if last is None and keyframes and sought_target is None:
            # index times may be decode times (MP4): shift them by the first
            # frame's delay to estimate presentation times
            keyframes = [k + max(0.0, t - keyframes[0]) for k in keyframes]
        if landing is not None:
            if t > target + _EPS:  # landed past the target: one keyframe back
                j = bisect_left(keyframes, seek_time - _EPS) - 1
                if j < 0:
                    raise _SeekMisled
                seek_time = keyframes[j]
                source.seek(seek_time)
                continue
            if t < landing - _EPS:  # landed behind us: the index misleads
                keyframes = []
            landing = None
        if t + _EPS >= target:
            source.unmute()
            array = take(t, frame)
            while target is not None and t + _EPS >= target and len(frames) < limit:
                frames.append(array)
                times.append(t)
                target = next(targets, None)
        last = item
    source.unmute()
    if target is not None and last is not None and len(frames) < limit:
        # targets after the last frame: within its display interval, or the
        # first target of a stream whose frames all precede it
        span = 1 / source.fps if source.fps > 0 else 0.0
        array = None
        while (
            target is not None
            and len(frames) < limit
            and (not frames or target < last[0] + span - _EPS)
        ):
            array = take(*last) if array is None else array
            frames.append(array)
            times.append(last[0])
            target = next(targets, None)


def _stream_duration(container, stream):
    """Return (seconds, whether the header gives this stream's own duration)."""
    if stream.duration is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base), True
    tag = (stream.metadata or {}).get("DURATION")  # Matroska per-stream tag
    if tag:
        try:
            h, m, s = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(s), True
        except ValueError:
            pass
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base, False
    return math.nan, False


def _open(path):
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError as exc:
        if isinstance(exc, FileNotFoundError):
            raise VideoDecodeError(path, "no such file") from None
        if isinstance(exc, PermissionError):
            raise VideoDecodeError(path, "cannot read: permission denied") from None
        raise VideoDecodeError(path, f"not a video: {_ffmpeg_message(exc)}") from None
    if container.format.name in _NOT_VIDEO_FORMATS:
        container.close()
        raise VideoDecodeError(
            path, f"not a video: FFmpeg reads it as {container.format.long_name}"
        )
    streams = [
        s
        for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        container.close()
        raise VideoDecodeError(path, "no video stream")
    stream = streams[0]
    if stream.codec_context is None:
        container.close()
        raise VideoDecodeError(
            path, "no decodable frame: FFmpeg has no decoder for its codec"
        )
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = 1  # parallelism comes from n_jobs
    return container, stream


def _read_video(
    path,
    *,
    sample_rate=None,
    n_frames=None,
    max_frames=None,
    resize=None,
    strict=False,
    seek="auto",
):
    """:func:`read_frames` without parameter checks or warnings."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "no such file")
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "not a file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    min_skip = {"auto": _SEEK_MIN_SKIP_S, True: 0.0, False: None}[seek]
    sampling = (sample_rate, n_frames, max_frames)
    with _capture_ffmpeg_errors() as logs:
        try:
            frames, times, errors, fps, duration = _decode(
                path, sampling, resize, min_skip, logs
            )
        except _SeekMisled:
            del logs[:]
            frames, times, errors, fps, duration = _decode(
                path, sampling, resize, None, logs
            )
    errors += [
        f"{name}: {message.strip()}" if name else message.strip()
        for level, name, message in logs
        if level <= av.logging.ERROR
    ]
    issues = tuple(dict.fromkeys(errors))[:_MAX_ISSUES]
    if len(errors) > len(issues):
        issues += (f"... {len(errors)} decoder errors in all",)
    if not frames:
        detail = f": {issues[0]}" if issues else ""
        raise VideoDecodeError(path, f"no decodable frame{detail}")
    if issues and strict:
        raise VideoDecodeError(path, f"damaged stream: {'; '.join(issues)}")
    return DecodedVideo(
        frames=np.stack(frames),
        timestamps=np.asarray(times, dtype=np.float64),
        fps=fps,
        duration=duration,
        path=path,
        issues=issues,
    )


def _decode(path, sampling, resize, min_skip, logs):
    """Open ``path`` and decode the sampled frames; errors are collected."""
    sample_rate, n_frames, max_frames = sampling
    container, stream = _open(path)
    with container:
        fps = float(stream.average_rate or stream.guessed_rate or math.nan)
        duration, own_duration = _stream_duration(container, stream)
        if n_frames is not None and not math.isfinite(duration):
            duration = _decoded_duration(path, fps)
        shape = []  # the first frame's output size; later frames follow it

        def convert(frame):
            if not shape:
                shape.extend(_output_size(resize, frame.height, frame.width))
            return frame.to_ndarray(
                format="rgb24", height=shape[0], width=shape[1], interpolation="AREA"
            )

        source = _FrameSource(container, stream, fps, logs)
        frames, times = [], []
        try:
            _select(
                source,
                _targets(duration, sample_rate, n_frames),
                frames,
                times,
                max_frames=max_frames,
                convert=convert,
                min_skip=min_skip,
            )
        except av.FFmpegError as exc:  # a failing seek or conversion
            if min_skip is not None:
                raise _SeekMisled from exc
            source.errors.append(_ffmpeg_message(exc))
    if source.end is not None and own_duration:
        end = source.end + (1 / fps if fps > 0 else 0.0)
        if duration - end > max(1.0, 0.05 * duration):
            source.errors.append(
                f"the stream ends at {end:.2f} s of the {duration:.2f} s its "
                "header gives (truncated file?)"
            )
    return frames, times, source.errors, fps, duration


def _decoded_duration(path, fps):
    """Duration found by decoding every frame (the container does not say)."""
    container, stream = _open(path)
    with container:
        source = _FrameSource(container, stream, fps, [])
        last = None
        while (item := source.next()) is not None:
            last = item[0]
    if last is None:
        return math.nan
    return max(last + (1 / fps if fps > 0 else 0.0), _EPS)


def _warn_issues(video, stacklevel):
    if video.issues:
        warnings.warn(
            f"{video.path}: damaged stream ({len(video.frames)} frames kept): "
            f"{'; '.join(video.issues)}",
            VideoDecodeWarning,
            stacklevel=stacklevel + 1,
        )


def read_frames(
    path,
    *,
    sample_rate=None,
    n_frames=None,
    max_frames=None,
    resize=None,
    strict=False,
    seek="auto",
):
    """Decode one video file and sample its frames uniformly in time.

    See the module docstring for the sampling rule. Decoding is single-threaded
    inside FFmpeg; run many files in parallel with :func:`iter_decoded`.

    Parameters
    ----------
    path : str or os.PathLike
        Any file FFmpeg reads as video (still images give one frame).
    sample_rate : float, default=None
        Frames per second to keep (the paper's ``r``). A clip shorter than
        ``1 / sample_rate`` gives its first frame.
    n_frames : int, default=None
        Number of frames to keep, evenly spaced over the duration. At most one
        of ``sample_rate`` and ``n_frames``; neither keeps every frame.
    max_frames : int, default=None
        Keep at most this many frames (the first ones); bounds memory.
    resize : int or tuple of (int, int), default=None
        Output ``(height, width)``, or the length of the shorter side keeping
        the aspect ratio; scaled by FFmpeg (area interpolation) while
        converting to RGB, so large videos never exist at full size in RGB.
    strict : bool, default=False
        What to do when the stream is damaged but some frames decode: keep
        those frames and warn (:class:`VideoDecodeWarning` naming the file and
        the errors, also kept in ``DecodedVideo.issues``), or raise
        ``VideoDecodeError("damaged stream: ...")`` when True. FFmpeg conceals
        many bitstream errors and only logs them; those count as damage too,
        as does a stream that ends well before the duration its header gives.
        Only what is decoded is checked: sampling stops at the last target
        and seeking skips stretches, so damage there goes unseen.
    seek : {"auto", True, False}, default="auto"
        Seek to the keyframe before each target instead of decoding up to it.
        ``"auto"`` seeks when the container has an index and that keyframe is
        at least 0.5 s past the last decoded frame; True whenever it is past
        it; False never. The frames are the same in every mode.

    Returns
    -------
    DecodedVideo
        The frames, their times, and the stream's frame rate and duration.

    Raises
    ------
    VideoDecodeError
        Naming the file and the reason: no such file, empty file, not a video,
        no video stream, no decodable frame, damaged stream (``strict=True``).

    See Also
    --------
    iter_decoded : Decode many videos in worker processes.
    sample_frame_array : The same sampling for in-memory frames.

    Examples
    --------
    >>> from skvidsage._decode import read_frames
    >>> read_frames("missing.mp4", sample_rate=1)
    Traceback (most recent call last):
    ...
    skvidsage._decode.VideoDecodeError: missing.mp4: no such file
    """
    _check_sampling(sample_rate, n_frames, max_frames)
    resize = _check_resize(resize)
    if seek not in ("auto", True, False):
        raise ValueError(f"seek must be 'auto', True or False, got {seek!r}.")
    video = _read_video(
        path,
        sample_rate=sample_rate,
        n_frames=n_frames,
        max_frames=max_frames,
        resize=resize,
        strict=strict,
        seek=seek,
    )
    _warn_issues(video, stacklevel=2)
    return video


# --------------------------------------------------------------------------
# in-memory arrays


def _check_frame_array(frames, name="frames"):
    array = np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} must be a uint8 array of shape (T, H, W, 3); got a "
            f"{array.dtype} array of shape {array.shape}."
        )
    if 0 in array.shape:
        raise ValueError(f"{name} has no frames or no pixels: shape {array.shape}.")
    return array


def sample_frame_array(
    frames, *, n_frames=None, sample_rate=None, fps=None, max_frames=None, resize=None
):
    """Sample in-memory frames with the same rule as :func:`read_frames`.

    Frame ``i`` is taken to be shown at time ``i / fps``.

    Parameters
    ----------
    frames : array-like of shape (T, H, W, 3), dtype uint8
        RGB frames.
    n_frames : int, default=None
        Number of frames to keep, evenly spaced.
    sample_rate : float, default=None
        Frames per second to keep; needs ``fps``.
    fps : float, default=None
        Frame rate of ``frames``; without it the timestamps are nan.
    max_frames : int, default=None
        Keep at most this many frames (the first ones).
    resize : int or tuple of (int, int), default=None
        As in :func:`read_frames`.

    Returns
    -------
    DecodedVideo
        With ``path=None``. Without sampling or resizing, ``frames`` is the
        input array itself (no copy).

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage._decode import sample_frame_array
    >>> clip = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(3, -1)
    >>> sample_frame_array(clip, n_frames=5).frames[:, 0, 0, 0]
    array([0, 2, 4, 6, 8], dtype=uint8)
    >>> sample_frame_array(clip, sample_rate=2, fps=5).timestamps
    array([0. , 0.6, 1. , 1.6])
    """
    array = _check_frame_array(frames)
    _check_sampling(sample_rate, n_frames, max_frames)
    resize = _check_resize(resize)
    if fps is not None and not (
        isinstance(fps, int | float | np.number) and math.isfinite(fps) and fps > 0
    ):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    if sample_rate is not None and fps is None:
        raise ValueError("sample_rate needs the frame rate of the array: pass fps.")
    n = len(array)
    rate = fps if fps is not None else 1.0  # n_frames only needs relative times
    targets = _targets(n / rate, sample_rate, n_frames)
    if targets is None:
        index = np.arange(n)
    else:
        index = np.ceil(np.fromiter(targets, float) * rate - _EPS).astype(np.intp)
        index = np.clip(index, 0, n - 1)
    index = index[:max_frames]
    if len(index) != n or np.any(index != np.arange(n)):
        array = array[index]
    size = _output_size(resize, *array.shape[1:3])
    if size != array.shape[1:3]:
        array = np.stack(
            [
                av.VideoFrame.from_ndarray(np.ascontiguousarray(a)).to_ndarray(
                    format="rgb24", height=size[0], width=size[1], interpolation="AREA"
                )
                for a in array
            ]
        )
    times = index / fps if fps is not None else np.full(len(index), np.nan)
    return DecodedVideo(
        frames=array,
        timestamps=times.astype(np.float64),
        fps=float(fps) if fps is not None else math.nan,
        duration=n / fps if fps is not None else math.nan,
    )


# --------------------------------------------------------------------------
# many videos


def _decode_task(path, read_kwargs):
    """Worker body: a DecodedVideo or the VideoDecodeError, never a raise."""
    try:
        return _read_video(path, **read_kwargs)
    except VideoDecodeError as exc:
        return exc
    except Exception as exc:  # a bug or an unforeseen FFmpeg failure
        return VideoDecodeError(path, f"unexpected error: {type(exc).__name__}: {exc}")


def _kind_of(item):
    if isinstance(item, str | os.PathLike):
        return "path"
    if isinstance(item, np.ndarray) or hasattr(item, "__array__"):
        return "array"
    return None


def _check_videos(videos):
    if isinstance(videos, str | os.PathLike) or getattr(videos, "ndim", 0) == 4:
        raise TypeError("videos must be a list of videos; wrap a single one in [].")
    videos = list(videos)
    kinds = [_kind_of(v) for v in videos]
    for i, kind in enumerate(kinds):
        if kind is None or kind != kinds[0]:
            expected = {
                None: "a file path or a frame array",
                "path": "a file path like videos[0]",
                "array": "a frame array like videos[0]",
            }[None if kind is None else kinds[0]]
            raise TypeError(
                f"videos[{i}] is a {type(videos[i]).__name__}; expected {expected} "
                "(videos must be all file paths or all (T, H, W, 3) uint8 arrays)."
            )
    if kinds and kinds[0] == "array":
        videos = [_check_frame_array(v, f"videos[{i}]") for i, v in enumerate(videos)]
    return videos, (kinds[0] if kinds else "path")


class _WorkerDied(Exception):
    """The worker died while decoding the video whose result this is."""


class _RunFailed(Exception):
    """A worker died or timed out while the ``index``-th video was due."""

    def __init__(self, index, cause):
        super().__init__(index, cause)
        self.index, self.cause = index, cause


def _start_run(paths, read_kwargs, n_jobs, isolate, timeout, task=_decode_task):
    """Start ``task(path, read_kwargs)`` on ``paths`` now; iterate the results."""
    if effective_n_jobs(n_jobs) != 1:
        return Parallel(
            n_jobs=n_jobs,
            prefer=None if isolate else "threads",
            return_as="generator",
            batch_size=1,
            pre_dispatch="all",
            timeout=timeout,
        )(delayed(task)(p, read_kwargs) for p in paths)
    if not isolate:
        return (task(p, read_kwargs) for p in paths)
    # joblib runs n_jobs=1 in-process; one loky worker keeps the isolation
    try:
        futures = [_isolated_executor().submit(task, p, read_kwargs) for p in paths]
    except (BrokenProcessPool, RuntimeError):  # broken by a crash, or shut down
        executor = _isolated_executor(renew=True)
        futures = [executor.submit(task, p, read_kwargs) for p in paths]

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

    File paths are decoded by :func:`read_frames` in joblib workers (the loky
    backend unless a ``joblib.parallel_config`` backend such as Dask or Ray is
    active), ahead of the consumer, so decoding overlaps with whatever the
    caller does with each video. A worker that dies (an FFmpeg segfault)
    or hangs past ``timeout`` costs only its video, reported as ``"decoder
    crashed"`` / ``"decoding timed out"``; decoding resumes after it. (With
    several workers it is not known which video killed one, so the video the
    caller waits for is first retried alone.) In-memory arrays are sampled in
    the caller by :func:`sample_frame_array` (no decoder, nothing to isolate).

    Parameters
    ----------
    videos : list of (str or os.PathLike) or list of ndarray
        All file paths or all ``(T, H, W, 3)`` uint8 arrays.
    sample_rate, n_frames, max_frames, resize, strict, seek
        As in :func:`read_frames` (``strict`` and ``seek`` apply to files).
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
    >>> from skvidsage._decode import iter_decoded
    >>> clips = [np.zeros((50, 8, 8, 3), np.uint8), np.zeros((5, 8, 8, 3), np.uint8)]
    >>> [(i, len(v)) for i, v in iter_decoded(clips, sample_rate=1, fps=25)]
    [(0, 2), (1, 1)]
    >>> videos = iter_decoded(["nope.mp4"], on_error="skip", isolate=False)
    >>> [(i, str(v)) for i, v in videos]
    [(0, 'nope.mp4: no such file')]
    """
    _check_sampling(sample_rate, n_frames, max_frames)
    resize = _check_resize(resize)
    if on_error not in ("raise", "skip", "warn"):
        raise ValueError(
            f"on_error must be 'raise', 'skip' or 'warn', got {on_error!r}."
        )
    if seek not in ("auto", True, False):
        raise ValueError(f"seek must be 'auto', True or False, got {seek!r}.")
    if prefetch is not None and not (
        isinstance(prefetch, int | np.integer) and prefetch >= 1
    ):
        raise ValueError(f"prefetch must be a positive integer, got {prefetch!r}.")
    sampling = dict(sample_rate=sample_rate, n_frames=n_frames, max_frames=max_frames)
    videos, kind = _check_videos(videos)
    if kind == "array":
        if sample_rate is not None and fps is None:
            raise ValueError("sample_rate on frame arrays needs their fps.")
        return (
            (i, sample_frame_array(a, fps=fps, resize=resize, **sampling))
            for i, a in enumerate(videos)
        )
    read_kwargs = dict(resize=resize, strict=strict, seek=seek, **sampling)
    chunk = prefetch or max(2, 2 * effective_n_jobs(n_jobs))

    def start_run(paths):
        return _start_run(paths, read_kwargs, n_jobs, isolate, timeout)

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
