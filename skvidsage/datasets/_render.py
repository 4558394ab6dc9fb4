"""The clips of :func:`make_video_classification`: drawn with NumPy, encoded with PyAV.

:func:`make_video_classification` draws short clips with NumPy (moving shapes on
textured backgrounds), encodes them with PyAV and caches them on disk, as
scikit-learn caches the data sets it downloads. The data set is built so that a
graph over videos helps:

- **Object kinds.** Ten shape kinds (``"disc"``, ``"ring"``, ...), each with
  its own colour. Class ``c`` owns three kinds; neighbouring classes share one,
  so the Jaccard similarity of object sets is informative but imperfect.
- **Scenes.** Each class is made of several sub-styles ("scenes"): a scene
  shows two of its class's three kinds on its own background texture and
  palette, with its own motion. A class is thus several clusters, not one.
- **Nuisance.** Every clip jitters its scene's palette (and sometimes swaps
  the background texture for a random one), adds random clutter lines,
  zero to two distractor objects of other classes' kinds, random positions,
  sizes, speeds and rotations, colour, brightness and contrast jitter, and
  pixel noise. One clip's features are therefore noisy, while the average
  over clips of the same scene (its graph neighbours) is clean.
"""

from pathlib import Path

import numpy as np

__all__ = ["KIND_NAMES", "MAX_CLASSES"]

# Object kinds and their canonical colours (RGB in [0, 1]).
_KINDS = (
    ("disc", (0.90, 0.15, 0.15)),
    ("ring", (0.15, 0.35, 0.95)),
    ("square", (0.15, 0.80, 0.20)),
    ("triangle", (0.95, 0.85, 0.10)),
    ("diamond", (0.85, 0.20, 0.85)),
    ("cross", (0.10, 0.85, 0.85)),
    ("stripes", (0.98, 0.55, 0.05)),
    ("checker", (0.50, 0.20, 0.80)),
    ("star", (0.97, 0.97, 0.97)),
    ("crescent", (0.55, 0.35, 0.15)),
)
KIND_NAMES = tuple(name for name, _ in _KINDS)
_N_SCENES = 3  # scenes per class
_BACKGROUNDS = ("gradient", "clouds", "grid", "bands", "dots", "waves")
MAX_CLASSES = 20

# ------------------------------------------------------------------ world


def _class_kinds(c):
    """Return the indices of the three object kinds of class ``c``.

    Class ``c`` owns ``{c, c + 1, c + 3 + c // 10}`` (mod 10): classes ``c``
    and ``c + 1`` share a kind, and so do ``c`` and ``c + 2``, while no two
    classes own the same three kinds (for ``c < 20``).
    """
    k = len(_KINDS)
    return (c % k, (c + 1) % k, (c + 3 + c // k) % k)


def _random_colour(rng, lo=0.1, hi=0.9):
    return rng.uniform(lo, hi, size=3)


def _make_world(rng, n_classes):
    """Draw the scenes of every class: their kinds, background and motion."""
    scenes = []
    for c in range(n_classes):
        core = _class_kinds(c)
        for s in range(_N_SCENES):
            scenes.append(
                {
                    "label": c,
                    "kinds": tuple(k for i, k in enumerate(core) if i != s % 3),
                    "background": int(rng.integers(len(_BACKGROUNDS))),
                    "palette": (_random_colour(rng), _random_colour(rng)),
                    "frequency": float(rng.uniform(4.0, 9.0)),
                    "angle": float(rng.uniform(0, np.pi)),
                    "speed": float(rng.choice([0.02, 0.06])),  # of width / frame
                    "pan": rng.uniform(-0.03, 0.03, size=2),
                    "size": float(rng.uniform(0.09, 0.14)),  # of min(H, W)
                }
            )
    return scenes


# ---------------------------------------------------------------- drawing


def _background(kind, palette, frequency, angle, shape, t, pan):
    """Return a (H, W, 3) float32 texture at frame ``t``, panned by ``pan * t``."""
    h, w = shape
    scale = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = (xx / scale) + pan[0] * t
    y = (yy / scale) + pan[1] * t
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    f = frequency
    if kind == "gradient":
        m = 0.5 + 0.5 * np.sin(u * f)
    elif kind == "clouds":
        m = 0.5 + 0.25 * (np.sin(u * f * 1.7) * np.cos(v * f * 2.3)) + 0.25 * np.sin(
            (u + v) * f * 0.9
        )
    elif kind == "grid":
        m = ((np.abs(np.sin(u * f * 3)) < 0.25) | (np.abs(np.sin(v * f * 3)) < 0.25))
        m = m.astype(np.float32)
    elif kind == "bands":
        m = (np.sin(v * f * 2.5) > 0).astype(np.float32)
    elif kind == "dots":
        m = ((np.sin(u * f * 4) * np.sin(v * f * 4)) > 0.5).astype(np.float32)
    else:  # waves
        m = 0.5 + 0.5 * np.sin(u * f * 3 + 1.5 * np.sin(v * f * 2))
    a, b = (np.asarray(p, dtype=np.float32) for p in palette)
    return a + m[..., None] * (b - a)


def _shape_mask(kind, dx, dy, r):
    """Boolean mask of an object of ``kind`` at offsets ``(dx, dy)`` (pixels)."""
    d2 = dx * dx + dy * dy
    if kind == "disc":
        return d2 <= r * r
    if kind == "ring":
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if kind == "square":
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if kind == "triangle":
        # equilateral, pointing up (-dy), circumradius r
        s3 = np.sqrt(3)
        return (dy <= 0.5 * r) & (s3 * dx - dy <= r) & (-s3 * dx - dy <= r)
    if kind == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    if kind == "cross":
        a, b = np.abs(dx), np.abs(dy)
        return ((a <= 0.3 * r) & (b <= r)) | ((b <= 0.3 * r) & (a <= r))
    if kind == "stripes":
        box = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
        return box & (np.floor((dx + r) / (0.34 * r)) % 2 == 0)
    if kind == "checker":
        box = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
        cells = np.floor((dx + r) / (0.45 * r)) + np.floor((dy + r) / (0.45 * r))
        return box & (cells % 2 == 0)
    if kind == "star":
        phi = np.arctan2(dy, dx)
        return np.sqrt(d2) <= r * (0.6 + 0.4 * np.cos(5 * phi))
    # crescent
    ex = dx - 0.45 * r
    return (d2 <= r * r) & (ex * ex + dy * dy > (0.8 * r) ** 2)


def _paint(frame, kind, colour, cx, cy, r, theta):
    """Draw one rotated object onto ``frame`` in place (clipped at the edges)."""
    h, w = frame.shape[:2]
    reach = int(np.ceil(r)) + 1
    y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
    x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ox, oy = xx - cx, yy - cy
    c, s = np.cos(theta), np.sin(theta)
    mask = _shape_mask(kind, c * ox + s * oy, -s * ox + c * oy, r)
    frame[y0:y1, x0:x1][mask] = colour


def _bounce(p0, v, t, lo, hi):
    """Position at time ``t`` of a point moving at ``v``, reflected in [lo, hi]."""
    span = max(hi - lo, 1e-6)
    q = np.mod(p0 - lo + v * t, 2 * span)
    return lo + np.where(q > span, 2 * span - q, q)


def _clip_spec(rng, scene, n_kinds):
    """Draw one clip's objects and nuisance from its scene."""
    kinds = list(scene["kinds"])
    if rng.random() < 0.15:  # one of the scene's kinds is missing
        kinds.pop(int(rng.integers(len(kinds))))
    objects = []
    for k in kinds:
        objects += [(k, False)] * (1 + int(rng.random() < 0.3))
    others = [k for k in range(n_kinds) if k not in scene["kinds"]]
    n_distractors = int(rng.choice(3, p=[0.35, 0.4, 0.25]))
    for k in rng.choice(others, size=n_distractors, replace=False):
        objects.append((int(k), True))
    order = rng.permutation(len(objects))
    return [objects[i] for i in order]


def _render(seed, scene, n_frames, shape):
    """Render one clip as ``(n_frames, H, W, 3)`` uint8, and its object kinds."""
    rng = np.random.default_rng(seed)
    h, w = shape
    scale = min(h, w)
    palette = tuple(
        np.clip(p + rng.normal(0, 0.04, size=3), 0, 1) for p in scene["palette"]
    )
    background, frequency = scene["background"], scene["frequency"]
    angle, pan = scene["angle"], scene["pan"]
    if rng.random() < 0.05:  # the scene's look is not always there
        background = int(rng.integers(len(_BACKGROUNDS)))
        palette = (_random_colour(rng), _random_colour(rng))
    frequency *= rng.uniform(0.9, 1.1)
    angle += rng.normal(0, 0.15)

    objects = []
    for k, distractor in _clip_spec(rng, scene, len(_KINDS)):
        base = np.asarray(_KINDS[k][1])
        colour = np.clip(base * rng.uniform(0.75, 1.1) + rng.normal(0, 0.07, 3), 0, 1)
        r = scale * scene["size"] * rng.uniform(0.7, 1.3) * (0.8 if distractor else 1)
        speed = scene["speed"] * w * rng.uniform(0.5, 1.5)
        heading = rng.uniform(0, 2 * np.pi)
        objects.append(
            {
                "kind": _KINDS[k][0],
                "colour": colour.astype(np.float32),
                "r": r,
                "p0": (rng.uniform(r, w - r), rng.uniform(r, h - r)),
                "v": (speed * np.cos(heading), speed * np.sin(heading)),
                "theta0": rng.uniform(0, 2 * np.pi),
                "spin": rng.normal(0, 0.15),
            }
        )
    n_lines = int(rng.integers(1, 5))
    lines = [
        (
            _random_colour(rng, 0, 1).astype(np.float32),
            rng.uniform(0, w, 2),
            rng.uniform(0, h, 2),
            1,
        )
        for _ in range(n_lines)
    ]
    # colour jitter: a random mixing matrix near the identity, brightness, contrast
    mix = (np.eye(3) + rng.normal(0, 0.03, (3, 3))).astype(np.float32)
    contrast, brightness = rng.uniform(0.8, 1.15), rng.uniform(-0.08, 0.08)
    noise_rng = np.random.default_rng(rng.integers(2**63))

    video = np.empty((n_frames, h, w, 3), dtype=np.uint8)
    for t in range(n_frames):
        frame = _background(background, palette, frequency, angle, shape, t, pan)
        for colour, xs, ys, width in lines:
            n = int(max(abs(xs[1] - xs[0]), abs(ys[1] - ys[0]))) + 1
            px = np.clip(np.linspace(*xs, n).astype(int), 0, w - width)
            py = np.clip(np.linspace(*ys, n).astype(int), 0, h - width)
            for d in range(width):
                frame[py + d, px] = colour
                frame[py, px + d] = colour
        for o in objects:
            r = o["r"]
            cx = _bounce(o["p0"][0], o["v"][0], t, r * 0.5, w - r * 0.5)
            cy = _bounce(o["p0"][1], o["v"][1], t, r * 0.5, h - r * 0.5)
            theta = o["theta0"] + o["spin"] * t
            _paint(frame, o["kind"], o["colour"], cx, cy, r, theta)
        frame = frame @ mix.T
        frame = (frame - 0.5) * contrast + 0.5 + brightness
        frame += noise_rng.normal(0, 0.03, frame.shape).astype(np.float32)
        video[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return video, frozenset(o["kind"] for o in objects)


# --------------------------------------------------------------- encoding


def _codec():
    """Return the encoder: H.264 when FFmpeg has it, else MPEG-4 part 2."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


# One thread: deterministic, and joblib parallelises. Macroblock-tree rate
# control off: its float arithmetic rounds by the CPU's SIMD instructions, so
# the same frames encoded with it differed between AVX-512 and AVX2 (x264's
# asm= flags, this host) in 25 of 36 clips; without it every level from
# SSE4.2 to AVX-512 gives the same bytes (36 of 36), so a seed gives the same
# clips on other x86-64 machines too. Encoding time: the same (0.43 s
# against 0.41 s for the 36 clips).
_X264_OPTIONS = {"crf": "16", "preset": "veryfast", "threads": "1",
                 "x264-params": "mbtree=0"}


def _encode(path, video, fps, codec):
    """Write ``video`` (T, H, W, 3) uint8 to ``path`` (.mp4).

    ``path`` lies in a staging folder that replaces the set only once every
    clip is written, so a half-written file is never seen.
    """
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = video.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = dict(_X264_OPTIONS)
        else:
            stream.options = {"qscale": "2"}
            stream.thread_count = 1
        for frame in video:
            packets = stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
            container.mux(packets)
        container.mux(stream.encode())


def _write_clips(jobs, n_frames, shape, fps, codec):
    """Render and encode a batch of clips; return their object kinds."""
    kinds = []
    for path, seed, scene in jobs:
        video, objects = _render(seed, scene, n_frames, shape)
        _encode(Path(path), video, fps, codec)
        kinds.append(sorted(objects))
    return kinds


