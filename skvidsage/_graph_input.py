"""Input checks of :class:`~skvidsage.VideoGraphBuilder`, for arrays and memmaps.

A float32 ``np.memmap`` is never read whole here: ``validate_data`` only
checks its shape and names (``skip_check_array``), and its finiteness and
zero rows are checked block by block (:mod:`skvidsage._blocks`). Any other
input goes through ``validate_data`` as usual (a float32 copy if needed).
"""

import numpy as np
from sklearn.utils.validation import validate_data

from skvidsage._blocks import is_out_of_core, zero_rows
from skvidsage._checks import warn_zero_rows_at_caller

__all__ = ["similarity_features", "validate_features", "warn_zero_similarity_rows"]


def validate_features(estimator, features, *, reset):
    """``validate_data(estimator, features, dtype=float32)``, memmaps left on disk."""
    if not is_out_of_core(features):
        with np.errstate(over="ignore"):  # sklearn reports the overflow
            return validate_data(estimator, features, dtype=np.float32, reset=reset)
    if features.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={features.shape}) while a "
            f"minimum of 1 is required by {type(estimator).__name__}."
        )
    validate_data(estimator, features, skip_check_array=True, reset=reset)
    return features


def warn_zero_similarity_rows(similar, owner, method, columns):
    """Name the rows of ``similar`` that L2 normalisation leaves at zero.

    ``similar`` holds the similarity features as ``normalize_rows`` will
    get them (float32, restricted to ``columns``), so a row warned about
    is exactly a row the kernels keep at zero. A memmap is read block by
    block, and checked for NaN and infinity on the way.
    """
    if is_out_of_core(similar):
        zero, finite = zero_rows(similar)
        if not finite:
            raise ValueError(
                "Input X contains NaN or infinity (read block by block from the "
                "np.memmap); fix or drop those rows."
            )
        similar = (~zero).astype(np.float32)[:, None]  # zero where X is
    warn_zero_rows_at_caller(
        similar,
        owner=f"{owner}.{method}",
        name="X" if columns is None else "X[:, columns]",
    )


def similarity_features(features, columns):
    """Return the columns of ``features`` the similarity uses.

    On a memmap a slice of columns is a view (it stays on disk); a list of
    column indices is copied into memory.
    """
    if columns is None:
        return features
    n = features.shape[1]
    requested = columns
    if not isinstance(columns, slice):
        columns = np.asarray(columns)
        if columns.ndim != 1 or not np.issubdtype(columns.dtype, np.integer):
            raise ValueError(
                f"columns must be a slice or a 1-d array of column indices; "
                f"got {requested!r}."
            )
        if columns.size and (columns.min() < -n or columns.max() >= n):
            raise ValueError(
                f"columns={requested!r} is out of range for {n} feature columns."
            )
    if is_out_of_core(features) and isinstance(columns, slice):
        selected = features[:, columns]
    else:
        selected = np.ascontiguousarray(features[:, columns])
    if selected.shape[1] == 0:
        raise ValueError(
            f"columns={requested!r} selects none of the {n} feature columns."
        )
    return selected
