r"""H.264 intra pictures that end before their data does: damage FFmpeg misses.

FFmpeg's CABAC decoder reports a slice that runs past its data, but not one
that reaches its picture's last macroblock before its data ends, which is
what damaged CABAC data does when the arithmetic decoder goes astray and
spends fewer bits per macroblock than the encoder wrote. Intact data is read
to within a few bytes of its end, so an intact slice cut by its last
:data:`_UNREAD_CUT` bytes decodes with an error (the decoder runs past the
cut) or to other pixels; a slice that never reads them decodes without an
error to the same pixels. :meth:`IntraSliceCheck.unread` decodes a CABAC
intra picture alone once per slice, with that slice cut; where a cut decode
logs no error, it decodes the picture whole as well and compares the two.
Only intra pictures are checked: they predict from nothing, so decoding one
alone gives its true pixels (a P or B picture decoded twice would need the
parse-level comparison of ``benchmarks/explore_unread_slices.py``, with
FFmpeg's debug log).

Figures (docs/results.rst, damaged videos, check 7): in the full fuzz run
(5,009 damaged files) the clean rows with features off (cosine < 0.95) went
from 17 to 13; it warned about 37 files, each time naming an intra picture
whose packet the damage touched. No intra picture of the 4 intact H.264
clips in ../shared/data/videos, of 400 generated x264 clips or of 40 x264
encodes of the real clips at 8 settings is flagged. The error condition
keeps the tests' stripes clips (vertical stripes, which FFmpeg's
concealment of a cut slice restores exactly) from being flagged, and the
CABAC one an intact black CAVLC picture.

>>> nal_units(b"\x00\x00\x00\x02\x65\x88\x00\x00\x00\x01\x06", 4)
[b'e\x88', b'\x06']
>>> nal_units(b"\x00\x00\x00\x09\x65", 4) is None  # a length past the data
True
"""

from skvidsage.video._ffmpeg_log import _decode_alone

_SLICE_NALS = (1, 5)  # coded slice of a non-IDR and of an IDR picture
_INTRA_SLICES = (2, 4)  # slice_type % 5: I and SI
# Bytes cut off a slice's data: intact intra slices read theirs to within 16
# bytes of the end (cut by 16, 2 of 406 intact clips' first pictures came out
# the same: they are read to within 16-32 bytes), so 32 leaves a margin.
_UNREAD_CUT = 32
_KEEP = 8  # bytes of a slice never cut: the NAL header and the slice header


def nal_units(data, length_size):
    """Split length-prefixed H.264 data (MP4, MKV) into NAL units; None if damaged."""
    units, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if i + n > len(data):
            return None
        units.append(data[i : i + n])
        i += n
    return units


def annexb_units(data):
    r"""Split Annex-B H.264 data (MPEG-TS, raw .h264) at its start codes.

    >>> annexb_units(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x65\x88")
    [b'\t\xf0', b'e\x88']
    """
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    ends = [i - 3 for i in starts[1:]] + [len(data)] if starts else []
    # a 4-byte start code's first zero is the unit before's trailing zero
    return [data[a:b] for a, b in zip(starts, ends, strict=True)]


def _codes(nal, count):
    """Read the first ``count`` Exp-Golomb codes after a NAL unit's header.

    Returns them and the bits after them, or None (they lie in its first
    bytes).
    """
    payload = nal[1:16].replace(b"\x00\x00\x03", b"\x00\x00")  # escapes out
    bits = "".join(f"{byte:08b}" for byte in payload)
    values, i = [], 0
    for _ in range(count):
        zeros = len(bits[i:]) - len(bits[i:].lstrip("0"))
        if i + 2 * zeros + 1 > len(bits):
            return None
        values.append(int(bits[i + zeros : i + 2 * zeros + 1], 2) - 1)
        i += 2 * zeros + 1
    return values, bits[i:]


def _slice_header(nal):
    """Return a slice's ``(slice_type % 5, PPS id)`` (0 P, 1 B, 2 I), or None."""
    codes = _codes(nal, 3)  # first_mb_in_slice, slice_type, the PPS id
    return None if codes is None else (codes[0][1] % 5, codes[0][2])


def _entropy_coders(pps_units):
    """Map each picture parameter set's id to whether it codes with CABAC."""
    coders = {}
    for nal in pps_units:
        codes = _codes(nal, 2)  # pic_parameter_set_id, seq_parameter_set_id
        if codes and codes[1]:
            coders[codes[0][0]] = codes[1][0] == "1"  # entropy_coding_mode_flag
    return coders


def _avcc_parameter_sets(extradata):
    """Return the picture parameter set NAL units of an avcC record ([] if damaged)."""
    units, i = [], 6
    try:
        for _ in range(extradata[5] & 31):  # the sequence parameter sets
            i += 2 + int.from_bytes(extradata[i : i + 2], "big")
        count, i = extradata[i], i + 1
        for _ in range(count):
            n = int.from_bytes(extradata[i : i + 2], "big")
            units.append(extradata[i + 2 : i + 2 + n])
            i += 2 + n
    except IndexError:
        return []
    return units


def _data_end(nal):
    """Length of a NAL unit without trailing zero bytes and cabac_zero_words."""
    end = len(nal.rstrip(b"\x00"))
    while nal[:end].endswith(b"\x00\x00\x03"):  # 0x0000 words, escaped
        end = len(nal[: end - 3].rstrip(b"\x00"))
    return end


def _luma_alone(codec, data):
    """Luma bytes of the picture ``data`` decodes to alone without an error, or None."""
    # +showall: a non-IDR I picture too
    frames, errors = _decode_alone(codec, data, {"flags2": "+showall"})
    if not frames or errors:
        return None
    return frames[0].to_ndarray(format="gray").tobytes()


class IntraSliceCheck:
    """Find H.264 intra pictures with a slice that leaves its data's end unread.

    ``codec``: the stream's codec context. Its extradata tells the layout: an
    avcC record for length-prefixed NAL units (MP4, MKV), start codes or
    nothing for Annex-B data (MPEG-TS, raw H.264), whose parameter sets may
    also come in the packets. Only slices coded with CABAC are checked:
    damaged CABAC data is what stops the decoder short without a word, and
    the CAVLC decoder takes some cut slices silently (an intact black CAVLC
    picture, cut by up to 256 bytes, decoded to the same pixels without an
    error).
    """

    def __init__(self, codec):
        extradata = bytes(codec.extradata or b"")
        self.codec = codec
        if extradata[:1] == b"\x01":
            self.length_size = (extradata[4] & 3) + 1 if len(extradata) > 6 else 0
            pps = _avcc_parameter_sets(extradata)
        else:  # Annex-B
            self.length_size = None
            pps = [u for u in annexb_units(extradata) if u and u[0] & 31 == 8]
        self.cabac = _entropy_coders(pps)  # PPS id: whether it codes with CABAC

    def _split(self, data):
        if self.length_size is None:
            return annexb_units(data)
        return nal_units(data, self.length_size) if self.length_size else None

    def _join(self, units):
        if self.length_size is None:
            return b"".join(b"\x00\x00\x00\x01" + u for u in units)
        return b"".join(len(u).to_bytes(self.length_size, "big") + u for u in units)

    def unread(self, data):
        """Say whether packet ``data`` is an intra picture with such a slice.

        False for any other packet, and for data that does not decode alone
        without an error.
        """
        units = self._split(data)
        if not units:
            return False
        self.cabac.update(_entropy_coders(u for u in units if u and u[0] & 31 == 8))
        slices = [i for i, u in enumerate(units) if u and u[0] & 31 in _SLICE_NALS]
        headers = [_slice_header(units[i]) for i in slices]
        if not slices or any(
            h is None or h[0] not in _INTRA_SLICES or not self.cabac.get(h[1])
            for h in headers
        ):
            return False
        whole = None
        for i in slices:
            nal = units[i]
            cut = nal[: max(_data_end(nal) - _UNREAD_CUT, _KEEP)]
            luma = _luma_alone(
                self.codec, self._join([*units[:i], cut, *units[i + 1 :]])
            )
            # a cut intact slice decodes with an error (all 1,161 intra slices
            # of the intact encodes in docs/results.rst, check 7): only where
            # one does not is the picture decoded whole as well, to compare
            if luma is None:
                continue
            if whole is None:
                whole = _luma_alone(self.codec, data) or b""
            if luma == whole:
                return True
        return False
