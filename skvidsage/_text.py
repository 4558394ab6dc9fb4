"""Wording shared by the package's messages: counts and their nouns.

Every warning and error that counts something ("1 frame", "3 rows") spells
the number through :func:`counted`, so the plural rule lives here once.
"""

__all__ = ["counted", "plural"]


def plural(n, one, many=None):
    """Return the word for ``n`` things: ``one`` for 1, else ``many``.

    Parameters
    ----------
    n : int
        How many.
    one : str
        The word for one thing.
    many : str, default=None
        The word for any other count; ``one + "s"`` when None.

    Returns
    -------
    str

    Examples
    --------
    >>> plural(1, "has", "have"), plural(2, "has", "have"), plural(0, "row")
    ('has', 'have', 'rows')
    """
    if n == 1:
        return one
    return one + "s" if many is None else many


def counted(n, noun, many=None):
    """Return a count and its noun: ``"1 frame"``, ``"3 frames"``.

    ``n``, ``noun`` and ``many`` are those of :func:`plural` (``noun`` its
    ``one``).

    Examples
    --------
    >>> counted(1, "frame"), counted(3, "frame"), counted(0, "FFmpeg message")
    ('1 frame', '3 frames', '0 FFmpeg messages')
    """
    return f"{n} {plural(n, noun, many)}"
