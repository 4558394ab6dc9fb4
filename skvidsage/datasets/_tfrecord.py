"""TFRecord files and the ``tf.train.Example`` protobuf wire format, without TensorFlow.

A TFRecord file is a sequence of records, each framed as ``uint64 length``, ``uint32
masked_crc32c(length)``, ``data[length]``, ``uint32 masked_crc32c(data)`` (little
endian), with ``masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2**32),
``c = crc32c(x)``. YouTube-8M records hold ``Example {Features features = 1}`` (video
level) or ``SequenceExample {Features context = 1; FeatureLists feature_lists = 2}``
(frame level), where ``Features {map<string, Feature> feature = 1}``, ``FeatureLists
{map<string, FeatureList> feature_list = 1}``, ``FeatureList {repeated Feature feature
= 1}`` and ``Feature {oneof {BytesList bytes_list = 1; FloatList float_list = 2;
Int64List int64_list = 3}}``, each list being ``repeated ... value = 1``.

The decoder works on ``(start, stop)`` spans of one record's bytes, so that nested
messages are never copied and packed floats become a :func:`numpy.frombuffer` view.
"""

import os
import struct
import warnings

import numpy as np

from skvidsage._text import counted
from skvidsage.datasets._framing import _CRC, _check_header, _resync, masked_crc32c

_U64 = (1 << 64) - 1
_KINDS = {1: "bytes_list", 2: "float_list", 3: "int64_list"}
_EMPTY_FLOATS = np.empty(0, dtype="<f4")
_EMPTY_FLOATS.flags.writeable = False


class TFRecordError(ValueError):
    """A TFRecord file is truncated or corrupt, or holds a malformed record.

    Its attributes ``path``, ``offset`` (byte offset of the record's length field),
    ``index`` (0-based, counting every framed record of the file; a damaged stretch
    skipped by resynchronisation counts as one) and ``reason`` (e.g. ``"data CRC
    mismatch"``) all appear in its message.
    """

    def __init__(self, path, offset, index, reason):
        super().__init__(path, offset, index, reason)
        self.path, self.offset, self.index, self.reason = path, offset, index, reason

    def __str__(self):
        where = f"{self.path}: record {self.index} at byte offset {self.offset}"
        return f"{where}: {self.reason}"


class TFRecordWarning(UserWarning):
    """Corrupt records were skipped (``on_error="skip"``), or values are not finite."""


class ProtobufDecodeError(ValueError):
    """A record's bytes are not a valid serialized protobuf message."""


class TFRecordReader:
    """Stream the records of one TFRecord file, checking the framing and CRCs.

    Parameters
    ----------
    path : str or os.PathLike
        The TFRecord file (uncompressed).
    verify_crc : bool, default=True
        Check the CRC32C of every length field and every record. Without it, a
        damaged record is returned as it is, without any warning, and a damaged
        length is followed: the record is misread, and reading resumes (with the
        CRCs) at the next intact record once a header after it fails.
    on_error : {"raise", "skip"}, default="raise"
        On a corrupt record, raise a :class:`TFRecordError`, or skip it. A bad data
        CRC skips that record only; after a bad length CRC or a truncation, reading
        resumes at the next offset whose length and data CRCs both verify, so only
        the damaged bytes are lost. With ``"skip"``, when :meth:`records` is
        exhausted, one :class:`TFRecordWarning` names the file, the offsets, the
        reasons (with the bytes each resynchronisation skipped) and the count.

    Attributes
    ----------
    skipped : list of TFRecordError
        The problems met by the last call to :meth:`records` (``on_error="skip"``).

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "a.tfrecord")
    >>> write_tfrecord(path, [b"hello", b"world"])
    2
    >>> reader = TFRecordReader(path)
    >>> reader.count()
    2
    >>> list(reader.records())
    [(0, 0, b'hello'), (1, 21, b'world')]
    >>> tmp.cleanup()
    """

    def __init__(self, path, *, verify_crc=True, on_error="raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path = os.fspath(path)
        self.verify_crc = verify_crc
        self.on_error = on_error
        self.skipped = []

    def _headers(self, f, size, limit):
        """Yield ``(index, offset, length, reason)`` for each framed record.

        ``reason`` is None for a sound header, else (``on_error="skip"``) what is
        wrong and where reading resumed. A resync starts after the last sound header
        (whose record may be damaged too), and so that offset grows: the walk ends.
        """
        index = offset = 0
        last = -1
        while offset < size and (limit is None or index < limit):
            f.seek(offset)
            length, reason = _check_header(f.read(12), offset, size, self.verify_crc)
            if reason is None:
                yield index, offset, length, None
                last, offset = offset, offset + 16 + length
            elif self.on_error == "raise":
                raise TFRecordError(self.path, offset, index, reason)
            else:
                found = _resync(f, last + 1, size)  # CRCs even if not verify_crc
                if found is None:
                    reason += f"; skipped {size - offset} bytes: nothing intact follows"
                elif found > offset:
                    reason += f"; skipped {found - offset} bytes, resuming at the next "
                    reason += f"intact record, at byte offset {found}"
                else:  # found by the fuzzer: a swapped chunk left a record cut short
                    reason += f"; resuming at byte offset {found}, at an intact record "
                    reason += "that the record before (damaged too) ran over"
                yield index, offset, None, reason
                if found is None:
                    return
                offset = found
            index += 1

    def count(self, limit=None):
        """Count the records (up to ``limit``), reading only their 12-byte headers.

        Framed as by :meth:`records`, but without data CRCs: it may yield fewer.
        """
        with open(self.path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            return sum(r is None for *_, r in self._headers(f, size, limit))

    def report(self, index, offset, reason):
        """Raise or record (per ``on_error``) a problem a consumer found in a record."""
        error = TFRecordError(self.path, offset, index, reason)
        if self.on_error == "raise":
            raise error
        self.skipped.append(error)

    def records(self, limit=None):
        """Yield ``(index, offset, data)`` for each sound record, in file order.

        ``index`` and ``offset`` locate the record in the file, ``data`` is its
        payload (bytes). Stops after ``limit`` framed records (bad ones included).
        Only one record is held in memory at a time.
        """
        self.skipped = []
        with open(self.path, "rb", buffering=1 << 20) as f:
            size = os.fstat(f.fileno()).st_size
            for index, offset, length, reason in self._headers(f, size, limit):
                if reason is not None:
                    self.report(index, offset, reason)
                    continue
                chunk = f.read(length + 4)
                if len(chunk) < length + 4:  # the file shrank
                    reason = f"truncated: expected {length + 4} bytes, got {len(chunk)}"
                    self.report(index, offset, f"{reason}; the rest is lost")
                    break
                data = chunk[:length]
                crc = _CRC.unpack_from(chunk, length)[0]
                if self.verify_crc and masked_crc32c(data) != crc:
                    self.report(index, offset, "data CRC mismatch")
                else:
                    yield index, offset, data
        if self.skipped:
            self.skipped.sort(key=lambda e: e.offset)  # consumers may report late
            bad = [str(e).removeprefix(f"{self.path}: ") for e in self.skipped]
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            message = f"{self.path}: skipped {counted(len(bad), 'corrupt record')}: "
            warnings.warn(message + "; ".join(bad[:5]) + more, TFRecordWarning, 2)


def write_tfrecord(path, records):
    """Write the payloads ``records`` (bytes) to the TFRecord file ``path``.

    The file is overwritten. Returns the number of records written.
    """
    n = 0
    with open(path, "wb") as f:
        for data in map(bytes, records):
            length = struct.pack("<Q", len(data))
            f.write(length + _CRC.pack(masked_crc32c(length)))
            f.write(data + _CRC.pack(masked_crc32c(data)))
            n += 1
    return n


def _varint(buf, pos, end):
    """Decode an unsigned varint at ``pos``; return ``(value, next_pos)``."""
    if pos >= end:
        raise ProtobufDecodeError("truncated varint")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value, shift = b & 0x7F, 7
    for i in range(pos + 1, min(pos + 10, end)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    raise ProtobufDecodeError("truncated or over-long varint")


def _signed64(value):
    value &= _U64
    return value - (1 << 64) if value >> 63 else value


def _skip(buf, pos, end, wire_type, field):
    """Return the position after a field's value of the given wire type."""
    if wire_type == 0:
        return _varint(buf, pos, end)[1]
    if wire_type == 1:
        pos += 8
    elif wire_type == 5:
        pos += 4
    elif wire_type == 2:
        n, pos = _varint(buf, pos, end)
        pos += n
    elif wire_type == 3:  # group: skip fields up to the matching end-group tag
        while True:
            tag, pos = _varint(buf, pos, end)
            if tag & 7 == 4:
                if tag >> 3 != field:
                    raise ProtobufDecodeError("mismatched end-group tag")
                return pos
            pos = _skip(buf, pos, end, tag & 7, tag >> 3)
    else:
        raise ProtobufDecodeError(f"invalid wire type {wire_type}")
    if pos > end:
        raise ProtobufDecodeError("field runs past the end of its message")
    return pos


def iter_fields(buf, pos, end):
    """Yield ``(field, wire_type, a, b)`` for the fields of a message span.

    For wire type 0, ``a`` is the (unsigned) varint value; otherwise ``buf[a:b]`` is
    the field's value (for wire type 2, its contents). Groups are skipped.
    """
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        field, wire_type = tag >> 3, tag & 7
        if field == 0:
            raise ProtobufDecodeError("invalid field number 0")
        if wire_type == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ProtobufDecodeError(
                    "length-delimited field runs past its message"
                )
            yield field, 2, pos, pos + n
            pos += n
        elif wire_type == 0:
            value, pos = _varint(buf, pos, end)
            yield field, 0, value, pos
        elif wire_type == 3:
            pos = _skip(buf, pos, end, 3, field)
        else:
            start, pos = pos, _skip(buf, pos, end, wire_type, field)
            yield field, wire_type, start, pos


def map_spans(buf, start, end):
    """Decode ``Features`` or ``FeatureLists``: return ``{name: (start, stop)}``."""
    out = {}
    for field, wire_type, a, b in iter_fields(buf, start, end):
        if field != 1 or wire_type != 2:
            continue
        key, value = b"", (b, b)
        for f, w, c, d in iter_fields(buf, a, b):
            if f == 1 and w == 2:
                key = buf[c:d]
            elif f == 2 and w == 2:
                value = (c, d)
        try:
            out[bytes(key).decode("utf-8")] = value
        except UnicodeDecodeError:
            raise ProtobufDecodeError("feature name is not valid UTF-8") from None
    return out


def example_spans(buf):
    """Return ``{name: (start, stop)}`` of the features of an ``Example``."""
    out = {}
    for field, wire_type, a, b in iter_fields(buf, 0, len(buf)):
        if field == 1 and wire_type == 2:
            out.update(map_spans(buf, a, b))
    return out


def sequence_example_spans(buf):
    """Return ``(context, feature_lists)`` span dicts of a ``SequenceExample``."""
    context, feature_lists = {}, {}
    for field, wire_type, a, b in iter_fields(buf, 0, len(buf)):
        if field == 1 and wire_type == 2:
            context.update(map_spans(buf, a, b))
        elif field == 2 and wire_type == 2:
            feature_lists.update(map_spans(buf, a, b))
    return context, feature_lists


def feature_list_spans(buf, start, end):
    """Return the spans of the ``Feature`` messages of a ``FeatureList``."""
    return [(a, b) for f, w, a, b in iter_fields(buf, start, end) if f == 1 and w == 2]


def _floats(buf, start, end):
    chunks = []
    for field, wire_type, a, b in iter_fields(buf, start, end):
        if field == 1 and wire_type in (2, 5) and b > a:
            if (b - a) % 4:
                raise ProtobufDecodeError("packed float length is not a multiple of 4")
            chunks.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else _EMPTY_FLOATS


def _int64s(buf, start, end):
    out = []
    for field, wire_type, a, b in iter_fields(buf, start, end):
        if field != 1:
            continue
        if wire_type == 0:
            out.append(_signed64(a))
        elif wire_type == 2:
            while a < b:
                value, a = _varint(buf, a, b)
                out.append(_signed64(value))
    return out


def decode_feature(buf, start, end):
    """Decode the ``Feature`` message ``buf[start:end]``.

    Returns
    -------
    kind : {"bytes_list", "float_list", "int64_list"} or None
        None for an empty ``Feature``.
    value : list of bytes, ndarray of float32 (read-only view) or list of int
    """
    kind = None
    if end - start >= 2 and buf[start] in (0x0A, 0x12, 0x1A):  # fast path: one field
        n, a = _varint(buf, start + 1, end)
        if a + n == end:
            kind, b = buf[start] >> 3, end
    if kind is None:
        for field, wire_type, c, d in iter_fields(buf, start, end):
            if wire_type == 2 and field in _KINDS:
                kind, a, b = field, c, d
        if kind is None:
            return None, []
    if kind != 3 and b - a >= 2 and buf[a] == 0x0A:  # fast path: one packed field
        n, p = _varint(buf, a + 1, b)  # or a single bytes value
        if p + n == b:
            if kind == 1:
                return "bytes_list", [bytes(buf[p:b])]
            if n % 4 == 0:
                return "float_list", np.frombuffer(buf, "<f4", count=n // 4, offset=p)
    if kind == 2:
        return "float_list", _floats(buf, a, b)
    if kind == 3:
        return "int64_list", _int64s(buf, a, b)
    return "bytes_list", [
        bytes(buf[c:d]) for f, w, c, d in iter_fields(buf, a, b) if f == 1 and w == 2
    ]


def _public(kind, value):
    if kind == "float_list":
        return np.array(value, dtype=np.float32)
    return np.array(value, dtype=np.int64) if kind == "int64_list" else value


def parse_example(data):
    """Decode a serialized ``tf.train.Example`` into ``{name: value}``.

    Values are lists of bytes, or ndarrays of float32 or int64. Raises
    :class:`ProtobufDecodeError` if ``data`` is not a valid message.

    Examples
    --------
    >>> parse_example(encode_example({"id": b"a", "labels": [3, -1]}))
    {'id': [b'a'], 'labels': array([ 3, -1])}
    """
    spans = example_spans(data)
    return {name: _public(*decode_feature(data, *s)) for name, s in spans.items()}


def parse_sequence_example(data):
    """Decode a serialized ``tf.train.SequenceExample``.

    Returns ``(context, feature_lists)``: ``context`` as from :func:`parse_example`,
    ``feature_lists`` maps each name to a list (one item per step) of such values.
    Raises :class:`ProtobufDecodeError` if ``data`` is not a valid message.
    """
    context, lists = sequence_example_spans(data)
    steps = {name: feature_list_spans(data, *s) for name, s in lists.items()}
    return (
        {name: _public(*decode_feature(data, *s)) for name, s in context.items()},
        {
            name: [_public(*decode_feature(data, *s)) for s in spans]
            for name, spans in steps.items()
        },
    )


def _encode_varint(value):
    value &= _U64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(field, payload):
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def _map_entry(name, payload):
    return _delimited(1, _delimited(1, name.encode()) + _delimited(2, payload))


def _encode_feature(value, packed):
    if isinstance(value, bytes | bytearray | str):
        value = [value]
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, bytes | bytearray | str) for v in value)
    ):
        items = [v.encode() if isinstance(v, str) else bytes(v) for v in value]
        return _delimited(1, b"".join(_delimited(1, v) for v in items))
    array = np.asarray(value)
    if array.ndim > 1:
        raise ValueError(f"feature values must be 1-D, got shape {array.shape}")
    if array.dtype.kind == "f" or (array.size == 0 and array.dtype.kind not in "iub"):
        raw = array.astype("<f4").tobytes()
        values = [raw[i : i + 4] for i in range(0, len(raw), 4)]
        field, tag = 2, b"\x0d"  # FloatList, fixed32 values
    elif array.dtype.kind in "iub":
        values = [_encode_varint(v) for v in array.astype(np.int64).tolist()]
        field, tag = 3, b"\x08"  # Int64List, varint values
    else:
        raise TypeError(f"cannot encode a feature of dtype {array.dtype}")
    if packed:
        return _delimited(field, _delimited(1, b"".join(values)) if values else b"")
    return _delimited(field, b"".join(tag + v for v in values))


def _encode_features(features, packed):
    return b"".join(
        _map_entry(name, _encode_feature(value, packed))
        for name, value in features.items()
    )


def encode_example(features, *, packed=True):
    """Serialize a ``tf.train.Example``.

    Parameters
    ----------
    features : dict
        Feature name to value. ``bytes``/``str`` or a list of them becomes a
        ``bytes_list``; a float array-like a ``float_list``; an integer or bool
        array-like an ``int64_list``.
    packed : bool, default=True
        Use the packed encoding for floats and integers (as TensorFlow does); False
        writes one tagged field per value (also valid protobuf).

    Returns
    -------
    data : bytes
        The serialized message.

    Examples
    --------
    >>> encode_example({"x": [1.5]}).hex()
    '0a0f0a0d0a0178120812060a040000c03f'
    """
    return _delimited(1, _encode_features(features, packed))


def encode_sequence_example(context, feature_lists, *, packed=True):
    """Serialize a ``tf.train.SequenceExample``.

    Parameters
    ----------
    context : dict
        Context features, as for :func:`encode_example`.
    feature_lists : dict
        Name to a sequence of per-step values, each encoded as one ``Feature``. E.g.
        YouTube-8M frames: ``{"rgb": [frame.tobytes() for frame in uint8_frames]}``.
    packed : bool, default=True
        See :func:`encode_example`.

    Returns
    -------
    data : bytes
        The serialized message.
    """
    lists = b"".join(
        _map_entry(
            name, b"".join(_delimited(1, _encode_feature(v, packed)) for v in steps)
        )
        for name, steps in feature_lists.items()
    )
    return _delimited(1, _encode_features(context, packed)) + _delimited(2, lists)
