"""t2v.compat against the installed diffusers: every private internal t2v relies on is still there, called the
same way, and computes what diffusers itself computes. A failure names the internal that moved or changed."""

import ast
import importlib
import inspect
import re
from pathlib import Path

import diffusers
import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from diffusers.models.transformers import transformer_wan
from diffusers.models.transformers.transformer_wan import WanAttention, WanAttnProcessor, WanRotaryPosEmbed

from t2v import compat

ROOT = Path(__file__).resolve().parents[1]
WAN, WAN_VAE = "diffusers.models.transformers.transformer_wan", "diffusers.models.autoencoders.autoencoder_kl_wan"
UPDATE = f"update t2v/compat.py for diffusers {diffusers.__version__} (known to work: diffusers{compat.DIFFUSERS_VERSIONS})"


def internal(module: str, path: str):
    """`module.path` (dotted attributes), or a test failure naming it."""
    try:
        found = importlib.import_module(module)
        for part in path.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        pytest.fail(f"diffusers {diffusers.__version__} has no `{path}` in `{module}`: {UPDATE}.")
    return found


def same(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    if ours.shape != theirs.shape or not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6):
        pytest.fail(f"{what} no longer matches diffusers {diffusers.__version__}: {UPDATE}.")


def test_the_known_versions_are_the_bound_in_pyproject():
    declared = re.findall(r'^\s*"(diffusers[^"]*)",?\s*$', (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    assert declared == [f"diffusers{compat.DIFFUSERS_VERSIONS}"], "pyproject.toml and t2v/compat.py must bound diffusers alike"


@pytest.mark.parametrize("module, path, parameters", [
    (WAN, "_get_qkv_projections", ["attn", "hidden_states", "encoder_hidden_states"]),
    (WAN, "_get_added_kv_projections", ["attn", "encoder_hidden_states_img"]),
    (WAN, "WanAttnProcessor.__call__", ["self", "attn", "hidden_states", "encoder_hidden_states", "attention_mask", "rotary_emb"]),
    (WAN_VAE, "unpatchify", ["x", "patch_size"]),
    (WAN_VAE, "WanDecoder3d.forward", ["self", "x", "feat_cache", "feat_idx", "first_chunk"]),
])
def test_private_internals_exist_with_their_call_signatures(module, path, parameters):
    found = list(inspect.signature(internal(module, path)).parameters)
    if found != parameters:
        pytest.fail(f"`{module}.{path}` now takes ({', '.join(found)}), not ({', '.join(parameters)}): {UPDATE}.")


def test_a_missing_internal_is_named_at_import():
    with pytest.raises(ImportError, match=r"t2v needs `_no_such_helper` from `diffusers.models.transformers.transformer_wan`"):
        compat._private(WAN, "_no_such_helper")


def test_only_compat_imports_private_diffusers_names():
    wrong = []
    for path in sorted((ROOT / "t2v").rglob("*.py")):
        if path.name == "compat.py" and path.parent.name == "t2v":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffusers"):
                wrong += [f"{path.relative_to(ROOT)} imports {a.name} from {node.module}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr == "_cached_conv_counts":
                wrong.append(f"{path.relative_to(ROOT)} reads {node.attr}")
    assert not wrong, "take these from t2v.compat:\n" + "\n".join(wrong)


def record_attention(monkeypatch) -> list:
    """Make diffusers' Wan module record the (query, key, value) of every attention its processor dispatches."""
    calls, dispatch = [], transformer_wan.dispatch_attention_fn

    def recorder(query, key, value, *args, **kwargs):
        calls.append((query, key, value))
        return dispatch(query, key, value, *args, **kwargs)

    monkeypatch.setattr(transformer_wan, "dispatch_attention_fn", recorder)
    return calls


def tiny_attention(fused: bool, cross: bool = False) -> WanAttention:
    torch.manual_seed(0)
    attn = WanAttention(dim=32, heads=2, dim_head=16, added_kv_proj_dim=32 if cross else None,
                        cross_attention_dim_head=16 if cross else None, processor=WanAttnProcessor()).eval()
    if fused:
        attn.fuse_projections()
    return attn


def tiny_rotary() -> tuple[torch.Tensor, torch.Tensor]:
    """Wan's (cos, sin) for a 2x2x2 token grid of 16-channel heads."""
    return WanRotaryPosEmbed(16, (1, 2, 2), 64)(torch.zeros(1, 4, 2, 4, 4))


@pytest.mark.parametrize("fused", [False, True])
@torch.no_grad()
def test_self_attention_qkv_is_what_wan_attn_processor_computes(monkeypatch, fused):
    attn, hidden = tiny_attention(fused), torch.randn(2, 8, 32, generator=torch.Generator().manual_seed(1))
    calls = record_attention(monkeypatch)
    attn(hidden)  # no rotary embedding: projections, norms and heads only
    attn(hidden, rotary_emb=tiny_rotary())
    if len(calls) != 2:
        pytest.fail(f"WanAttnProcessor no longer dispatches one attention per self-attention call: {UPDATE}.")
    for ours, theirs, name in zip(compat.wan_qkv(attn, hidden), calls[0], "qkv"):
        same(ours, theirs, f"{name} of `wan_qkv` (`_get_qkv_projections`{', fused' if fused else ''}, norms, heads)")
    for ours, theirs, name in zip(compat.wan_qkv(attn, hidden, rotary_emb=tiny_rotary()), calls[1], "qkv"):
        same(ours, theirs, f"{name} of `wan_qkv` with Wan's rotary embedding (`apply_wan_rotary`, a copy of WanAttnProcessor's)")


@pytest.mark.parametrize("fused", [False, True])
@torch.no_grad()
def test_cross_attention_and_image_branch_are_what_wan_attn_processor_computes(monkeypatch, fused):
    attn, g = tiny_attention(fused, cross=True), torch.Generator().manual_seed(2)
    hidden, image, text = torch.randn(2, 8, 32, generator=g), torch.randn(2, 4, 32, generator=g), torch.randn(2, 512, 32, generator=g)
    calls = record_attention(monkeypatch)
    attn(hidden, torch.cat([image, text], 1))  # Wan: the last 512 context tokens are text, the rest the image branch
    if len(calls) != 2:
        pytest.fail(f"WanAttnProcessor no longer dispatches an image-branch attention and a text attention: {UPDATE}.")
    (_, key_img, value_img), text_qkv = calls
    for ours, theirs, name in zip(compat.wan_qkv(attn, hidden, text), text_qkv, "qkv"):
        same(ours, theirs, f"{name} of cross-attention `wan_qkv` (`_get_qkv_projections`{', fused' if fused else ''})")
    for ours, theirs, name in zip(compat.wan_added_kv(attn, image), (key_img, value_img), "kv"):
        same(ours, theirs, f"{name} of `wan_added_kv` (`_get_added_kv_projections`{', fused' if fused else ''})")


def test_set_attention_backend_reaches_processors_through_their_attention_backend_attribute():
    from t2v.attention import disable_sparse_attention, enable_sparse_attention
    from t2v.models.denoiser import set_frame_token_attention

    for name in ("_attention_backend", "_parallel_config"):
        if not hasattr(WanAttnProcessor, name):
            pytest.fail(f"WanAttnProcessor has no `{name}`, which t2v's processors copy and dispatch with: {UPDATE}.")
    model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
                                  text_dim=32, freq_dim=32, ffn_dim=64, num_layers=1, image_dim=8, added_kv_proj_dim=32)
    set_frame_token_attention(model, tokens_per_frame=2)
    enable_sparse_attention(model, 0.5)
    model.set_attention_backend("native")  # the default backend: nothing global changes
    block = model.blocks[0]
    assert str(getattr(block.attn1.processor, "_attention_backend", None)) in ("native", "AttentionBackendName.NATIVE"), UPDATE
    assert str(getattr(block.attn2.processor, "_attention_backend", None)) in ("native", "AttentionBackendName.NATIVE"), UPDATE
    disable_sparse_attention(model)


@pytest.mark.parametrize("patch_size", [None, 2])
@torch.no_grad()
def test_decoder_cache_and_frame_by_frame_decoding_are_the_vae_decoders(patch_size):
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    torch.manual_seed(0)
    channels = 3 * (patch_size or 1) ** 2
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[True, True],
                           is_residual=patch_size is not None, patch_size=patch_size, in_channels=channels, out_channels=channels,
                           latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    convs = sum(isinstance(m, WanCausalConv3d) for m in vae.decoder.modules())
    if compat.decoder_cache_size(vae) != convs:
        pytest.fail(f"`AutoencoderKLWan._cached_conv_counts['decoder']` is {compat.decoder_cache_size(vae)}, but the decoder has "
                    f"{convs} causal convolutions: {UPDATE}.")
    z = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    features, cache = vae.post_quant_conv(z), [None] * compat.decoder_cache_size(vae)
    frames = [compat.decode_causal_frame(vae, features[:, :, i : i + 1], cache, first_chunk=i == 0) for i in range(3)]
    video = torch.cat(frames, 2)
    if patch_size is not None:
        video = compat.unpatchify(video, patch_size=patch_size)
    same(video.clamp(-1, 1), vae.decode(z).sample, "frame-by-frame decoding (`decode_causal_frame`, `unpatchify`)")


@pytest.mark.parametrize("patch_size", [None, 2])
@torch.no_grad()
def test_streaming_decoding_in_tiles_is_diffusers_tiled_decoding(patch_size):
    """`StreamingDecoder` with `vae.enable_tiling()`, fed one latent frame at a time, blends its tiles as diffusers'
    `tiled_decode` does over the whole video (and tiling changes the picture only at the seams)."""
    from t2v.models.vae import StreamingDecoder, normalize_latents

    torch.manual_seed(0)
    channels = 3 * (patch_size or 1) ** 2
    halvings = [False, True, True] if patch_size is None else [False, True]  # 8× in space either way, as configured
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2][: len(halvings) + 1], num_res_blocks=1, temperal_downsample=halvings,
                           is_residual=patch_size is not None, patch_size=patch_size, in_channels=channels, out_channels=channels,
                           latents_mean=[0.1] * 4, latents_std=[2.0] * 4).eval()
    ratio = vae.spatial_compression_ratio
    vae.enable_tiling(tile_sample_min_height=4 * ratio, tile_sample_min_width=4 * ratio,
                      tile_sample_stride_height=3 * ratio, tile_sample_stride_width=3 * ratio)
    raw = torch.randn(1, 4, 2, 6, 5, generator=torch.Generator().manual_seed(3))
    decoder = StreamingDecoder(vae)
    streamed = torch.cat([decoder.decode(frame) for frame in normalize_latents(vae, raw).split(1, dim=2)], dim=2)
    expected = vae.decode(raw).sample
    assert len(decoder._states) == 4  # 2 rows × 2 columns of tiles, each with its own cache
    assert streamed.shape == expected.shape and expected.shape[-2:] == (48, 40)
    if not torch.allclose(streamed, expected, atol=1e-5):  # the blend's float rounding differs by ~1e-6
        pytest.fail(f"tiled decoding (`tile_sample_*`, `blend_v`, `blend_h`) no longer matches diffusers {diffusers.__version__}: {UPDATE}.")
    vae.disable_tiling()
    assert not torch.allclose(streamed, vae.decode(raw).sample, atol=1e-3)
