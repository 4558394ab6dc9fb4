"""Fuzz the public readers with damaged copies of real videos and TFRecords.

Every input goes through the public API in a worker process that the harness
kills when it runs past a deadline, so a hang or a dying process costs one
input, never the run:

- videos: ``skvidsage.VideoFeaturizer(n_frames=3, on_error="warn")`` on
  damaged copies of the clips in ``--videos`` and of an MPEG-TS copy of one
  of them (``--ts-from``, streams copied as they are: the shared clips are
  AVI and MP4 only); many files per ``transform`` call; a call that fails,
  dies or runs late is redone one file at a time;
- TFRecords: ``skvidsage.load_youtube8m(path, on_error="skip")`` on damaged
  copies of a few YouTube-8M video-level files in ``--yt8m``.

Mutations (``--n-per-kind`` each, on the source files in turn): ``truncate``,
``bitflip`` (1-8 bits), ``zero`` (a region), ``swap`` (two chunks of equal
length), ``overwrite`` (a region of random bytes). Special inputs (one each):
an empty file, a directory, a FIFO, a dangling symlink, a symlink loop; for
videos also an audio-only ``.mp4`` (AAC), a 1-frame video, a 4000x4000 video
(2 frames) and a PNG named ``.mp4``; for TFRecords also a video named
``.tfrecord`` and a real file followed by a record header (with a valid CRC)
that claims 2**40 bytes.

Outcomes of each input:

``error``
    An error naming the file: for videos a NaN row with a
    ``VideoDecodeWarning`` naming the file ("skipped ...") or, run alone, a
    raised ``VideoDecodeError`` naming it; for TFRecords a raised
    ``TFRecordError`` naming the file, or one of the errors
    ``load_youtube8m`` documents for paths (exactly ``FileNotFoundError`` or
    ``ValueError``) naming it.
``warned``
    A row (video) or records (TFRecord) returned with a
    ``VideoDecodeWarning`` / ``TFRecordWarning`` naming the file.
``clean``
    A result without such a warning. For videos, its cosine similarity to
    the intact clip's row is reported (``clean<0.95``: the target is 0).
``crash``
    Any other exception, the worker process dying, or a row skipped with
    the reason "unexpected error" (a bug the featurizer caught) or "decoder
    crashed" (its decoding process died).
``hang``
    Past ``--timeout`` seconds, run alone in a fresh worker (or a row
    skipped with the reason "decoding timed out").
``unnamed``
    A NaN row without a warning naming the file, or a warning/error of the
    expected type that does not name it.

For TFRecords, the records of the intact file whose bytes (framing, data and
CRCs) the mutation left untouched must all be kept with ``on_error="skip"``
(``lost``: the target is 0); ``foreign`` counts loaded records that are not
records of the intact file (damage that went unseen).

Run: ``python benchmarks/fuzz_inputs.py [--n-per-kind 1000] [--seed 0]
[--timeout 60] [--kinds video,tfrecord:bitflip,special] [--ts-from bikes.mp4]
[--json out.json]``.
The cases depend only on the seed and their index, so a smaller run is a
prefix of a bigger one.
"""

import argparse
import hashlib
import json
import math
import os
import pickle
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
VIDEOS = SHARED / "videos"
YT8M = SHARED / "yt8m"

MUTATIONS = ("truncate", "bitflip", "zero", "swap", "overwrite")
COMMON_SPECIALS = ("empty", "directory", "fifo", "dangling_symlink", "symlink_loop")
SPECIALS = {
    "video": COMMON_SPECIALS + ("audio_only", "one_frame", "huge_4000", "png_as_mp4"),
    "tfrecord": COMMON_SPECIALS + ("video_as_tfrecord", "huge_length"),
}
OUTCOMES = ("error", "warned", "clean", "crash", "hang", "unnamed")
COSINE_TARGET = 0.95
N_FRAMES = 3
N_TFRECORD_SOURCES = 3
# H.264 and AAC: the MPEG-TS copy has PES packets with a length (audio) and
# without (video), the two ways a cut TS must be told from a shorter clip
TS_FROM = "bigbuckbunny.mp4"
_HEADER = struct.Struct("<QI")


# --------------------------------------------------------------------------
# cases: deterministic mutations


@dataclass
class Case:
    """One input: where it comes from, how it was damaged, what came of it."""

    uid: int
    kind: str  # "video" or "tfrecord"
    mutation: str
    source: str | None  # the intact file (None for most special inputs)
    params: dict = field(default_factory=dict)
    touched: list = field(default_factory=list)  # damaged [start, stop) spans
    path: str = ""
    outcome: str = ""
    detail: str = ""
    cosine: float | None = None
    n_intact: int | None = None  # TFRecord: records the mutation left untouched
    n_lost: int | None = None  # ... of which load_youtube8m did not return
    n_foreign: int | None = None  # loaded records not in the intact file
    seconds: float | None = None

    @property
    def token(self):
        """The unique prefix of the file name (warnings are matched on it)."""
        return f"fz{self.kind[0]}{self.uid:07d}-"


def _log_uniform(rng, high):
    """Return an int in [1, high], log-uniformly distributed."""
    high = max(1, int(high))
    return min(high, max(1, round(math.exp(rng.uniform(0, math.log(high + 1))))))


def mutate(data, mutation, rng):
    """Return ``(damaged bytes, params, touched spans)`` for one mutation.

    ``touched`` lists the ``[start, stop)`` byte spans of ``data`` that may
    differ in the result (a truncation touches everything after the cut);
    every mutation but the truncation keeps the length.
    """
    n = len(data)
    out = bytearray(data)
    if mutation == "truncate":
        cut = rng.randrange(1, n)
        return bytes(out[:cut]), {"cut": cut}, [(cut, n)]
    if mutation == "bitflip":
        positions = sorted(rng.randrange(n) for _ in range(rng.randint(1, 8)))
        bits = [rng.randrange(8) for _ in positions]
        for pos, bit in zip(positions, bits, strict=True):
            out[pos] ^= 1 << bit
        touched = [(p, p + 1) for p in positions]
        return bytes(out), {"positions": positions, "bits": bits}, touched
    if mutation in ("zero", "overwrite"):
        length = _log_uniform(rng, n // 4)
        start = rng.randrange(0, n - length + 1)
        if mutation == "zero":
            out[start : start + length] = bytes(length)
        else:
            out[start : start + length] = rng.randbytes(length)
        return bytes(out), {"start": start, "length": length}, [(start, start + length)]
    if mutation == "swap":
        length = _log_uniform(rng, n // 8)
        a = rng.randrange(0, n - 2 * length + 1)
        b = rng.randrange(a + length, n - length + 1)
        out[a : a + length], out[b : b + length] = (
            data[b : b + length],
            data[a : a + length],
        )
        params = {"a": a, "b": b, "length": length}
        return bytes(out), params, [(a, a + length), (b, b + length)]
    raise ValueError(f"unknown mutation {mutation!r}")


def case_rng(seed, kind, mutation, index):
    """Return the random generator of one case (it depends on these only)."""
    return random.Random(f"{seed}/{kind}/{mutation}/{index}")


def _plan(kinds_filter, n_per_kind, sources):
    """Return the (kind, mutation, index) of every case, in run order."""
    plan = []
    for kind in ("video", "tfrecord"):
        if not sources.get(kind):
            continue
        for mutation in MUTATIONS + SPECIALS[kind]:
            special = mutation in SPECIALS[kind]
            if not _selected(kinds_filter, kind, mutation, special):
                continue
            count = 1 if special else n_per_kind[kind]
            plan.extend((kind, mutation, i) for i in range(count))
    return plan


def _selected(kinds_filter, kind, mutation, special):
    if not kinds_filter:
        return True
    names = {kind, mutation, f"{kind}:{mutation}"}
    if special:
        names |= {"special", f"{kind}:special"}
    return bool(names & set(kinds_filter))


def _write_case(case, workdir, sources, seed, index, cache):
    """Create the input file of ``case`` under ``workdir``; set its fields."""
    kind, mutation = case.kind, case.mutation
    ext = ".tfrecord" if kind == "tfrecord" else None
    if mutation in MUTATIONS:
        pool = sources[kind]
        case.source = str(pool[index % len(pool)])
        data = cache.setdefault(case.source, Path(case.source).read_bytes())
        damaged, case.params, case.touched = mutate(
            data, mutation, case_rng(seed, kind, mutation, index)
        )
        ext = ext or Path(case.source).suffix
        case.path = str(
            workdir / f"{case.token}{Path(case.source).stem}-{mutation}{ext}"
        )
        Path(case.path).write_bytes(damaged)
        return
    ext = ext or ".mp4"
    path = workdir / f"{case.token}{mutation}{ext}"
    case.path = str(path)
    if mutation == "empty":
        path.touch()
    elif mutation == "directory":
        path.mkdir()
    elif mutation == "fifo":
        os.mkfifo(path)
    elif mutation == "dangling_symlink":
        os.symlink(f"{case.token}missing-target{ext}", path)
    elif mutation == "symlink_loop":
        os.symlink(path.name, path)  # points at itself: ELOOP
    elif mutation == "video_as_tfrecord":
        case.source = str(sources["video"][0]) if sources.get("video") else None
        if case.source is None:
            path.write_bytes(_png_bytes(_real_frame(None)))
        else:
            shutil.copyfile(case.source, path)
        case.source = None  # no intact TFRecord to compare with
    elif mutation == "huge_length":
        case.source = str(sources["tfrecord"][0])
        length = struct.pack("<Q", 1 << 40)
        header = length + struct.pack("<I", _masked_crc32c(length))
        path.write_bytes(Path(case.source).read_bytes() + header + bytes(64))
        size = Path(case.source).stat().st_size
        case.touched = [(size, size + len(header) + 64)]
    else:
        _write_special_video(path, mutation, sources.get("video"))


# --------------------------------------------------------------------------
# special videos (PyAV)


def remux_to_ts(source, out):
    """Copy the audio and video streams of ``source`` into MPEG-TS ``out``."""
    import av

    with av.open(str(source)) as src, av.open(str(out), "w", format="mpegts") as dst:
        streams = {
            s.index: dst.add_stream_from_template(s)
            for s in src.streams
            if s.type in ("audio", "video")
        }
        for packet in src.demux():
            if packet.dts is not None and packet.stream.index in streams:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)  # FFmpeg turns MP4's H.264 into Annex B itself
    return Path(out)


def _real_frame(videos, size=None):
    """Return the first frame of the first clip as RGB (without: a gradient)."""
    import av
    import numpy as np

    if videos:
        with av.open(str(videos[0])) as container:
            frame = next(container.decode(video=0))
            if size is not None:
                frame = frame.reformat(width=size[1], height=size[0])
            return frame.to_ndarray(format="rgb24")
    h, w = size or (240, 320)
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], -1).astype(np.uint8)


def _encode(path, frames, codec="libx264", fps=25, options=None):
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _png_bytes(image):
    import av

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height = image.shape[1], image.shape[0]
    codec.pix_fmt = "rgb24"
    packets = codec.encode(av.VideoFrame.from_ndarray(image, format="rgb24"))
    packets += codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def _write_special_video(path, mutation, videos):
    import av
    import numpy as np

    if mutation == "audio_only":
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=44100)
            t = np.arange(44100) / 44100
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, tone.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(tone[:, start : start + 1024]),
                    format="fltp",
                    layout="mono",
                )
                frame.sample_rate, frame.pts = 44100, start
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    elif mutation == "one_frame":
        _encode(path, [_real_frame(videos)])
    elif mutation == "huge_4000":
        image = _real_frame(videos, size=(4000, 4000))
        _encode(path, [image, image[:, ::-1].copy()], options={"preset": "ultrafast"})
    elif mutation == "png_as_mp4":
        path.write_bytes(_png_bytes(_real_frame(videos)))
    else:
        raise ValueError(f"unknown special input {mutation!r}")


# --------------------------------------------------------------------------
# TFRecord framing (parsed here, independently of skvidsage)


def _masked_crc32c(data):
    import crc32c

    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def record_spans(data):
    """``[(start, stop)]`` of the framed records of an intact TFRecord file."""
    spans, offset = [], 0
    while offset < len(data):
        length, _ = _HEADER.unpack_from(data, offset)
        stop = offset + 16 + length
        if stop > len(data):
            raise ValueError(f"not an intact TFRecord file: record at {offset}")
        spans.append((offset, stop))
        offset = stop
    return spans


def intact_records(spans, touched, size):
    """Return the records whose bytes lie untouched within ``size`` bytes."""
    return [
        i
        for i, (a, b) in enumerate(spans)
        if b <= size and not any(s < b and a < t for s, t in touched)
    ]


# --------------------------------------------------------------------------
# the worker process (runs the public API; killed when late)


def _warning_list(caught):
    return [(w.category.__name__, str(w.message)) for w in caught]


def _task_video_init(state, payload):
    from skvidsage import VideoFeaturizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state["featurizer"] = VideoFeaturizer(n_frames=N_FRAMES, on_error="warn").fit(
            payload
        )
    return True


def _task_featurize(state, paths):
    """Rows of ``paths`` with the warnings, or the error transform raised."""
    from skvidsage import VideoDecodeError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rows = state["featurizer"].transform(paths)
            error = None
        except Exception as exc:
            rows = None
            error = _error_info(exc, isinstance(exc, VideoDecodeError))
    return {"rows": rows, "warnings": _warning_list(caught), "error": error}


def _error_info(exc, expected):
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "expected": bool(expected),
        "traceback": "".join(traceback.format_exception(exc)[-3:]),
    }


def _task_load(state, paths):
    """Per file: the digests of the loaded records, the warnings, the error."""
    import numpy as np

    from skvidsage import load_youtube8m
    from skvidsage.datasets import TFRecordError

    results = []
    for path in paths:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                bunch = load_youtube8m(path, on_error="skip")
                data = np.asarray(bunch.data)
                target = bunch.target.tocsr()
                digests = [
                    _record_digest(
                        vid,
                        data[i],
                        target.indices[target.indptr[i] : target.indptr[i + 1]],
                    )
                    for i, vid in enumerate(bunch.ids)
                ]
                error = None
            except Exception as exc:
                digests = None
                documented = type(exc) in (FileNotFoundError, ValueError)
                error = _error_info(exc, isinstance(exc, TFRecordError) or documented)
        results.append(
            {
                "digests": digests,
                "warnings": _warning_list(caught),
                "error": error,
                "seconds": time.perf_counter() - start,
            }
        )
    return results


def _record_digest(vid, row, labels):
    h = hashlib.blake2b(digest_size=12)
    h.update(str(vid).encode())
    h.update(row.tobytes())
    h.update(labels.astype("<i8").tobytes())
    return h.hexdigest()


def _task_selftest(state, payload):
    """Misbehave on purpose (tests of the harness): sleep, or die."""
    if payload == "exit":
        os._exit(3)
    time.sleep(float(payload))
    return payload


_TASKS = {
    "selftest": _task_selftest,
    "video_init": _task_video_init,
    "featurize": _task_featurize,
    "load": _task_load,
}


def _send(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _worker_main():
    """Serve tasks on stdin; replies go to the original stdout (fd 1)."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints (FFmpeg, libraries) go to the log
    requests = sys.stdin.buffer
    state = {}
    while True:
        header = requests.read(8)
        if len(header) < 8:
            return
        task, payload = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))
        try:
            reply = ("ok", _TASKS[task](state, payload))
        except Exception as exc:  # a bug of the task itself
            reply = ("raised", _error_info(exc, False))
        _send(replies, reply)


class WorkerDied(Exception):
    """The worker process exited while running a task."""


class WorkerLate(Exception):
    """The worker ran past the deadline and was killed."""


class Worker:
    """A ``python fuzz_inputs.py --worker`` process in its own session.

    On a deadline or a death the whole session (the worker and its decoding
    processes) is killed; the next call starts a fresh worker.
    """

    def __init__(self, log_path, init=None, init_timeout=300):
        self.log_path, self.init, self.init_timeout = log_path, init, init_timeout
        self.proc = None
        self.starts = 0

    def _start(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env=env,
                cwd=str(ROOT),
            )
        self.starts += 1
        if self.init is not None:
            task, payload = self.init
            try:
                self._call(task, payload, self.init_timeout)
            except (WorkerLate, WorkerDied) as exc:  # not the input's fault
                raise RuntimeError(f"the worker did not start: {exc}") from exc

    def call(self, task, payload, timeout):
        """Run one task; raise WorkerLate or WorkerDied when it fails so."""
        if self.proc is None:
            self._start()
        return self._call(task, payload, timeout)

    def _call(self, task, payload, timeout):
        deadline = time.monotonic() + timeout
        try:
            _send(self.proc.stdin, (task, payload))
            size = struct.unpack("<Q", self._read(8, deadline))[0]
            status, result = pickle.loads(self._read(size, deadline))
        except WorkerLate:
            self.kill()
            raise
        except (OSError, EOFError, struct.error, pickle.UnpicklingError) as exc:
            code = self.kill()
            try:
                log = Path(self.log_path).read_bytes()[-600:].decode(errors="replace")
            except OSError:
                log = ""
            raise WorkerDied(
                f"worker died (exit code {code}): {exc!r}; its log ends: {log!r}"
            ) from None
        if status != "ok":
            raise RuntimeError(f"worker task {task} failed: {result['traceback']}")
        return result

    def _read(self, n, deadline):
        fd, chunks = self.proc.stdout.fileno(), []
        while n > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerLate()
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError("end of the worker's output")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def kill(self):
        """Kill the worker's session; return its exit code."""
        if self.proc is None:
            return None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None
        return code

    def close(self):
        """Stop the worker (its decoding processes with it)."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.kill()


# --------------------------------------------------------------------------
# classification


def _named(case, message):
    return os.path.basename(case.path) in message


# reasons of a VideoDecodeError that are a crash or a hang in disguise: the
# featurizer turns a bug or a dying decoder process into a skipped row
_CRASH_REASONS = ("unexpected error", "decoder crashed")
_HANG_REASONS = ("decoding timed out",)


def _video_failure(case, message):
    """Return "crash", "hang" or "error" for a skipped row's message."""
    name = os.path.basename(case.path)
    reason = message.split(name, 1)[-1].lstrip(": ")
    if reason.startswith(_CRASH_REASONS):
        return "crash"
    if reason.startswith(_HANG_REASONS):
        return "hang"
    return "error"


def _attribute(warnings_, cases):
    """``{uid: [(category, message)]}`` by the unique token in each message."""
    by_token = {case.token: case.uid for case in cases}
    out, stray = {}, []
    for category, message in warnings_:
        uids = {by_token[t] for t in by_token if t in message}
        for uid in uids:
            out.setdefault(uid, []).append((category, message))
        if not uids:
            stray.append((category, message))
    return out, stray


def _classify_video(case, row, warned, reference):
    """Set the outcome of a video case from its row and its warnings."""
    import numpy as np

    decode = [m for c, m in warned if c == "VideoDecodeWarning"]
    named = [m for m in decode if _named(case, m)]
    if np.isnan(row).any():
        case.outcome = _video_failure(case, named[0]) if named else "unnamed"
        case.detail = (named or decode or ["NaN row without a warning"])[0]
        return
    if reference is not None:
        norm = float(np.linalg.norm(row) * np.linalg.norm(reference))
        case.cosine = float(row @ reference) / norm if norm > 0 else 0.0
    if named:
        case.outcome, case.detail = "warned", named[0]
    elif decode:
        case.outcome, case.detail = "unnamed", decode[0]
    else:
        case.outcome = "clean"
        others = [f"{c}: {m}" for c, m in warned]
        case.detail = others[0] if others else ""


def _classify_error(case, error):
    if error["expected"] and _named(case, error["message"]):
        case.outcome = _video_failure(case, error["message"])
    elif error["expected"]:
        case.outcome = "unnamed"
    else:
        case.outcome = "crash"
    case.detail = f"{error['type']}: {error['message']}"


def _run_video_batch(worker, cases, references, timeout, log):
    """Featurize ``cases`` in one call; on any failure, one file at a time."""
    paths = [case.path for case in cases]
    start = time.perf_counter()
    try:
        result = worker.call("featurize", paths, timeout + 3 * len(cases))
    except (WorkerLate, WorkerDied) as exc:
        log(f"  batch of {len(cases)} failed ({type(exc).__name__}); one by one")
        result = None
    if result is not None and result["error"] is None:
        per_case, stray = _attribute(result["warnings"], cases)
        ours = [w for w in stray if w[0] == "VideoDecodeWarning"]
        if stray:
            log(f"  warnings naming no input of the batch: {stray[:3]}")
        if not ours:  # else: one by one, to find whose they are
            seconds = (time.perf_counter() - start) / len(cases)
            for case, row in zip(cases, result["rows"], strict=True):
                _classify_video(
                    case, row, per_case.get(case.uid, []), references.get(case.source)
                )
                case.seconds = seconds
            return
    for case in cases:  # alone: every warning and error is this file's
        start = time.perf_counter()
        try:
            result = worker.call("featurize", [case.path], timeout)
        except WorkerLate:
            case.outcome, case.detail = "hang", f"no result after {timeout} s"
        except WorkerDied as exc:
            case.outcome, case.detail = "crash", str(exc)
        else:
            if result["error"] is not None:
                _classify_error(case, result["error"])
            else:
                _classify_video(
                    case,
                    result["rows"][0],
                    result["warnings"],
                    references.get(case.source),
                )
        case.seconds = time.perf_counter() - start


def _classify_tfrecord(case, result, intact):
    """Outcome, and kept/lost intact records, of a TFRecord case."""
    if result["error"] is not None:
        _classify_error(case, result["error"])
    else:
        tf = [m for c, m in result["warnings"] if c == "TFRecordWarning"]
        named = [m for m in tf if _named(case, m)]
        if named:
            case.outcome, case.detail = "warned", named[0]
        elif tf:
            case.outcome, case.detail = "unnamed", tf[0]
        else:
            case.outcome = "clean"
            others = [f"{c}: {m}" for c, m in result["warnings"]]
            case.detail = others[0] if others else ""
    loaded = set(result["digests"] or ())
    if intact is None:  # no intact file behind this input
        case.n_intact, case.n_lost, case.n_foreign = 0, 0, 0
        return
    digests, spans = intact
    size = os.path.getsize(case.path) if os.path.isfile(case.path) else 0
    keep = intact_records(spans, case.touched, size)
    case.n_intact = len(keep)
    case.n_lost = sum(digests[i] not in loaded for i in keep)
    case.n_foreign = len(loaded - set(digests))


def _run_tfrecord_batch(worker, cases, references, timeout, log):
    paths = [case.path for case in cases]
    try:
        results = worker.call("load", paths, timeout + 0.5 * len(cases))
    except (WorkerLate, WorkerDied) as exc:
        log(f"  batch of {len(cases)} failed ({type(exc).__name__}); one by one")
        results = [None] * len(cases)
    for case, result in zip(cases, results, strict=True):
        if result is None:
            start = time.perf_counter()
            try:
                (result,) = worker.call("load", [case.path], timeout)
            except WorkerLate:
                case.outcome, case.detail = "hang", f"no result after {timeout} s"
            except WorkerDied as exc:
                case.outcome, case.detail = "crash", str(exc)
            case.seconds = time.perf_counter() - start
            if result is None:
                continue
        else:
            case.seconds = result["seconds"]
        _classify_tfrecord(case, result, references.get(case.source))


# --------------------------------------------------------------------------
# the run


def _remove(path):
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.is_symlink() or p.exists():
        p.unlink()


def _notable(case):
    return (
        case.outcome in ("crash", "hang", "unnamed")
        or (
            case.outcome == "clean"
            and case.cosine is not None
            and case.cosine < COSINE_TARGET
        )
        or bool(case.n_lost)
        or bool(case.n_foreign)
    )


def run_fuzz(
    videos=VIDEOS,
    yt8m=YT8M,
    *,
    n_per_kind=1000,
    seed=0,
    timeout=60.0,
    kinds=None,
    batch_size=24,
    workdir=None,
    keep=None,
    n_tfrecord_sources=N_TFRECORD_SOURCES,
    ts_from=TS_FROM,
    log=print,
):
    """Run the fuzz cases; return the report (a dict of plain values).

    Parameters
    ----------
    videos, yt8m : path or None
        Directories of the intact clips and TFRecord files (None or missing:
        that input kind is left out).
    n_per_kind : int or dict
        Cases per mutation kind, or ``{"video": n, "tfrecord": m}``.
    seed : int
        The cases depend only on it (and their index).
    timeout : float
        Seconds one input may take, run alone, before it counts as a hang.
    kinds : list of str, default=None
        Keep only cases matching one of: ``video``, ``tfrecord``, a mutation
        (``bitflip``), ``special``, a special input (``fifo``), ``video:bitflip``,
        ``tfrecord:special``.
    batch_size : int
        Inputs per ``transform`` / worker call.
    workdir : path, default=None
        Where the damaged files are written (a temporary directory).
    keep : path, default=None
        Copy the files of notable cases (crash, hang, unnamed, clean rows
        below the cosine target, lost or foreign records) here.
    ts_from : str, default=TS_FROM
        The clip in ``videos`` whose MPEG-TS copy is a source too (None:
        none); the sources are the clips in name order, then that copy.
    log : callable
        Progress messages.
    """
    known = {"video", "tfrecord", "special", *MUTATIONS}
    known |= {f"{k}:{m}" for k in SPECIALS for m in (*MUTATIONS, "special")}
    known |= {f"{k}:{m}" for k, names in SPECIALS.items() for m in names}
    known |= {m for names in SPECIALS.values() for m in names}
    unknown = sorted(set(kinds or ()) - known)
    if unknown:
        raise ValueError(f"unknown --kinds {unknown}; known: {sorted(known)}")
    if isinstance(n_per_kind, int):
        n_per_kind = {"video": n_per_kind, "tfrecord": n_per_kind}
    sources = {
        "video": sorted(p for p in Path(videos).iterdir() if p.is_file())
        if videos is not None and Path(videos).is_dir()
        else [],
        "tfrecord": sorted(Path(yt8m).glob("*.tfrecord"))[:n_tfrecord_sources]
        if yt8m is not None and Path(yt8m).is_dir()
        else [],
    }
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    own_tmp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="skvidsage-fuzz-") if own_tmp else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if ts_from and sources["video"]:
        clip = Path(videos) / ts_from
        if not clip.is_file():
            raise ValueError(f"ts_from={ts_from!r}: no such clip in {videos}")
        (workdir / "sources").mkdir(exist_ok=True)
        ts = workdir / "sources" / f"{clip.stem}.ts"
        sources["video"].append(remux_to_ts(clip, ts))
    plan = _plan(kinds, n_per_kind, sources)
    files = workdir / "inputs"
    files.mkdir(exist_ok=True)
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    cases, worker_starts = [], {}
    try:
        for kind in ("video", "tfrecord"):
            todo = [(m, i) for k, m, i in plan if k == kind]
            if not todo:
                continue
            cases_kind, starts = _run_kind(
                kind,
                todo,
                sources,
                seed,
                timeout,
                batch_size,
                files,
                workdir,
                keep,
                log,
            )
            cases.extend(cases_kind)
            worker_starts[kind] = starts
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    return {
        "config": {
            "n_per_kind": n_per_kind,
            "seed": seed,
            "timeout": timeout,
            "kinds": kinds,
            "batch_size": batch_size,
            "n_frames": N_FRAMES,
            "videos": [str(p) for p in sources["video"]],
            "tfrecords": [str(p) for p in sources["tfrecord"]],
        },
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "elapsed_s": elapsed,
        "worker_starts": worker_starts,
        "rows": summarize(cases),
        "notable": [asdict(c) for c in cases if _notable(c)],
        "cases": [asdict(c) for c in cases],
    }


def _run_kind(
    kind, todo, sources, seed, timeout, batch_size, files, workdir, keep, log
):
    """Run the cases of one input kind in one worker; return them."""
    log_path = workdir / f"worker-{kind}.log"
    references, cache = {}, {}
    if kind == "video":
        init = ("video_init", [str(p) for p in sources["video"]])
        worker = Worker(log_path, init=init)
        run_batch = _run_video_batch
    else:
        worker = Worker(log_path)
        run_batch = _run_tfrecord_batch
    cases, uid = [], 0
    try:
        references = _references(kind, worker, sources[kind], timeout)
        start = time.perf_counter()
        for lo in range(0, len(todo), batch_size):
            batch = []
            for mutation, index in todo[lo : lo + batch_size]:
                case = Case(uid=uid, kind=kind, mutation=mutation, source=None)
                uid += 1
                _write_case(case, files, sources, seed, index, cache)
                batch.append(case)
            run_batch(worker, batch, references, timeout, log)
            for case in batch:
                if keep is not None and _notable(case) and os.path.isfile(case.path):
                    shutil.copy(case.path, Path(keep) / os.path.basename(case.path))
                _remove(case.path)
            cases.extend(batch)
            done = lo + len(batch)
            if done == len(todo) or (lo // batch_size) % 10 == 9:
                rate = done / (time.perf_counter() - start)
                log(f"{kind}: {done}/{len(todo)} inputs ({rate:.1f}/s)")
    finally:
        worker.close()
    return cases, worker.starts


def _references(kind, worker, paths, timeout):
    """Return the intact inputs' video rows, or TFRecord digests and spans."""
    paths = [str(p) for p in paths]
    if kind == "video":
        result = worker.call("featurize", paths, 300 + timeout)
        if result["error"] is not None or result["warnings"]:
            problems = result["error"] or result["warnings"][:3]
            raise RuntimeError(f"the intact clips do not featurize cleanly: {problems}")
        return dict(zip(paths, result["rows"], strict=True))
    results = worker.call("load", paths, 300 + timeout)
    out = {}
    for path, result in zip(paths, results, strict=True):
        if result["error"] is not None or result["warnings"]:
            problems = result["error"] or result["warnings"][:3]
            raise RuntimeError(f"{path} does not load cleanly: {problems}")
        spans = record_spans(Path(path).read_bytes())
        if len(spans) != len(result["digests"]):
            raise RuntimeError(f"{path}: {len(spans)} framed records, loaded fewer")
        out[path] = (result["digests"], spans)
    return out


# --------------------------------------------------------------------------
# report


def summarize(cases):
    """One row per (kind, mutation) and a total per kind."""
    groups = {}
    for case in cases:
        groups.setdefault((case.kind, case.mutation), []).append(case)
        groups.setdefault((case.kind, "ALL"), []).append(case)
    rows = []
    for (kind, mutation), group in groups.items():
        counts = {o: sum(c.outcome == o for c in group) for o in OUTCOMES}
        clean = [
            c.cosine for c in group if c.outcome == "clean" and c.cosine is not None
        ]
        warned = [
            c.cosine for c in group if c.outcome == "warned" and c.cosine is not None
        ]
        row = {
            "kind": kind,
            "mutation": mutation,
            "n": len(group),
            **counts,
            "clean_below_target": sum(x < COSINE_TARGET for x in clean),
            "min_cos_clean": min(clean) if clean else None,
            "min_cos_warned": min(warned) if warned else None,
        }
        if kind == "tfrecord":
            row["intact"] = sum(c.n_intact or 0 for c in group)
            row["lost"] = sum(c.n_lost or 0 for c in group)
            row["files_losing"] = sum(bool(c.n_lost) for c in group)
            row["foreign"] = sum(c.n_foreign or 0 for c in group)
        reasons = {}
        for c in group:
            if c.outcome in ("error", "crash", "unnamed"):
                key = f"{c.outcome}: {_reason(c)}"
                reasons[key] = reasons.get(key, 0) + 1
        row["reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
        times = [c.seconds for c in group if c.seconds is not None]
        row["max_s"] = max(times) if times else None
        rows.append(row)
    names = MUTATIONS + SPECIALS["video"] + SPECIALS["tfrecord"] + ("ALL",)
    order = {m: names.index(m) for m in names}
    rows.sort(key=lambda r: (r["kind"] != "video", order.get(r["mutation"], 99)))
    return rows


def _reason(case):
    """Return the head of an error's reason ("not a video", "TFRecordError")."""
    detail = case.detail
    name = os.path.basename(case.path)
    if name in detail and not detail.split(":", 1)[0].endswith("Error"):
        detail = detail.split(name, 1)[1].lstrip(": ")
    return detail.split(":", 1)[0][:60]


def format_table(report):
    """Return the report's rows as a fixed-width text table."""
    head = ["kind", "mutation", "n", *OUTCOMES, "cln<.95", "mincos_c", "mincos_w"]
    head += ["intact", "lost", "f_lose", "foreign", "max_s"]

    def fmt(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if value < 100 else f"{value:.0f}"
        return str(value)

    keys = ["kind", "mutation", "n", *OUTCOMES, "clean_below_target"]
    keys += ["min_cos_clean", "min_cos_warned", "intact", "lost", "files_losing"]
    keys += ["foreign", "max_s"]
    lines = [[fmt(row.get(k)) for k in keys] for row in report["rows"]]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    out = []
    for i, line in enumerate([head, *lines]):
        out.append(
            "  ".join(
                x.rjust(w) if j > 1 else x.ljust(w)
                for j, (x, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def totals(report, kind=None):
    """Sum the per-kind ALL rows (of one kind, or of both)."""
    rows = [
        r
        for r in report["rows"]
        if r["mutation"] == "ALL" and kind in (None, r["kind"])
    ]
    keys = [*OUTCOMES, "n", "clean_below_target", "lost", "foreign", "intact"]
    return {k: sum(r.get(k) or 0 for r in rows) for k in keys}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-kind", type=int, default=1000)
    parser.add_argument("--n-video", type=int, help="overrides --n-per-kind for videos")
    parser.add_argument("--n-tfrecord", type=int, help="... for TFRecords")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input")
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--yt8m", type=Path, default=YT8M)
    parser.add_argument("--tfrecord-sources", type=int, default=N_TFRECORD_SOURCES)
    parser.add_argument(
        "--ts-from",
        default=TS_FROM,
        help="clip copied to MPEG-TS as a source too ('' for none)",
    )
    parser.add_argument(
        "--kinds", help="comma-separated filter, e.g. video,tfrecord:swap,special"
    )
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--workdir", type=Path, help="where damaged files are written")
    parser.add_argument("--keep", type=Path, help="copy notable inputs here")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_main()
    n = {
        "video": args.n_per_kind if args.n_video is None else args.n_video,
        "tfrecord": args.n_per_kind if args.n_tfrecord is None else args.n_tfrecord,
    }
    print(
        f"load average at start: {os.getloadavg()} ({os.cpu_count()} CPUs)", flush=True
    )
    report = run_fuzz(
        args.videos,
        args.yt8m,
        n_per_kind=n,
        seed=args.seed,
        timeout=args.timeout,
        kinds=args.kinds.split(",") if args.kinds else None,
        batch_size=args.batch_size,
        workdir=args.workdir,
        keep=args.keep,
        n_tfrecord_sources=args.tfrecord_sources,
        ts_from=args.ts_from or None,
        log=lambda msg: print(msg, flush=True),
    )
    print()
    print(format_table(report))
    print()
    for row in report["rows"]:
        if row["mutation"] == "ALL":
            print(f"{row['kind']} errors by reason: {row['reasons']}")
    for case in report["notable"][:40]:
        what = f"{case['kind']}/{case['mutation']} {os.path.basename(case['path'])}"
        extra = f" cos={case['cosine']:.3f}" if case["cosine"] is not None else ""
        if case["n_lost"]:
            extra += f" lost {case['n_lost']}/{case['n_intact']} intact"
        detail = case["detail"][:300]
        print(f"notable: {what} {case['params']}: {case['outcome']}{extra}: {detail}")
    if len(report["notable"]) > 40:
        print(f"... {len(report['notable']) - 40} more notable cases (see --json)")
    print(
        f"\nelapsed {report['elapsed_s']:.1f} s; load average {report['load_start']} "
        f"at start, {report['load_end']} at the end; worker starts "
        f"{report['worker_starts']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
