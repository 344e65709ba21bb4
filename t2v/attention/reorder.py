"""Token reorderings that make video attention block-sparse: semantic clusters and axis orders.

Two ways of putting tokens that attend to each other next to each other, so that a query tile needs
only a few key blocks:

- Sparse VideoGen 2 (Yang et al., 2025): k-means on the queries and on the keys of each head, tokens
  sorted by cluster (`kmeans`, `cluster_order`).
- PAROAttention (Zhao et al., 2025): one of the six orders of the (frame, height, width) axes per head,
  chosen offline, turns the head's diagonal, vertical or multi-diagonal pattern into a local block one
  (`axis_order`).

Orders are index tensors over the sequence, shaped (..., N). `sink_tokens` leading tokens of the
original sequence are always placed first, so the first key block holds them in every order (see
`t2v.attention.selection`). Gathering with an order and scattering back with the same order are exact
inverses (`permute`, `unpermute`).
"""

import itertools

import torch

AXIS_ORDERS = list(itertools.permutations("fhw"))  # the six orders, "fhw" (frame-major) = Wan's own


def permute(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) tokens in `order` (B, H, N) or (H, N)."""
    order = order.expand(*x.shape[:2], -1)
    return x.gather(2, order.unsqueeze(-1).expand(*order.shape, x.shape[-1]))


def unpermute(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The inverse of `permute`: tokens back to their original positions."""
    order = order.expand(*x.shape[:2], -1)
    return torch.empty_like(x).scatter_(2, order.unsqueeze(-1).expand(*order.shape, x.shape[-1]), x)


def axis_order(grid: tuple[int, int, int], axes: str, sink_tokens: int = 0, device=None) -> torch.Tensor:
    """The (N,) order that walks the (frames, height, width) token grid with `axes` outermost first.

    `axes` is a permutation of "fhw"; "fhw" is the identity. The first `sink_tokens` tokens come first.
    """
    if sorted(axes) != ["f", "h", "w"]:
        raise ValueError(f"An axis order must be a permutation of 'fhw', got {axes!r}.")
    index = torch.arange(grid[0] * grid[1] * grid[2], device=device).view(grid)
    order = index.permute(["fhw".index(a) for a in axes]).flatten()
    return _sink_first(order, sink_tokens)


def _sink_first(order: torch.Tensor, sink_tokens: int) -> torch.Tensor:
    if sink_tokens <= 0:
        return order
    sink = torch.arange(sink_tokens, device=order.device).expand(*order.shape[:-1], -1)
    return torch.cat([sink, order[order >= sink_tokens].view(*order.shape[:-1], -1)], dim=-1)


def kmeans(x: torch.Tensor, centroids: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means, batched over (B, H): x (B, H, N, d), centroids (B, H, C, d) -> labels (B, H, N), centroids.

    `iters` rounds of assignment and update; the labels are those of the last assignment and the
    centroids those of the last update (the warm start of the next call). A cluster that loses all its
    points keeps its old centroid.
    """
    x = x.float()
    centroids = centroids.float()
    for _ in range(max(iters, 1)):
        # argmin of |x - c|^2 over c does not need |x|^2
        labels = (centroids.square().sum(-1).unsqueeze(-2) - 2 * x @ centroids.transpose(-1, -2)).argmin(-1)
        one_hot = torch.nn.functional.one_hot(labels, centroids.shape[2]).to(x.dtype)  # (B, H, N, C)
        counts = one_hot.sum(2).unsqueeze(-1)
        centroids = torch.where(counts > 0, one_hot.transpose(-1, -2) @ x / counts.clamp(min=1), centroids)
    return labels, centroids


def initial_centroids(x: torch.Tensor, clusters: int) -> torch.Tensor:
    """Deterministic start: the tokens at `clusters` evenly spaced positions (a coarse grid over the video)."""
    positions = torch.linspace(0, x.shape[2] - 1, clusters, device=x.device).round().long()
    return x[:, :, positions].float()


def cluster_order(labels: torch.Tensor, clusters: int, sink_tokens: int = 0) -> torch.Tensor:
    """(B, H, N) cluster labels -> (B, H, N) order: tokens grouped by cluster, clusters by mean position.

    Sorting clusters by the mean position of their tokens puts the query and key clusters of the same
    region of the video at about the same place in both orders, so the diagonal blocks stay meaningful.
    Inside a cluster tokens keep their original order.
    """
    length = labels.shape[-1]
    position = torch.arange(length, device=labels.device, dtype=torch.float32).expand_as(labels)
    total = torch.zeros(*labels.shape[:-1], clusters, device=labels.device).scatter_add_(-1, labels, position)
    count = torch.zeros_like(total).scatter_add_(-1, labels, torch.ones_like(position))
    rank = (total / count.clamp(min=1)).argsort(-1).argsort(-1)  # the place of each cluster
    key = rank.gather(-1, labels) * length + position.long()
    return _sink_first(key.argsort(-1), sink_tokens)
