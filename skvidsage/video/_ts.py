"""How a cut MPEG-TS file shows, though the format states no length.

A transport stream is a run of fixed-size packets (188 bytes, or 192 in M2TS:
Blu-ray, AVCHD, which puts a 4-byte time stamp before each), and FFmpeg takes
its duration from the last time stamps left, so a cut copy looks like a
shorter clip. :func:`ts_tail` reads the end of the file: a whole file holds
whole packets, its last PES packets hold the bytes their headers give, and a
PES packet that states no length (FFmpeg's muxer writes none for video) ends
where its last TS packet is padded by adaptation-field stuffing, or exactly
fills it. The data of a last video PES packet not padded so is returned, for
:func:`skvidsage.video._damage._ts_cut_picture` to decode alone.
"""

# (offset of the first sync byte, packet size, name)
_LAYOUTS = ((0, 188, "MPEG-TS"), (4, 192, "M2TS"))
_SYNC = 0x47
_SYNC_CHECKED = 5  # packets at the start that must open with the sync byte
# Packets read at the end: a PES packet is followed only when its start is
# among them. A 16-bit stated length spans at most 357 packets; 8192 (1.5 MB)
# hold the whole last picture of HD H.264 (keyframes of 100-500 KB), and take
# 20 ms to parse (bigbuckbunny.mp4 in TS, 6,034 packets: 16 ms).
_TAIL_PACKETS = 8192


def _layout(head, size):
    """Return ``(packet size, name)`` when ``head`` begins an MPEG-TS file, or None.

    The sync byte must open the first packets that the file holds (at least
    two: one 0x47 byte alone is no evidence, a GIF starts with it).
    """
    for first, stride, name in _LAYOUTS:
        n = min(_SYNC_CHECKED, (len(head) - first + stride - 1) // stride)
        starts = [first + k * stride for k in range(n)]
        if size > first + stride and all(head[i] == _SYNC for i in starts):
            return stride, name
    return None


def _padded(packet):
    """Whether a TS packet's adaptation field ends in stuffing (a PES ends there)."""
    if not packet[3] & 0x20:
        return False
    length = packet[4]
    if length == 0:  # the length byte alone is one byte of stuffing
        return True
    flags, used = packet[5], 1
    used += 6 * bool(flags & 0x10) + 6 * bool(flags & 0x08) + bool(flags & 0x04)
    for flag in (0x02, 0x01):  # private data, extension: a length byte first
        if flags & flag and used < length:
            used += 1 + packet[5 + used]
    return length > used


def _last_pes(packets, stride):
    """Return ``{pid: [stated size, bytes there, data, padded]}`` of the last PES.

    ``packets``: whole packets of ``stride`` bytes. ``stated size``: 6 + the
    header's length, 0 when it gives none; ``data``: the bytes after the PES
    header of a video PES packet that gives none (else None); ``padded``:
    whether the pid's last packet ends in stuffing.
    """
    found = {}
    for at in range(0, len(packets) - stride + 1, stride):
        packet = packets[at + stride - 188 : at + stride]
        if packet[0] != _SYNC:
            continue  # damage (a zeroed or overwritten packet): not ours to judge
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        control, i = packet[3] >> 4 & 3, 4
        if control & 2:  # an adaptation field first
            i += 1 + packet[4]
        if not control & 1 or i >= 188:
            continue  # no payload
        payload = packet[i:]
        if packet[1] & 0x40:  # a payload unit (PES packet or section) starts
            stated = int.from_bytes(payload[4:6], "big")
            if payload[:3] != b"\x00\x00\x01" or len(payload) < 9:
                found[pid] = None  # a table section, or too short to judge
                continue
            video = 0xE0 <= payload[3] <= 0xEF and not stated
            data = bytearray(payload[9 + payload[8] :]) if video else None
            found[pid] = [6 + stated if stated else 0, len(payload), data, False]
        elif found.get(pid):
            found[pid][1] += len(payload)
            if found[pid][2] is not None:
                found[pid][2] += payload
        if found.get(pid):
            found[pid][3] = _padded(packet)
    return {pid: entry for pid, entry in found.items() if entry}


def ts_tail(path, size):
    """Say how an MPEG-TS or M2TS file looks cut: ``(text, pictures)``.

    ``text``: how it ends inside a packet or inside a PES packet that states
    its length, '' if it does not (also for other formats); ``pictures``:
    ``{pid: data}`` of the last video PES packets that state no length and
    do not end as a PES packet does, to decode (``{}`` when ``text``). A cut
    on a packet boundary inside a picture shows only so; one between two
    pictures leaves no trace.

    Raises
    ------
    OSError
        When the file cannot be read.

    Examples
    --------
    >>> import tempfile, os
    >>> packet = bytes([0x47, 0x1F, 0xFF, 0x10]) + bytes(184)  # a null packet
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "cut.ts")
    ...     with open(path, "wb") as file:
    ...         _ = file.write(packet * 3 + packet[:100])
    ...     print(ts_tail(path, 3 * 188 + 100)[0])
    it ends inside a 188-byte MPEG-TS packet (100 of its 188 bytes are there)
    """
    with open(path, "rb") as file:
        layout = _layout(file.read(_SYNC_CHECKED * 192), size)
        if layout is None:
            return "", {}
        stride, name = layout
        whole = size - size % stride
        start = max(0, whole - _TAIL_PACKETS * stride)
        file.seek(start)
        tail = file.read(whole - start)
    if size % stride:
        text = (
            f"it ends inside a {stride}-byte {name} packet ({size % stride} of its "
            f"{stride} bytes are there)"
        )
        return text, {}
    last = _last_pes(tail, stride)
    short = sorted((pid, e[0], e[1]) for pid, e in last.items() if e[1] < e[0])
    if short:
        pid, need, got = short[0]
        text = (
            f"its last PES packet of stream {pid:#x} should hold {need} bytes by "
            f"its header but the file ends after {got}"
        )
        return text, {}
    pictures = {
        pid: bytes(data)
        for pid, (_, _, data, padded) in last.items()
        if data and not padded
    }
    return "", pictures
