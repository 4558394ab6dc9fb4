"""Checks on feature rows that every estimator shares.

A row of norm 0 (a video whose features are all zero: a black clip, an empty
feature file) has no direction once rows are L2-normalised, so its cosine
similarities, links and embedding are undefined; the estimators keep such a
row at zero (as ``sklearn.preprocessing.normalize`` does) and warn, naming the
rows, through :func:`warn_zero_rows`, the one place that decides it.
"""

import warnings

import numpy as np

__all__ = ["ZeroRowWarning", "warn_zero_rows"]

_SHOWN = 10  # row indices named in one warning


class ZeroRowWarning(UserWarning):
    """Feature rows of norm 0: no direction after L2 normalisation.

    Such a video keeps an all-zero normalised row, at distance 1 from every
    non-zero video, so its similarity links (ties broken by index) and
    whatever is computed from it say nothing about its content.
    Filter it like any warning, e.g. ``warnings.simplefilter("error",
    ZeroRowWarning)`` to make it an error.
    """


def warn_zero_rows(X, *, owner, name="X", stacklevel=3):
    """Warn with a :class:`ZeroRowWarning` naming the all-zero rows of ``X``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_rows, n_features)
        Feature rows (already validated).
    owner : str
        Who checks, for the message (e.g. ``"VideoGraphBuilder.fit"``).
    name : str, default="X"
        What ``X`` is called in the message.
    stacklevel : int, default=3
        As in :func:`warnings.warn`.

    Returns
    -------
    zero : ndarray of shape (n_rows,), dtype bool
        Which rows are all zero.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     zero = warn_zero_rows(np.array([[1.0, 0.0], [0.0, 0.0]]), owner="demo")
    >>> zero.tolist(), str(caught[0].message)[:34]
    ([False, True], 'demo: 1 row of X has norm 0 (row 1')
    """
    if hasattr(X, "getnnz"):  # scipy sparse: explicit zeros count as zero
        zero = np.asarray(abs(X).sum(axis=1)).ravel() == 0
    else:
        zero = ~np.any(np.asarray(X) != 0, axis=1)
    n = int(zero.sum())
    if n:
        rows = np.flatnonzero(zero)
        shown = ", ".join(map(str, rows[:_SHOWN])) + (", ..." if n > _SHOWN else "")
        warnings.warn(
            f"{owner}: {n} row{'s' if n > 1 else ''} of {name} "
            f"{'have' if n > 1 else 'has'} norm 0 (row{'s' if n > 1 else ''} "
            f"{shown}): no direction after L2 normalisation, so such a row "
            "stays all zero, at distance 1 from every non-zero video, and its "
            "similarity links and embedding say nothing about its content. "
            "Drop or fix those videos, or filter ZeroRowWarning if that is "
            "intended.",
            ZeroRowWarning,
            stacklevel=stacklevel,
        )
    return zero
