"""Checks on feature rows that every estimator shares.

A row of norm 0 (a video whose features are all zero: a black clip, an empty
feature file) has no direction once rows are L2-normalised, so its cosine
similarities, links and embedding are undefined; the estimators keep such a
row at zero (as ``sklearn.preprocessing.normalize`` does) and warn, naming the
rows, through :func:`warn_zero_rows`, the one place that decides it.
"""

import contextvars
import sys
import warnings

import numpy as np

from skvidsage._text import counted, plural

__all__ = [
    "ZeroRowWarning",
    "ZeroRowsByBlocks",
    "check_graph_feature_names",
    "warn_zero_rows",
    "warn_zero_rows_at_caller",
]

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
    rows = np.flatnonzero(zero)
    blocks = _BLOCKS.get()
    if blocks is not None:
        blocks.add(owner, name, rows)
    elif len(rows):
        _warn_rows(rows, owner, name, stacklevel + 1)
    return zero


def _warn_rows(rows, owner, name, stacklevel):
    n = len(rows)
    shown = ", ".join(map(str, rows[:_SHOWN])) + (", ..." if n > _SHOWN else "")
    warnings.warn(
        f"{owner}: {counted(n, 'row')} of {name} {plural(n, 'has', 'have')} "
        f"norm 0 ({plural(n, 'row')} {shown}): no direction after L2 "
        "normalisation, so such a row stays all zero, at distance 1 from "
        "every non-zero video, and its similarity links and embedding say "
        "nothing about its content. Drop or fix those videos, or filter "
        "ZeroRowWarning if that is intended.",
        ZeroRowWarning,
        stacklevel=stacklevel,
    )


_BLOCKS = contextvars.ContextVar("skvidsage_zero_row_blocks", default=None)


class ZeroRowsByBlocks:
    """Gather the zero-row warnings of an input handled block by block.

    Inside ``with ZeroRowsByBlocks() as blocks:``, :func:`warn_zero_rows`
    records the rows instead of warning, shifted by ``blocks.start`` (set it
    to each block's first row); on a normal exit one warning per owner and
    name names the rows of the whole input, as one call on all of it would
    (pointed at the first frame outside skvidsage and scikit-learn).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> X = np.array([[1.0], [0.0], [2.0], [0.0]])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with ZeroRowsByBlocks() as blocks:
    ...         for start in (0, 2):
    ...             blocks.start = start
    ...             _ = warn_zero_rows(X[start : start + 2], owner="demo")
    >>> len(caught), str(caught[0].message)[:37]
    (1, 'demo: 2 rows of X have norm 0 (rows 1')
    """

    def __init__(self):
        self._rows, self._token = {}, None
        self.start = 0

    @property
    def start(self):
        """First row of the current block in the whole input."""
        return self._start

    @start.setter
    def start(self, value):
        self._start, self._calls = value, {}

    def add(self, owner, name, rows):
        """Record ``rows`` (of the current block) for ``owner`` and ``name``.

        Every block makes the same checks in the same order, so the ``j``-th
        check of an owner in a block is the same check as in the others (two
        graph builders of a classifier, say): each gets its own warning.
        """
        j = self._calls.get((owner, name), 0)
        self._calls[(owner, name)] = j + 1
        self._rows.setdefault((owner, name, j), []).append(rows + self._start)

    def __enter__(self):
        self._token = _BLOCKS.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        _BLOCKS.reset(self._token)
        if exc_type is not None:
            return False
        for (owner, name, _), parts in self._rows.items():
            rows = np.concatenate(parts)
            if len(rows):  # 1: _warn_rows, 2: here, 3: the with statement
                _warn_rows(rows, owner, name, _user_level(sys._getframe(1), 3))
        return False


def warn_zero_rows_at_caller(X, *, owner, name="X"):
    """Call :func:`warn_zero_rows`, the warning pointed at the user's code.

    The estimators reach this through wrappers (``_fit_context``,
    ``set_output``) and each other (an embedder's or a classifier's builder,
    a Pipeline, ``cross_val_score``), so the warning is attributed to the
    first frame outside skvidsage and scikit-learn rather than to a fixed
    depth.
    """
    # 1: warn_zero_rows, 2: here, 3: the caller
    level = _user_level(sys._getframe(1), 3)
    return warn_zero_rows(X, owner=owner, name=name, stacklevel=level)


def _user_level(frame, level):
    """``stacklevel`` of the first frame outside skvidsage and scikit-learn.

    ``frame`` is the frame at stack level ``level``.
    """
    while frame is not None and frame.f_globals.get("__name__", "").partition(
        "."
    )[0] in ("skvidsage", "sklearn"):
        frame, level = frame.f_back, level + 1
    return level


def check_graph_feature_names(fitted, names, owner):
    """Check a VideoGraph's ``feature_names`` against those seen in fit.

    As scikit-learn's ``validate_data`` does for a DataFrame's columns: a
    warning when only one side has names, an error naming the columns that
    differ.
    """
    if fitted is None and names is None:
        return
    if fitted is None or names is None:
        warnings.warn(
            f"The VideoGraph {'has no' if names is None else 'has'} feature "
            f"names, but {owner} was fitted "
            f"{'with' if names is None else 'without'} them; build both "
            "graphs from the same kind of input (both DataFrames, or both "
            "arrays).",
            UserWarning,
            stacklevel=4,
        )
        return
    if len(fitted) != len(names) or np.any(fitted != names):
        differ = np.flatnonzero(fitted != names)[:5].tolist()
        raise ValueError(
            "The VideoGraph's feature_names should match those seen in fit, "
            f"in the same order; they differ at columns {differ} (fit: "
            f"{fitted[differ].tolist()}, now: {names[differ].tolist()}). "
            "Select and order the input's columns as in fit."
        )
