"""``VidSageEmbedder.transform`` block by block, for inputs and outputs on disk.

Each row's embedding depends only on that row and the fitted reference graph
(its links come from the fitted builder, its blocks from the reference
videos' states), so embedding ``X`` block by block gives what one call gives:
the blocks are read from a memmap as copies whose pages are then released
(:func:`skvidsage._ondisk.read_rows`), linked with the fitted builder, embedded
and written out, and the memory used is that of one block whatever the
number of rows. The checks that a whole-array call makes once (feature names,
rows of norm 0) are made once here too, the warnings naming rows of the whole
input.
"""

import os
import warnings

import numpy as np
from sklearn.utils.validation import validate_data

from skvidsage._checks import ZeroRowsByBlocks, warn_zero_rows_at_caller
from skvidsage._ondisk import NpyWriter, read_rows, write_rows
from skvidsage.containers import VideoGraph

__all__ = ["BLOCK_ROWS", "embed_by_blocks", "open_output", "write_output"]

# 16,384 rows of 1024 float32 features are 64 MiB in, 192 MiB out with the
# default two hops: over a 1M x 1024 memmap, transform peaked at 1.62 GiB of
# RSS, 0.67 GiB above its imports' 0.95 (docs/results.rst, "Out-of-core
# features and training at 1M nodes").
BLOCK_ROWS = 16_384

_NO_NAMES = "X does not have valid feature names"


def open_output(out, n_rows, n_columns):
    """Return where ``transform`` writes: an array, or an :class:`NpyWriter`."""
    if out is None:
        return np.empty((n_rows, n_columns), dtype=np.float32)
    if isinstance(out, str | os.PathLike):
        return NpyWriter(out, n_columns, np.float32)
    if not isinstance(out, np.ndarray):
        raise TypeError(
            "out must be None, a path to write a .npy file to, or an array "
            f"(e.g. an np.memmap opened with mode='w+'); got {type(out).__name__}."
        )
    if out.shape != (n_rows, n_columns) or out.dtype != np.float32:
        raise ValueError(
            f"out must be a float32 array of shape {(n_rows, n_columns)}; got "
            f"{out.dtype} of shape {out.shape}. Create it with e.g. "
            f"np.lib.format.open_memmap(path, 'w+', np.float32, {(n_rows, n_columns)})."
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only; open the memmap with mode='w+' or 'r+'.")
    return out


def write_output(out, Z):
    """Write an in-memory ``Z`` to ``out`` as ``transform`` would; return it there."""
    target = open_output(out, *Z.shape)
    write_rows(target, 0, Z)
    return target.close() if isinstance(target, NpyWriter) else target


def embed_by_blocks(emb, X, out, block_rows=None):
    """Embed ``X`` (features or a VideoGraph) block by block into ``out``.

    Parameters
    ----------
    emb : VidSageEmbedder
        The fitted embedder.
    X : ndarray, np.memmap or VideoGraph
        The rows to embed; a VideoGraph's ``features`` may be a memmap.
    out : None, str, os.PathLike or ndarray
        See :meth:`VidSageEmbedder.transform`.
    block_rows : int, default=None
        Rows per block (None: ``BLOCK_ROWS``).

    Returns
    -------
    Z : ndarray or np.memmap of shape (n_rows, n_features_out)
        ``out`` filled, or the ``.npy`` file written, opened read-only.
    """
    block_rows = BLOCK_ROWS if block_rows is None else block_rows
    graph_input = isinstance(X, VideoGraph)
    source = X.features if graph_input else X
    owner = type(emb).__name__
    if graph_input:
        emb._check_graph_feature_names(X.feature_names, reset=False)
        if X.shape[1] != emb.reference_features_.shape[0]:
            raise ValueError(
                f"The VideoGraph links to {X.shape[1]} reference videos but "
                f"this embedder was fitted on {emb.reference_features_.shape[0]}."
            )
    n = source.shape[0]
    target = open_output(out, n, emb._n_features_out)
    try:
        # zero rows named once, for rows of the whole input
        with ZeroRowsByBlocks() as blocks:
            for start in range(0, max(n, 1), block_rows):
                blocks.start = start
                stop = min(start + block_rows, n)
                rows = read_rows(source, start, stop)
                with warnings.catch_warnings():
                    if start > 0 or graph_input:
                        # said by the first block's check, once; a VideoGraph's
                        # names were checked above, not its array's
                        warnings.filterwarnings("ignore", _NO_NAMES)
                    if graph_input:
                        features = validate_data(
                            emb, rows, dtype=np.float32, reset=False
                        )
                        adjacency = X.adjacency[start:stop]
                        warn_zero_rows_at_caller(
                            features,
                            owner=f"{owner}.transform",
                            name="the VideoGraph's features",
                        )
                    else:
                        builder = emb.graph_builder_
                        features, adjacency = emb._build_graph(
                            rows, builder, reset=False
                        )
                write_rows(target, start, emb._embed(features, adjacency))
                del rows, features, adjacency
    except BaseException:
        if isinstance(target, NpyWriter):
            target.abort()
        raise
    if isinstance(target, NpyWriter):
        return target.close()
    return target
