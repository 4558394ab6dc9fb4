"""Resumable, sharded featurisation of many video files to a folder.

:func:`featurize_to_folder` cuts the list of videos into shards of
``shard_size`` files and featurises each shard as one joblib task (loky
processes by default; any ``joblib.parallel_config`` backend, such as Dask on
a cluster). A shard's features, object sets and per-video status are written
to ``shard-NNNNN.npz`` by an atomic rename, so a shard file is complete or
absent: a rerun into the same folder skips the complete shards, and a killed
job, or a killed worker, loses at most the shards it was working on.
:func:`load_featurized` reads the folder back in input order.

Folder layout::

    manifest.json       the videos, the shard size and the featurizer's
                        parameters: a rerun must match them
    shard-00000.npz     features (float32), paths, status, reason, objects
    shard-00001.npz     ...
"""

import copy
import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import (
    BrokenProcessPool,
    TerminatedWorkerError,
)
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from skvidsage._text import counted, plural
from skvidsage.video._decode import VideoDecodeWarning
from skvidsage.video._frames import check_videos

__all__ = ["featurize_to_folder", "load_featurized"]

_MANIFEST = "manifest.json"
_FORMAT = 1  # bump when the shard files change
STATUSES = ("ok", "warned", "failed")


def _shard_file(folder, k):
    return Path(folder) / f"shard-{k:05d}.npz"


def _params_text(featurizer):
    """Return the featurizer's parameters as text: what a rerun must match.

    Object addresses (``<function f at 0x7f...>``) are dropped: they change
    from one process to the next.
    """
    return {
        k: re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v))
        for k, v in sorted(featurizer.get_params(deep=False).items())
    }


def _manifest(paths, shard_size, featurizer):
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    return {
        "format": _FORMAT,
        "n_videos": len(paths),
        "videos_sha256": digest,
        "shard_size": shard_size,
        "featurizer": type(featurizer).__name__,
        "params": _params_text(featurizer),
    }


def _check_manifest(folder, manifest, paths):
    """Write the manifest of a new folder; check that a rerun matches it."""
    path = Path(folder) / _MANIFEST
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**manifest, "videos": paths}, indent=1))
        os.replace(tmp, path)
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path} cannot be read ({exc}); remove the folder or use another --out."
        ) from exc
    diff = [k for k in manifest if old.get(k) != manifest[k]]
    if diff:
        detail = "; ".join(
            f"{k}: folder has {old.get(k)!r}, this run has {manifest[k]!r}"
            for k in diff
            if k != "params"
        )
        if "params" in diff:
            changed = sorted(
                k
                for k in set(old.get("params", {})) | set(manifest["params"])
                if old.get("params", {}).get(k) != manifest["params"].get(k)
            )
            detail = "; ".join(filter(None, [detail, f"featurizer params {changed}"]))
        raise ValueError(
            f"{folder} holds shards of another job ({detail}). Rerun with the "
            "same videos and settings to resume, or write to a new folder."
        )


def _video_status(paths, rows, caught):
    """Status and reason of each video from its row and the warnings."""
    status = np.array(["ok"] * len(paths), dtype=object)
    reason = np.array([""] * len(paths), dtype=object)
    notes = []
    for w in caught:
        text = str(w.message)
        key = text.removeprefix("skipped ")
        # the decoder's messages are "<path>: <reason>" or "skipped <path>: ..."
        hits = [
            i
            for i, p in enumerate(paths)
            if issubclass(w.category, VideoDecodeWarning) and key.startswith(p + ":")
        ]
        if not hits:
            notes.append(f"{w.category.__name__}: {text}")
            continue
        hit = max(hits, key=lambda i: len(paths[i]))  # the longest matching path
        status[hit] = "warned"
        reason[hit] = "; ".join(filter(None, [reason[hit], text]))
    failed = np.isnan(rows).any(axis=1)
    status[failed] = "failed"
    return status.astype(str), reason.astype(str), notes


def _featurize_shard(featurizer, paths, target):
    """Worker body: featurise one shard and write it atomically."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = featurizer.transform(paths)
    rows = np.asarray(getattr(out, "features", out), dtype=np.float32)
    objects = getattr(out, "object_sets", None) or [frozenset()] * len(paths)
    status, reason, notes = _video_status(paths, rows, caught)
    # a hidden partial file, renamed when complete: a shard file is whole
    tmp = target.with_name(f".{target.name}.partial")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            features=rows,
            paths=np.asarray(paths, dtype=str),
            status=status,
            reason=reason,
            objects=np.asarray([json.dumps(sorted(map(str, o))) for o in objects]),
            notes=np.asarray(notes, dtype=str),
        )
    os.replace(tmp, target)
    return target


def featurize_to_folder(
    videos,
    folder,
    featurizer=None,
    *,
    shard_size=1000,
    n_jobs=1,
    retries=1,
    verbose=True,
):
    """Featurise video files shard by shard into ``folder``; resumable.

    Parameters
    ----------
    videos : list of str or os.PathLike
        Video files.
    folder : str or os.PathLike
        Output folder (created). A rerun with the same ``videos``, shard size
        and featurizer parameters skips every complete shard; other settings
        are an error that says what differs.
    featurizer : VideoFeaturizer, default=None
        The featurizer (default ``VideoFeaturizer()``); fitted here if it is
        not (a ``n_components`` PCA must be fitted beforehand, on videos of
        your choosing). It always runs with ``on_error="warn"``, so that an
        unreadable video is a ``"failed"`` row of its shard rather than the
        end of the shard; ``on_damage`` is kept.
    shard_size : int, default=1000
        Videos per shard: the most work a killed job loses.
    n_jobs : int, default=1
        Shards featurised at once (joblib semantics); each shard is one task
        of the active joblib backend, e.g. Dask inside
        ``joblib.parallel_config(backend="dask")``.
    retries : int, default=1
        Rounds that redo the shards whose worker died, in this call.
    verbose : bool, default=True
        Show a progress bar over shards.

    Returns
    -------
    summary : Bunch
        ``n_videos``, ``n_shards``, ``shards_done`` (featurised now),
        ``shards_skipped`` (complete from an earlier run), ``shards_missing``
        (whose workers died in every round: rerun to redo them), the counts
        ``ok``, ``warned``, ``failed``, and ``seconds``.

    See Also
    --------
    load_featurized : Read the folder back.

    Examples
    --------
    >>> import tempfile
    >>> from skvidsage import VideoFeaturizer
    >>> from skvidsage.datasets import make_video_classification
    >>> from skvidsage.video import featurize_to_folder, load_featurized
    >>> clips = make_video_classification(n_videos=4, n_classes=2, random_state=0)
    >>> out, featurizer = tempfile.mkdtemp(), VideoFeaturizer(n_frames=2)
    >>> run = dict(shard_size=2, verbose=False)
    >>> summary = featurize_to_folder(clips.filenames, out, featurizer, **run)
    >>> summary.shards_done, summary.ok
    (2, 4)
    >>> featurize_to_folder(clips.filenames, out, featurizer, **run).shards_skipped
    2
    >>> load_featurized(out).features.shape
    (4, 1280)
    """
    from skvidsage.video.featurize import VideoFeaturizer

    start = time.perf_counter()
    kind, items = check_videos(videos)
    if kind not in (None, "path"):
        raise TypeError(
            f"featurize_to_folder takes video files; got {kind} items. Featurise "
            "in-memory videos with VideoFeaturizer.transform."
        )
    paths = [os.fspath(p) for p in items]
    if not paths:
        raise ValueError("featurize_to_folder got an empty list of videos.")
    if not (isinstance(shard_size, int | np.integer) and shard_size >= 1):
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}.")
    featurizer = VideoFeaturizer() if featurizer is None else featurizer
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _check_manifest(folder, _manifest(paths, int(shard_size), featurizer), paths)
    try:
        check_is_fitted(featurizer)
        featurizer = copy.copy(featurizer).set_params(on_error="warn")
    except NotFittedError:  # fitting a file featurizer decodes nothing
        if featurizer.n_components is not None:
            raise ValueError(
                "A featurizer with n_components needs its PCA: fit it first, "
                "on videos of your choosing."
            ) from None
        featurizer = clone(featurizer).set_params(on_error="warn").fit(paths[:1])
    bounds = list(range(0, len(paths), shard_size))
    todo = [k for k in range(len(bounds)) if not _shard_file(folder, k).exists()]
    skipped = len(bounds) - len(todo)
    bar = tqdm(
        total=len(bounds), initial=skipped, disable=not verbose, unit="shard",
        desc="featurize shards",
    )
    first_todo = len(todo)
    for _ in range(1 + max(0, int(retries))):
        if not todo:
            break
        tasks = (
            delayed(_featurize_shard)(
                featurizer,
                paths[bounds[k] : bounds[k] + shard_size],
                _shard_file(folder, k),
            )
            for k in todo
        )
        try:
            for _ in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
                bar.update(1)
        except Exception as exc:
            # a dead worker (loky, or Dask's KilledWorker) costs its shards,
            # which the next round redoes; anything else is a real error
            if not isinstance(exc, TerminatedWorkerError | BrokenProcessPool) and (
                type(exc).__name__ != "KilledWorker"
            ):
                raise
            lost = [k for k in todo if not _shard_file(folder, k).exists()]
            n = len(lost)
            warnings.warn(
                f"featurize_to_folder: a worker died ({exc.__class__.__name__}); "
                f"{plural(n, 'shard')} {lost[:10]}{' ...' if n > 10 else ''} of "
                f"{folder} {plural(n, 'has', 'have')} no file and "
                f"{plural(n, 'is', 'are')} redone.",
                VideoDecodeWarning,
                stacklevel=2,
            )
        todo = [k for k in todo if not _shard_file(folder, k).exists()]
    bar.close()
    counts = dict.fromkeys(STATUSES, 0)
    for k in range(len(bounds)):
        if _shard_file(folder, k).exists():
            with np.load(_shard_file(folder, k)) as shard:
                for s in shard["status"]:
                    counts[str(s)] += 1
    summary = Bunch(
        n_videos=len(paths),
        n_shards=len(bounds),
        # shards written by this call (a shard whose result was lost with a
        # dead worker's pool may still have been written: count files)
        shards_done=first_todo - len(todo),
        shards_skipped=skipped,
        shards_missing=len(todo),
        seconds=time.perf_counter() - start,
        **counts,
    )
    if todo:
        n = len(todo)
        warnings.warn(
            f"featurize_to_folder: {counted(n, 'shard')} {todo[:10]} "
            f"{plural(n, 'has', 'have')} no file: {plural(n, 'its', 'their')} "
            "workers died in every round. Rerun the same call to redo "
            f"{plural(n, 'it', 'them')}.",
            VideoDecodeWarning,
            stacklevel=2,
        )
    return summary


def load_featurized(folder):
    """Read a folder written by :func:`featurize_to_folder`, in input order.

    Parameters
    ----------
    folder : str or os.PathLike
        The output folder of a complete run.

    Returns
    -------
    data : Bunch
        ``features`` (n_videos, n_features) float32 (NaN rows for failed
        videos), ``paths``, ``status`` ("ok", "warned" or "failed"),
        ``reason`` (the warning or error text, "" when ok) and
        ``object_sets`` (list of frozenset).

    Raises
    ------
    ValueError
        When a shard is missing (the run is not complete: rerun it) or the
        folder holds no manifest.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{folder} has no readable {_MANIFEST}: not a featurize_to_folder "
            f"output ({exc})."
        ) from exc
    n, size = manifest["n_videos"], manifest["shard_size"]
    n_shards = -(-n // size)
    missing = [k for k in range(n_shards) if not _shard_file(folder, k).exists()]
    if missing:
        raise ValueError(
            f"{folder} is incomplete: {len(missing)} of {n_shards} shards missing "
            f"(first: {_shard_file(folder, missing[0]).name}). Rerun "
            "featurize_to_folder with the same videos to finish it."
        )
    parts = {"features": [], "paths": [], "status": [], "reason": [], "objects": []}
    for k in range(n_shards):
        with np.load(_shard_file(folder, k)) as shard:
            for key in parts:
                parts[key].append(shard[key])
    objects = [frozenset(json.loads(o)) for o in np.concatenate(parts["objects"])]
    return Bunch(
        features=np.concatenate(parts["features"]),
        paths=[str(p) for p in np.concatenate(parts["paths"])],
        status=np.concatenate(parts["status"]),
        reason=np.concatenate(parts["reason"]),
        object_sets=objects,
    )
