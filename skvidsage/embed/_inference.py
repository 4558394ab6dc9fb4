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
    "embed_rows",
    "normalize",
    "output_blocks",
    "reference_states",
]


def normalize(features):
    """Return the rows as a float32 tensor, L2-normalised (zero rows stay zero)."""
    x = torch.tensor(np.asarray(features), dtype=torch.float32)
    return torch.nn.functional.normalize(x, dim=-1)


def output_blocks(n_features, n_hops, hidden, jumping_knowledge):
    """Name and columns of each output block, as ``embed_rows`` concatenates them."""
    widths = []
    if jumping_knowledge:
        widths += [("x", n_features)]
        widths += [(f"hop{k}", n_features) for k in range(1, n_hops + 1)]
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
    block=4096,
):
    """Embed query rows through their links into the reference graph.

    The output is ``[x, S x, ..., S^K x, h_1, ..., h_L]`` (``n_hops = K``
    blocks; no x and S^k x without jumping knowledge, then ``n_hops=0``),
    computed in blocks of ``block`` queries over only the reference videos
    they link to.
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
                parts += operator.query_powers(
                    block_adj, x.numpy(), refs[:n_hops], columns=used
                )
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
