"""Which key blocks each query tile attends: the budget, the blocks always kept, and top-p selection.

The rules both sparse modes share (`t2v.attention.processor`):

- A query tile of `query_tile` reordered queries attends at most `floor(density · key blocks)` key
  blocks of `key_block` reordered keys, so the mask never exceeds the density asked.
- It always attends its diagonal blocks (the key positions of its own query positions, which in an
  order shared by queries and keys are its own tokens and their neighbours) and the sink block (key
  block 0, where every order puts the first `sink_tokens` tokens of the sequence).
- Semantic mode (Sparse VideoGen 2) fills the rest by cumulative top-p of the attention of mean
  queries on mean keys, with a floor; a tile uses as many blocks as its most demanding head needs.
- PARO mode reads fixed blocks from its calibrated plan (`t2v.attention.paro`).
"""

import math

import torch


def block_budget(num_key_blocks: int, density: float) -> int:
    return int(math.floor(density * num_key_blocks + 1e-6))


def required_mask(tiles: int, query_tile: int, key_block: int, length: int, device=None) -> torch.Tensor:
    """(tiles, key blocks) boolean: each tile's diagonal blocks (over its real queries) and the sink block 0."""
    key_blocks = tiles * query_tile // key_block
    mask = torch.zeros(tiles, key_blocks, dtype=torch.bool, device=device)
    mask[:, 0] = True
    for t in range(tiles):
        first = (t * query_tile) // key_block
        last = (max(min((t + 1) * query_tile, length), t * query_tile + 1) - 1) // key_block
        mask[t, first : last + 1] = True
    return mask


def best_blocks(scores: torch.Tensor, required: torch.Tensor, budget: int) -> torch.Tensor:
    """Each tile's `budget` best key blocks: the required ones first, then by score (scores are shares, at most 1)."""
    return (scores + 2.0 * required).argsort(-1, descending=True)[..., :budget]


def planned_blocks(mass: torch.Tensor, query_tile: int, key_block: int, length: int, density: float):
    """(..., tiles, key blocks) attention mass -> (each tile's share of it, its blocks at `density` as `best_blocks` picks)."""
    share = mass / mass.sum(-1, keepdim=True).clamp(min=1e-12)
    required = required_mask(mass.shape[-2], query_tile, key_block, length, device=mass.device)
    return share, best_blocks(share, required, block_budget(math.ceil(length / key_block), density))


def fits(length: int, density: float, query_tile: int, key_block: int) -> bool:
    """Whether a sequence is long enough for the density: the required blocks plus one leave room in the budget."""
    key_blocks = math.ceil(length / key_block)
    return length > query_tile and block_budget(key_blocks, density) >= math.ceil(query_tile / key_block) + 2


def block_means(x: torch.Tensor, block: int, length: int) -> torch.Tensor:
    """(B, H, P, d) tokens, real up to `length` -> (B, H, P / block, d) means over the real tokens of each block."""
    sums = x.float().unflatten(2, (-1, block)).sum(3)
    first = length // block  # the first block with padding in it
    if first < sums.shape[2]:
        sums[:, :, first:] = 0
        if length % block:
            sums[:, :, first] = x[:, :, first * block : length].float().sum(2)
    counts = (length - torch.arange(0, x.shape[2], block, device=x.device)).clamp(1, block)
    return sums / counts.view(-1, 1)


def top_p_blocks(
    query: torch.Tensor,
    key: torch.Tensor,
    length: int,
    query_tile: int,
    key_block: int,
    density: float,
    top_p: float,
    min_density: float,
) -> tuple[torch.Tensor, list[int]]:
    """Semantic block selection for reordered queries and keys (B, H, P, d), real up to `length` (then padding).

    Scores: the softmax, over key blocks, of every 64-query sub-block's mean query against each key
    block's mean key (plus the log of its real key count); a tile's score is the mean over its
    sub-blocks. Each head takes the required blocks, then the best blocks until their scores reach
    `top_p`, at least `min_density` and at most `density` of the key blocks.

    Returns:
        kv_blocks (B, H, tiles, budget), best first, and per tile how many of them to use.
    """
    padded, dim = query.shape[2:]
    tiles = padded // query_tile
    sub = math.gcd(query_tile, 64)
    q_mean = block_means(query, sub, length)
    k_mean = block_means(key, key_block, length)
    real = (length - torch.arange(0, padded, key_block, device=key.device)).clamp(min=0, max=key_block)
    logits = q_mean @ k_mean.transpose(-1, -2) / math.sqrt(dim) + real.clamp(min=1).log()
    logits = logits.masked_fill(real == 0, float("-inf"))
    scores = logits.softmax(-1).unflatten(2, (tiles, -1)).mean(3)  # (B, H, tiles, key blocks)

    required = required_mask(tiles, query_tile, key_block, length, device=query.device)
    budget = block_budget(math.ceil(length / key_block), density)
    floor = max(int(required.sum(-1).max()), min(budget, math.ceil(min_density * math.ceil(length / key_block))))
    best = best_blocks(scores, required, budget)
    mass = scores.gather(-1, best).cumsum(-1)
    needed = (mass < top_p).sum(-1) + 1  # blocks until the cumulative score reaches top_p
    counts = needed.clamp(min=floor, max=budget).amax(dim=(0, 1))
    return best, counts.tolist()
