"""The private diffusers internals t2v relies on, in one place.

t2v builds on diffusers' Wan transformer and Wan VAE, and a few of the things it needs are not public API:
module-level helpers with a leading underscore, a private attribute, and code that diffusers keeps inside a
function. A diffusers release may move or change any of them without notice, so every other t2v module
imports them from here, and `tests/test_compat.py` checks each one against the installed diffusers (name,
call signature, and the result diffusers itself computes), failing with the name of what moved.

Known to work with diffusers `DIFFUSERS_VERSIONS` (pyproject.toml bounds the dependency the same way). To
support a new release: run `pytest tests/test_compat.py`, adapt the entries it names, then widen both bounds.

Entries (and why t2v needs them):

- `get_qkv_projections`, `get_added_kv_projections`: diffusers' `_get_qkv_projections` and
  `_get_added_kv_projections` in `diffusers.models.transformers.transformer_wan`, the projections of a
  `WanAttention` as `WanAttnProcessor` makes them, fused (`attn.fuse_projections()`) or not. t2v's own
  processors (sparse self-attention, per-frame token cross-attention) must project exactly as Wan does, so
  that stock Wan2.1 weights and fused models work with them unchanged.
- `apply_wan_rotary`: a copy of `apply_rotary_emb`, which diffusers defines inside `WanAttnProcessor.__call__`
  (so it cannot be imported). Sparse self-attention needs the rotated queries and keys before reordering them.
- `wan_qkv`, `wan_added_kv`: the first half of `WanAttnProcessor.__call__` (projections, RMS norms, the split
  into heads, the rotary embedding; and the image branch's keys and values), built on the entries above. The
  one q/k/v path of every t2v attention processor.
- `decoder_cache_size`, `decode_causal_frame`: `AutoencoderKLWan._cached_conv_counts["decoder"]` (the
  number of causal convolutions whose last inputs the decoder caches) and the decoder's
  `decoder(x, feat_cache=..., feat_idx=[0], first_chunk=...)` call, as `AutoencoderKLWan._decode` runs them.
  `t2v.models.vae.StreamingDecoder` keeps that cache between calls to decode a video of any length in
  constant memory, which `vae.decode` (it clears the cache every call) cannot.
- `unpatchify`: `diffusers.models.autoencoders.autoencoder_kl_wan.unpatchify`, for VAEs with a `patch_size`
  (Wan 2.2's layout, t2v's default VAE), applied after the decoder as `AutoencoderKLWan._decode` does.

Also relied on, without an entry of its own: the `_attention_backend` and `_parallel_config` attributes of
attention processors, which diffusers' `set_attention_backend` and context parallelism set, so that t2v's
processors dispatch like the ones they replace (checked in tests/test_compat.py too).
"""

import importlib

import diffusers
import torch

DIFFUSERS_VERSIONS = ">=0.42,<0.43"  # the releases this module is known to match; the same bound as pyproject.toml

_WAN = "diffusers.models.transformers.transformer_wan"
_WAN_VAE = "diffusers.models.autoencoders.autoencoder_kl_wan"


def _private(module: str, name: str):
    """`module.name`, or an ImportError that says which internal is gone and which diffusers versions have it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"t2v needs `{name}` from `{module}`, which diffusers {diffusers.__version__} does not have; t2v is known to work "
            f"with diffusers{DIFFUSERS_VERSIONS} (see t2v/compat.py)."
        ) from error


get_qkv_projections = _private(_WAN, "_get_qkv_projections")  # (attn, hidden_states, encoder_hidden_states) -> q, k, v
get_added_kv_projections = _private(_WAN, "_get_added_kv_projections")  # (attn, encoder_hidden_states_img) -> k, v
unpatchify = _private(_WAN_VAE, "unpatchify")  # (x, patch_size) -> x


def apply_wan_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's rotary embedding on (B, N, H, d), as `apply_rotary_emb` inside diffusers' `WanAttnProcessor.__call__`."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


def wan_qkv(attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None, rotary_emb=None):
    """Queries, keys and values (B, N, H, d) of a `WanAttention`, normalised and (given `rotary_emb`) rotated, as
    `WanAttnProcessor` computes them; keys and values come from `encoder_hidden_states` when given (cross-attention)."""
    query, key, value = get_qkv_projections(attn, hidden_states, encoder_hidden_states)
    query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
    key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
    value = value.unflatten(2, (attn.heads, -1))
    if rotary_emb is not None:
        query, key = apply_wan_rotary(query, *rotary_emb), apply_wan_rotary(key, *rotary_emb)
    return query, key, value


def wan_added_kv(attn, image_states: torch.Tensor):
    """Keys and values (B, K, H, d) of a `WanAttention`'s image branch (`added_kv_proj_dim`), as `WanAttnProcessor`."""
    key, value = get_added_kv_projections(attn, image_states)
    return attn.norm_added_k(key).unflatten(2, (attn.heads, -1)), value.unflatten(2, (attn.heads, -1))


def decoder_cache_size(vae) -> int:
    """How many causal-convolution caches an `AutoencoderKLWan`'s decoder keeps (`vae._cached_conv_counts`)."""
    counts = getattr(vae, "_cached_conv_counts", None)
    if not isinstance(counts, dict) or "decoder" not in counts:
        raise RuntimeError(
            f"t2v needs `AutoencoderKLWan._cached_conv_counts['decoder']`, which diffusers {diffusers.__version__} does not "
            f"set; t2v is known to work with diffusers{DIFFUSERS_VERSIONS} (see t2v/compat.py)."
        )
    return counts["decoder"]


def decode_causal_frame(vae, features: torch.Tensor, cache: list, first_chunk: bool) -> torch.Tensor:
    """One latent frame of `post_quant_conv` features (B, C, 1, H, W) through the decoder, reading and updating
    `cache` (a list of `decoder_cache_size(vae)` entries, None at the start), as `AutoencoderKLWan._decode` does."""
    return vae.decoder(features, feat_cache=cache, feat_idx=[0], first_chunk=first_chunk)
