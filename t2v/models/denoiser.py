"""Denoiser To2V: a Wan DiT that renders a clip from the text and the clip's condensed tokens.

The To2V stage of TokensGen. It is diffusers' `WanTransformer3DModel` as it stands, so Wan2.1
weights in diffusers format load as its base: text enters through cross-attention; the clip's
condensed tokens enter through Wan's decoupled image branch (`image_dim` = token channels,
`added_kv_proj_dim` = the model width), whose keys and values are added beside the text's. Wan's
attention processor takes the last 512 context tokens as text, so prompts are padded to 512.

Frames of one window may sit at different noise levels (FIFO-Diffusion): diffusers' Wan accepts a
timestep per token, shaped (B, seq_len), and `expand_frame_timesteps` turns one timestep per latent
frame into that form.
"""

import torch
from diffusers import WanTransformer3DModel

TEXT_CONTEXT_LENGTH = 512  # fixed by diffusers' WanAttnProcessor when the image branch is present


def expand_frame_timesteps(timesteps: torch.Tensor, latent_shape: tuple[int, ...], patch_size) -> torch.Tensor:
    """Timesteps per latent frame (B, F) -> per token (B, F·h'·w') for latents shaped (B, C, F, H, W)."""
    _, _, frames, height, width = latent_shape
    p_t, p_h, p_w = patch_size
    if timesteps.ndim != 2 or timesteps.shape[1] != frames // p_t:
        raise ValueError(f"Expected one timestep per latent frame, shape (batch, {frames // p_t}), got {tuple(timesteps.shape)}.")
    tokens_per_frame = (height // p_h) * (width // p_w)
    return timesteps.repeat_interleave(tokens_per_frame, dim=1)


def check_denoiser(transformer: WanTransformer3DModel, latent_channels: int, token_dim: int) -> None:
    """Raise a clear error when a denoiser's configuration does not fit the VAE and the video tokenizer."""
    cfg = transformer.config
    if cfg.in_channels != latent_channels or cfg.out_channels != latent_channels:
        raise ValueError(
            f"The denoiser must read and write the VAE's {latent_channels} latent channels, but is configured for "
            f"{cfg.in_channels} in and {cfg.out_channels} out."
        )
    if cfg.image_dim != token_dim:
        raise ValueError(
            f"The denoiser's image branch must take the video tokenizer's {token_dim}-channel tokens "
            f"(image_dim), but image_dim is {cfg.image_dim}."
        )
