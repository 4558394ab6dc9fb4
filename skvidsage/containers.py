"""Data types passed between the steps of a skvidsage pipeline.

- :class:`VideoFeatures`: one feature row per video, optionally with the set of
  object labels detected in each video. A featurizer with an object detector
  returns it; a user can build one by hand. It can be split by scikit-learn's
  cross-validation tools like an array.
- :class:`VideoGraph`: what :class:`~skvidsage.graph.VideoGraphBuilder`
  returns, the query videos' features and their weighted links to the
  reference videos; what the embedder consumes.
"""

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["VideoFeatures", "VideoGraph"]


def _as_object_sets(object_sets, n_rows):
    """Return ``object_sets`` as a list of ``n_rows`` frozensets, or raise."""
    if isinstance(object_sets, (str, bytes)) or not hasattr(object_sets, "__len__"):
        raise TypeError(
            "object_sets must be None or a sequence with one set of labels per "
            f"row; got {type(object_sets).__name__}."
        )
    if len(object_sets) != n_rows:
        raise ValueError(
            f"object_sets has {len(object_sets)} entries but features has "
            f"{n_rows} rows; give one set of object labels per row."
        )
    sets = []
    for i, labels in enumerate(object_sets):
        if isinstance(labels, (str, bytes)):
            raise TypeError(
                f"object_sets[{i}] is a string ({labels!r}); give a set of labels, "
                f"e.g. {{{labels!r}}}."
            )
        try:
            labels = frozenset(labels)
        except TypeError as exc:
            raise TypeError(
                f"object_sets[{i}] must be an iterable of hashable labels; got "
                f"{type(labels).__name__}: {exc}."
            ) from None
        sets.append(labels)
    return sets


@dataclass(frozen=True, eq=False, repr=False)
class VideoFeatures:
    """Video-level features, optionally with detected object labels per video.

    The input of :class:`~skvidsage.graph.VideoGraphBuilder` for VidSage (with
    object sets) and LiteVidSage (``object_sets=None``, equivalent to passing
    ``features`` alone). It behaves like an array of rows for scikit-learn's
    splitters: it has ``shape`` and ``len``, and indexing by an integer array,
    a boolean mask or a slice returns a ``VideoFeatures`` of those rows, so it
    passes through ``cross_val_score``, ``GridSearchCV`` and ``Pipeline``.

    Parameters
    ----------
    features : array-like of shape (n_videos, n_features)
        One feature row per video (e.g. YouTube-8M ``mean_rgb``). Stored as a
        NumPy array without a copy when possible; its dtype is left as given
        (the graph builder validates and converts it).
    object_sets : sequence of n_videos sets of hashable labels, default=None
        The labels of the objects detected in each video (paper Section 3.3,
        :math:`O_u`), e.g. ``[{"person", "dog"}, set(), ...]``. Each entry is
        stored as a ``frozenset``; an empty set means nothing was detected.
        ``None`` means no detector was run.

    Attributes
    ----------
    shape : tuple of int
        ``features.shape``, i.e. ``(n_videos, n_features)``.

    See Also
    --------
    skvidsage.graph.VideoGraphBuilder : Builds the video graph from these.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage.containers import VideoFeatures
    >>> X = VideoFeatures(np.eye(3), [{"person"}, {"person", "dog"}, set()])
    >>> X
    VideoFeatures(n_videos=3, n_features=3, object_sets=3)
    >>> X[[0, 2]].object_sets
    [frozenset({'person'}), frozenset()]
    """

    features: np.ndarray
    object_sets: list | None = None

    def __post_init__(self):
        features = np.asarray(self.features)
        if features.ndim != 2:
            raise ValueError(
                "features must be a 2-D array of shape (n_videos, n_features); "
                f"got an array of shape {features.shape}."
            )
        object.__setattr__(self, "features", features)
        if self.object_sets is not None:
            sets = _as_object_sets(self.object_sets, features.shape[0])
            object.__setattr__(self, "object_sets", sets)

    @property
    def shape(self):
        """Tuple of int: ``(n_videos, n_features)``."""
        return self.features.shape

    def __len__(self):
        return self.features.shape[0]

    def __getitem__(self, key):
        # sklearn.utils._safe_indexing calls ``X[key, ...]``.
        if isinstance(key, tuple):
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError(
                    "VideoFeatures can only be indexed by rows (an integer array, "
                    "a boolean mask or a slice)."
                )
        if isinstance(key, numbers.Integral):
            raise TypeError(
                "VideoFeatures is indexed by rows and keeps them 2-D: use "
                f"X[[{key}]] for a single row."
            )
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (len(self),):
                    raise IndexError(
                        f"boolean mask of shape {key.shape} does not match the "
                        f"{len(self)} rows."
                    )
            elif key.ndim != 1 or not (key.size == 0 or key.dtype.kind in "iu"):
                raise IndexError(
                    "VideoFeatures rows are selected by a 1-D integer array, a "
                    f"boolean mask or a slice; got an array of shape {key.shape} "
                    f"and dtype {key.dtype}."
                )
            else:
                key = key.astype(np.intp, copy=False)
        rows = np.arange(len(self))[key]
        sets = None
        if self.object_sets is not None:
            sets = [self.object_sets[i] for i in rows]
        return VideoFeatures(self.features[rows], sets)

    def __repr__(self):
        n, d = self.shape
        sets = "None" if self.object_sets is None else str(len(self.object_sets))
        return f"VideoFeatures(n_videos={n}, n_features={d}, object_sets={sets})"


@dataclass(frozen=True, eq=False, repr=False)
class VideoGraph:
    """Query videos' features and their weighted links to the reference videos.

    The output of :meth:`VideoGraphBuilder.transform
    <skvidsage.graph.VideoGraphBuilder.transform>`: row ``i`` of ``adjacency``
    holds the links of query video ``i`` to the reference (training) videos,
    as in scikit-learn's ``KNeighborsTransformer``. For
    ``builder.fit_transform(X)`` queries and references are the same videos,
    so ``adjacency`` is square, with an empty diagonal: the builder never
    links a video to itself (nor to an exact copy).

    Parameters
    ----------
    features : ndarray of shape (n_queries, n_features), dtype float32
        The query videos' features exactly as given to the builder (converted
        to float32, **not** L2-normalised: the embedder normalises itself).
    adjacency : scipy.sparse.csr_matrix of shape (n_queries, n_reference)
        ``adjacency[i, j] > 0`` is the weight of the link from query ``i`` to
        reference video ``j``; absent entries are no link. float32 weights,
        sorted column indices, no duplicate entries and no explicit zeros
        (a matrix that has them is copied and tidied).
    feature_names : array-like of str or None, default=None
        The names of the ``features`` columns, when the builder was fitted
        on a DataFrame (its ``feature_names_in_``): the embedder reads them
        as its own ``feature_names_in_``, so its output columns are named
        after them through a Pipeline too. Stored as an object array.

    Attributes
    ----------
    shape : tuple of int
        ``(n_queries, n_reference)``, the shape of ``adjacency``.
    dtype : numpy.dtype
        ``float32``, the dtype of ``features`` and of the edge weights.

    See Also
    --------
    skvidsage.graph.VideoGraphBuilder : Builds it.

    Notes
    -----
    ``VideoGraph`` is deliberately not array-like (no ``__array__``): its
    dense form is ``n_queries x n_reference`` and would not fit in memory for
    large video sets. Use :meth:`toarray` for small graphs.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skvidsage.containers import VideoGraph
    >>> G = VideoGraph(np.ones((2, 4)), sp.csr_matrix([[1.0, 0, 0], [0, 0.5, 0]]))
    >>> G
    VideoGraph(n_queries=2, n_reference=3, n_features=4, n_edges=2)
    >>> G.toarray()
    array([[1. , 0. , 0. ],
           [0. , 0.5, 0. ]], dtype=float32)
    """

    features: np.ndarray
    adjacency: sp.csr_matrix
    feature_names: np.ndarray | None = None

    def __post_init__(self):
        features = np.asarray(self.features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(
                "features must be 2-D (n_queries, n_features); got shape "
                f"{features.shape}."
            )
        if self.feature_names is not None:
            names = np.asarray(self.feature_names, dtype=object)
            if names.shape != (features.shape[1],):
                raise ValueError(
                    f"feature_names has shape {names.shape} but features has "
                    f"{features.shape[1]} columns; give one name per column, "
                    "or None."
                )
            if not all(isinstance(name, str) for name in names):
                raise TypeError(
                    "feature_names must be strings (as a DataFrame's column "
                    "names in scikit-learn's feature_names_in_); got "
                    f"{sorted({type(n).__name__ for n in names})}."
                )
            object.__setattr__(self, "feature_names", names)
        if not sp.issparse(self.adjacency) or self.adjacency.ndim != 2:
            raise TypeError(
                "adjacency must be a 2-D scipy.sparse matrix; got "
                f"{type(self.adjacency).__name__}."
            )
        adjacency = sp.csr_matrix(self.adjacency, dtype=np.float32)
        if adjacency.shape[0] != features.shape[0]:
            raise ValueError(
                f"adjacency has {adjacency.shape[0]} rows but features has "
                f"{features.shape[0]}; both have one row per query video."
            )
        if not np.all(np.isfinite(adjacency.data)) or np.any(adjacency.data < 0):
            raise ValueError("adjacency weights must be finite and non-negative.")
        if not adjacency.has_canonical_format or not np.all(adjacency.data):
            adjacency = adjacency.copy()  # never reorder the caller's matrix
            adjacency.sum_duplicates()  # also sorts the indices
            adjacency.eliminate_zeros()
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "adjacency", adjacency)

    @property
    def shape(self):
        """Tuple of int: ``(n_queries, n_reference)``."""
        return self.adjacency.shape

    @property
    def dtype(self):
        """numpy.dtype: ``float32``, of both features and edge weights."""
        return self.features.dtype

    def __len__(self):
        return self.adjacency.shape[0]

    def toarray(self):
        """Return the dense adjacency, shape ``(n_queries, n_reference)``.

        Returns
        -------
        adjacency : ndarray of shape (n_queries, n_reference), dtype float32
            Zero where there is no link. Only for small graphs.
        """
        return self.adjacency.toarray()

    def __repr__(self):
        n_q, n_r = self.shape
        return (
            f"VideoGraph(n_queries={n_q}, n_reference={n_r}, "
            f"n_features={self.features.shape[1]}, n_edges={self.adjacency.nnz})"
        )
