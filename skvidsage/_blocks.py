"""Out-of-core reading of feature rows for :class:`~skvidsage.VideoGraphBuilder`.

A float32 ``np.memmap`` is read block by block (or a few gathered rows at a
time), each block copied into memory, used and dropped. Pages of a memory map
count in the process's RSS once touched, even read-only, so after each block
the pages are handed back with ``madvise(MADV_DONTNEED)``: the data stay in
the page cache (and on disk), the process stops holding them. Without it,
building the 1M x 1024 graph from a 4 GB memmap ends at 4 GB of RSS from the
map alone (``benchmarks/bench_ann.py --memmap``).
"""

import mmap

import numpy as np

__all__ = ["is_out_of_core", "release", "row_blocks", "take_rows", "zero_rows"]

# rows per block read from a memmap: 2**24 float32 values (64 MiB)
BLOCK_VALUES = 2**24
# rows of a memmap gathered at once by take_rows: 64,000 sampled rows of a 1M
# x 1024 map took 0.16 s 32 at a time and 2.5 s 1,024 at a time
_GATHER_ROWS = 32


def is_out_of_core(X):
    """Return whether ``X`` is a float32 memmap the builder keeps on disk.

    Another dtype would need a converted copy of the whole array (as
    ``validate_data`` makes), so it is treated as an in-memory array.
    """
    return isinstance(X, np.memmap) and X.dtype == np.float32 and X.ndim == 2


def release(X):
    """Hand back the pages of ``X``'s memory map that the process touched.

    A no-op for an in-memory array, and for a copy-on-write map (mode
    ``"c"``), whose touched pages may hold the caller's unsaved changes.
    ``MADV_DONTNEED`` on a shared map drops only the process's mapping of
    the pages: their data (even modified, mode ``"r+"``) stay in the page
    cache.
    """
    m = getattr(X, "_mmap", None)
    if m is None or getattr(X, "mode", "c") == "c" or not hasattr(m, "madvise"):
        return
    try:
        m.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed map, or a platform without it
        pass


def block_rows(X):
    """Rows per block of ``X``: about :data:`BLOCK_VALUES` values, at least 1."""
    return max(1, BLOCK_VALUES // max(1, X.shape[1]))


def row_blocks(X, rows=None):
    """Yield ``(start, stop, block)``: float32 copies of consecutive rows of ``X``.

    ``rows`` rows per block (default :func:`block_rows`); the memory map's
    pages are released after each block.

    Examples
    --------
    >>> import numpy as np
    >>> [(s, e, b.shape) for s, e, b in row_blocks(np.ones((5, 2)), rows=2)]
    [(0, 2, (2, 2)), (2, 4, (2, 2)), (4, 5, (1, 2))]
    """
    rows = block_rows(X) if rows is None else int(rows)
    for start in range(0, X.shape[0], rows):
        stop = min(start + rows, X.shape[0])
        block = np.array(X[start:stop], dtype=np.float32, order="C")
        release(X)
        yield start, stop, block


def take_rows(X, idx):
    """Float32 copy of the rows ``idx`` of ``X`` (pages released as it goes).

    Sorted indices read the map in file order. From a memmap the rows are
    gathered :data:`_GATHER_ROWS` at a time, the pages released after each
    gather: a fault maps more than the row read (pages around it, or a
    whole large page-cache folio, up to 2 MiB), so a gather of 20,000
    scattered rows of a 100,000 x 1024 map held the whole 400 MB map, and
    one of 1,000 rows of a 1M x 1024 map 1.6 GB (32 at a time: 96 MB, with
    the output).
    """
    idx = np.asarray(idx)
    if not isinstance(X, np.memmap):
        return np.array(X[idx], dtype=np.float32, order="C")
    out = np.empty((len(idx),) + X.shape[1:], dtype=np.float32)
    for start in range(0, len(idx), _GATHER_ROWS):
        out[start : start + _GATHER_ROWS] = X[idx[start : start + _GATHER_ROWS]]
        release(X)
    return out


def zero_rows(X):
    """Boolean mask of the all-zero rows of ``X``, and whether all are finite.

    Read block by block.
    """
    zero = np.empty(X.shape[0], dtype=bool)
    finite = True
    for start, stop, block in row_blocks(X):
        zero[start:stop] = ~np.any(block != 0, axis=1)
        finite = finite and bool(np.isfinite(block).all())
    return zero, finite
