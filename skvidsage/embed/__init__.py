"""Graph to embeddings: :class:`VidSageEmbedder` and its network.

- :mod:`skvidsage.embed.embedder`: the estimator (propagated blocks and the
  optional trained GraphSAGE/GAT layers, inductive ``transform``);
- :mod:`skvidsage.embed.nn`: the PyG layers and :class:`~skvidsage.embed.nn.VidSageNet`;
- ``_sampler``, ``_losses``, ``_training``: neighbour sampling, the
  self-supervised losses and the training loop.
"""

from skvidsage.embed.embedder import VidSageEmbedder

__all__ = ["VidSageEmbedder"]
