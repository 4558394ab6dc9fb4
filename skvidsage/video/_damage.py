"""Recognise damaged or unusable video files and say what is wrong, in plain words.

:mod:`skvidsage.video._decode` decodes; this module judges what it met.
Before FFmpeg opens a path, :func:`skvidsage._paths.path_problem` rejects what
is no regular file (a FIFO would block FFmpeg until a writer comes) and
:mod:`skvidsage.video._container` reads what the container says (a cut
file, an MP4 whose index misses its media data); :func:`_ts_cut_picture`
sees an MPEG-TS file that ends inside its last picture. While decoding, a
:class:`_PacketLedger` matches the packets the demuxer hands out with the
pictures the decoder gives back: frames dropped without a word, packets whose
times disagree with the AVI index, MP4 presentation times out of order or
implausibly late, zero-filled H.264/H.265 data, and H.264 intra pictures
that end before their data does (:mod:`skvidsage.video._h264`).
Afterwards :func:`_describe` and :func:`_summarize` turn all that, and
FFmpeg's log (collected by
:func:`skvidsage.video._ffmpeg_log._capture_ffmpeg_errors`), into the issues
of ``DecodedVideo.issues``.
"""

import math
import os
import re
from bisect import bisect_left

import av

from skvidsage._text import counted, plural
from skvidsage.video._ffmpeg_log import _decode_alone
from skvidsage.video._frames import _EPS
from skvidsage.video._h264 import _UNREAD_CUT, IntraSliceCheck
from skvidsage.video._ts import ts_tail

# A packet whose picture has not come out once the decoder has output a frame
# this many frame intervals later is lost. Decoders output in presentation
# order except DivX packed B-frames (AVI), which swap neighbours: one interval
# on Megamind.avi; no clip in ../shared/data/videos or the 18 test encodes
# (x264/x265 open GOP, VP8 alt-ref, MPEG-2 TS, AV1, ...) loses a frame.
_LOST_SLACK_FRAMES = 2
# Length-prefixed H.264/H.265 (MP4, MKV) never holds 4 zero bytes in a row
# (emulation prevention; a length field gives at most 3): a run of 16 is
# zero-filled damage (a sparse, unfinished download), which the decoder may
# take silently (bigbuckbunny.mp4 zeroed at 43349-87263: no error, cosine 0.6).
_ZERO_RUN = bytes(16)
# An AVI index lists every chunk with its position (of the chunk header, 8
# bytes before the data whose position FFmpeg gives the packet) and its time.
# A demuxer that lost its place in damaged data numbers the chunks after it
# anew, so their frames come out at wrong times without an error: tree.avi
# with 300 KB zeroed gave the frame shown at 27.3 s for the target 19.73 s
# (cosine 0.90), Megamind.avi overwritten at 19092-26620 every frame one
# interval early (0.94). MP4 times and positions come from the same tables:
# no such check is possible there.
_INDEX_SHIFT = {"avi": 8}
# An MP4 takes each packet's presentation time from its tables (stts, ctts),
# and the decoder gives pictures back in presentation order, so their times
# only go up (every MP4 in ../shared/data/videos and the test encodes, B-frames
# and open GOPs included, also after seeks). A damaged ctts box breaks that
# without any error: carphone_distorted.mp4 with 38 bytes of its ctts swapped
# gave 16 pictures one interval out of order and a 2.2 s jump, so sampling
# took one frame twice and another from the wrong time (cosine 0.94). Nor
# does a decoder hold a picture back for more than 16 frames (H.264/H.265's
# largest picture buffer), so a packet shown more than _MAX_DELAY_FRAMES
# intervals after it is decoded also has a damaged time: in that file 2.2 s
# (65 intervals), where the intact clip's packets wait at most 2.
_ORDERED_FORMATS = {"mov", "mp4"}
_MAX_DELAY_FRAMES = 32
# No video is stored at more frames per second (high-speed cameras record
# faster but store the clip at a playback rate); a header that says more is
# damaged: one flipped bit of Megamind_bugy.avi's stream header (byte 135,
# in its rate field) gave 2147483647 fps, all frames at 0 s (cosine 0.42).
_MAX_FPS = 1000

# FFmpeg's error messages in plain words: (pattern, what is wrong, what it
# does to the frames); the first match wins, anything else is corrupt picture
# data (macroblock, slice, NAL, VLC, CRC errors: 99% of the 44,818 messages
# met on 300 cut, zeroed or bit-flipped copies of the clips in
# ../shared/data/videos and 18 test encodes).
_REFERENCE = re.compile(r"mmco|refer|POC|co.located|frame num gap|\bRPS\b", re.I)
_KINDS = (
    (
        _REFERENCE,
        "missing reference pictures",
        "pictures predicted from lost ones are wrong",
    ),
    (
        re.compile(r"ended prematurely|partial file|end of file", re.I),
        "the data ends early",
        "the frames after the cut are missing",
    ),
    (
        # or any other message of a demuxer (MP4, AVI, Matroska, MPEG-TS, ...)
        re.compile(
            r"EBML|packet mismatch|invalid (packet|chunk|atom)|broken header"
            r"|^(mov,mp4[^:]*|avi|matroska,webm|mpegts|flv|asf|mpeg|ogg):",
            re.I,
        ),
        "damaged container data",
        "packets may be lost or garbled",
    ),
)
_CORRUPT = ("corrupt picture data", "FFmpeg guessed the damaged parts of pictures")
# FFmpeg's error concealment (H.264, MPEG-1/2/4, H.263) logs what it guessed
# at INFO level only, and it may guess without any error: a lost slice, or
# one whose data the decoder took for valid but that ends, as decoded,
# before its picture does. 5 of the 13 files that came back silent from the
# full fuzz (docs/results.rst, check 8) logged nothing else while their
# sampled frames were decoded; none of 597 intact files logs it.
_CONCEALED = re.compile(r"^concealing \d+ DC, \d+ AC, \d+ MV errors")


def _is_damage(level, message):
    """Say whether FFmpeg's log line at ``level`` tells of damage.

    >>> _is_damage(av.logging.INFO, "concealing 2 DC, 2 AC, 2 MV errors in P frame")
    True
    >>> _is_damage(av.logging.INFO, "Reinit context to 176x144, pix_fmt: yuv420p")
    False
    """
    return level <= av.logging.ERROR or bool(
        level <= av.logging.INFO and _CONCEALED.match(message)
    )


def _ffmpeg_message(exc):
    """FFmpeg's reason for ``exc`` without the file name PyAV appends."""
    message = getattr(exc, "strerror", None) or str(exc)
    log = getattr(exc, "log", None)
    if log and log[2].strip() and log[2].strip() not in message:
        message = f"{message} ({log[2].strip()})"
    return message


# --------------------------------------------------------------------------
# the file


def _ts_cut_picture(path, stream):
    """Say how the last picture of an MPEG-TS video ``stream`` looks cut, or ''.

    For a file of whole packets whose last video PES packet states no length
    and does not end as a PES packet ends (see :func:`ts_tail`): that
    picture's data, decoded alone, fails where data is missing. Five real
    clips copied into TS (H.264, MPEG-4) cut on every packet boundary of their
    video: of 892 cuts where a picture ends, none is flagged (alone, a whole
    picture gives only missing-reference messages, left out); of the cuts
    inside a picture, 93.7-97.3% for H.264 (bikes.mp4 2,595 of 2,667) and 66%
    for MPEG-4 Part 2 (Megamind.avi 3,157 of 4,799); the rest decode alone
    without an error.
    """
    try:
        pictures = ts_tail(path, os.path.getsize(path))[1]
    except OSError:
        return ""
    data, codec = pictures.get(stream.id), stream.codec_context
    if not data or not codec.extradata:  # no headers to decode it alone with
        return ""
    frames, errors = _decode_alone(codec, data)
    failed = frames is None or any(not _REFERENCE.search(m) for m in errors)
    return (
        f"it ends inside its last picture (stream {stream.id:#x}: {len(data)} "
        "bytes of it are there, which do not decode)"
    ) * failed


# --------------------------------------------------------------------------
# the stream


class _PacketLedger:
    """Match a stream's packets with the pictures the decoder gives back.

    Every packet from a keyframe on should give a picture with its ``pts``
    (true of every clip in ../shared/data/videos and the test encodes): the
    times of those that do not, frames the decoder dropped without a word,
    are collected in ``lost``; packets with zero-filled H.264/H.265 data in
    ``zeroed``; H.264 intra pictures that end before their data does (see
    :mod:`skvidsage.video._h264`) in ``unread`` (counted in
    ``unread_untimed`` where packets have no time); ``(index time, packet
    time)`` of packets whose time is not the one the AVI index gives their
    position in ``misplaced``; times of
    packets the demuxer marks as corrupt (MPEG-TS: packets missing, as its
    continuity counters tell) in ``flagged``; in an MP4, ``(time, later
    time)`` of pictures that came out after a later one in ``disordered`` and
    ``(decoding time, presentation time)`` of packets shown implausibly long
    after they are decoded in ``delayed`` (both: a damaged table of
    presentation times). ``seconds`` turns a time stamp into seconds.
    """

    def __init__(self, stream, fps, seconds):
        tb = stream.time_base
        self.seconds, self.lost, self.zeroed = seconds, set(), set()
        self.misplaced, self.flagged, self._index = set(), set(), {}
        self.disordered, self.delayed, self.unread = set(), set(), set()
        self.unread_untimed = 0
        formats = set(stream.container.format.name.split(","))
        self._order_check = bool(formats & _ORDERED_FORMATS)
        self._max_delay = _MAX_DELAY_FRAMES / fps / tb if fps > 0 else math.inf
        shift = _INDEX_SHIFT.get(stream.container.format.name)
        if shift is not None:
            try:
                entries = stream.index_entries
                self._index = {e.pos + shift: e.timestamp for e in entries}
            except (AttributeError, av.FFmpegError):
                pass
        self._slack = _LOST_SLACK_FRAMES / fps / tb if fps > 0 else 0
        extradata = stream.codec_context.extradata or b""
        name = stream.codec_context.name
        self._zero_check = name in ("h264", "hevc") and extradata[:1] == b"\x01"
        self._slices = IntraSliceCheck(stream.codec_context) if name == "h264" else None
        self._on = True
        self.restart()

    def restart(self):
        """Forget the packets in flight (after a seek)."""
        self._floor = None  # pts of the first keyframe packet since the (re)start
        self._pending = set()  # pts of packets whose picture has not come out
        self._newest = None  # largest pts output

    def expect(self, packet):
        """Note a packet the demuxer handed out; return its time (s), or None.

        The time is that of its picture (``pts``, else ``dts``): FFmpeg's
        messages while it is decoded are about that picture.
        """
        stamp = packet.pts if packet.pts is not None else packet.dts
        when = None if stamp is None else self.seconds(stamp)
        self._check(packet, self.seconds(0) if when is None else when)
        return when

    def _check(self, packet, at):
        """:meth:`expect`'s checks; ``at``: the packet's time (s) for the issues."""
        pts = packet.pts
        stated = self._index.get(packet.pos) if self._index else None
        got = packet.dts if packet.dts is not None else pts
        if stated is not None and got is not None and got != stated:
            self.misplaced.add((self.seconds(stated), self.seconds(got)))
        if (
            self._order_check
            and pts is not None
            and packet.dts is not None
            and pts - packet.dts > self._max_delay
        ):
            self.delayed.add((self.seconds(packet.dts), self.seconds(pts)))
        if packet.is_corrupt:  # none in the real clips, in AVI, MP4 or TS
            self.flagged.add(self.seconds(got if got is not None else 0))
        data = bytes(packet) if self._zero_check or self._slices is not None else b""
        if self._zero_check and _ZERO_RUN in data:
            self.zeroed.add(at)
        elif self._slices is not None and self._slices.unread(data):
            if pts is None and packet.dts is None:  # raw H.264 gives no times
                self.unread_untimed += 1
            else:
                self.unread.add(at)
        if pts is None or not packet.size or not self._on:
            return
        if self._floor is None:
            if not packet.is_keyframe:
                return  # before the first keyframe nothing is expected
            self._floor = pts
        if pts >= self._floor:  # leading pictures of an open GOP may drop
            self._pending.add(pts)

    def account(self, frames, flushed):
        """Note the pictures a decode call gave; ``flushed`` at the end."""
        for frame in frames:
            if frame.pts is None:  # the decoder drops times: nothing to match
                self._on = False
                self._pending.clear()
                return
            self._pending.discard(frame.pts)
            if self._newest is None or frame.pts > self._newest:
                self._newest = frame.pts
            elif self._order_check:
                pair = (self.seconds(frame.pts), self.seconds(self._newest))
                self.disordered.add(pair)
        if self._pending and (flushed or self._newest is not None):
            horizon = math.inf if flushed else self._newest - self._slack
            gone = [pts for pts in self._pending if pts < horizon]
            self._pending.difference_update(gone)
            self.lost.update(self.seconds(pts) for pts in gone)


# --------------------------------------------------------------------------
# the issues


def _logged_damage(logs):
    r"""Return the ``(text, time)`` of the FFmpeg log entries that tell of damage.

    ``logs``: ``(level, name, message)`` entries, each with the time of the
    packet being decoded appended by the decoder (None, or no fourth item,
    for the demuxer's).

    >>> logs = [(av.logging.ERROR, "h264", "error while decoding MB 3 7\n", 0.5),
    ...         (av.logging.INFO, "h264", "Reinit context to 128x96\n", 0.5)]
    >>> _logged_damage(logs)
    [('h264: error while decoding MB 3 7', 0.5)]
    """
    found = []
    for level, name, message, *when in logs:
        if _is_damage(level, message):
            text = f"{name}: {message.strip()}" if name else message.strip()
            found.append((text, when[0] if when else None))
    return found


def _summarize(messages):
    """Describe FFmpeg's messages, one issue per kind, with the first as a quote.

    ``messages``: ``(text, time)`` pairs, the time (s) that of the picture
    whose packet FFmpeg was decoding, or None (the demuxer's messages); the
    issue gives the times' range, so that a user can find the damage.

    >>> (issue,) = _summarize([("h264: error A", 0.07), ("h264: error B", 1.17)])
    >>> issue.split(": ", 1)[0], issue[issue.index("(") :]
    ('corrupt picture data', '(2 FFmpeg messages at 0.07-1.17 s, first: h264: error A)')
    """
    kinds = {}
    for text, when in messages:
        kind = next((k[1:] for k in _KINDS if k[0].search(text)), _CORRUPT)
        kinds.setdefault(kind, []).append((text, when))
    issues = []
    for (what, effect), group in kinds.items():
        n, first = len(group), group[0][0]
        quote = first if len(first) <= 80 else first[:77] + "..."
        times = [when for _, when in group if when is not None]
        at = ""
        if times:
            low, high = f"{min(times):.2f}", f"{max(times):.2f}"
            at = f" at {low} s" if low == high else f" at {low}-{high} s"
        counts = counted(n, "FFmpeg message")
        issues.append(f"{what}: {effect} ({counts}{at}, first: {quote})")
    return issues


def _describe(evidence, ledger, corrupt, targets, times, fps):
    """Describe a truncation, lost frames, late targets and damaged frames.

    ``evidence``: how the file looks truncated; ``corrupt``: times of sampled
    frames decoded with errors; ``targets`` (a list, or None for every frame)
    and ``times``: the sampled times asked for and got.
    """
    found = []
    if evidence:
        found.append(f"the file looks truncated: {'; '.join(evidence)}")
    if ledger.zeroed:
        n, first = len(ledger.zeroed), min(ledger.zeroed)
        found.append(
            "zero-filled data (as in an unfinished download): "
            f"{counted(n, 'packet')} from {first:.2f} s on hold runs of zero "
            "bytes that valid H.264/H.265 data never has"
        )
    if ledger.unread or ledger.unread_untimed:
        n = len(ledger.unread) + ledger.unread_untimed
        when = "the stream gives no times"
        if ledger.unread:
            when = f"the first at {min(ledger.unread):.2f} s"
        found.append(
            "damaged picture data that FFmpeg took for valid: "
            f"{counted(n, 'intra picture')} ({when}) "
            f"{plural(n, 'ends', 'end')} before {plural(n, 'its', 'their')} data "
            f"does (the last {_UNREAD_CUT} bytes of a slice are never read, "
            "which intact H.264 data never leaves), so "
            f"{plural(n, 'it', 'they')} and the pictures predicted from "
            f"{plural(n, 'it', 'them')} may be wrong"
        )
    if ledger.misplaced:
        n = len(ledger.misplaced)
        stated, got = min(ledger.misplaced)
        found.append(
            f"{counted(n, 'packet')} came out at other times than the "
            "file's index gives (the demuxer lost its place in damaged data; "
            f"the first, which the index puts at {stated:.2f} s, came out at "
            f"{got:.2f} s): sampled frames may be the wrong ones"
        )
    if ledger.disordered or ledger.delayed:
        seen = []
        if ledger.disordered:
            n = len(ledger.disordered)
            t, later = min(ledger.disordered)
            seen.append(
                f"{counted(n, 'picture')} came out of the decoder out "
                f"of time order (the first, at {t:.2f} s, after one at "
                f"{later:.2f} s)"
            )
        if ledger.delayed:
            n = len(ledger.delayed)
            decoded, shown = min(ledger.delayed)
            seen.append(
                f"{counted(n, 'packet')} would be shown long after "
                f"{plural(n, 'it is', 'they are')} decoded (the first is shown "
                f"at {shown:.2f} s, {shown - decoded:.2f} s after its decoding "
                "time; a decoder holds a picture back for at most 16 frames)"
            )
        found.append(
            f"damaged presentation times: {' and '.join(seen)}; the file's "
            "table of them (its MP4 ctts box) is damaged, so frames sampled by "
            "time may be the wrong ones"
        )
    if ledger.flagged:
        n, first = len(ledger.flagged), min(ledger.flagged)
        found.append(
            f"{counted(n, 'packet')} that the demuxer marks as damaged "
            f"(parts of the data missing), from {first:.2f} s on"
        )
    lost = sorted(ledger.lost)
    if lost:
        found.append(_lost_text(lost, fps))
        late = []
        for target, t in zip(targets or (), times, strict=False):
            i = bisect_left(lost, target - _EPS)
            if i < len(lost) and lost[i] < t - _EPS:
                late.append(
                    f"{target:.2f} s got the frame at {t:.2f} s, not the one at "
                    f"{lost[i]:.2f} s"
                )
        if late:
            more = f" and {len(late) - 3} more" if len(late) > 3 else ""
            found.append(
                "frames sampled later than asked, as the ones asked for could "
                f"not be decoded: {', '.join(late[:3])}{more}"
            )
    if corrupt:
        n, at = len(corrupt), ", ".join(f"{t:.2f} s" for t in corrupt[:4])
        found.append(
            f"{counted(n, 'sampled frame')} decoded with errors "
            f"(FFmpeg filled in the damaged parts), at {at}{', ...' if n > 4 else ''}"
        )
    return found


def _rate_text(fps):
    """Say that the header's frame rate ``fps`` is impossible, or ''."""
    if not fps > _MAX_FPS:
        return ""
    return (
        f"impossible frame rate: the header gives {fps:.0f} frames per second "
        "(damaged header data), so the frame times, and the frames sampled "
        "by them, are wrong"
    )


def _ends_early(evidence, duration, end, unreached):
    """Add to ``evidence`` that the stream ends at ``end`` s, when it says much.

    That is when targets could not be reached, or when ``end`` falls more
    than max(1 s, 5%) before the header's ``duration``.
    """
    if not unreached and duration - end <= max(1.0, 0.05 * duration):
        return evidence
    text = f"the stream ends at {end:.2f} s"
    if unreached:
        shown = ", ".join(f"{t:.2f} s" for t in unreached[:4])
        more = f" and {len(unreached) - 4} more" if len(unreached) > 4 else ""
        text += f", so the frames for {shown}{more} could not be reached"
    return [*(evidence or [f"its header gives {duration:.2f} s"]), text]


def _lost_text(lost, fps):
    """Say 'N frames could not be decoded ...: a-b s, c s' for sorted times."""
    gap = 1.5 / fps if fps > 0 else 0.0
    runs = [[lost[0], lost[0]]]
    for t in lost[1:]:
        if t - runs[-1][1] <= gap + _EPS:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    spans = [f"{a:.2f}-{b:.2f} s" if b > a else f"{a:.2f} s" for a, b in runs[:3]]
    n = len(lost)
    return (
        f"{counted(n, 'frame')} could not be decoded (FFmpeg gave no "
        f"picture): {', '.join(spans)}{', ...' if len(runs) > 3 else ''}"
    )
