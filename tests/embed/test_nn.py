import pytest
import torch
from torch_geometric.utils import scatter

from skvidsage.embed.nn import GCNMeanConv, SAGEConcatConv, VidSageNet, _GATLayer


def _set(linear, weight, bias=0.0):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        linear.bias.fill_(bias)


def _sage_1d(aggr):
    """1-d input, W1 = [2], W2 = [1, 3]: h' = x_i + 3 * AGG_j w_ij relu(2 x_j)."""
    conv = SAGEConcatConv(1, 1, aggr=aggr, hidden_channels=1)
    _set(conv.lin_msg, [[2.0]])
    _set(conv.lin_out, [[1.0, 3.0]])
    return conv


# node 2 receives from nodes 0 (w=0.5) and 1 (w=2.0); node 0 from 1 (w=1)
X = torch.tensor([[1.0], [-1.0], [4.0]])
EDGES = torch.tensor([[0, 1, 1], [2, 2, 0]])
W = torch.tensor([0.5, 2.0, 1.0])


@pytest.mark.parametrize(
    "aggr, expected",
    [
        # node 0: 1 + 3 * (1 * relu(-2)) = 1 ; node 1: no in-edge -> -1
        # node 2: 4 + 3 * (0.5 * relu(2) + 2 * relu(-2)) = 4 + 3 = 7
        ("sum", [1.0, -1.0, 7.0]),
        # mean divides by the weight sum 2.5 -> 4 + 3 * 1 / 2.5
        ("mean", [1.0, -1.0, 4.0 + 3.0 / 2.5]),
        # max of w * m: max(1, 0) = 1
        ("max", [1.0, -1.0, 7.0]),
    ],
)
def test_concat_aggregator_by_hand(aggr, expected):
    out = _sage_1d(aggr)(X, EDGES, W)
    assert out.squeeze(-1).tolist() == pytest.approx(expected)


def test_edge_weights_change_the_result():
    for conv in (_sage_1d("sum"), GCNMeanConv(1, 1), _GATLayer(1, 4, heads=2)):
        a = conv(X, EDGES, W)
        b = conv(X, EDGES, torch.tensor([2.0, 0.5, 1.0]))
        assert not torch.allclose(a[2], b[2]), type(conv).__name__


def test_gcn_mean_by_hand():
    conv = GCNMeanConv(1, 1)
    _set(conv.lin, [[1.0]])
    out = conv(X, EDGES, W).squeeze(-1)
    # node 2: (4 + 0.5 * 1 + 2 * -1) / (1 + 2.5) ; node 1: alone -> itself
    assert out.tolist() == pytest.approx([(1 - 1) / 2, -1.0, 2.5 / 3.5])


def test_attention_weights_sum_to_one_per_node():
    torch.manual_seed(0)
    layer = _GATLayer(3, 8, heads=4)
    x = torch.randn(5, 3)
    edges = torch.tensor([[0, 1, 2, 3, 4, 0], [1, 1, 1, 2, 2, 3]])
    _, (index, alpha) = layer(x, edges, torch.rand(6), return_attention_weights=True)
    sums = scatter(alpha, index[1], 0, dim_size=5, reduce="sum")
    has_in = torch.tensor([False, True, True, True, False])
    assert torch.allclose(sums[has_in], torch.ones(3, 4))
    assert torch.all(sums[~has_in] == 0)


@pytest.mark.parametrize("conv", ["sage", "gat", "gcn"])
def test_bipartite_and_isolated_nodes_are_defined(conv):
    torch.manual_seed(0)
    net = VidSageNet(6, (8, 4), conv=conv, dropout=0.0).eval()
    ref = torch.nn.functional.normalize(torch.randn(10, 6), dim=-1)
    query = torch.nn.functional.normalize(torch.randn(3, 6), dim=-1)
    edges = torch.tensor([[0, 5], [0, 0]])  # query 1 and 2 have no link
    h = net.layer_forward(0, (ref, query), edges, torch.ones(2))
    assert h.shape == (3, 8)
    assert torch.isfinite(h).all()


def test_jumping_knowledge_output_width_and_layer_norms():
    net = VidSageNet(6, (8, 4), dropout=0.0)
    x = torch.nn.functional.normalize(torch.randn(7, 6), dim=-1)
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    z, out = net(x, edges, torch.ones(3))
    # the layers' embeddings; the embedder prepends x and its propagation
    assert out.shape == (7, 8 + 4) and net.out_channels == 12
    assert torch.equal(out[:, -4:], z)
    norms = z.norm(dim=-1)
    assert torch.all(((norms - 1).abs() < 1e-5) | (norms == 0))
    assert VidSageNet(6, (8, 4), jumping_knowledge=False).out_channels == 4


def test_shared_weights_are_one_module():
    net = VidSageNet(6, (6, 6), share_weights=True)
    assert net.layers[0] is net.layers[1]
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in net.layers[0].parameters()
    )
    with pytest.raises(ValueError, match="share_weights"):
        VidSageNet(6, (8, 4), share_weights=True)


def test_bad_layer_options():
    with pytest.raises(ValueError, match="conv"):
        VidSageNet(6, (8,), conv="cheb")
    with pytest.raises(ValueError, match="aggr"):
        SAGEConcatConv(3, 3, aggr="median")
    with pytest.raises(ValueError, match="divisible"):
        _GATLayer(3, 6, heads=4)


def test_inductive_forward_equals_forward_on_the_training_graph():
    torch.manual_seed(0)
    net = VidSageNet(5, (6, 3), dropout=0.0).eval()
    x = torch.nn.functional.normalize(torch.randn(8, 5), dim=-1)
    edges = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 0]])
    w = torch.rand(8)
    _, full = net(x, edges, w)
    h1 = net.layer_forward(0, x, edges, w)
    _, inductive = net.inductive_forward([x, h1], x.clone(), edges, w)
    assert torch.allclose(full, inductive, atol=1e-6)
