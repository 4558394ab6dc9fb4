"""The self-supervised training loop of :class:`skvidsage.VidSageEmbedder`.

Kept apart from the scikit-learn wrapper: it takes tensors and a network and
knows nothing of parameter validation.
"""

import contextlib
import math

import numpy as np
import torch
from tqdm.auto import tqdm

from skvidsage._losses import contrastive_loss, sage_loss, triplet_loss
from skvidsage._sampler import (
    negative_distribution,
    random_walk_positives,
    sample_subgraph,
)


@contextlib.contextmanager
def deterministic(device):
    """Use torch's deterministic kernels on the CPU, restoring the setting after.

    Some CPU scatter reductions (used by message passing) add in a
    thread-dependent order; the deterministic ones make a seeded fit
    reproducible bit for bit. On CUDA nothing is changed.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def warmup_cosine(step, *, warmup_steps, total_steps):
    """Learning-rate factor: linear warm-up, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def expected_batch_nodes(graph, batch_size, fanouts):
    """Rough number of nodes a sampled batch touches (for full-batch choice)."""
    mean_deg = float(graph.degree().double().mean()) if graph.n_nodes else 0.0
    total, width = 1.0, 1.0
    for f in fanouts:
        width *= mean_deg if f < 0 else min(f, mean_deg)
        total += width
    return 2 * batch_size * total


class _EdgeSet:
    """Membership test for edges ``(u, v)`` of a CSR graph, via sorted keys."""

    def __init__(self, graph):
        dst = torch.repeat_interleave(torch.arange(graph.n_nodes), graph.degree())
        self.n = graph.n_nodes
        self.keys = torch.sort(dst * self.n + graph.indices).values

    def contains(self, u, v):
        key = u * self.n + v
        pos = torch.searchsorted(self.keys, key).clamp(max=max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return torch.zeros_like(key, dtype=torch.bool)
        return self.keys[pos] == key


def train(module, x, graph, *, params, generator, device, verbose=False):
    """Train ``module`` on ``graph`` without labels; return the loss curve.

    Parameters
    ----------
    module : skvidsage.nn.VidSageNet
        The network, already on ``device``.
    x : torch.Tensor of shape (n_nodes, n_features)
        L2-normalised node features (CPU).
    graph : skvidsage._sampler.CSRGraph
        The training graph (rows: nodes, columns: their neighbours), no self
        loops.
    params : dict
        The estimator's training parameters (``loss``, ``batch_size``,
        ``fanouts``, ``max_epochs``, ...), plus ``full_batch_`` (resolved).
    generator : torch.Generator
        Source of all sampling randomness.
    device : torch.device
        Where the network runs.
    verbose : bool
        Show a progress bar with the loss.

    Returns
    -------
    losses : list of float
        Mean training loss of every epoch run.
    """
    n = graph.n_nodes
    p = params
    full_batch = p["full_batch_"]
    batch_size = n if full_batch else min(p["batch_size"], n)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total_steps = p["max_epochs"] * steps_per_epoch
    optimizer = torch.optim.Adam(
        module.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine(
            s, warmup_steps=p["warmup_steps"], total_steps=total_steps
        ),
    )
    neg_dist = negative_distribution(graph)
    edge_set = _EdgeSet(graph) if p["loss"] != "sage" else None
    if full_batch:
        edge_index, edge_weight = graph.edges()
        full = (x.to(device), edge_index.to(device), edge_weight.to(device))

    losses, best, stall = [], np.inf, 0
    bar = tqdm(
        range(p["max_epochs"]), disable=not verbose, desc="VidSage", unit="epoch"
    )
    module.train()
    for _ in bar:
        perm = torch.randperm(n, generator=generator)
        epoch_loss, n_batches = 0.0, 0
        for start in range(0, n, batch_size):
            anchors = perm[start : start + batch_size]
            positives, moved = random_walk_positives(
                graph, anchors, p["walk_length"], generator
            )
            anchors, positives = anchors[moved], positives[moved]
            if len(anchors) == 0:
                continue
            if p["loss"] == "sage":
                negatives = torch.multinomial(
                    neg_dist, p["n_negatives"], replacement=True, generator=generator
                )
            else:
                negatives = torch.multinomial(
                    neg_dist, len(anchors), replacement=True, generator=generator
                )
            wanted = torch.cat([anchors, positives, negatives])
            if full_batch:
                z, _ = module(*full)
                z_wanted = z[wanted.to(device)]
            else:
                seeds, inverse = torch.unique(wanted, return_inverse=True)
                n_id, sub_index, sub_weight = sample_subgraph(
                    graph, seeds, p["fanouts"], generator
                )
                z, _ = module(
                    x[n_id].to(device), sub_index.to(device), sub_weight.to(device)
                )
                z_wanted = z[inverse.to(device)]
            k = len(anchors)
            z_a, z_p, z_n = z_wanted[:k], z_wanted[k : 2 * k], z_wanted[2 * k :]
            if p["loss"] == "sage":
                loss = sage_loss(z_a, z_p, z_n, temperature=p["temperature"])
            else:
                ok = (~edge_set.contains(anchors, negatives)) & (anchors != negatives)
                weight = ok.float().to(device)
                fn = triplet_loss if p["loss"] == "triplet" else contrastive_loss
                loss = fn(z_a, z_p, z_n, margin=p["margin"], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            epoch_loss += loss.detach().item()
            n_batches += 1
        epoch_loss /= max(n_batches, 1)
        losses.append(epoch_loss)
        bar.set_postfix(loss=f"{epoch_loss:.4f}")
        if p["early_stopping"]:
            if epoch_loss < best - p["tol"]:
                best, stall = epoch_loss, 0
            else:
                stall += 1
                if stall >= p["n_iter_no_change"]:
                    break
    bar.close()
    module.eval()
    return losses
