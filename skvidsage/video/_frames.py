"""Sampled frames of a video: the sampling rule, its options and its result.

:class:`DecodedVideo` holds the frames kept from one video; :class:`ReadOptions`
says which (validated once, shared by the file decoder in
:mod:`skvidsage.video._decode` and the workers in :mod:`skvidsage.video._workers`);
:func:`sample_frame_array` applies the rule to an in-memory ``(T, H, W, 3)``
uint8 array.

**Sampling rule.** The targets are ``t_k = k / sample_rate`` for ``t_k <
duration`` (at least ``t_0 = 0``), or, for ``n_frames``, ``t_k = k * duration /
n_frames`` (the starts of ``n_frames`` equal intervals: frame 0 is always taken,
and no frame twice while ``n_frames`` <= the frame count). Each target
takes the first frame whose presentation time is ``>= t_k``; a target after the
last frame takes the last frame if it falls within that frame's display
interval. Targets may share a frame (``sample_rate`` above the frame rate), so
``n_frames`` gives exactly ``n_frames`` frames unless the stream ends before
the duration its container reports (a cut AVI: the duration of its header's
frame count, so the targets stay those of the intact file; the decoder warns
of the targets it cannot reach). Times are seconds from the stream's start.
"""

import math
import os
from dataclasses import dataclass
from itertools import count

import av
import numpy as np

__all__ = [
    "DecodedVideo",
    "ReadOptions",
    "check_videos",
    "sample_frame_array",
    "sample_index",
]

_EPS = 1e-6  # seconds; tolerance when comparing frame times with targets


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
        What is wrong with a damaged stream whose other frames decoded, in
        plain words (the file looks truncated, frames could not be decoded or
        reached, FFmpeg concealed corrupt data); empty for a clean decode.
        See ``strict`` in :func:`~skvidsage.video._decode.read_frames`.
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


@dataclass(frozen=True)
class ReadOptions:
    """Which frames to keep from each video and how; checked on creation.

    Parameters
    ----------
    sample_rate, n_frames, max_frames, resize, strict, seek
        As in :func:`skvidsage.video._decode.read_frames`. ``resize`` is stored as a
        tuple of one (shorter side) or two (height, width) ints.

    Raises
    ------
    ValueError
        Naming the first invalid option.

    Examples
    --------
    >>> from skvidsage.video._frames import ReadOptions
    >>> ReadOptions(n_frames=8, resize=224).resize
    (224,)
    >>> ReadOptions(sample_rate=1, n_frames=8)
    Traceback (most recent call last):
    ...
    ValueError: Give at most one of sample_rate and n_frames, not both.
    """

    sample_rate: float | None = None
    n_frames: int | None = None
    max_frames: int | None = None
    resize: int | tuple | None = None
    strict: bool = False
    seek: bool | str = "auto"

    def __post_init__(self):
        _check_sampling(self.sample_rate, self.n_frames, self.max_frames)
        object.__setattr__(self, "resize", _check_resize(self.resize))
        if self.seek not in ("auto", True, False):
            raise ValueError(f"seek must be 'auto', True or False, got {self.seek!r}.")


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
# in-memory arrays


def check_frames(frames, name="frames", *, min_frames=1):
    """Return ``frames`` as a uint8 RGB array of shape ``(T, H, W, 3)``.

    The one validator of frame arrays (the featurizer's input, the workers'
    in-memory videos, the backbones' and detectors' batches). ``min_frames=0``
    accepts an empty batch; pixels must be there either way.
    """
    array = np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} must be a uint8 RGB array of shape (T, H, W, 3); got a "
            f"{array.dtype} array of shape {array.shape}."
        )
    if len(array) < min_frames or 0 in array.shape[1:]:
        raise ValueError(f"{name} has no frames or no pixels: shape {array.shape}.")
    return array


def check_videos(videos, *, features=False):
    """Classify a list of videos as one kind; return ``(kind, items)``.

    The one place that decides what a list of videos is, for
    :func:`~skvidsage.video._workers.iter_decoded` and
    :class:`~skvidsage.VideoFeaturizer`. ``kind`` is ``"path"`` (file paths),
    ``"frames"`` (``(T, H, W, 3)`` uint8 arrays, checked by
    :func:`check_frames`) or, with ``features=True``, ``"features"``
    (numeric ``(T, D)`` frame-feature arrays); ``None`` for an empty list.
    A single video, an item of another type, or a list that mixes kinds is a
    ``TypeError`` naming the index and what was expected.

    Examples
    --------
    >>> import numpy as np
    >>> check_videos(["a.mp4", "b.mp4"])[0]
    'path'
    >>> check_videos([np.zeros((4, 8, 8, 3), np.uint8)])[0]
    'frames'
    """
    allowed = "file paths, (T, H, W, 3) uint8 frame arrays" + (
        " or (T, D) frame features" if features else ""
    )
    if isinstance(videos, str | os.PathLike) or (
        isinstance(videos, np.ndarray) and videos.dtype != object and videos.ndim != 1
    ):
        shape = getattr(videos, "shape", None)
        raise TypeError(
            f"videos must be a list of videos ({allowed}); got a "
            f"{type(videos).__name__}"
            + (f" of shape {shape}" if shape is not None else "")
            + ". Wrap a single video in a list."
        )
    items = list(videos)
    kinds = []
    for i, item in enumerate(items):
        kinds.append(_video_kind(item, f"videos[{i}]", features, allowed))
        if kinds[-1] != kinds[0]:
            raise TypeError(
                f"videos mixes kinds: videos[0] is a {kinds[0]} item but "
                f"videos[{i}] is a {kinds[-1]} item; pass one kind per call."
            )
    return (kinds[0] if kinds else None), items


def _video_kind(item, name, features, allowed):
    if isinstance(item, str | os.PathLike):
        return "path"
    shape = getattr(item, "shape", None)
    if isinstance(item, np.ndarray) and item.ndim == 4:
        check_frames(item, name)
        return "frames"
    if features and isinstance(item, np.ndarray) and item.ndim == 2:
        if item.dtype.kind not in "fiu" or len(item) == 0:
            raise ValueError(
                f"{name}: frame features must be a numeric (T, D) array with "
                f"T >= 1; got {item.dtype} of shape {item.shape}."
            )
        return "features"
    raise TypeError(
        f"{name} is a {type(item).__name__}"
        + (f" of shape {shape}" if shape is not None else "")
        + f"; expected one of: {allowed}."
    )


def sample_frame_array(
    frames, *, n_frames=None, sample_rate=None, fps=None, max_frames=None, resize=None
):
    """Sample in-memory frames by the rule the file decoder uses.

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
        As in :func:`skvidsage.video._decode.read_frames`.

    Returns
    -------
    DecodedVideo
        With ``path=None``. Without sampling or resizing, ``frames`` is the
        input array itself (no copy).

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage.video._frames import sample_frame_array
    >>> clip = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(3, -1)
    >>> sample_frame_array(clip, n_frames=5).frames[:, 0, 0, 0]
    array([0, 2, 4, 6, 8], dtype=uint8)
    >>> sample_frame_array(clip, sample_rate=2, fps=5).timestamps
    array([0. , 0.6, 1. , 1.6])
    """
    array = check_frames(frames)
    options = ReadOptions(
        sample_rate=sample_rate, n_frames=n_frames, max_frames=max_frames, resize=resize
    )
    return _sample_array(array, options, fps)


def _sample_array(array, options, fps):
    """:func:`sample_frame_array` on a checked array with checked options."""
    sample_rate, n_frames = options.sample_rate, options.n_frames
    if fps is not None and not (
        isinstance(fps, int | float | np.number) and math.isfinite(fps) and fps > 0
    ):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    if sample_rate is not None and fps is None:
        raise ValueError("sample_rate needs the frame rate of the array: pass fps.")
    n = len(array)
    index = sample_index(
        n,
        n_frames=n_frames,
        sample_rate=sample_rate,
        fps=fps,
        max_frames=options.max_frames,
    )
    if len(index) != n or np.any(index != np.arange(n)):
        array = array[index]
    size = _output_size(options.resize, *array.shape[1:3])
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


def sample_index(n, *, n_frames=None, sample_rate=None, fps=None, max_frames=None):
    """Return the indices of the frames the sampling rule keeps from ``n``.

    Frame ``i`` is shown at ``i / fps`` (``fps`` is needed only with
    ``sample_rate``). Used for in-memory frames and for precomputed frame
    features, so that both sample like decoded files.

    Parameters
    ----------
    n : int
        Number of frames.
    n_frames, sample_rate, fps, max_frames
        As in :func:`sample_frame_array` (not checked here).

    Returns
    -------
    ndarray of shape (n_kept,), dtype intp

    Examples
    --------
    >>> from skvidsage.video._frames import sample_index
    >>> sample_index(10, n_frames=4)
    array([0, 3, 5, 8])
    >>> sample_index(3, n_frames=5)  # more targets than frames: frames repeat
    array([0, 1, 2, 2, 2])
    """
    rate = fps if fps is not None else 1.0  # n_frames only needs relative times
    targets = _targets(n / rate, sample_rate, n_frames)
    if targets is None:
        index = np.arange(n)
    else:
        index = np.ceil(np.fromiter(targets, float) * rate - _EPS).astype(np.intp)
        index = np.clip(index, 0, n - 1)
    return index[:max_frames]
