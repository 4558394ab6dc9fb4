"""FFmpeg's log, collected per thread (errors that FFmpeg conceals are only logged).

PyAV forwards FFmpeg's messages only at or above its log level, which is
process-wide; :func:`_capture_ffmpeg_errors` raises it to INFO while any
thread decodes and restores it when the last one is done. INFO, not ERROR:
FFmpeg's error concealment says what it guessed at INFO only (see
:func:`skvidsage.video._damage._is_damage`).
"""

import threading
from contextlib import contextmanager

import av

_log_lock = threading.Lock()
_log_state = {"users": 0, "level": None, "skip_repeated": True}


@contextmanager
def _capture_ffmpeg_errors():
    """Collect this thread's FFmpeg messages; PyAV's log level is restored.

    >>> before = av.logging.get_level()
    >>> with _capture_ffmpeg_errors() as logs:
    ...     av.logging.get_level() >= av.logging.INFO
    True
    >>> av.logging.get_level() == before
    True
    """
    with _log_lock:
        if _log_state["users"] == 0:
            _log_state["level"] = av.logging.get_level()
            _log_state["skip_repeated"] = av.logging.get_skip_repeated()
            if _log_state["level"] is None or _log_state["level"] < av.logging.INFO:
                av.logging.set_level(av.logging.INFO)
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


def _decode_alone(codec, data, options=None):
    r"""Decode packet ``data`` alone in a fresh decoder for ``codec``.

    Returns ``(frames, errors)``: the frames, or None where decoding raised,
    and the FFmpeg error messages it logged (this decoder's, not the file's).
    ``options``: decoder options, such as ``{"flags2": "+showall"}``.

    >>> codec = av.CodecContext.create("h264", "r")
    >>> frames, errors = _decode_alone(codec, b"\x00\x00\x00\x01\x65\x88")
    >>> frames is None, len(errors) > 0
    (True, True)
    """
    context = av.CodecContext.create(codec.name, "r")
    context.extradata, context.thread_count = codec.extradata, 1
    if options:
        context.options = options
    with _capture_ffmpeg_errors() as logs:
        try:
            frames = [*context.decode(av.Packet(data)), *context.decode(None)]
        except av.FFmpegError:
            frames = None
    return frames, [message for level, _, message in logs if level <= av.logging.ERROR]
