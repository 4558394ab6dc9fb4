import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skvidsage.embed._sampler import (
    CSRGraph,
    negative_distribution,
    random_walk_positives,
    sample_neighbors,
    sample_subgraph,
)


def _graph(n=30, deg=8, seed=0):
    rng = np.random.RandomState(seed)
    rows = np.repeat(np.arange(n), deg)
    cols = (rows + 1 + rng.randint(n - 1, size=len(rows))) % n
    A = sp.csr_matrix((rng.rand(len(rows)) + 0.1, (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    return A, CSRGraph.from_scipy(A)


def test_sample_neighbors_respects_fanout_and_edges():
    A, g = _graph()
    gen = torch.Generator().manual_seed(0)
    seeds = torch.tensor([0, 3, 7])
    src, seg, w = sample_neighbors(g, seeds, 3, gen)
    assert torch.bincount(seg, minlength=3).tolist() == [
        min(3, A[i].nnz) for i in (0, 3, 7)
    ]
    for s, i, weight in zip(src.tolist(), seg.tolist(), w.tolist(), strict=True):
        assert A[int(seeds[i]), s] == pytest.approx(weight)
    for i in range(3):  # without replacement
        picked = src[seg == i]
        assert len(picked.unique()) == len(picked)


def test_full_fanout_takes_every_neighbour():
    A, g = _graph()
    src, seg, _ = sample_neighbors(g, torch.tensor([5]), -1, torch.Generator())
    assert sorted(src.tolist()) == sorted(A[5].indices.tolist())


def test_sampling_is_uniform():
    # one node with 10 neighbours, fanout 2: each neighbour drawn w.p. 1/5
    A = sp.csr_matrix(np.ones((1, 10)))
    g = CSRGraph.from_scipy(sp.vstack([A, sp.csr_matrix((9, 10))]).tocsr())
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(2000):
        src, _, _ = sample_neighbors(g, torch.tensor([0]), 2, gen)
        counts[src] += 1
    assert torch.allclose(counts / 2000, torch.full((10,), 0.2), atol=0.04)


def test_subgraph_seeds_first_and_edges_valid():
    A, g = _graph()
    seeds = torch.tensor([4, 9, 2])
    n_id, edges, w = sample_subgraph(g, seeds, (3, 2), torch.Generator().manual_seed(1))
    assert torch.equal(n_id[:3], seeds)
    assert len(n_id.unique()) == len(n_id)
    for (s, d), weight in zip(edges.T.tolist(), w.tolist(), strict=True):
        assert A[int(n_id[d]), int(n_id[s])] == pytest.approx(weight)
    # the seeds have at most 3 sampled in-edges each (first hop)
    assert torch.bincount(edges[1], minlength=len(n_id))[:3].max() <= 3


def test_same_generator_seed_same_sample():
    _, g = _graph()
    a = sample_subgraph(
        g, torch.tensor([1, 2]), (4, 4), torch.Generator().manual_seed(3)
    )
    b = sample_subgraph(
        g, torch.tensor([1, 2]), (4, 4), torch.Generator().manual_seed(3)
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_random_walk_positives():
    A, g = _graph()
    nodes = torch.arange(30)
    end, moved = random_walk_positives(g, nodes, 1, torch.Generator().manual_seed(0))
    for u, v, m in zip(nodes.tolist(), end.tolist(), moved.tolist(), strict=True):
        assert not m or A[u, v] > 0
    empty = CSRGraph.from_scipy(sp.csr_matrix((4, 4)))
    end, moved = random_walk_positives(empty, torch.arange(4), 2, torch.Generator())
    assert not moved.any() and torch.equal(end, torch.arange(4))


def test_negative_distribution_is_degree_to_the_three_quarters():
    A = sp.csr_matrix(
        np.array([[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    )
    p = negative_distribution(CSRGraph.from_scipy(A))
    deg = np.array([3, 1, 0, 2]) ** 0.75
    assert p.numpy() == pytest.approx(deg / deg.sum())
