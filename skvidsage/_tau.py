"""``tau="auto"`` of :class:`skvidsage.VideoGraphBuilder`, learnt from the reference.

The threshold is the median, over evenly spaced reference videos, of the
similarity ``g`` to their ``n_neighbors``-th nearest other video, found with
the builder's own kernels (:func:`skvidsage._neighbors.build_edges`).
"""

import numpy as np
import torch

from skvidsage._blocks import is_out_of_core, row_blocks, take_rows
from skvidsage._neighbors import build_edges, normalize_rows, similarity_weight

__all__ = ["auto_tau", "auto_tau_streamed", "learn_tau"]


def learn_tau(reference, n_neighbors, device, block_values):
    """:func:`auto_tau`, or :func:`auto_tau_streamed` for an np.memmap."""
    learn = auto_tau_streamed if is_out_of_core(reference) else auto_tau
    return learn(reference, n_neighbors, device, block_values)


def auto_tau(reference, n_neighbors, device, block_values, sample=2000):
    """Median ``g`` of ``sample`` reference rows to their k-th nearest other row.

    The rows are evenly spaced; exact copies of a row do not count as others
    (as in ``VideoGraphBuilder.transform``).
    """
    n = reference.shape[0]
    k = min(n_neighbors, n - 1)
    rows = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(int))
    with torch.inference_mode():
        R, _ = normalize_rows(reference, device)
        indptr, _, weights = build_edges(
            reference[rows],
            R,
            R_raw=reference,
            tau=2.0,  # no threshold: exactly the k nearest others
            n_neighbors=k,
            max_degree=k,
            visual_weight=similarity_weight,  # (1 + g) / 2, g exact
            batch_size=max(1, block_values // n),
            device=device,
        )
        del R
    # the links of a row are its k nearest others, so the k-th is the
    # weakest; a video whose copies leave fewer than k others has fewer
    # links (its weakest is then its farthest), one with none is skipped
    linked = np.diff(indptr) > 0
    if not linked.any():
        raise ValueError(
            "tau='auto' learns the threshold from each reference video's "
            "nearest other videos, but all the reference videos have "
            "identical features. Give a number for tau."
        )
    kth = np.minimum.reduceat(weights, indptr[:-1][linked])
    return float(np.median(2.0 * kth.astype(np.float64) - 1.0))


def auto_tau_streamed(reference, n_neighbors, device, block_values, sample=2000):
    """:func:`auto_tau` reading ``reference`` (an np.memmap) block by block.

    Each sampled row's ``k`` nearest others are merged over blocks of
    reference rows, so the whole set is never in memory; the result is
    :func:`auto_tau`'s up to the float32 rounding of near ties.
    """
    n = reference.shape[0]
    k = min(n_neighbors, n - 1)
    rows = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(int))
    queries = take_rows(reference, rows)
    best = np.full((len(rows), k), -np.inf, dtype=np.float32)
    with torch.inference_mode():
        for start, stop, block in row_blocks(reference):
            R, _ = normalize_rows(block, device)
            m = min(k, stop - start)
            indptr, _, weights = build_edges(
                queries,
                R,
                R_raw=block,
                tau=2.0,  # no threshold: the m nearest others in the block
                n_neighbors=m,
                max_degree=m,
                visual_weight=similarity_weight,
                batch_size=max(1, block_values // (stop - start)),
                device=device,
            )
            found = np.full((len(rows), m), -np.inf, dtype=np.float32)
            counts = np.diff(indptr)
            found[
                np.repeat(np.arange(len(rows)), counts),
                np.arange(len(weights)) - np.repeat(indptr[:-1], counts),
            ] = weights
            best = -np.sort(-np.concatenate([best, found], axis=1), axis=1)[:, :k]
    kth = np.where(np.isfinite(best), best, np.inf).min(axis=1)
    linked = np.isfinite(kth)
    if not linked.any():
        raise ValueError(
            "tau='auto' learns the threshold from each reference video's "
            "nearest other videos, but all the reference videos have "
            "identical features. Give a number for tau."
        )
    return float(np.median(2.0 * kth[linked].astype(np.float64) - 1.0))
