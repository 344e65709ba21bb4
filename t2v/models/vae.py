"""The 3D causal VAE (diffusers' AutoencoderKLWan): latent normalisation and streaming decoding.

Wan's VAE is causal in time: latent frame 0 decodes to one frame and every later latent frame to
`scale_factor_temporal` (4) frames, each depending only on the frames before it through a cache of
its causal convolutions' last inputs. `StreamingDecoder` keeps that cache between calls, so a video
of any length is decoded one latent frame at a time as FIFO denoising releases it, in constant
memory, with the same result as decoding the whole latent video at once (diffusers' `_decode` runs
the same per-frame loop, but over a tensor it must hold whole).

On a CPU, PyTorch runs a 3D convolution of batch 1 on a small input with its own slow kernel instead of oneDNN's
(a size heuristic in ATen's `use_mkldnn`), and a video decoded or encoded one latent frame at a time is exactly
that case: `use_onednn_convolutions` sends the VAE's 3D convolutions to oneDNN in inference, which makes decoding
with a 4x VAE at 64x64 2.3 times as fast on two cores (benchmarks/vae_decode.py), equal to float32 rounding.
"""

from functools import partial

import torch
from diffusers import AutoencoderKLWan

from ..compat import decode_causal_frame, decoder_cache_size, unpatchify


def _stats(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(vae.config.latents_mean, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    return mean, std


def normalize_latents(vae: AutoencoderKLWan, raw: torch.Tensor) -> torch.Tensor:
    """The VAE's latents -> the unit-scale latents the denoiser works in (Wan's per-channel statistics)."""
    mean, std = _stats(vae, raw)
    return (raw - mean) / std


def _onednn_conv_forward(conv: torch.nn.Conv3d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled() and conv.padding_mode == "zeros":
        return torch.mkldnn_convolution(x.contiguous(), weight, bias, conv.padding, conv.stride, conv.dilation, conv.groups)
    return torch.nn.Conv3d._conv_forward(conv, x, weight, bias)


def use_onednn_convolutions(vae: AutoencoderKLWan) -> AutoencoderKLWan:
    """Run the VAE's 3D convolutions with oneDNN on a CPU in float32 inference, whatever their input's size; elsewhere
    (GPU, other dtypes, training) as before. Idempotent; called by `encode_latents` and `StreamingDecoder`."""
    if torch.backends.mkldnn.is_available():
        for conv in vae.modules():
            if isinstance(conv, torch.nn.Conv3d) and "_conv_forward" not in vars(conv):
                conv._conv_forward = partial(_onednn_conv_forward, conv)
    return vae


def encode_latents(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """Video (B, 3, F, H, W) in [-1, 1] -> normalised latents (the posterior's mode, Wan's statistics)."""
    use_onednn_convolutions(vae)
    return normalize_latents(vae, vae.encode(video.to(vae.dtype)).latent_dist.mode())


def denormalize_latents(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_latents`, in the VAE's dtype."""
    latents = latents.to(vae.dtype)
    mean, std = _stats(vae, latents)
    return latents * std + mean


class StreamingDecoder:
    r"""
    Decode normalised latents of one video a few frames at a time, in order, with the causal cache kept.

    With `vae.enable_tiling()` each frame is decoded in overlapping spatial tiles, each with its own causal cache,
    and the tiles blended as diffusers' `AutoencoderKLWan.tiled_decode` blends them: the decoder's memory is a
    tile's, for sizes such as 720p on a small GPU.

    Args:
        vae (`AutoencoderKLWan`): the VAE.
    """

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = use_onednn_convolutions(vae)
        self._states: dict[tuple[int, int], list] = {}  # per tile (the whole frame: (0, 0)): [cache, first call]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Next latent frames (B, C, F, H, W) -> their video frames (B, 3, F', 8H, 8W) in [-1, 1]."""
        z = denormalize_latents(self.vae, latents)
        vae, ratio = self.vae, self.vae.spatial_compression_ratio
        tile_h, tile_w = vae.tile_sample_min_height // ratio, vae.tile_sample_min_width // ratio
        if not vae.use_tiling or (z.shape[3] <= tile_h and z.shape[4] <= tile_w):
            return self.frames(vae.post_quant_conv(z)).clamp(-1.0, 1.0)
        return self._tiled(z).clamp(-1.0, 1.0)

    def frames(self, features: torch.Tensor) -> torch.Tensor:
        """`post_quant_conv` features -> video frames, unclamped, with gradients if enabled."""
        return self._unpatchify(self._decoded(features, (0, 0)))

    def _decoded(self, features: torch.Tensor, tile: tuple[int, int]) -> torch.Tensor:
        """Features of one tile through the decoder a latent frame at a time, with that tile's cache."""
        state = self._states.setdefault(tile, [[None] * decoder_cache_size(self.vae), True])
        out = []
        for i in range(features.shape[2]):
            out.append(decode_causal_frame(self.vae, features[:, :, i : i + 1], state[0], state[1]))
            state[1] = False
        return torch.cat(out, dim=2)

    def _unpatchify(self, video: torch.Tensor) -> torch.Tensor:
        patch = self.vae.config.patch_size
        return video if patch is None else unpatchify(video, patch_size=patch)

    def _tiled(self, z: torch.Tensor) -> torch.Tensor:
        """diffusers' tiled decode, one call's frames at a time (the tile sizes and the blending are its)."""
        vae, ratio, patch = self.vae, self.vae.spatial_compression_ratio, self.vae.config.patch_size or 1
        tile_h, tile_w = vae.tile_sample_min_height // ratio, vae.tile_sample_min_width // ratio
        step_h, step_w = vae.tile_sample_stride_height // ratio, vae.tile_sample_stride_width // ratio
        keep_h, keep_w = vae.tile_sample_stride_height // patch, vae.tile_sample_stride_width // patch
        blend_h, blend_w = vae.tile_sample_min_height // patch - keep_h, vae.tile_sample_min_width // patch - keep_w
        rows = [[self._decoded(vae.post_quant_conv(z[:, :, :, i : i + tile_h, j : j + tile_w]), (i, j))
                 for j in range(0, z.shape[4], step_w)] for i in range(0, z.shape[3], step_h)]
        out_rows = []
        for i, row in enumerate(rows):
            out_row = []
            for j, tile in enumerate(row):
                if i > 0:
                    tile = vae.blend_v(rows[i - 1][j], tile, blend_h)
                if j > 0:
                    tile = vae.blend_h(row[j - 1], tile, blend_w)
                out_row.append(tile[:, :, :, :keep_h, :keep_w])
            out_rows.append(torch.cat(out_row, dim=-1))
        video = torch.cat(out_rows, dim=3)[:, :, :, : z.shape[3] * ratio // patch, : z.shape[4] * ratio // patch]
        return self._unpatchify(video)


def decode_unclamped(vae: AutoencoderKLWan, raw_latents: torch.Tensor) -> torch.Tensor:
    """The VAE's own (unnormalised) latents -> video, without `vae.decode`'s clamp to [-1, 1].

    For training: the clamp gives no gradient to pixels pushed past the range, so a decoder that
    overshoots the black background is never pulled back.
    """
    return StreamingDecoder(vae).frames(vae.post_quant_conv(raw_latents))
