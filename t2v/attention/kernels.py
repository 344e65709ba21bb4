"""Block-sparse attention: each query tile attends its selected key blocks (a gather into dense SDPA, or FlexAttention).

Sparse VideoGen 2 and PAROAttention reorder tokens so that a few key blocks hold most of each
query block's attention, then attend only those. Here every query tile (a run of `query_tile`
queries) attends a fixed number S of key blocks (runs of `key_block` keys): their keys and values are
gathered into one contiguous (B, H, S·key_block, d) tensor and the tile goes through
`torch.nn.functional.scaled_dot_product_attention`, so the fused dense kernels of the device do the
work. The cost is density × dense plus a gather of density·N²·d / query_tile elements.

On a 2-core CPU the shape matters more than the arithmetic: 4-D calls with query tiles of 512 or more
run near dense SDPA's speed per element, while one call per 64-query block, or 5-D batched calls,
are slower than dense attention altogether (benchmarks/sparse_kernel.py measures it).

On CUDA, `sparse_attention` uses `flex_block_sparse_attention` instead: the same selection as a
FlexAttention `BlockMask`, whose compiled kernel skips unselected blocks without gathering them.
"""

import torch
import torch.nn.functional as F


def block_sparse_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    kv_blocks: torch.Tensor,
    query_tile: int,
    key_block: int,
    num_keys: int | None = None,
    counts: list[int] | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention of every query tile over its selected key blocks.

    Args:
        query, key, value: (B, H, N, d); N a multiple of `query_tile` and of `key_block` (pad first).
        kv_blocks: (B, H, N / query_tile, S) long, the key blocks each query tile attends, without repeats.
        query_tile, key_block: tokens per query tile and per key block.
        num_keys: keys at positions >= num_keys are padding and never attended (default: none are).
        counts: per query tile, how many of its S selected blocks to use, the first ones (default: all S).
        out: a reusable (B, H, N, d) tensor to write into.

    Returns:
        (B, H, N, d) in the order of `query`.
    """
    batch, heads, length, dim = query.shape
    tiles, selected = length // query_tile, kv_blocks.shape[-1]
    if length % query_tile or length % key_block or tuple(kv_blocks.shape[:3]) != (batch, heads, tiles):
        raise ValueError(
            f"Expected N ({length}) to be a multiple of {query_tile} and {key_block}, and kv_blocks shaped "
            f"{(batch, heads, tiles, selected)}, got {tuple(kv_blocks.shape)}."
        )
    blocks = length // key_block
    k = key.reshape(batch * heads * blocks, key_block, dim)
    v = value.reshape(batch * heads * blocks, key_block, dim)
    row = (torch.arange(batch * heads, device=query.device) * blocks).view(batch, heads, 1)
    padded_block = None if num_keys is None or num_keys >= length else num_keys // key_block
    out = torch.empty_like(query) if out is None else out
    # gather buffers allocated once: fresh large allocations per tile cost more than the copy itself on CPU
    # (autograd cannot go through `out=`, so under it each gather allocates)
    reuse = not (torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad))
    k_buf = key.new_empty(batch * heads * selected, key_block, dim) if reuse else None
    v_buf = value.new_empty(batch * heads * selected, key_block, dim) if reuse else None
    for t in range(tiles):
        idx = kv_blocks[:, :, t] if counts is None else kv_blocks[:, :, t, : counts[t]]  # (B, H, S)
        flat = (row + idx).flatten()
        if reuse:
            k_sel = torch.index_select(k, 0, flat, out=k_buf[: flat.numel()]).view(batch, heads, -1, dim)  # 4-D on purpose
            v_sel = torch.index_select(v, 0, flat, out=v_buf[: flat.numel()]).view(batch, heads, -1, dim)
        else:
            k_sel = k.index_select(0, flat).view(batch, heads, -1, dim)
            v_sel = v.index_select(0, flat).view(batch, heads, -1, dim)
        mask = None
        if padded_block is not None and bool((idx >= padded_block).any()):
            positions = (idx.unsqueeze(-1) * key_block + torch.arange(key_block, device=idx.device)).flatten(2, 3)
            mask = (positions < num_keys).unsqueeze(-2)  # (B, H, 1, S·block)
        rows = slice(t * query_tile, (t + 1) * query_tile)
        out[:, :, rows] = F.scaled_dot_product_attention(query[:, :, rows], k_sel, v_sel, attn_mask=mask)
    return out


_compiled_flex = None


def _padding_mask(num_keys: torch.Tensor):
    """A mask_mod hiding the keys at positions >= num_keys, a 0-d tensor: compiled FlexAttention reads the tensor as
    an input, so a new key count needs no new kernel (a Python int would be compiled in as a constant)."""

    def mask_mod(b, h, q_idx, kv_idx):
        return kv_idx < num_keys

    return mask_mod


def flex_block_sparse_attention(query, key, value, kv_blocks, query_tile, key_block, num_keys=None, counts=None, out=None):
    """The same attention as `block_sparse_attention` through PyTorch FlexAttention (compiled once per process).

    Meant for CUDA, where FlexAttention's fused kernel skips the unselected blocks without a gather. The
    block mask is built with `BlockMask.from_kv_blocks` from the same selection (cheap; the selection
    changes every step in semantic mode); query tiles are split into rows of 128 queries, FlexAttention's
    native block height. It compiles once for the first shape and once more, with dynamic shapes, when another
    (B, H, N) or key count comes (torch.compile's automatic dynamic shapes): FIFO's changing number of windows
    per call never reaches torch's recompile limit, past which FlexAttention would quietly run unfused.
    """
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    global _compiled_flex
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention)
    batch, heads, length, _ = query.shape
    tiles, key_blocks = length // query_tile, length // key_block
    rows = query_tile // 128 if query_tile % 128 == 0 else 1
    row_height = query_tile // rows
    selected = kv_blocks.shape[-1]
    num = torch.full((batch, heads, tiles), selected, dtype=torch.int32, device=query.device)
    if counts is not None:
        num = num.new_tensor(counts).expand(batch, heads, tiles).contiguous()
    # FlexAttention wants every key block listed per row: the selected ones first, the rest are ignored
    rest = torch.ones(batch, heads, tiles, key_blocks, dtype=torch.bool, device=query.device)
    rest.scatter_(-1, kv_blocks, False)
    order = torch.cat([kv_blocks, rest.nonzero()[:, -1].view(batch, heads, tiles, -1)], dim=-1)
    mask_mod = _padding_mask(torch.tensor(num_keys, device=query.device)) if num_keys is not None and num_keys < length else None
    block_mask = BlockMask.from_kv_blocks(
        num.repeat_interleave(rows, dim=2),
        order.to(torch.int32).repeat_interleave(rows, dim=2),
        BLOCK_SIZE=(row_height, key_block),
        mask_mod=mask_mod,
        seq_lengths=(length, length),
    )
    result = _compiled_flex(query, key, value, block_mask=block_mask)
    return result if out is None else out.copy_(result)


def sparse_attention(query, key, value, kv_blocks, query_tile, key_block, num_keys=None, counts=None, out=None):
    """Block-sparse attention with the kernel that suits the device: FlexAttention on CUDA, the gather elsewhere."""
    kernel = flex_block_sparse_attention if query.is_cuda else block_sparse_attention
    return kernel(query, key, value, kv_blocks, query_tile, key_block, num_keys=num_keys, counts=counts, out=out)


def dense_block_mask(kv_blocks: torch.Tensor, num_key_blocks: int, counts: list[int] | None = None) -> torch.Tensor:
    """(B, H, tiles, S) selected key blocks -> (B, H, tiles, num_key_blocks) boolean block mask."""
    if counts is not None:
        used = torch.arange(kv_blocks.shape[-1], device=kv_blocks.device) < kv_blocks.new_tensor(counts)[:, None]
        kv_blocks = torch.where(used, kv_blocks, kv_blocks[..., :1])  # unused columns repeat the first block
    mask = torch.zeros(*kv_blocks.shape[:3], num_key_blocks, dtype=torch.bool, device=kv_blocks.device)
    return mask.scatter_(-1, kv_blocks, True)


def masked_dense_attention(query, key, value, kv_blocks, query_tile, key_block, num_keys=None, counts=None):
    """The same result as `block_sparse_attention` from dense SDPA with an element mask: the reference of the
    tests and of benchmarks/sparse_kernel.py (N² memory per head; for checking, not for use)."""
    length = query.shape[2]
    mask = dense_block_mask(kv_blocks, length // key_block, counts)
    mask = mask.repeat_interleave(query_tile, dim=2).repeat_interleave(key_block, dim=3)
    if num_keys is not None:
        mask[..., num_keys:] = False
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
