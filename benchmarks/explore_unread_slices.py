r"""Find H.264 pictures whose slices end before their data does (issue 11).

FFmpeg's CABAC decoder reports a slice that runs past its data, but not one
that reaches its picture's last macroblock before the end of its data, which
is what a damaged slice does when its arithmetic decoder goes astray and
takes fewer bits per macroblock than the encoder wrote. This script decodes
each file twice: as it is, and with the last ``--cut`` bytes of every slice
NAL unit removed. A picture that comes out the same in both decodes has not
read its slices' last bytes. I pictures are compared by their pixels (they
predict from nothing); P and B pictures by what parsing alone decides
(macroblock types and partitions, the QP map, the motion vectors), because
the second decoder's reference pictures differ from the first's from the
first cut on, while H.264 parsing does not depend on them.

A design probe, not a package feature: it decodes every packet twice. The
figures it gave are in ``docs/results.rst`` (damaged videos, check 7)::

    python benchmarks/explore_unread_slices.py --cut 32 \
        ../shared/data/videos/{carphone_pristine,carphone_distorted,bikes,bigbuckbunny}.mp4

Only length-prefixed NAL units (MP4, MKV) are handled.
"""

from __future__ import annotations

import argparse

import av
import numpy as np

_SLICE_NAL_TYPES = (1, 5)
_PICTURE_TYPES = {1: "I", 2: "P", 3: "B"}


def _demux(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        name = stream.codec_context.name
        packets = [bytes(p) for p in container.demux(stream) if p.size]
    if name != "h264" or not extradata or extradata[0] != 1:
        raise SystemExit(f"{path}: not H.264 with length-prefixed NAL units")
    return extradata, packets


def _cut_slices(packet, length_size, cut):
    out = bytearray()
    i = 0
    while i + length_size <= len(packet):
        n = int.from_bytes(packet[i : i + length_size], "big")
        nal = packet[i + length_size : i + length_size + n]
        i += length_size + n
        if nal and nal[0] & 31 in _SLICE_NAL_TYPES:
            # keep the NAL header and the start of the slice header
            nal = nal[: max(len(nal) - cut, 8)]
        out += len(nal).to_bytes(length_size, "big") + nal
    return bytes(out)


def _decode(extradata, packets):
    """Each output picture's type, luma and parse-level fingerprint."""
    codec = av.CodecContext.create("h264", "r")
    codec.extradata = extradata
    codec.thread_count = 1  # the debug text must come in output order
    codec.options = {"debug": "mb_type", "export_side_data": "venc_params+mvs"}
    pictures = []
    av.logging.set_level(av.logging.DEBUG)
    try:
        with av.logging.Capture(True) as log:
            for data in [*packets, None]:
                try:
                    frames = codec.decode(None if data is None else av.Packet(data))
                except av.FFmpegError:
                    continue
                for frame in frames:
                    side = {s.type.name: s for s in frame.side_data}
                    qp = side.get("VIDEO_ENC_PARAMS")
                    mvs = side.get("MOTION_VECTORS")
                    pictures.append({
                        "type": _PICTURE_TYPES.get(int(frame.pict_type), "?"),
                        "luma": frame.to_ndarray(format="gray"),
                        "parse": [
                            b"" if qp is None else qp.qp_map().tobytes(),
                            b"" if mvs is None else bytes(mvs),
                        ],
                    })
    finally:
        av.logging.set_level(None)
    tables, rows = [], None
    for _, _, message in log:
        if message.startswith("New frame, type:"):
            rows = []
            tables.append(rows)
        elif rows is not None and message[:3].strip().isdigit() and len(message) > 4:
            rows.append(message[4:].rstrip("\n"))
    for picture, table in zip(pictures, tables, strict=False):
        picture["parse"].append("".join(table).encode())
    return pictures


def _same(a, b):
    if a["type"] == "I":
        return np.array_equal(a["luma"], b["luma"])
    return a["parse"] == b["parse"]


def unread_pictures(path, cut):
    """Output indices of the pictures that do not read their last ``cut`` bytes."""
    extradata, packets = _demux(path)
    length_size = (extradata[4] & 3) + 1
    whole = _decode(extradata, packets)
    cut_packets = [_cut_slices(p, length_size, cut) for p in packets]
    shortened = _decode(extradata, cut_packets)
    # a damaged stream may give the two decodes different picture counts
    pairs = zip(whole, shortened, strict=False)
    return whole, [i for i, (a, b) in enumerate(pairs) if _same(a, b)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--cut", type=int, default=32, help="bytes cut off each slice")
    args = parser.parse_args()
    print(f"{'file':48} {'pictures':>8} {'unread':>6}  first unread (index, type)")
    for path in args.videos:
        pictures, same = unread_pictures(path, args.cut)
        first = [(i, pictures[i]["type"]) for i in same[:6]]
        name = path.rsplit("/", 1)[-1]
        print(f"{name:48} {len(pictures):8d} {len(same):6d}  {first}")


if __name__ == "__main__":
    main()
