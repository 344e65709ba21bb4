"""Sparse, reordered self-attention for Wan-family transformers (Sparse VideoGen 2, PAROAttention).

`enable_sparse_attention(transformer, density, mode)` installs `SparseWanAttnProcessor` on every
self-attention (`attn1`) of a `diffusers.WanTransformer3DModel`, t2v's denoiser and planner or a stock
Wan2.1 one; cross-attention is never touched. `disable_sparse_attention` puts the old processors back.

Per call, a processor reorders the queries and keys of every head so that related tokens are
contiguous, picks for every query tile the key blocks it attends (`t2v.attention.selection`), runs
the block-sparse kernel (`t2v.attention.kernels`) and puts the output back in the original order:

- `semantic` (default, no calibration; Sparse VideoGen 2): k-means on queries and on keys per head,
  warm-started from the previous call's centroids; top-p block selection with a floor.
- `paro` (PAROAttention): a per-head axis order and block mask from a calibrated plan (`paro.py`).

Dense attention, through diffusers' `dispatch_attention_fn` with the model's attention backend and
parallel config, is used for `density=1.0`, for the first `dense_layers` blocks, for batch rows whose
noisiest frame is at or above `dense_timestep` (the first share of the steps, where the picture's
layout forms; under FIFO, whose windows span several noise levels, the window that holds the noisiest
frames), for sequences too short for the density, and
for a plan's other grids. Wan passes no step to attention processors, so a forward pre-hook on the
transformer records the timestep and the token grid of each call.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import WanAttnProcessor
from diffusers.utils import logging

from ..compat import wan_qkv
from .kernels import sparse_attention
from .paro import PLAN_NAME, AttentionPlan
from .reorder import AXIS_ORDERS, axis_order, cluster_order, initial_centroids, kmeans, pad_order, permute, unpermute
from .selection import fits, top_p_blocks

logger = logging.get_logger(__name__)

MODES = ("semantic", "paro")
COMMON_OPTIONS = {"query_tile": 512, "key_block": 64, "sink_tokens": 64, "dense_layers": 1, "dense_timestep": 900.0}
SEMANTIC_OPTIONS = {"top_p": 0.9, "min_density": 0.1, "query_clusters": 32, "key_clusters": 64, "kmeans_iters": 1}


@dataclass
class CallState:
    """What the transformer's pre-hook saw of the current call: its token grid and each row's largest timestep."""

    grid: tuple[int, int, int] | None = None
    max_timestep: torch.Tensor | None = None
    warned: set = field(default_factory=set)
    hook: object = None  # the handle of the pre-hook that fills this state


def install_self_attention(transformer, make) -> list:
    """Put `make(layer, state)` on every self-attention, each remembering the processor it replaced (`original`)
    and keeping its attention backend and parallel config, plus the pre-hook that records each call in `state`."""
    state = CallState()
    processors = []
    for i, block in enumerate(transformer.blocks):
        old, new = block.attn1.processor, make(i, state)
        new._attention_backend, new._parallel_config = old._attention_backend, old._parallel_config
        new.original = old
        block.attn1.set_processor(new)
        processors.append(new)
    state.hook = transformer.register_forward_pre_hook(_record_call(state, transformer), with_kwargs=True)
    return processors


def restore_self_attention(transformer, kind: type) -> None:
    """Undo `install_self_attention` for processors of class `kind`: the replaced processors back, the pre-hook gone."""
    for block in transformer.blocks:
        processor = block.attn1.processor
        if isinstance(processor, kind):
            processor.state.hook.remove()  # removing a removed hook is a no-op
            block.attn1.set_processor(processor.original)


def _record_call(state: CallState, transformer):
    def hook(module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        if hidden is not None:
            p_t, p_h, p_w = transformer.config.patch_size
            state.grid = (hidden.shape[2] // p_t, hidden.shape[3] // p_h, hidden.shape[4] // p_w)
        if timestep is not None:
            timestep = torch.as_tensor(timestep).float()
            state.max_timestep = timestep.amax(-1) if timestep.ndim == 2 else timestep.reshape(-1)

    return hook


def self_attention_qkv(attn, hidden_states: torch.Tensor, rotary_emb=None):
    """Queries, keys and values (B, N, H, d) of a Wan self-attention, normalised and rotated (`t2v.compat.wan_qkv`)."""
    return wan_qkv(attn, hidden_states, None, rotary_emb)


class SparseWanAttnProcessor(WanAttnProcessor):
    r"""
    Wan self-attention with reordered block-sparse attention (see the module docstring).

    Args:
        layer (`int`): the index of the transformer block, for `dense_layers` and the plan.
        state (`CallState`): shared with the transformer's pre-hook.
        density (`float`): the largest share of key blocks a query tile attends, in (0, 1].
        mode (`str`): "semantic" or "paro".
        plan (`AttentionPlan`, *optional*): required for "paro".
        options: `COMMON_OPTIONS` and, for "semantic", `SEMANTIC_OPTIONS`.
    """

    def __init__(self, layer: int, state: CallState, density: float, mode: str, plan: AttentionPlan | None = None, **options):
        super().__init__()
        self.layer, self.state, self.density, self.mode, self.plan = layer, state, density, mode, plan
        self.options = options
        self.original = None  # the processor this one replaced
        self.last_density = None  # the share of key blocks the last sparse call attended, for benchmarks
        self._centroids = {}
        self._paro_cache = {}

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        if encoder_hidden_states is not None:
            raise ValueError("Sparse attention is for self-attention only; it was called with a context.")
        query, key, value = self_attention_qkv(attn, hidden_states, rotary_emb)
        out = self._attend(query, key, value, attention_mask).flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))

    def _dense(self, query, key, value, attention_mask=None):
        return dispatch_attention_fn(
            query, key, value, attn_mask=attention_mask, backend=self._attention_backend, parallel_config=self._parallel_config
        )

    def _attend(self, query, key, value, attention_mask):
        self.last_density = None
        if not self._sparse_now(query.shape[1], attention_mask):
            return self._dense(query, key, value, attention_mask)
        rows = torch.ones(query.shape[0], dtype=torch.bool, device=query.device)
        t = self.state.max_timestep
        if t is not None and t.numel() in (1, query.shape[0]):
            rows = (t.to(query.device) < self.options["dense_timestep"]).expand(query.shape[0])
        if not rows.any():
            return self._dense(query, key, value)
        if rows.all():
            return self._sparse(query, key, value)
        out = torch.empty_like(query)
        out[~rows] = self._dense(query[~rows], key[~rows], value[~rows])
        out[rows] = self._sparse(query[rows], key[rows], value[rows])
        return out

    def _sparse_now(self, length: int, attention_mask) -> bool:
        o = self.options
        if self.density >= 1.0 or self.layer < o["dense_layers"] or attention_mask is not None or self._parallel_config is not None:
            return False
        if not fits(length, self.density, o["query_tile"], o["key_block"]):
            return False
        if self.mode == "paro" and self.state.grid != self.plan.grid:
            if self.state.grid not in self.state.warned:
                self.state.warned.add(self.state.grid)
                logger.warning(f"The attention plan is for the token grid {self.plan.grid}, not {self.state.grid}; dense there.")
            return False
        return True

    def _sparse(self, query, key, value):
        """(B, N, H, d) -> (B, N, H, d) through reorder, block selection, block-sparse kernel and restore."""
        o = self.options
        batch, length, heads, dim = query.shape
        padded = math.ceil(length / o["query_tile"]) * o["query_tile"]
        if self.mode == "semantic":
            with torch.no_grad():  # the reordering and the block choice are discrete: no gradient
                q_order = self._cluster(query.transpose(1, 2), "q", o["query_clusters"])
                k_order = self._cluster(key.transpose(1, 2), "k", o["key_clusters"])
        else:
            q_order = k_order = self._paro_order(query.device)
        q_order, k_order = pad_order(q_order, padded), pad_order(k_order, padded)  # padding repeats a token
        buffer = _workspace(query, padded)
        q, k, v = (permute(x, order, out=buffer(name)) for x, order, name in ((query, q_order, "q"), (key, k_order, "k"), (value, k_order, "v")))
        if self.mode == "semantic":
            with torch.no_grad():
                blocks, counts = top_p_blocks(q, k, length, o["query_tile"], o["key_block"], self.density, o["top_p"], o["min_density"])
        else:
            blocks = self._paro_blocks(query.device).expand(batch, -1, -1, -1)
            counts = [blocks.shape[-1]] * blocks.shape[2]
        out = buffer("out")
        out = sparse_attention(q, k, v, blocks, o["query_tile"], o["key_block"], num_keys=length, counts=counts, out=None if out is None else out.view(batch, heads, padded, dim))
        self.last_density = sum(counts) / (len(counts) * math.ceil(length / o["key_block"]))
        return unpermute(out, q_order, length, out=buffer("restored", rows=batch * length * heads + 1))

    def _cluster(self, x: torch.Tensor, name: str, clusters: int) -> torch.Tensor:
        clusters = min(clusters, x.shape[2])
        previous = self._centroids.get(name)
        warm = previous is not None and previous.shape == (*x.shape[:2], clusters, x.shape[3])
        start = previous.to(x.device) if warm else initial_centroids(x, clusters)
        iters = self.options["kmeans_iters"] * (1 if warm else 3)
        labels, self._centroids[name] = kmeans(x, start, iters)
        return cluster_order(labels, clusters, self.options["sink_tokens"])

    def _paro_order(self, device) -> torch.Tensor:
        if "order" not in self._paro_cache:
            orders = [axis_order(self.plan.grid, "".join(AXIS_ORDERS[i]), self.plan.sink_tokens) for i in self.plan.orders[self.layer].tolist()]
            self._paro_cache["order"] = torch.stack(orders)
        return self._paro_cache["order"].to(device)

    def _paro_blocks(self, device) -> torch.Tensor:
        if "blocks" not in self._paro_cache:
            self._paro_cache["blocks"] = self.plan.kv_blocks(self.layer, self.density)
        return self._paro_cache["blocks"].to(device)


_BUFFERS: dict = {}


def _workspace(like: torch.Tensor, padded: int):
    """Reusable (B·H·padded, d) buffers for one sparse call on CPU, shared by all layers (they run one at a time;
    not for transformers run from several threads at once). `disable_sparse_attention` frees them.

    On CPU a fresh tensor of 100 MB costs more in page faults than the copy into it, and glibc hands
    tensors that large straight back to the system, so every call would pay again. When gradients flow, or
    on CUDA (whose caching allocator already reuses memory), there are none: `get` returns None.
    """
    batch, _, heads, dim = like.shape

    def get(name: str, rows: int | None = None) -> torch.Tensor | None:
        shape = (rows or batch * heads * padded, dim)
        if (torch.is_grad_enabled() and like.requires_grad) or like.is_cuda:
            return None
        buf = _BUFFERS.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = _BUFFERS[name] = like.new_empty(shape)
        return buf

    return get


def _check(density, mode, options: dict) -> dict:
    if not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"density must be a share of key blocks in (0, 1], got {density!r}.")
    if mode not in MODES:
        raise ValueError(f"Unknown sparse attention mode {mode!r}; choose one of {', '.join(MODES)}.")
    allowed = {**COMMON_OPTIONS, **(SEMANTIC_OPTIONS if mode == "semantic" else {})}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown option {unknown[0]!r} for {mode} attention; it takes {', '.join(sorted(allowed))}.")
    merged = {**allowed, **options}
    if merged["query_tile"] % merged["key_block"] or merged["key_block"] <= 0:
        raise ValueError(f"query_tile ({merged['query_tile']}) must be a positive multiple of key_block ({merged['key_block']}).")
    return merged


def enable_sparse_attention(transformer, density: float = 0.25, mode: str = "semantic", plan=None, **options):
    """Make every self-attention of a Wan-family transformer sparse (see the module docstring).

    Args:
        transformer: a `diffusers.WanTransformer3DModel` (t2v's denoiser or planner, or a stock Wan2.1).
        density: the largest share of key blocks any query tile attends; 1.0 is exactly dense attention.
        mode: "semantic" (no calibration) or "paro" (needs `plan`).
        plan: for "paro", an `AttentionPlan` or the path of one (a folder means its attention_plan.safetensors).
        options: query_tile, key_block, sink_tokens, dense_layers, dense_timestep; for "semantic" also
            top_p, min_density, query_clusters, key_clusters, kmeans_iters (defaults in `COMMON_OPTIONS`
            and `SEMANTIC_OPTIONS`). A plan brings its own query_tile, key_block and sink_tokens.
    """
    options = _check(density, mode, options)
    if mode == "paro":
        if plan is None:
            raise ValueError("paro attention needs a calibrated plan; make one with `t2v calibrate-attention`.")
        if not isinstance(plan, AttentionPlan):
            plan = AttentionPlan.load(Path(plan) / PLAN_NAME if Path(plan).is_dir() else plan)
        plan.check(transformer)
        options.update(query_tile=plan.query_tile, key_block=plan.key_block, sink_tokens=plan.sink_tokens)
    elif plan is not None:
        raise ValueError("Only paro attention takes a plan.")
    disable_sparse_attention(transformer)
    install_self_attention(transformer, lambda i, state: SparseWanAttnProcessor(i, state, float(density), mode, plan, **options))
    return transformer


def disable_sparse_attention(transformer):
    """Put back the self-attention processors `enable_sparse_attention` replaced; nothing happens if none were."""
    restore_self_attention(transformer, SparseWanAttnProcessor)
    _BUFFERS.clear()
    return transformer
