"""Decode one video file with PyAV and sample its frames uniformly in time.

:func:`read_frames` decodes any container and codec FFmpeg reads, keeps the
frames of the sampling rule in :mod:`skvidsage.video._frames` and seeks past
unused stretches when the container has an index. Failures raise
:class:`VideoDecodeError` naming the file and the reason; a damaged stream
whose other frames decode gives those frames and a :class:`VideoDecodeWarning`
that says in plain words what is wrong (judged by :mod:`._container` and
:mod:`._damage`). Many files are decoded in crash-isolated workers by
:func:`skvidsage.video._workers.iter_decoded`.
"""

import math
import os
import warnings
from bisect import bisect_left, bisect_right
from collections import deque

import av
import numpy as np

from skvidsage._paths import path_problem
from skvidsage._text import counted
from skvidsage.video._container import (
    _avi_header_length,
    _cut_text,
    _format_problem,
    _no_frame,
    _open_failure,
)
from skvidsage.video._damage import (
    _REFERENCE,
    _describe,
    _ends_early,
    _ffmpeg_message,
    _logged_damage,
    _PacketLedger,
    _rate_text,
    _summarize,
    _ts_cut_picture,
)
from skvidsage.video._ffmpeg_log import _capture_ffmpeg_errors
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


class VideoDecodeError(ValueError):
    """A video file could not be read.

    The message is ``"<path>: <reason>"``. ``reason`` starts with one of
    ``"no such file"``, ``"dangling symlink"``, ``"symlink loop"``,
    ``"not a file"`` (a directory, a FIFO, a device), ``"empty file (0
    bytes)"``, ``"cannot read"``, ``"truncated or incomplete file"``,
    ``"not a video"``, ``"is an image, not a video"``, ``"no video stream"``,
    ``"no decodable frame"``, ``"damaged stream"``, ``"decoder crashed"``,
    ``"decoding timed out"`` or ``"unexpected error"``, followed by the
    details in plain words (FFmpeg's own text at most as a short quote).

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
    """A video decoded only partly (damaged stream), or was skipped on error.

    The message is ``"<path>: damaged stream (<n> frames kept): <issues>"``
    (the issues as in ``DecodedVideo.issues``), or ``"skipped <error>"``.
    """


# --------------------------------------------------------------------------
# decoding


class _FrameSource:
    """Decoded frames of one stream with best-effort times; seekable.

    Times follow FFmpeg's ``best_effort_timestamp`` rule: use ``pts`` unless
    it went backwards more often than ``dts`` (AVI files with packed
    B-frames). Decoder errors are recorded with the time of their packet, and
    decoding goes on with the next packet; a demuxer error ends the stream.
    ``ledger`` notes the frames the decoder drops without a word.
    """

    def __init__(self, container, stream, fps, logs):
        self.container, self.stream, self.fps = container, stream, fps
        self.tb = (stream.time_base.numerator, stream.time_base.denominator)
        self.start = stream.start_time or 0
        self.errors, self.logs, self.muted = [], logs, None
        self.corrupt = []  # times of sampled frames decoded with errors
        self.ledger = _PacketLedger(stream, fps, self.seconds)
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
            message = f"{self.container.format.name}: {_ffmpeg_message(exc)}"
            self.errors.append((message, None))
            self.done = True
            packet = None  # flush the decoder for the frames it still holds
        when = self.ledger.expect(packet) if packet is not None else None
        mark = len(self.logs)
        try:
            frames = packet.decode() if packet else self.stream.decode(None)
        except av.FFmpegError as exc:
            detail = exc.log[2].strip() if getattr(exc, "log", None) else ""
            detail = detail or exc.strerror or str(exc)
            message = f"{self.stream.codec_context.name}: {detail}"
            if self.muted is None or not _REFERENCE.search(message):
                self.errors.append((message, when))
            frames = []
        # logged while this packet was decoded (one thread): each gets its time
        self.logs[mark:] = [(*log[:3], when) for log in self.logs[mark:]]
        self.ledger.account(frames, flushed=packet is None)
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

        Missing-reference errors are muted until :meth:`unmute`: frames that
        follow a keyframe in decoding order may refer to frames before the
        seek point (open GOPs), which FFmpeg reports (``mmco: unref short
        failure`` on an x264 open-GOP clip; no other message after a seek on
        the clips in ../shared/data/videos and 18 test encodes). Other errors
        are damage and count.
        """
        if self.muted is None:
            self.muted = len(self.logs)
        offset = self.start + math.floor(t * self.tb[1] / self.tb[0])
        self.container.seek(offset, stream=self.stream, backward=True)
        self._packets = self.container.demux(self.stream)
        self._ready.clear()
        self._last_pts = self._last_dts = self._last_t = None
        self.ledger.restart()
        self.done = False

    def unmute(self):
        """Drop the missing-reference errors logged since the first unmuted seek."""
        if self.muted is not None:
            self.logs[self.muted :] = [
                log for log in self.logs[self.muted :] if not _REFERENCE.search(log[2])
            ]
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
            source.corrupt.append(t)
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


# --------------------------------------------------------------------------
# files


def _open(path, cut=""):
    """Open ``path``; ``cut`` says how it looks truncated (for the errors)."""
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError as exc:
        if isinstance(exc, FileNotFoundError):
            reason = "no such file"
        elif isinstance(exc, PermissionError):
            reason = "cannot read: permission denied"
        else:
            at_end = isinstance(exc, EOFError)
            reason = _open_failure(path, _ffmpeg_message(exc), at_end=at_end, cut=cut)
        raise VideoDecodeError(path, reason) from None
    streams = [
        s
        for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic
    ]
    reason = _format_problem(container, streams, cut)
    if reason is not None:
        container.close()
        raise VideoDecodeError(path, reason)
    stream = streams[0]
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = 1  # parallelism comes from n_jobs
    return container, stream


# --------------------------------------------------------------------------
# one file


def _read_video(path, options):
    """:func:`read_frames` with checked :class:`ReadOptions`, without warnings."""
    path = os.fspath(path)
    size, problem = path_problem(path)
    if problem:
        raise VideoDecodeError(path, problem)
    cut = _cut_text(path, size)
    min_skip = {"auto": _SEEK_MIN_SKIP_S, True: 0.0, False: None}[options.seek]
    with _capture_ffmpeg_errors() as logs:
        try:
            frames, times, found, fps, duration = _decode(
                path, cut, options, min_skip, logs
            )
        except _SeekMisled:
            del logs[:]
            frames, times, found, fps, duration = _decode(
                path, cut, options, None, logs
            )
    errors = found.pop()  # the raw errors of the decode, timed
    issues = tuple(found + _summarize(errors + _logged_damage(logs)))
    if not frames:
        raise VideoDecodeError(path, _no_frame(path, issues))
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


def _decode(path, cut, options, min_skip, logs):
    """Open ``path`` and decode the sampled frames.

    Returns the frames, their times, the damage found (its last item: the
    raw errors, timed, for :func:`_summarize`), the frame rate and the duration.
    """
    sample_rate, n_frames = options.sample_rate, options.n_frames
    container, stream = _open(path, cut)
    with container:
        fps = float(stream.average_rate or stream.guessed_rate or math.nan)
        duration, own_duration = _stream_duration(container, stream)
        own_duration = own_duration or len(container.streams) == 1
        if not cut and container.format.name == "mpegts":
            cut = _ts_cut_picture(path, stream)  # cut on a packet boundary
        evidence = [cut] if cut else []
        header = _avi_header_length(container, stream, fps, duration)
        if header > duration:  # sample by it, as the intact file would be
            evidence.append(
                f"its header gives {stream.frames} frames ({header:.2f} s) but "
                f"FFmpeg finds {duration:.2f} s"
            )
            duration, own_duration = header, True
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
        targets = _targets(duration, sample_rate, n_frames)
        if targets is not None and math.isfinite(duration):
            targets = list(targets)  # finite: kept to name those not reached
        try:
            _select(
                source,
                iter(targets) if targets is not None else None,
                frames,
                times,
                max_frames=options.max_frames,
                convert=convert,
                min_skip=min_skip,
            )
        except av.FFmpegError as exc:  # a failing seek or conversion
            if min_skip is not None:
                raise _SeekMisled from exc
            source.errors.append((_ffmpeg_message(exc), None))
    end = source.end + (1 / fps if fps > 0 else 0.0) if source.end is not None else None
    asked = targets if isinstance(targets, list) else None  # None: endless
    if own_duration and end is not None and asked is not None:
        unreached = asked[len(frames) : options.max_frames]
        evidence = _ends_early(evidence, duration, end, unreached)
    found = _describe(evidence, source.ledger, source.corrupt, asked, times, fps)
    found = [text for text in [_rate_text(fps)] if text] + found
    return frames, times, [*found, source.errors], fps, duration


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
        kept = counted(len(video.frames), "frame")
        warnings.warn(
            f"{video.path}: damaged stream ({kept} kept): "
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
        Any file FFmpeg reads as video. A still image (PNG, JPEG, ...: what
        FFmpeg's image readers take, whatever the file's name) is an error,
        ``"is an image, not a video"``: one still gives a "video" feature that
        is not what the video's would be, so the mistake must not pass
        silently; pass stills as ``(1, H, W, 3)`` frame arrays instead.
        Animations (GIF, APNG) are videos.
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
        saying in plain words what is wrong, also kept in
        ``DecodedVideo.issues``), or raise ``VideoDecodeError("damaged
        stream: ...")`` when True. Damage is a file that looks truncated (with
        the targets it could not reach), frames the decoder dropped (with the
        targets that got a later frame), packets at other times than the
        AVI index gives, presentation times out of order or implausibly late
        in an MP4, packets the demuxer marks damaged, an impossible frame
        rate, zero-filled data, H.264 intra pictures whose slices leave
        their data's end unread, frames decoded with errors, errors FFmpeg
        conceals, and concealment FFmpeg logs without an error (a lost
        slice); see :mod:`skvidsage.video._damage`. A cut AVI is
        sampled by its header's length, as the intact file. Only what is
        decoded is checked: damage in stretches that sampling or seeking
        skips goes unseen, and so does damaged data the decoder takes
        without a word (H.264 in MP4 has no checksum).
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
        Naming the file and the reason (see :class:`VideoDecodeError`): no
        such file, a dangling symlink or a symlink loop, not a file (a
        directory, a FIFO, a device), empty, truncated or incomplete, not a
        video, an image, no video stream, no decodable frame, damaged stream
        (``strict=True``).

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
    >>> try:
    ...     read_frames(".", sample_rate=1)
    ... except VideoDecodeError as error:
    ...     print(error.reason)
    not a file: a directory; pass the video files in it instead
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
