"""Block-sparse attention kernel: exact against dense at full density and against masked dense below it."""

import pytest
import torch
import torch.nn.functional as F

from t2v.attention.kernels import block_sparse_attention, dense_block_mask, masked_dense_attention


def qkv(batch=2, heads=3, length=512, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, length, dim, generator=g) for _ in range(3)]


def random_blocks(batch, heads, tiles, key_blocks, selected, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, heads, tiles, key_blocks, generator=g).argsort(-1)[..., :selected]


def test_all_blocks_equal_dense_attention():
    q, k, v = qkv()
    every = torch.arange(512 // 32).expand(2, 3, 512 // 128, -1).contiguous()
    out = block_sparse_attention(q, k, v, every, query_tile=128, key_block=32)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tile,block,selected", [(128, 32, 4), (64, 64, 2), (256, 16, 9)])
def test_selected_blocks_equal_masked_dense_attention(tile, block, selected):
    q, k, v = qkv()
    blocks = random_blocks(2, 3, 512 // tile, 512 // block, selected)
    out = block_sparse_attention(q, k, v, blocks, tile, block)
    torch.testing.assert_close(out, masked_dense_attention(q, k, v, blocks, tile, block), rtol=1e-5, atol=1e-5)
    mask = dense_block_mask(blocks, 512 // block)
    assert mask.sum(-1).eq(selected).all()  # exactly S blocks per query tile, no repeats


def test_padded_keys_are_never_attended():
    q, k, v = qkv(length=512)
    blocks = random_blocks(2, 3, 4, 15, 7, seed=1)
    blocks = torch.cat([blocks, torch.full((2, 3, 4, 1), 15)], dim=-1)  # every tile selects the last block: the padding
    out = block_sparse_attention(q, k, v, blocks, 128, 32, num_keys=500)
    torch.testing.assert_close(out, masked_dense_attention(q, k, v, blocks, 128, 32, num_keys=500), rtol=1e-5, atol=1e-5)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 500:], v2[:, :, 500:] = 1e3, 1e3  # changing the padding changes nothing
    torch.testing.assert_close(block_sparse_attention(q, k2, v2, blocks, 128, 32, num_keys=500), out)


def test_shapes_that_do_not_tile_fail_clearly():
    q, k, v = qkv(length=500)
    with pytest.raises(ValueError, match="multiple of 128"):
        block_sparse_attention(q, k, v, torch.zeros(2, 3, 3, 2, dtype=torch.long), 128, 32)
