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
`t2v.attention.selection`). `permute` takes tokens as the attention projections give them,
(B, N, H, d), into each head's order, (B, H, N, d); `unpermute` is its exact inverse.
"""

import itertools

import torch

AXIS_ORDERS = list(itertools.permutations("fhw"))  # the six orders, "fhw" (frame-major) = Wan's own


def _rows(order: torch.Tensor, batch: int, length: int, heads: int) -> torch.Tensor:
    """Row indices into x.reshape(B·N·H, d) for x (B, N, H, d) taken in `order` (B, H, P), (H, P) or (P,)."""
    order = order.expand(batch, heads, -1)
    b = torch.arange(batch, device=order.device).view(-1, 1, 1)
    h = torch.arange(heads, device=order.device).view(1, -1, 1)
    return ((b * length + order) * heads + h).flatten()


def permute(x: torch.Tensor, order: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Tokens (B, N, H, d), as attention projections come, -> (B, H, P, d) in each head's `order` (B, H, P), (H, P) or (P,).

    An order may be longer than N (P > N): its extra entries repeat real tokens as padding. `out`, a
    reusable (B·H·P, d) buffer, spares a fresh allocation.
    """
    batch, length, heads, dim = x.shape
    rows = _rows(order, batch, length, heads)
    if out is None:
        return x.reshape(-1, dim).index_select(0, rows).view(batch, heads, -1, dim)
    return torch.index_select(x.reshape(-1, dim), 0, rows, out=out).view(batch, heads, -1, dim)


def unpermute(y: torch.Tensor, order: torch.Tensor, length: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The inverse of `permute`: (B, H, P, d) in `order` -> (B, N, H, d) in the original order; padding is dropped.

    `out`, if given, is a reusable (B·N·H + 1, d) buffer (the last row takes the padding).
    """
    batch, heads, padded, dim = y.shape
    order = order.expand(batch, heads, -1)
    rows = _rows(order, batch, length, heads)
    if padded > length:  # padded positions of the order all go to one spare row
        spare = torch.arange(padded, device=y.device).expand_as(order) >= length
        rows = torch.where(spare.flatten(), batch * length * heads, rows)
    if out is None:
        out = y.new_empty(batch * length * heads + 1, dim)
    out.index_copy_(0, rows, y.reshape(-1, dim))
    return out[:-1].view(batch, length, heads, dim)


def pad_order(order: torch.Tensor, padded: int) -> torch.Tensor:
    """Extend an order (..., N) to `padded` entries by repeating its first token (masked or dropped later)."""
    extra = padded - order.shape[-1]
    return order if extra <= 0 else torch.cat([order, order[..., :1].expand(*order.shape[:-1], extra)], dim=-1)


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


def kmeans(x: torch.Tensor, centroids: torch.Tensor, iters: int, stride: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means, batched over (B, H): x (B, H, N, d), centroids (B, H, C, d) -> labels (B, H, N), centroids.

    The `iters` rounds of assignment and update use every `stride`-th token (a uniform sample of the
    video, which is enough to move warm-started centroids); the labels are a last assignment of all
    tokens. A cluster that loses all its points keeps its old centroid.
    """
    centroids = centroids.float()
    sample = x[:, :, ::stride].float()
    for _ in range(iters):
        labels = _assign(sample, centroids)
        one_hot = torch.nn.functional.one_hot(labels, centroids.shape[2]).to(sample.dtype)  # (B, H, n, C)
        counts = one_hot.sum(2).unsqueeze(-1)
        centroids = torch.where(counts > 0, one_hot.transpose(-1, -2) @ sample / counts.clamp(min=1), centroids)
    return _assign(x, centroids), centroids


def _assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    # argmin of |x - c|^2 over c does not need |x|^2
    distance = x.to(centroids.dtype) @ centroids.transpose(-1, -2)
    return distance.mul_(-2).add_(centroids.square().sum(-1).unsqueeze(-2)).argmin(-1)


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
