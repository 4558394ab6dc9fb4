"""Inference with a fitted estimator over a Dask array, block by block.

Every skvidsage transformer and :class:`~skvidsage.GraphSmoothingClassifier`
treats each row alone at inference (an unseen video is linked to the fitted
reference videos, never to the other queries), so a fitted pipeline applied
to each block of rows gives the rows it gives in memory. :func:`dask_apply`
builds that Dask computation, with the estimator in the graph once: each
worker receives it once, not once per block.

To the last bit: the embedder's ``transform`` and the classifier's scores
(its logistic head included) are computed so that a row's value does not
depend on the rows it comes with. A bare scikit-learn head multiplies the
whole block in one BLAS product, whose kernels change with the block's
shape: a float32 ``LogisticRegression`` after the embedder gave 18 of 600
probabilities differing by up to 4e-8 between one call and 37-row blocks
(OpenBLAS 0.3.31). Wrap such a head in ``GraphSmoothingClassifier`` (as the
README's pipeline does) for bit-equal results, or compare to that rounding.
"""

import numpy as np

__all__ = ["dask_apply"]


def _apply(block, estimator, method):
    out = getattr(estimator, method)(block)
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"{type(estimator).__name__}.{method} returned a "
            f"{type(out).__name__}, not an array (a VideoGraph or VideoFeatures "
            "has no Dask form): apply the pipeline up to the step that turns "
            "it into an array, e.g. the builder and the embedder together."
        )
    return out


def dask_apply(estimator, X, method="predict_proba"):
    """Apply ``estimator.<method>`` to each row block of a Dask array.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Anything with ``method``; it must treat rows independently (all of
        skvidsage's fitted estimators do at inference).
    X : dask.array.Array of shape (n_videos, n_features)
        Features, chunked along rows only (``X.rechunk({1: -1})`` otherwise).
    method : str, default="predict_proba"
        ``"predict"``, ``"predict_proba"``, ``"decision_function"`` or
        ``"transform"``.

    Returns
    -------
    result : dask.array.Array
        Lazy: ``.compute()`` (or a distributed ``Client``) runs it. 1-D for
        ``predict`` of single labels, else 2-D with one chunk of columns.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skvidsage import GraphSmoothingClassifier, VidSageEmbedder
    >>> from skvidsage.distributed import dask_apply
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((300, 8)), np.arange(300) % 3
    >>> head = make_pipeline(VidSageEmbedder(), LogisticRegression())
    >>> pipe = GraphSmoothingClassifier(head).fit(X, y)
    >>> lazy = dask_apply(pipe, da.from_array(X, chunks=37))
    >>> bool((lazy.compute() == pipe.predict_proba(X)).all())
    True
    """
    import dask
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(
            f"dask_apply takes a dask.array.Array; got {type(X).__name__}. "
            "Wrap it with dask.array.from_array(X, chunks=...)."
        )
    if X.ndim != 2 or len(X.chunks[1]) != 1:
        raise ValueError(
            f"X must be 2-D and chunked along rows only; got shape {X.shape} with "
            f"column chunks {X.chunks[1] if X.ndim == 2 else None}. Use "
            "X.rechunk({1: -1})."
        )
    if not hasattr(estimator, method):
        raise AttributeError(f"{type(estimator).__name__} has no method {method!r}.")
    # one small block tells the output's width and dtype
    probe = _apply(X[:1].compute(), estimator, method)
    # the estimator as one key of the graph: shipped to each worker once
    fitted = dask.delayed(estimator, pure=True, traverse=False)
    if probe.ndim == 1:
        return X.map_blocks(
            _apply, fitted, method, drop_axis=1, dtype=probe.dtype, meta=probe[:0]
        )
    return X.map_blocks(
        _apply,
        fitted,
        method,
        chunks=(X.chunks[0], (probe.shape[1],)),
        dtype=probe.dtype,
        meta=probe[:0],
    )
