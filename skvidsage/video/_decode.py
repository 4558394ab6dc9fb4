"""Decode one video file with PyAV and sample its frames uniformly in time.

:func:`read_frames` decodes any container and codec FFmpeg reads, keeps the
frames of the sampling rule in :mod:`skvidsage.video._frames`, and seeks past unused
stretches when the container has an index. Failures raise
:class:`VideoDecodeError` naming the file and the reason; a damaged stream
whose other frames decode gives those frames and a :class:`VideoDecodeWarning`.
Many files are decoded in crash-isolated workers by
:func:`skvidsage.video._workers.iter_decoded`.
"""

import math
import os
import threading
import warnings
from bisect import bisect_left, bisect_right
from collections import deque
from contextlib import contextmanager

import av
import numpy as np

from skvidsage.video._frames import (
    _EPS,
    DecodedVideo,
    ReadOptions,
    _output_size,
    _targets,
)

__all__ = ["VideoDecodeError", "VideoDecodeWarning", "read_frames"]

# Seek (``seek="auto"``) only when the keyframe before the next target lies at
# least this many seconds past the last decoded frame. Measured on the clips in
# ../shared/data/videos and generated 320x240 clips: a seek costs about as
# much as decoding 2-5 frames, so skipping half a second already pays.
_SEEK_MIN_SKIP_S = 0.5
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


def _read_video(path, options):
    """:func:`read_frames` with checked :class:`ReadOptions`, without warnings."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "no such file")
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "not a file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    min_skip = {"auto": _SEEK_MIN_SKIP_S, True: 0.0, False: None}[options.seek]
    with _capture_ffmpeg_errors() as logs:
        try:
            frames, times, errors, fps, duration = _decode(
                path, options, min_skip, logs
            )
        except _SeekMisled:
            del logs[:]
            frames, times, errors, fps, duration = _decode(path, options, None, logs)
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
    if issues and options.strict:
        raise VideoDecodeError(path, f"damaged stream: {'; '.join(issues)}")
    return DecodedVideo(
        frames=np.stack(frames),
        timestamps=np.asarray(times, dtype=np.float64),
        fps=fps,
        duration=duration,
        path=path,
        issues=issues,
    )


def _decode(path, options, min_skip, logs):
    """Open ``path`` and decode the sampled frames; errors are collected."""
    sample_rate, n_frames = options.sample_rate, options.n_frames
    container, stream = _open(path)
    with container:
        fps = float(stream.average_rate or stream.guessed_rate or math.nan)
        duration, own_duration = _stream_duration(container, stream)
        if n_frames is not None and not math.isfinite(duration):
            duration = _decoded_duration(path, fps)
        shape = []  # the first frame's output size; later frames follow it

        def convert(frame):
            if not shape:
                shape.extend(_output_size(options.resize, frame.height, frame.width))
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
                max_frames=options.max_frames,
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

    The sampling rule is in :mod:`skvidsage.video._frames`. Decoding is single-threaded
    inside FFmpeg; run many files in parallel with
    :func:`skvidsage.video._workers.iter_decoded`.

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
    skvidsage.video._workers.iter_decoded : Decode many videos in worker processes.
    skvidsage.video._frames.sample_frame_array : The same sampling for in-memory frames.

    Examples
    --------
    >>> from skvidsage import VideoDecodeError, read_frames
    >>> try:
    ...     read_frames("missing.mp4", sample_rate=1)
    ... except VideoDecodeError as error:
    ...     print(error)
    missing.mp4: no such file
    """
    options = ReadOptions(
        sample_rate=sample_rate,
        n_frames=n_frames,
        max_frames=max_frames,
        resize=resize,
        strict=strict,
        seek=seek,
    )
    video = _read_video(path, options)
    _warn_issues(video, stacklevel=2)
    return video
