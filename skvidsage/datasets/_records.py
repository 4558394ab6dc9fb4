"""YouTube-8M records to rows: the checks, and what counts as damage.

:func:`decode_records` turns the payloads of :class:`TFRecordReader` into decoded rows
and decides, per record, whether a problem is damage (which ``on_error`` handles)
or a wrong request (``features=``, ``level=``), which raises; :func:`fill_rows` writes
video-level rows into one preallocated array and :func:`note_nonfinite` notes the
rows that hold inf or NaN.
"""

from array import array

import numpy as np
import scipy.sparse as sp

from skvidsage._ondisk import NpyWriter
from skvidsage._text import plural
from skvidsage.datasets._tfrecord import (
    ProtobufDecodeError,
    decode_feature,
    example_spans,
    feature_list_spans,
    sequence_example_spans,
)

YOUTUBE8M_N_CLASSES = 3862
_DAMAGED = "the record's payload is damaged, or is not a YouTube-8M example"


class _Mismatch(ValueError):
    """A record that does not match the request, or cannot be YouTube-8M at all.

    ``damaged`` means the latter; otherwise :func:`decode_records` decides whether the
    request or the record is wrong. ``hint`` names the level the record suits.
    """

    def __init__(self, reason, hint="", damaged=False):
        super().__init__(reason)
        self.hint, self.damaged = hint, damaged


class Labels:
    """Accumulates ids and label rows (CSR index lists) over records."""

    def __init__(self, class_index):
        self.class_index = class_index
        self.ids, self.indices, self.indptr = [], array("i"), array("i", [0])

    def check(self, payload, spans, where):
        """Return ``(id, label columns)`` of a record, without adding it.

        Every YouTube-8M record, of either level, has an ``id``: a payload without
        one is damaged, whatever ``level`` and ``features`` are.
        """
        if "id" not in spans:
            has = f"features {sorted(spans)[:8]}" if spans else "no feature at all"
            why = f"no 'id' feature, it has {has}" if payload else "empty payload"
            raise _Mismatch(why, damaged=True)
        kind, ids = decode_feature(payload, *spans["id"])
        if kind != "bytes_list" or len(ids) != 1:
            raise _Mismatch(f"'id' must hold one bytes value, got {ids!r}")
        labels = []
        if "labels" in spans:
            kind, labels = decode_feature(payload, *spans["labels"])
            if kind not in ("int64_list", None):
                raise _Mismatch(f"'labels' must be an int64_list, got {kind}")
        if self.class_index is None:
            if labels and (min(labels) < 0 or max(labels) >= YOUTUBE8M_N_CLASSES):
                bad = [i for i in labels if not 0 <= i < YOUTUBE8M_N_CLASSES]
                raise ValueError(
                    f"{where}: label {bad[0]} is outside the "
                    f"{YOUTUBE8M_N_CLASSES}-class vocabulary; pass classes=... to "
                    "keep only some classes"
                )
            columns = sorted(set(labels))
        else:
            index = self.class_index
            columns = sorted({index[i] for i in labels if i in index})
        return ids[0].decode("utf-8", "replace"), columns

    def add(self, video_id, columns):
        self.ids.append(video_id)
        self.indices.extend(columns)
        self.indptr.append(len(self.indices))

    def target(self, n_columns):
        n = len(self.ids)
        indices = np.frombuffer(self.indices, dtype=np.int32).copy()
        indptr = np.frombuffer(self.indptr, dtype=np.int32).copy()
        data = np.ones(indices.size, dtype=np.int32)
        return sp.csr_matrix((data, indices, indptr), shape=(n, n_columns))


def _missing(names, spans, what, other_level=None):
    missing = [name for name in names if name not in spans]
    if missing:
        hint = other_level and (
            f" (it is shaped like a {other_level}-level record: is "
            f"level={other_level!r} right for these files?)"
        )
        raise _Mismatch(
            f"missing {plural(len(missing), 'feature')} {missing}; this record "
            f"has {what} {sorted(spans)}",
            hint or "",
        )


def _check_dims(dims, name, n, new):
    """Check a feature's length against the first record's; ``new`` collects it."""
    if dims.get(name, n) != n:
        raise _Mismatch(
            f"feature {name!r} has {n} values, expected {dims[name]} as in the "
            "first record"
        )
    new[name] = n


def _video_row(payload, spans, features, dims, new):
    decoded = [decode_feature(payload, *spans[name]) for name in features]
    for name, (kind, value) in zip(features, decoded, strict=True):
        if kind == "bytes_list":
            raise _Mismatch(f"feature {name!r} is a bytes_list, not numeric")
        _check_dims(dims, name, len(value), new)
    return [value for _, value in decoded]


def _frames(payload, span, name, max_frames, dims, new):
    """Return the frames of a feature list as a 2-D array, uint8 if quantised."""
    steps = feature_list_spans(payload, *span)[:max_frames]
    decoded = [decode_feature(payload, *s) for s in steps]
    if not decoded:
        return np.empty((0, dims.get(name, 0)), dtype=np.uint8)
    kinds = {kind for kind, _ in decoded}
    if kinds == {"bytes_list"}:  # uint8-quantised frames
        values = [b"".join(value) for _, value in decoded]
    elif kinds <= {"float_list", "int64_list"}:
        values = [value for _, value in decoded]
    else:
        raise _Mismatch(f"feature list {name!r} mixes kinds {sorted(map(str, kinds))}")
    _check_dims(dims, name, len(values[0]), new)
    if any(len(value) != new[name] for value in values):
        raise _Mismatch(f"frames of {name!r} differ in length")
    if kinds == {"bytes_list"}:
        quantised = np.frombuffer(b"".join(values), dtype=np.uint8)
        return quantised.reshape(len(values), new[name])
    return np.array(values, dtype=np.float64 if "int64_list" in kinds else np.float32)


def decode_video(payload, where, features, labels, dims):
    spans = example_spans(payload)
    video = labels.check(payload, spans, where)
    if not all(name in spans for name in features):
        frame_shaped = bool(sequence_example_spans(payload)[1])  # has feature lists
        _missing(features, spans, "features", "frame" if frame_shaped else None)
    new = {}  # the lengths are committed with the record, not by a skipped one
    row = _video_row(payload, spans, features, dims, new)
    dims.update(new)
    labels.add(*video)
    return row


def decode_frames(payload, where, features, labels, dims, max_frames, table):
    context, lists = sequence_example_spans(payload)
    video = labels.check(payload, context, where)
    _missing(features, lists, "feature lists", None if lists else "video")
    new = {}
    mats = [
        _frames(payload, lists[name], name, max_frames, dims, new) for name in features
    ]
    if len({m.shape[0] for m in mats}) > 1:
        raise _Mismatch(
            f"features {features} have different frame counts "
            f"{[m.shape[0] for m in mats]}"
        )
    dims.update(new)
    labels.add(*video)
    out = np.empty((len(mats[0]), sum(m.shape[1] for m in mats)), dtype=table.dtype)
    start = 0
    for m in mats:
        dest = out[:, start : start + m.shape[1]]
        if m.dtype == np.uint8:  # dequantise by table look-up
            np.take(table, m, out=dest, mode="clip")
        else:
            dest[...] = m
        start += m.shape[1]
    return out


def decode_records(readers, limits, decode):
    """Yield ``((path, index), decode(payload, where))`` per sound record.

    A damaged payload (not protobuf, empty, no ``id``) follows ``on_error``. So does
    a record that does not match the request once a record of the load has
    matched: the request is then right and the record is the odd one out. Before
    that the request may be wrong (``features=``, ``level=``): "raise" raises a
    ValueError at once; "skip" holds the records back until one matches (they are
    then skipped as damaged), or raises the ValueError if none of the first file
    with records does, as skipping would then only hide the mistake.
    """
    matched = False
    for reader, limit in zip(readers, limits, strict=True):
        pending = []
        for index, offset, payload in reader.records(limit=limit):
            where = f"{reader.path}: record {index} at byte offset {offset}"
            try:
                result = decode(payload, where)
            except ProtobufDecodeError as exc:
                reader.report(index, offset, f"malformed protobuf: {exc}; {_DAMAGED}")
                continue
            except _Mismatch as exc:
                if exc.damaged or matched:
                    odd = "" if exc.damaged else ", unlike the records before it"
                    reader.report(index, offset, f"{exc}{odd}; {_DAMAGED}")
                elif reader.on_error == "raise":
                    fix = exc.hint or (
                        "; if the other records differ from it, this one is damaged "
                        "and on_error='skip' skips it"
                    )
                    raise ValueError(f"{where}: {exc}{fix}") from None
                else:
                    pending.append((index, offset, exc))
                continue
            for i, o, exc in pending:  # the request is right: these are damaged
                reader.report(i, o, f"{exc}, unlike record {index}; {_DAMAGED}")
            matched, pending = True, []
            yield (reader.path, index), result
        if pending:
            i, o, exc = pending[0]
            raise ValueError(
                f"{reader.path}: record {i} at byte offset {o}: {exc}{exc.hint}; "
                f"and no record of this file matches ({len(pending)} tried)"
            )


def note_nonfinite(found, values, first, locations):
    """Note in ``found`` the rows ``values[i] = data[first + i]`` with inf or NaN.

    ``locations[i]`` is the ``(path, index)`` of the row's record. The rows are
    checked in the output, after the cast to ``dtype`` (a float32 that overflows
    float16 counts), by blocks: one row at a time took 45 ms for the 14,547 videos
    of the 50 YouTube-8M validation files (8% of the load), blocks of 256, 5 ms.
    """
    finite = np.isfinite(values.reshape(len(locations), -1)).all(axis=1)
    for i in np.flatnonzero(~finite).tolist():
        path, index = locations[i]
        found.setdefault(path, []).append(f"record {index} (data[{first + i}])")


def fill_rows(rows, n_total, dims, features, dtype, nonfinite, path=None):
    """Write the video-level rows into one array, or into the ``.npy`` at ``path``.

    In memory, the array is allocated once (``n_total`` rows) and shrunk if
    records were skipped. On disk, rows are gathered in blocks of 4,096 and
    appended to an :class:`~skvidsage._ondisk.NpyWriter` (nothing mapped while
    writing, so the RSS stays at one block); the result is the file opened
    as a read-only ``np.memmap``.
    """
    data, n, block, writer = None, 0, [], None
    rows_per_block = 256 if path is None else 4096
    try:
        # a value that overflows dtype becomes inf: note_nonfinite reports it,
        # with its record, so numpy's RuntimeWarning (which names neither) is
        # silenced
        with np.errstate(over="ignore"):
            for location, row in rows:
                if data is None:  # the first record fixes the feature lengths
                    n_alloc = n_total if path is None else rows_per_block
                    data = np.empty((n_alloc, sum(dims.values())), dtype=dtype)
                    bounds = np.cumsum([0] + [dims[name] for name in features])
                    bounds = bounds.tolist()
                    if path is not None:
                        writer = NpyWriter(path, data.shape[1], dtype)
                if n == n_total:
                    path_, index = location
                    raise RuntimeError(
                        f"{path_}: record {index}: the file changed while read"
                    )
                at = n if writer is None else len(block)
                for value, a, b in zip(row, bounds[:-1], bounds[1:], strict=True):
                    data[at, a:b] = value
                n += 1
                block.append(location)
                if len(block) == rows_per_block:
                    _flush_block(data, n, block, nonfinite, writer)
                    block = []
        if data is None:
            if path is not None:
                with NpyWriter(path, 0, dtype) as empty:
                    pass
                return empty.close()
            return np.empty((0, 0), dtype=dtype)
        if block:
            _flush_block(data, n, block, nonfinite, writer)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        return writer.close()
    if n < n_total:  # records were skipped: shrink in place
        try:
            data.resize((n, data.shape[1]))
        except ValueError:  # referenced elsewhere (e.g. by a debugger)
            data = data[:n].copy()
    return data


def _flush_block(data, n, block, nonfinite, writer):
    """Check the last ``len(block)`` rows for inf/NaN; append them to ``writer``."""
    if writer is None:
        note_nonfinite(nonfinite, data[n - len(block) : n], n - len(block), block)
        return
    rows = data[: len(block)]
    note_nonfinite(nonfinite, rows, n - len(block), block)
    writer.append(rows)


def fill_frames(frames, directory, dtype, nonfinite):
    """Write the frame-level videos one after the other to ``directory``.

    ``frames`` yields ``(location, array of shape (n_frames, n_features))``.
    All frames go to ``data.npy``, and ``frame_offsets.npy`` holds where each
    video starts (``n_videos + 1`` int64): video ``i`` is rows
    ``offsets[i]:offsets[i + 1]``. Returns one read-only memmap slice per video.
    """
    writer, offsets = None, [0]
    try:
        with np.errstate(over="ignore"):  # as in fill_rows
            for location, video in frames:
                note_nonfinite(nonfinite, video[None], len(offsets) - 1, [location])
                if writer is None and video.shape[1]:
                    writer = NpyWriter(directory / "data.npy", video.shape[1], dtype)
                if video.shape[0]:
                    writer.append(video)
                offsets.append(offsets[-1] + video.shape[0])
        if writer is None:
            writer = NpyWriter(directory / "data.npy", 0, dtype)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    data = writer.close()
    np.save(directory / "frame_offsets.npy", np.asarray(offsets, dtype=np.int64))
    return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
