"""Calibrate PAROAttention: choose every head's axis order and block masses from dense attention.

`calibrate_attention(transformer, run)` installs a recording processor on every self-attention,
calls `run()` (which should drive the transformer over a few prompts, e.g. a short generation), and
returns an `AttentionPlan`. While recording, attention stays dense and exact; for each head and each of
the six axis orders it adds up the attention probability that every query tile gives every key block
in that order. Per head, the order whose best blocks at the calibration density (required blocks
first) hold the most attention wins (PAROAttention, Zhao et al., 2025). Calls on other token grids than
the most common one are left out of the plan.
"""

from collections import Counter

import torch
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from .paro import AttentionPlan, model_fingerprint
from .processor import CallState, install_self_attention, restore_self_attention, self_attention_qkv
from .reorder import AXIS_ORDERS, axis_order, permute
from .selection import planned_blocks


class RecordingAttnProcessor(WanAttnProcessor):
    """Dense Wan self-attention that adds each head's (query tile, key block) attention mass, per axis order."""

    def __init__(self, state: CallState, query_tile: int, key_block: int, sink_tokens: int):
        super().__init__()
        self.state, self.query_tile, self.key_block, self.sink_tokens = state, query_tile, key_block, sink_tokens
        self.mass = {}  # grid -> (6, H, tiles, key blocks)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        query, key, value = self_attention_qkv(attn, hidden_states, rotary_emb)
        self._record(query, key)
        out = torch.nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (query, key, value)))
        out = out.transpose(1, 2).flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))

    @torch.no_grad()
    def _record(self, query, key):
        """query, key: (B, N, H, d)."""
        grid, length = self.state.grid, query.shape[1]
        tiles = -(-length // self.query_tile)
        padded = tiles * self.query_tile
        mass = torch.zeros(len(AXIS_ORDERS), query.shape[2], tiles, padded // self.key_block, dtype=torch.float64)
        scale = query.shape[-1] ** -0.5
        for i, axes in enumerate(AXIS_ORDERS):
            order = axis_order(grid, "".join(axes), self.sink_tokens, device=query.device)
            q, k = permute(query.float(), order), permute(key.float(), order)
            k = torch.nn.functional.pad(k, (0, 0, 0, padded - length))
            for t in range(tiles):
                rows = q[:, :, t * self.query_tile : (t + 1) * self.query_tile]
                logits = (rows @ k.transpose(-1, -2)) * scale
                logits[..., length:] = float("-inf")
                probs = logits.softmax(-1).sum(2)  # (B, H, padded): attention each key gets from the tile
                mass[i, :, t] += probs.unflatten(-1, (-1, self.key_block)).sum(-1).sum(0).double().cpu()
        self.mass[grid] = self.mass.get(grid, 0) + mass


def calibrate_attention(transformer, run, density: float = 0.25, query_tile: int = 512, key_block: int = 64, sink_tokens: int = 64) -> AttentionPlan:
    """Run `run()` with recording processors on `transformer` and return the PARO plan it implies."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be a share of key blocks in (0, 1], got {density!r}.")
    if query_tile % key_block:
        raise ValueError(f"query_tile ({query_tile}) must be a multiple of key_block ({key_block}).")
    recorders = install_self_attention(transformer, lambda i, state: RecordingAttnProcessor(state, query_tile, key_block, sink_tokens))
    try:
        run()
    finally:
        restore_self_attention(transformer, RecordingAttnProcessor)
    if not recorders[0].mass:
        raise ValueError("Calibration saw no self-attention call; `run` must call the transformer.")
    grid = Counter({g: float(m.sum()) for g, m in recorders[0].mass.items()}).most_common(1)[0][0]
    length = grid[0] * grid[1] * grid[2]
    orders, masses = [], []
    for recorder in recorders:
        mass = recorder.mass[grid]  # (6, H, tiles, key blocks)
        share, best = planned_blocks(mass, query_tile, key_block, length, density)
        kept = share.gather(-1, best).sum(-1).mean(-1)  # (6, H): share of attention the mask keeps
        choice = kept.argmax(0)
        orders.append(choice)
        masses.append(mass[choice, torch.arange(mass.shape[1])].float() / mass.sum(-1).mean())
    return AttentionPlan(orders, masses, grid, query_tile, key_block, sink_tokens, float(density), model_fingerprint(transformer))
