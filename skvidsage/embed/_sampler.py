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


def _local_ids(sorted_ids, local, query):
    """Local id of each ``query`` node among ``sorted_ids`` (-1: not there)."""
    if len(sorted_ids) == 0:
        return torch.full_like(query, -1)
    pos = torch.searchsorted(sorted_ids, query).clamp(max=len(sorted_ids) - 1)
    return torch.where(sorted_ids[pos] == query, local[pos], -1)


def sample_subgraph(graph, seeds, fanouts, generator, return_hops=False):
    """Sample the multi-hop neighbourhood of ``seeds`` (unique node ids).

    Returns ``(n_id, edge_index, edge_weight)``: the global ids of the
    subgraph's nodes, ``seeds`` first in their order; and its edges in local
    ids (row 0 neighbours, row 1 targets). Each node is expanded once, at the
    first hop it is reached. Nodes come hop by hop (the seeds, then the
    nodes first reached at hop 1, ...), and so do edges (those that end at
    the seeds, then at hop 1's nodes, ...); ``return_hops=True`` also returns
    ``(n_nodes, n_edges)``: lists of the number of nodes within ``h`` hops
    and of edges ending at them, for ``h = 0 .. len(fanouts)``.

    Global ids become local ones by a binary search among the nodes reached
    so far, not through an ``n_nodes`` table: the time and memory of a batch
    are in O(batch x fanouts), whatever the size of the graph (a table of
    int64 was 8 MB to fill at every step on 1M nodes).
    """
    order = torch.argsort(seeds)
    seen_ids, seen_local = seeds[order], order
    n_id, frontier = [seeds], seeds
    frontier_local = torch.arange(len(seeds))
    srcs, dsts, weights = [], [], []
    count = len(seeds)
    n_nodes, n_edges = [count], [0]
    for fanout in fanouts:
        src, seg, w = sample_neighbors(graph, frontier, fanout, generator)
        new = torch.unique(src)
        new = new[_local_ids(seen_ids, seen_local, new) < 0]
        new_local = torch.arange(count, count + len(new))
        count += len(new)
        seen_ids = torch.cat([seen_ids, new])
        seen_local = torch.cat([seen_local, new_local])
        order = torch.argsort(seen_ids)
        seen_ids, seen_local = seen_ids[order], seen_local[order]
        n_id.append(new)
        srcs.append(_local_ids(seen_ids, seen_local, src))
        dsts.append(frontier_local[seg])
        weights.append(w)
        frontier, frontier_local = new, new_local
        n_nodes.append(count)
        n_edges.append(n_edges[-1] + len(src))
    edge_index = torch.stack([torch.cat(srcs), torch.cat(dsts)])
    out = torch.cat(n_id), edge_index, torch.cat(weights)
    return (*out, (n_nodes, n_edges)) if return_hops else out


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
