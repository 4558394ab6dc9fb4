"""Neighbour sampling on a CSR graph, in plain torch.

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, which do not
install everywhere; these few vectorised functions do what the embedder needs:
fixed-fanout sampling without replacement (GraphSAGE's 25 then 10), the
multi-hop subgraph of a batch, random-walk positives and negatives drawn from
the degree^0.75 distribution. Every random draw takes an explicit
``torch.Generator``: no global random state is touched.
"""

import numpy as np
import scipy.sparse as sp
import torch


class CSRGraph:
    """A graph in compressed sparse row form: row ``i``'s neighbours.

    Parameters
    ----------
    indptr, indices : torch.LongTensor
        CSR structure of an ``(n_dst, n_src)`` adjacency.
    weights : torch.FloatTensor
        Positive edge weights, aligned with ``indices``.
    """

    def __init__(self, indptr, indices, weights):
        self.indptr, self.indices, self.weights = indptr, indices, weights

    @classmethod
    def from_scipy(cls, adjacency):
        """Build from a scipy sparse matrix (rows are destinations)."""
        csr = sp.csr_matrix(adjacency)
        csr.sort_indices()
        return cls(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.tensor(csr.data, dtype=torch.float32),
        )

    @property
    def n_nodes(self):
        """Number of rows."""
        return self.indptr.numel() - 1

    def degree(self):
        """Return the number of neighbours of every row."""
        return self.indptr[1:] - self.indptr[:-1]

    def edges(self):
        """All edges as ``(edge_index, edge_weight)`` with rows as targets."""
        dst = torch.repeat_interleave(torch.arange(self.n_nodes), self.degree())
        return torch.stack([self.indices, dst]), self.weights


def sample_neighbors(graph, seeds, fanout, generator):
    """Sample up to ``fanout`` neighbours of each seed without replacement.

    Returns ``(src, dst, weight)``: global ids of sampled neighbours, the
    position in ``seeds`` of the node each was sampled for, and edge weights.
    ``fanout=-1`` takes every neighbour.
    """
    starts = graph.indptr[seeds]
    deg = graph.indptr[seeds + 1] - starts
    seg = torch.repeat_interleave(torch.arange(len(seeds)), deg)
    seg_start = torch.cumsum(deg, 0) - deg
    pos = starts[seg] + torch.arange(seg.numel()) - seg_start[seg]
    if fanout >= 0 and seg.numel() and int(deg.max()) > fanout:
        keys = seg.double() + torch.rand(
            seg.numel(), generator=generator, dtype=torch.float64
        )
        order = torch.argsort(keys)
        rank = torch.arange(seg.numel()) - seg_start[seg]  # seg is sorted already
        keep = order[rank < fanout]
        seg, pos = seg[keep], pos[keep]
    return graph.indices[pos], seg, graph.weights[pos]


def sample_subgraph(graph, seeds, fanouts, generator):
    """Sample the multi-hop neighbourhood of ``seeds`` (unique node ids).

    Returns ``(n_id, edge_index, edge_weight)``: the global ids of the
    subgraph's nodes, ``seeds`` first in their order; and its edges in local
    ids (row 0 neighbours, row 1 targets). Each node is expanded once, at the
    first hop it is reached.
    """
    local = torch.full((graph.n_nodes,), -1, dtype=torch.long)
    local[seeds] = torch.arange(len(seeds))
    n_id, frontier = [seeds], seeds
    srcs, dsts, weights = [], [], []
    count = len(seeds)
    for fanout in fanouts:
        src, seg, w = sample_neighbors(graph, frontier, fanout, generator)
        new = torch.unique(src)
        new = new[local[new] < 0]
        local[new] = torch.arange(count, count + len(new))
        count += len(new)
        n_id.append(new)
        srcs.append(local[src])
        dsts.append(local[frontier[seg]])
        weights.append(w)
        frontier = new
    edge_index = torch.stack([torch.cat(srcs), torch.cat(dsts)])
    return torch.cat(n_id), edge_index, torch.cat(weights)


def random_walk_positives(graph, nodes, walk_length, generator):
    """End points of uniform random walks of ``walk_length`` steps.

    A walk that reaches a node without neighbours stops there. Returns the end
    node of every walk and a mask of walks that moved (a node without any
    neighbour has no positive).
    """
    current = nodes.clone()
    moved = torch.zeros(len(nodes), dtype=torch.bool)
    if graph.indices.numel() == 0:
        return current, moved
    for _ in range(walk_length):
        deg = graph.indptr[current + 1] - graph.indptr[current]
        can = deg > 0
        step = (torch.rand(len(current), generator=generator) * deg).long()
        nxt = graph.indices[
            (graph.indptr[current] + step).clamp(max=graph.indices.numel() - 1)
        ]
        current = torch.where(can, nxt, current)
        moved |= can
    return current, moved & (current != nodes)


def negative_distribution(graph):
    """GraphSAGE's negative-sampling distribution, proportional to degree^0.75."""
    deg = graph.degree().double()
    p = deg.pow(0.75)
    if float(p.sum()) == 0.0:
        p = torch.ones_like(p)
    return (p / p.sum()).float()
