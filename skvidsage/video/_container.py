"""What a video file's container says, before and beside decoding.

A cut file states more length than it has: a RIFF or Matroska header and the
MP4 boxes give theirs (:func:`_stated_size`), and an MPEG-TS file, which
states none, is seen by :func:`skvidsage.video._ts.ts_tail`. An opened file
may be no video to decode (:func:`_format_problem`), FFmpeg's reason for not
opening one is put in plain words (:func:`_open_failure`), and an MP4 whose
index (moov) misses most of its media data says so where FFmpeg says only
that it found no video or decoded nothing (:func:`_damaged_index`).
"""

import math
import os

import av

from skvidsage.video._ts import ts_tail

_NOT_VIDEO_FORMATS = {"tty"}  # FFmpeg renders any *.txt file as ANSI "video"
_MP4_BOXES = {b"ftyp", b"mdat", b"moov", b"free", b"skip", b"wide", b"uuid"}


def _vint(data, i):
    """Read the EBML variable-length integer at ``data[i]``: (value, end, unknown)."""
    length = 9 - data[i].bit_length()
    value = int.from_bytes(data[i : i + length], "big") & ((1 << 7 * length) - 1)
    return value, i + length, value == (1 << 7 * length) - 1


def _stated_size(path, size):
    """Return where the file gives its own length and, when more, that length.

    RIFF (AVI) and Matroska headers give their length, MP4 boxes theirs: a
    cut file (an unfinished download, copy or recording) is shorter.
    ``(where, 0)`` when it fits; ``("", 0)`` for other formats (MPEG-TS has
    no such field: see :mod:`skvidsage.video._ts`).
    """
    where, need = "", 0
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                where, need = "RIFF header", int.from_bytes(head[4:8], "little") + 8
            elif head[:4] == b"\x1a\x45\xdf\xa3" and len(head) == 64:
                where = "Matroska header"
                n, i, _ = _vint(head, 4)  # the EBML header, then the Segment
                if head[i + n : i + n + 4] == b"\x18\x53\x80\x67":
                    n, i, unknown = _vint(head, i + n + 4)
                    need = 0 if unknown else i + n
            elif head[4:8] in _MP4_BOXES:
                where = "MP4 box sizes"
                need = sum(n for _, _, n, _ in _mp4_boxes(file, size))
    except (OSError, IndexError):
        return "", 0
    return where, need if need > size else 0


def _mp4_boxes(file, size):
    """Yield an MP4 file's top-level boxes, ``(type, offset, length, header)``.

    A box of length 0 runs to the end of the file (of ``size`` bytes); the
    walk stops at a length under 8 (damaged) or at a box that reaches the
    end, which may state more than the file has (a cut file).
    """
    offset = 0
    for _ in range(256):
        file.seek(offset)
        box = file.read(16)
        if len(box) < 8:
            return
        n, header = int.from_bytes(box[:4], "big"), 8
        if n == 1 and len(box) == 16:  # a 64-bit length follows
            n, header = int.from_bytes(box[8:], "big"), 16
        n = size - offset if n == 0 else n
        if n < 8:
            return
        yield box[4:8], offset, n, header
        offset += n
        if offset >= size:
            return


def _damaged_index(path):
    """Say how an MP4's index (moov) misses most of its media data, or ''.

    The index of an intact MP4 accounts for every byte of its media data
    (``mdat``; the 4 real MP4 clips, to the byte). A damaged one may describe
    no stream, or streams without packets, or have an edit list that hides
    every packet, where FFmpeg says only that it found no video or decoded
    nothing (26 files of the full fuzz run). Fragmented files (``moof``) are
    indexed as they are read: left out.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            mp4 = file.read(8)[4:] in _MP4_BOXES
            boxes = list(_mp4_boxes(file, size)) if mp4 else []
        if not boxes or any(kind == b"moof" for kind, *_ in boxes):
            return ""
        with av.open(path, metadata_errors="ignore") as container:
            entries = [e for s in container.streams for e in s.index_entries]
            hidden = sum(e.is_discard for e in entries)
    except (OSError, AttributeError, av.FFmpegError):
        return ""
    if entries and hidden == len(entries):  # intact edit lists hide a few
        return (
            "its edit list (in the MP4 moov box) hides every one of its "
            "packets, so it looks damaged; fetch or copy the file again"
        )
    indexed = sum(e.size for e in entries)
    media = sum(min(n, size - at) - h for kind, at, n, h in boxes if kind == b"mdat")
    if indexed >= media / 2:
        return ""
    return (
        f"its index (the MP4 moov box) accounts for {indexed:,} of the "
        f"{media:,} bytes of media data (mdat), so it looks damaged; fetch or "
        "copy the file again"
    )


def _no_frame(path, issues):
    """Say why no frame of ``path`` decoded: a damaged index, or its first issue.

    The index first: FFmpeg's messages about it ("missing mandatory atoms,
    broken header") do not say that the file's media data is all there.
    """
    detail = _damaged_index(path) or (issues[0] if issues else "")
    return f"no decodable frame: {detail}" if detail else "no decodable frame"


def _cut_text(path, size):
    """Say how the file at ``path`` (``size`` bytes) looks cut, or ''."""
    where, need = _stated_size(path, size)
    if need:
        return f"it should be {need} bytes long by its {where} but has {size}"
    return "" if where else ts_tail(path, size)[0]


def _format_problem(container, streams, cut):
    """Return why an opened file is no video to decode, or None.

    ``streams``: its video streams (cover pictures left out); ``cut`` as in
    :func:`_open_failure`.
    """
    name = container.format.name
    codec = streams[0].codec_context if streams else None
    if name in _NOT_VIDEO_FORMATS:
        return f"not a video: FFmpeg reads it as {container.format.long_name}"
    if name == "image2" or name.endswith("_pipe"):  # FFmpeg's still readers
        kind = {"mjpeg": "JPEG"}.get(codec.name, codec.name.upper()) if codec else ""
        return (
            f"is an image, not a video (one {kind} picture): features of one "
            "still are not a video's; pass stills as (1, H, W, 3) uint8 frame "
            "arrays instead"
        )
    if not streams and cut:
        return f"truncated or incomplete file: {cut}; fetch or copy the file again"
    if not streams:
        damaged = _damaged_index(container.name)
        return f"no video stream: {damaged}" if damaged else "no video stream"
    if codec is None:
        return "no decodable frame: FFmpeg has no decoder for its codec"
    return None


def _open_failure(path, message, *, at_end, cut):
    """Say in plain words why FFmpeg could not open a file.

    ``message`` is FFmpeg's; ``at_end`` when it met the end of the file;
    ``cut`` how the file looks truncated ("" if it does not).
    """
    found = [cut] if cut else []
    if "moov atom not found" in message and _stated_size(path, 0)[0] == "MP4 box sizes":
        found.insert(0, "its index (the MP4 moov atom) is missing")
    elif at_end:
        found.insert(0, "it ends inside its header")
    if found:
        return (
            f"truncated or incomplete file: {'; '.join(found)}, as when a "
            "download, copy or recording stops before the end; fetch or copy "
            "the file again"
        )
    if message.startswith("Invalid data found when processing input"):
        detail = message.removeprefix("Invalid data found when processing input")
        return "not a video: FFmpeg recognises no video format in it" + detail
    return f"not a video: {message}"


def _avi_header_length(container, stream, fps, duration):
    """Return the length an AVI's header frame count gives when FFmpeg's is short.

    An AVI cut before its end (and index) gets a duration FFmpeg estimates
    from what is left, but its header keeps the frame count: on the clips in
    ../shared/data/videos both agree to 1e-5 s, so half a frame interval short
    is a cut. nan when they agree, or for other formats.
    """
    header = stream.frames / fps if stream.frames > 0 and fps > 0 else math.nan
    if container.format.name == "avi" and header > duration + 0.5 / fps:
        return header
    return math.nan
