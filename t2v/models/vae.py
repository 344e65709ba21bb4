"""The 3D causal VAE (diffusers' AutoencoderKLWan): latent normalisation and streaming decoding.

Wan's VAE is causal in time: latent frame 0 decodes to one frame and every later latent frame to
`scale_factor_temporal` (4) frames, each depending only on the frames before it through a cache of
its causal convolutions' last inputs. `StreamingDecoder` keeps that cache between calls, so a video
of any length is decoded one latent frame at a time as FIFO denoising releases it, in constant
memory, with the same result as decoding the whole latent video at once (diffusers' `_decode` runs
the same per-frame loop, but over a tensor it must hold whole).
"""

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


def encode_latents(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """Video (B, 3, F, H, W) in [-1, 1] -> normalised latents (the posterior's mode, Wan's statistics)."""
    return normalize_latents(vae, vae.encode(video.to(vae.dtype)).latent_dist.mode())


def denormalize_latents(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_latents`, in the VAE's dtype."""
    latents = latents.to(vae.dtype)
    mean, std = _stats(vae, latents)
    return latents * std + mean


class StreamingDecoder:
    r"""
    Decode normalised latents of one video a few frames at a time, in order, with the causal cache kept.

    Args:
        vae (`AutoencoderKLWan`): the VAE; its spatial tiling is not used here (it needs the whole video).
    """

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = vae
        self._cache = [None] * decoder_cache_size(vae)
        self._first = True

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Next latent frames (B, C, F, H, W) -> their video frames (B, 3, F', 8H, 8W) in [-1, 1]."""
        return self.frames(self.vae.post_quant_conv(denormalize_latents(self.vae, latents))).clamp(-1.0, 1.0)

    def frames(self, features: torch.Tensor) -> torch.Tensor:
        """`post_quant_conv` features -> video frames, unclamped, with gradients if enabled."""
        out = []
        for i in range(features.shape[2]):
            out.append(decode_causal_frame(self.vae, features[:, :, i : i + 1], self._cache, self._first))
            self._first = False
        video = torch.cat(out, dim=2)
        if self.vae.config.patch_size is not None:
            video = unpatchify(video, patch_size=self.vae.config.patch_size)
        return video


def decode_unclamped(vae: AutoencoderKLWan, raw_latents: torch.Tensor) -> torch.Tensor:
    """The VAE's own (unnormalised) latents -> video, without `vae.decode`'s clamp to [-1, 1].

    For training: the clamp gives no gradient to pixels pushed past the range, so a decoder that
    overshoots the black background is never pulled back.
    """
    return StreamingDecoder(vae).frames(vae.post_quant_conv(raw_latents))
