"""Inference of VidSageEmbedder: reference states, query embeddings, block names.

Kept apart from the estimator (as torch code is from the scikit-learn
wrappers): :func:`embed_rows` embeds any rows through their links into the
fitted reference graph, one row independently of the others.
"""

import copy

import numpy as np
import scipy.sparse as sp
import torch

from skvidsage.embed._sampler import CSRGraph
from skvidsage.embed._training import deterministic

__all__ = [
    "block_names",
    "check_settings",
    "embed_rows",
    "normalize",
    "output_blocks",
    "reference_states",
]


def normalize(features):
    """Return the rows as a float32 tensor, L2-normalised (zero rows stay zero)."""
    x = torch.tensor(np.asarray(features), dtype=torch.float32)
    return torch.nn.functional.normalize(x, dim=-1)


def check_settings(emb, n_videos):
    """Check a VidSageEmbedder's settings for ``fit``; return its layers and fanouts.

    The checks that ``_parameter_constraints`` cannot make: the tuples'
    values, and the settings that exclude each other.
    """
    hidden = tuple(int(h) for h in np.atleast_1d(emb.hidden_dims))
    fanouts = tuple(int(f) for f in np.atleast_1d(emb.fanouts))
    if hidden and min(hidden) < 1:
        raise ValueError(f"hidden_dims must be positive ints; got {emb.hidden_dims}")
    if not hidden and not emb.jumping_knowledge:
        raise ValueError(
            "hidden_dims=() trains no layer, so the output is the input and "
            "its propagated blocks: that needs jumping_knowledge=True."
        )
    if emb.tail_hops and not (emb.jumping_knowledge and emb.hops):
        raise ValueError(
            f"tail_hops={emb.tail_hops} averages further hops into the last "
            f"propagated block, but there is none (hops={emb.hops}, "
            f"jumping_knowledge={emb.jumping_knowledge}): set hops >= 1 with "
            "jumping_knowledge=True, or tail_hops=0."
        )
    if not fanouts or any(f == 0 or f < -1 for f in fanouts):
        raise ValueError(f"fanouts must be positive ints or -1; got {emb.fanouts}")
    if n_videos < 2:
        raise ValueError(
            f"VidSageEmbedder needs at least 2 videos to train; got {n_videos} sample."
        )
    return hidden, fanouts


def output_blocks(n_features, n_hops, hidden, jumping_knowledge, n_tail=0):
    """Name and columns of each output block, as ``embed_rows`` concatenates them.

    With ``n_tail``, the last hop block is the mean of hops ``n_hops`` to
    ``n_hops + n_tail``, named ``hop<first>-<last>``.
    """
    widths = []
    if jumping_knowledge:
        widths += [("x", n_features)]
        widths += [(f"hop{k}", n_features) for k in range(1, n_hops + 1)]
        if n_tail and n_hops:
            widths[-1] = (f"hop{n_hops}-{n_hops + n_tail}", n_features)
        widths += [(f"layer{t}", h) for t, h in enumerate(hidden, start=1)]
    else:
        widths += [(f"layer{len(hidden)}", hidden[-1])]
    blocks, start = {}, 0
    for name, width in widths:
        blocks[name] = slice(start, start + width)
        start += width
    return blocks


def block_names(blocks, inputs):
    """Column names: ``<block>_<input name>``, or ``layer<t>_<unit>``."""
    names = []
    for block, columns in blocks.items():
        if block.startswith("layer"):
            names += [f"{block}_{j}" for j in range(columns.stop - columns.start)]
        else:
            names += [f"{block}_{c}" for c in inputs]
    return np.asarray(names, dtype=object)


@torch.inference_mode()
def reference_states(module, x, graph, device, block=16_384):
    """Compute the inputs of layers 1..L-1 for the reference videos (float32).

    Block by block of ``block`` videos: a layer's output for some videos
    needs the previous layer's states of those videos and of their
    neighbours only, so the memory used is O(block x degree x width) above
    the states themselves. Over the whole graph at once, the per-edge
    messages alone were ``n x degree x width`` floats: 20 GB at 1M videos of
    degree 10 and 512 units. The states are numpy float32 arrays.
    """
    module = module.to(device)
    n = graph.n_nodes
    degree = graph.degree()
    states, current = [], x
    with deterministic(device):
        for i in range(len(module.layers) - 1):
            out = None
            for start in range(0, n, block):
                stop = min(start + block, n)
                lo, hi = int(graph.indptr[start]), int(graph.indptr[stop])
                sources, src = torch.unique(
                    graph.indices[lo:hi], return_inverse=True
                )
                dst = torch.repeat_interleave(
                    torch.arange(stop - start), degree[start:stop]
                )
                h = module.layer_forward(
                    i,
                    (current[sources].to(device), current[start:stop].to(device)),
                    torch.stack([src.reshape(-1), dst]).to(device),
                    graph.weights[lo:hi].to(device),
                )
                if out is None:
                    out = np.empty((n, h.shape[1]), dtype=np.float32)
                out[start:stop] = h.cpu().numpy()
            states.append(out)
            current = torch.from_numpy(out)
    module.cpu()
    return states


@torch.inference_mode()
def embed_rows(
    features,
    adjacency,
    *,
    reference_features,
    reference_propagated,
    reference_states,
    module,
    operator,
    jumping_knowledge,
    n_hops,
    n_out,
    device,
    n_tail=0,
    block=4096,
):
    r"""Embed query rows through their links into the reference graph.

    The output is ``[x, S x, ..., S^K x, h_1, ..., h_L]`` (``n_hops = K``
    blocks; no x and S^k x without jumping knowledge, then ``n_hops=0``;
    with ``n_tail = T``, the block of :math:`S^K x` is the mean of
    :math:`S^K x, \dots, S^{K+T} x`), computed in blocks of ``block``
    queries over only the reference videos they link to.
    """
    # float64: BLAS rounds a row's float32 product differently by its
    # position in the batch; in double precision those differences vanish
    # when the output is rounded to float32, so every row's embedding is
    # the same whatever else is in the batch (and in whatever order)
    dtype = torch.float64
    if module is not None:
        module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
    adjacency = sp.csr_matrix(adjacency)
    out = np.empty((features.shape[0], n_out), dtype=np.float32)
    with deterministic(device):
        for start in range(0, features.shape[0], block):
            stop = min(start + block, features.shape[0])
            # only the reference videos these queries link to take part
            block_adj = adjacency[start:stop]
            used, local = np.unique(block_adj.indices, return_inverse=True)
            block_adj = sp.csr_matrix(
                (block_adj.data, local.ravel(), block_adj.indptr),
                shape=(stop - start, len(used)),
            )
            x_ref = normalize(reference_features[used])
            x = normalize(features[start:stop])
            parts = []
            if jumping_knowledge:
                parts.append(x.numpy())
                refs = [x_ref.numpy()]
                refs += [p[used] for p in reference_propagated]
                powers = operator.query_powers(
                    block_adj, x.numpy(), refs[: n_hops + n_tail], columns=used
                )
                if n_tail:  # the far hops' mean, summed in one order per row
                    tail = powers[n_hops - 1 :]
                    powers[n_hops - 1 :] = [sum(tail[1:], tail[0]) / len(tail)]
                parts += powers
            if module is not None:
                refs = [x_ref] + [
                    torch.from_numpy(s[used]) for s in reference_states
                ]
                refs = [r.to(device, dtype) for r in refs]
                edge_index, edge_weight = CSRGraph.from_scipy(block_adj).edges()
                _, hs = module.inductive_forward(
                    refs,
                    x.to(device, dtype),
                    edge_index.to(device),
                    edge_weight.to(device, dtype),
                )
                parts.append(hs.cpu().numpy())
            out[start:stop] = np.concatenate(parts, axis=1)
    return out
