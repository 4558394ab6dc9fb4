"""Torch modules of the VidSage embedder: weighted graph convolutions and the network.

All layers take bipartite input ``(x_src, x_dst)`` and an ``edge_index`` of shape
``(2, n_edges)`` whose first row indexes ``x_src`` (neighbours) and second row
``x_dst`` (the nodes being embedded), with positive ``edge_weight``. The same
layer therefore embeds training nodes (``x_src is x_dst``) and unseen videos
linked into the reference graph (inductive inference), and a node without any
edge still gets a defined output through its root path.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv, MessagePassing
from torch_geometric.utils import scatter

__all__ = ["GCNMeanConv", "SAGEConcatConv", "VidSageNet"]


def _pair(x):
    return x if isinstance(x, tuple) else (x, x)


class SAGEConcatConv(MessagePassing):
    r"""The VidSage aggregator (paper, Section 3.3), with edge weights.

    .. math::
        h_i' = W_2 \left[ h_i \,\Vert\, \mathrm{AGG}_{j \in N(i)}\,
               w_{ij}\, \mathrm{ReLU}(W_1 h_j) \right]

    with AGG a weighted sum (the paper's), a weighted mean
    (:math:`\sum_j w_{ij} m_j / \sum_j w_{ij}`) or a max of :math:`w_{ij} m_j`.
    The caller applies the outer ReLU, dropout and normalisation. Unlike PyG's
    ``SAGEConv``, the edge weights change the result.

    Parameters
    ----------
    in_channels : int
        Input width.
    out_channels : int
        Output width (rows of :math:`W_2`).
    aggr : {"sum", "mean", "max"}, default="sum"
        Neighbourhood aggregation.
    hidden_channels : int, default=None
        Width of the messages :math:`W_1 h_j`; defaults to ``out_channels``
        (the paper's square :math:`W_1 \in \mathbb{R}^{d \times d}` when
        the widths are equal; half the cost of ``in_channels`` on 1024-d
        input with 512-d output).
    """

    def __init__(self, in_channels, out_channels, aggr="sum", hidden_channels=None):
        if aggr not in ("sum", "mean", "max"):
            raise ValueError(f"aggr must be 'sum', 'mean' or 'max'; got {aggr!r}")
        super().__init__(aggr="max" if aggr == "max" else "sum")
        self.mode = aggr
        hidden = out_channels if hidden_channels is None else hidden_channels
        self.lin_msg = nn.Linear(in_channels, hidden)
        self.lin_out = nn.Linear(in_channels + hidden, out_channels)

    def reset_parameters(self):
        """Reinitialise the weights."""
        self.lin_msg.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(self, x, edge_index, edge_weight):
        """Embed ``x_dst`` from itself and its weighted neighbours in ``x_src``."""
        x_src, x_dst = _pair(x)
        msg = F.relu(self.lin_msg(x_src))
        size = (x_src.size(0), x_dst.size(0))
        agg = self.propagate(edge_index, x=msg, edge_weight=edge_weight, size=size)
        if self.mode == "mean":
            total = scatter(
                edge_weight, edge_index[1], 0, dim_size=size[1], reduce="sum"
            )
            agg = agg / total.clamp(min=torch.finfo(agg.dtype).tiny).unsqueeze(-1)
        return self.lin_out(torch.cat([x_dst, agg], dim=-1))

    def message(self, x_j, edge_weight):  # noqa: D102
        return edge_weight.unsqueeze(-1) * x_j


class GCNMeanConv(MessagePassing):
    r"""Inductive GCN (GraphSAGE's "GCN" aggregator), with edge weights.

    .. math::
        h_i' = W \frac{h_i + \sum_{j \in N(i)} w_{ij} h_j}{1 + \sum_{j} w_{ij}}

    The node itself enters with weight 1. The symmetric normalisation of
    Kipf & Welling needs the degrees of all neighbours and does not apply to a
    query linked into a fixed reference graph; this mean form does.

    Parameters
    ----------
    in_channels : int
        Input width.
    out_channels : int
        Output width.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(aggr="sum")
        self.lin = nn.Linear(in_channels, out_channels)

    def reset_parameters(self):
        """Reinitialise the weights."""
        self.lin.reset_parameters()

    def forward(self, x, edge_index, edge_weight):
        """Embed ``x_dst`` as the weighted mean of itself and its neighbours."""
        x_src, x_dst = _pair(x)
        size = (x_src.size(0), x_dst.size(0))
        agg = self.propagate(edge_index, x=x_src, edge_weight=edge_weight, size=size)
        total = scatter(edge_weight, edge_index[1], 0, dim_size=size[1], reduce="sum")
        return self.lin((x_dst + agg) / (1.0 + total).unsqueeze(-1))

    def message(self, x_j, edge_weight):  # noqa: D102
        return edge_weight.unsqueeze(-1) * x_j


class _GATLayer(nn.Module):
    """Multi-head GAT with a root path; the edge weight enters the attention."""

    def __init__(self, in_channels, out_channels, heads):
        super().__init__()
        if out_channels % heads:
            raise ValueError(
                f"GAT output width {out_channels} must be divisible by heads={heads}"
            )
        self.conv = GATConv(
            in_channels,
            out_channels // heads,
            heads=heads,
            add_self_loops=False,
            edge_dim=1,
            residual=True,
        )

    def reset_parameters(self):
        self.conv.reset_parameters()

    def forward(self, x, edge_index, edge_weight, return_attention_weights=None):
        return self.conv(
            x,
            edge_index,
            edge_attr=edge_weight.unsqueeze(-1),
            return_attention_weights=return_attention_weights,
        )


class VidSageNet(nn.Module):
    """The VidSage network: ``L`` weighted graph convolutions.

    Each layer but the last is followed by ReLU and dropout (paper 3.3), and
    every layer by L2 normalisation; see :meth:`layer_forward`.
    The output is the last layer's embedding (``jumping_knowledge=False``) or
    the concatenation of every layer's embedding (``True``); the embedder
    puts the input and its propagated blocks before it.

    Parameters
    ----------
    in_channels : int
        Input feature width.
    hidden_channels : sequence of int
        Output width of each layer (its length is the number of layers).
    conv : {"sage", "gat", "gcn"}, default="sage"
        Layer type: :class:`SAGEConcatConv`, PyG's ``GATConv`` (edge weights as
        a 1-d edge feature in the attention, plus a root path) or
        :class:`GCNMeanConv`.
    aggr : {"sum", "mean", "max"}, default="sum"
        Aggregation of the "sage" layers.
    heads : int, default=4
        Attention heads of the "gat" layers.
    share_weights : bool, default=False
        Use one layer's weights for every layer (the paper shares
        :math:`W_1, W_2` across layers); needs equal widths throughout.
    dropout : float, default=0.5
        Dropout after each layer.
    jumping_knowledge : bool, default=True
        Output ``[h_1, ..., h_L]`` instead of ``h_L``.
    """

    def __init__(
        self,
        in_channels,
        hidden_channels,
        *,
        conv="sage",
        aggr="sum",
        heads=4,
        share_weights=False,
        dropout=0.5,
        jumping_knowledge=True,
    ):
        super().__init__()
        widths = [in_channels, *hidden_channels]
        if share_weights and len(set(widths)) != 1:
            raise ValueError(
                "share_weights=True needs every layer as wide as the input "
                f"({in_channels}); got widths {widths}"
            )
        self.dropout = dropout
        self.jumping_knowledge = jumping_knowledge
        layers = []
        for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            if share_weights and i > 0:
                layers.append(layers[0])
            elif conv == "sage":
                layers.append(SAGEConcatConv(d_in, d_out, aggr=aggr))
            elif conv == "gcn":
                layers.append(GCNMeanConv(d_in, d_out))
            elif conv == "gat":
                layers.append(_GATLayer(d_in, d_out, heads))
            else:
                raise ValueError(f"conv must be 'sage', 'gat' or 'gcn'; got {conv!r}")
        self.layers = nn.ModuleList(layers)
        self.out_channels = sum(widths[1:]) if jumping_knowledge else widths[-1]

    def layer_forward(self, i, x, edge_index, edge_weight):
        """Apply layer ``i``, then ReLU and dropout (not after the last), then L2.

        The last layer is linear and not dropped out, as in GraphSAGE's
        reference code, where dropout acts on each layer's input. With the
        paper's ReLU after it every embedding lies in the positive orthant,
        where the negatives of the self-supervised loss cannot point away from
        the anchor, and the cheapest way down is the zero vector: 99.5% of the
        YouTube-8M training videos ended with an all-zero last layer. Dropout
        on the output itself made the contrastive loss collapse every video to
        nearly one point (tests/embed/test_embedder.py shows both).
        """
        h = self.layers[i](x, edge_index, edge_weight)
        if i < len(self.layers) - 1:
            h = F.dropout(F.relu(h), p=self.dropout, training=self.training)
        return F.normalize(h, dim=-1)

    def forward(self, x, edge_index, edge_weight):
        """Embed every node of a (sub)graph; ``x`` is already L2-normalised.

        Returns ``(z, out)``: the last layer's embedding, used by the
        self-supervised loss, and the network's output (``z`` or the
        jumping-knowledge concatenation).
        """
        return self.inductive_forward(
            [x] * len(self.layers), x, edge_index, edge_weight
        )

    def sampled_forward(self, x, edge_index, edge_weight, n_dst, n_edges):
        """Embed the first ``n_dst[-1]`` nodes of a sampled subgraph.

        Layer ``i`` is computed for the first ``n_dst[i]`` nodes only, from
        the first ``n_edges[i]`` edges (those that end at them), as the
        sampler orders nodes and edges hop by hop: the last layer for the
        batch's nodes, the one before for them and their sampled neighbours,
        and so on. Each of those nodes gets what :meth:`forward` on the
        whole subgraph gives it, without the layers of the outer hops,
        which nothing reads (4.5x fewer multiply-adds for 512 seeds, fanouts
        (25, 10) and widths 256 -> 512 -> 256). Returns the last layer's
        embedding.
        """
        h = x
        for i in range(len(self.layers)):
            edges = edge_index[:, : n_edges[i]]
            h = self.layer_forward(
                i, (h, h[: n_dst[i]]), edges, edge_weight[: n_edges[i]]
            )
        return h

    def inductive_forward(self, sources, x, edge_index, edge_weight):
        """Embed targets ``x`` linked to source nodes with known layer inputs.

        ``sources[i]`` holds the input of layer ``i`` for the source nodes
        (``sources[0]`` their normalised features). With ``sources[0] is x``
        and every later entry ignored this is the ordinary forward pass on one
        graph: each layer then reads its sources from the previous layer.
        Returns ``(z, out)`` as :meth:`forward`.
        """
        same = sources[0] is x
        hs = [x]
        for i in range(len(self.layers)):
            src = hs[-1] if same else sources[i]
            hs.append(self.layer_forward(i, (src, hs[-1]), edge_index, edge_weight))
        if not self.jumping_knowledge:
            return hs[-1], hs[-1]
        return hs[-1], torch.cat(hs[1:], dim=-1)
