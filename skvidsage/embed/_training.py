"""The self-supervised training loop of :class:`skvidsage.VidSageEmbedder`.

Kept apart from the scikit-learn wrapper: it takes tensors and a network and
knows nothing of parameter validation.
"""

import contextlib
import dataclasses
import math
import threading

import numpy as np
import torch
from tqdm.auto import tqdm

from skvidsage.embed._losses import contrastive_loss, sage_loss, triplet_loss
from skvidsage.embed._sampler import (
    negative_distribution,
    random_walk_positives,
    sample_subgraph,
)
from skvidsage.embed.nn import VidSageNet

# torch's deterministic switch is process-wide: threads inside
# ``deterministic`` (Dask's threaded workers, each embedding a partition)
# share one switch, set by the first to enter and restored by the last to
# leave (saved and restored per thread, an early leaver restored "off" under
# a thread still inside, or a late one left it "on")
_SWITCH = threading.Lock()
_USERS = {"count": 0, "saved": None}


@contextlib.contextmanager
def deterministic(device):
    """Use torch's deterministic kernels on the CPU, restoring the setting after.

    Some CPU scatter reductions (used by message passing) add in a
    thread-dependent order; the deterministic ones make a seeded fit
    reproducible bit for bit. On CUDA nothing is changed. Safe to enter
    from several threads at once (see ``_SWITCH``).
    """
    if device.type != "cpu":
        yield
        return
    with _SWITCH:
        if _USERS["count"] == 0:
            _USERS["saved"] = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
            )
            torch.use_deterministic_algorithms(True)
        _USERS["count"] += 1
    try:
        yield
    finally:
        with _SWITCH:
            _USERS["count"] -= 1
            if _USERS["count"] == 0:
                before, warn_only = _USERS["saved"]
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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training settings of :class:`skvidsage.VidSageEmbedder`, resolved.

    Field names are the estimator's parameter names (see its docstring);
    ``full_batch`` and ``fanouts`` are resolved (a bool, a tuple of int).
    """

    loss: str
    batch_size: int
    fanouts: tuple
    full_batch: bool
    max_epochs: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float
    n_negatives: int
    walk_length: int
    temperature: float
    margin: float
    early_stopping: bool
    tol: float
    n_iter_no_change: int

    @classmethod
    def from_estimator(cls, estimator, *, fanouts, full_batch):
        """Take every other field from the estimator's parameter of that name."""
        values = {"fanouts": fanouts, "full_batch": full_batch}
        for field in dataclasses.fields(cls):
            if field.name not in values:
                values[field.name] = field.type(getattr(estimator, field.name))
        return cls(**values)


class _EarlyStopping:
    """Stop when the epoch loss has not improved by ``tol`` for ``patience``."""

    def __init__(self, tol, patience):
        self.tol, self.patience = tol, patience
        self.best, self.stall = np.inf, 0

    def stop(self, loss):
        if loss < self.best - self.tol:
            self.best, self.stall = loss, 0
        else:
            self.stall += 1
        return self.stall >= self.patience


def _batches(graph, config, batch_size, neg_dist, generator):
    """Yield ``(anchors, positives, negatives)`` of one epoch, in order.

    Anchors without a neighbour are dropped (no positive); the "sage" loss
    shares ``n_negatives`` negatives per batch, the others draw one per anchor.
    """
    n = graph.n_nodes
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        anchors = perm[start : start + batch_size]
        positives, moved = random_walk_positives(
            graph, anchors, config.walk_length, generator
        )
        anchors, positives = anchors[moved], positives[moved]
        if len(anchors) == 0:
            continue
        n_neg = config.n_negatives if config.loss == "sage" else len(anchors)
        negatives = torch.multinomial(
            neg_dist, n_neg, replacement=True, generator=generator
        )
        yield anchors, positives, negatives


def _batch_loss(module, x, graph, batch, config, full, edge_set, generator, device):
    """Return the loss of one batch: embed the nodes it needs, score them."""
    anchors, positives, negatives = batch
    wanted = torch.cat([anchors, positives, negatives])
    if full is not None:
        z, _ = module(*full)
        z_wanted = z[wanted.to(device)]
    else:
        seeds, inverse = torch.unique(wanted, return_inverse=True)
        n_id, sub_index, sub_weight, (n_nodes, n_edges) = sample_subgraph(
            graph, seeds, config.fanouts, generator, return_hops=True
        )
        # layer i is needed within L - 1 - i hops of the seeds (fewer if the
        # sample has fewer hops than the network has layers)
        n_layers, n_hops = len(module.layers), len(config.fanouts)
        reach = [min(n_layers - 1 - i, n_hops) for i in range(n_layers)]
        z = module.sampled_forward(
            x[n_id].to(device),
            sub_index.to(device),
            sub_weight.to(device),
            n_dst=[n_nodes[r] for r in reach],
            n_edges=[n_edges[min(r + 1, n_hops)] for r in reach],
        )
        z_wanted = z[inverse.to(device)]
    k = len(anchors)
    z_a, z_p, z_n = z_wanted[:k], z_wanted[k : 2 * k], z_wanted[2 * k :]
    if config.loss == "sage":
        return sage_loss(z_a, z_p, z_n, temperature=config.temperature)
    ok = (~edge_set.contains(anchors, negatives)) & (anchors != negatives)
    fn = triplet_loss if config.loss == "triplet" else contrastive_loss
    return fn(z_a, z_p, z_n, margin=config.margin, weight=ok.float().to(device))


def train(module, x, graph, *, config, generator, device, verbose=False):
    """Train ``module`` on ``graph`` without labels; return the loss curve.

    Parameters
    ----------
    module : skvidsage.embed.nn.VidSageNet
        The network, already on ``device``.
    x : torch.Tensor of shape (n_nodes, n_features)
        L2-normalised node features (CPU).
    graph : skvidsage.embed._sampler.CSRGraph
        The training graph (rows: nodes, columns: their neighbours), without
        self links (the builder never makes them).
    config : TrainConfig
        The training settings.
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
    batch_size = n if config.full_batch else min(config.batch_size, n)
    total_steps = config.max_epochs * max(1, math.ceil(n / batch_size))
    optimizer = torch.optim.Adam(
        module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine(
            s, warmup_steps=config.warmup_steps, total_steps=total_steps
        ),
    )
    neg_dist = negative_distribution(graph)
    edge_set = _EdgeSet(graph) if config.loss != "sage" else None
    full = None
    if config.full_batch:
        edge_index, edge_weight = graph.edges()
        full = (x.to(device), edge_index.to(device), edge_weight.to(device))
    stopping = _EarlyStopping(config.tol, config.n_iter_no_change)
    losses = []
    bar = tqdm(
        range(config.max_epochs), disable=not verbose, desc="VidSage", unit="epoch"
    )
    module.train()
    for _ in bar:
        epoch_loss, n_batches = 0.0, 0
        for batch in _batches(graph, config, batch_size, neg_dist, generator):
            loss = _batch_loss(
                module, x, graph, batch, config, full, edge_set, generator, device
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            epoch_loss += loss.detach().item()
            n_batches += 1
        epoch_loss /= max(n_batches, 1)
        losses.append(epoch_loss)
        bar.set_postfix(loss=f"{epoch_loss:.4f}")
        if config.early_stopping and stopping.stop(epoch_loss):
            break
    bar.close()
    module.eval()
    return losses


def fit_network(x, graph, hidden, net, config, seed, device, verbose=False):
    """Build a VidSageNet, train it seeded; return it (on the CPU) and its losses.

    ``net`` holds the network's options (``conv``, ``aggr``, ...). The torch
    random state of the caller is left as it was (``fork_rng``).
    """
    fork_devices = [device] if device.type == "cuda" else []
    with (
        torch.random.fork_rng(devices=fork_devices, device_type=device.type),
        deterministic(device),
    ):
        torch.manual_seed(seed)
        module = VidSageNet(x.shape[1], hidden, **net).to(device)
        generator = torch.Generator().manual_seed(seed)
        losses = train(
            module,
            x,
            graph,
            config=config,
            generator=generator,
            device=device,
            verbose=verbose,
        )
    return module.cpu().eval(), losses
