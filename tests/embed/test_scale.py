"""Training at a million nodes: per-step work in O(batch x fanout) (issue 12.5)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skvidsage._propagation import GraphOperator
from skvidsage.embed._inference import normalize, reference_states
from skvidsage.embed._sampler import CSRGraph, sample_subgraph
from skvidsage.embed.nn import VidSageNet


def _graph(n=400, degree=6, seed=0):
    rng = np.random.RandomState(seed)
    rows = np.repeat(np.arange(n), degree)
    cols = (rows + 1 + rng.randint(n - 1, size=len(rows))) % n
    A = sp.csr_matrix((rng.rand(len(rows)) + 0.1, (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    return A


class _HugeGraph(CSRGraph):
    """A few linked nodes among 10^12: a table of n_nodes could not be made."""

    @property
    def n_nodes(self):
        return 10**12


def test_sampling_a_batch_does_not_touch_every_node():
    # the subgraph's local ids come from the nodes reached, not an n_nodes table
    A = _graph()
    small = CSRGraph.from_scipy(A)
    huge = _HugeGraph(small.indptr, small.indices, small.weights)
    seeds = torch.tensor([3, 17, 250])
    a = sample_subgraph(small, seeds, (4, 3), torch.Generator().manual_seed(0))
    b = sample_subgraph(huge, seeds, (4, 3), torch.Generator().manual_seed(0))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    n_id, edges, _ = a
    assert n_id[:3].tolist() == [3, 17, 250] and len(set(n_id.tolist())) == len(n_id)
    # every edge is an edge of the graph, from a neighbour to a node
    dense = A.toarray()
    assert (dense[n_id[edges[1]].numpy(), n_id[edges[0]].numpy()] > 0).all()


@pytest.mark.parametrize("conv", ["sage", "gcn", "gat"])
def test_reference_states_by_blocks_equal_the_whole_graph(conv):
    A = _graph()
    graph = CSRGraph.from_scipy(A)
    torch.manual_seed(0)
    module = VidSageNet(8, (16, 8, 4), conv=conv).eval()
    x = normalize(np.random.RandomState(1).randn(A.shape[0], 8))
    blocked = reference_states(module, x, graph, torch.device("cpu"), block=37)
    assert len(blocked) == 2 and all(s.dtype == np.float32 for s in blocked)
    edge_index, edge_weight = graph.edges()
    with torch.inference_mode():
        h1 = module.layer_forward(0, x, edge_index, edge_weight)
        h2 = module.layer_forward(1, h1, edge_index, edge_weight)
    np.testing.assert_allclose(blocked[0], h1.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blocked[1], h2.numpy(), rtol=1e-5, atol=1e-6)


def test_reference_powers_by_column_blocks_are_the_same():
    A = _graph()
    op = GraphOperator(A, "symmetric", symmetrize=True)
    X = np.random.RandomState(0).randn(A.shape[0], 70).astype(np.float32)
    whole = [op.matrix @ X.astype(np.float64)]
    whole.append(op.matrix @ whole[0])
    blocked = op.reference_powers(X, 2, block=32)
    as_float32 = op.reference_powers(X, 2, dtype=np.float32, block=16)
    for w, b, f in zip(whole, blocked, as_float32, strict=True):
        np.testing.assert_array_equal(b, w)
        assert f.dtype == np.float32
        np.testing.assert_array_equal(f, w.astype(np.float32))


@pytest.mark.parametrize("conv", ["sage", "gcn", "gat"])
@pytest.mark.parametrize("fanouts", [(4, 3), (5,), (3, 2, 2)])
def test_sampled_forward_skips_only_what_nothing_reads(conv, fanouts):
    # a training step computes layer i within L - 1 - i hops of the seeds:
    # the seeds' embeddings are those of the whole subgraph's forward pass
    graph = CSRGraph.from_scipy(_graph())
    torch.manual_seed(0)
    module = VidSageNet(8, (16, 8), conv=conv).eval()
    x = normalize(np.random.RandomState(1).randn(graph.n_nodes, 8))
    seeds = torch.tensor([2, 40, 41, 300])
    n_id, edges, weights, (n_nodes, n_edges) = sample_subgraph(
        graph, seeds, fanouts, torch.Generator().manual_seed(0), return_hops=True
    )
    assert n_nodes[0] == 4 and n_nodes[-1] == len(n_id)
    assert n_edges[0] == 0 and n_edges[-1] == edges.shape[1]
    reach = [min(1 - i, len(fanouts)) for i in range(2)]
    with torch.inference_mode():
        whole, _ = module(x[n_id], edges, weights)
        part = module.sampled_forward(
            x[n_id],
            edges,
            weights,
            n_dst=[n_nodes[r] for r in reach],
            n_edges=[n_edges[min(r + 1, len(fanouts))] for r in reach],
        )
    assert part.shape == (4, 8)
    np.testing.assert_allclose(part.numpy(), whole[:4].numpy(), rtol=1e-5, atol=1e-6)
