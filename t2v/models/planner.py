"""Planner T2To: token diffusion over the condensed tokens of every clip of a video at once.

TokensGen's first stage generates the whole video's condensed tokens in one denoising pass, so a
minute stays one story. The planner is diffusers' `WanTransformer3DModel` with patch size (1, 1, 1)
over the *token grid*: each clip's K = t·h·w tokens keep their coarse (t, h, w) layout and clips
are stacked along time, giving a (codec_dim, clips·t, h, w) "video" that the DiT's 3D RoPE
positions naturally. Any number of clips fits, up to `rope_max_seq_len / t`. Text enters through
cross-attention as in Wan. This module holds the layout between tokens and that grid.
"""

import torch
from diffusers import WanTransformer3DModel


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Per-clip tokens (B, clips, K, C) -> planner grid (B, C, clips·t, h, w)."""
    batch, clips, num_tokens, channels = tokens.shape
    t, h, w = grid
    if num_tokens != t * h * w:
        raise ValueError(f"Expected {t * h * w} tokens per clip for grid {tuple(grid)}, got {num_tokens}.")
    x = tokens.reshape(batch, clips * t, h, w, channels)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def grid_to_tokens(x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Planner grid (B, C, clips·t, h, w) -> per-clip tokens (B, clips, K, C)."""
    batch, channels, frames, h, w = x.shape
    t = grid[0]
    if frames % t or (h, w) != tuple(grid[1:]):
        raise ValueError(f"A planner grid for token grid {tuple(grid)} must be (B, C, clips*{t}, {grid[1]}, {grid[2]}), got {tuple(x.shape)}.")
    return x.permute(0, 2, 3, 4, 1).reshape(batch, frames // t, t * h * w, channels)


def check_planner(planner: WanTransformer3DModel, codec_dim: int, grid: tuple[int, int, int]) -> None:
    """Raise a clear error when a planner's configuration does not fit the codec and the token grid."""
    cfg = planner.config
    if tuple(cfg.patch_size) != (1, 1, 1):
        raise ValueError(f"The planner must use patch_size (1, 1, 1) over the token grid, got {tuple(cfg.patch_size)}.")
    if cfg.in_channels != codec_dim or cfg.out_channels != codec_dim:
        raise ValueError(
            f"The planner reads and writes {codec_dim} codec channels, but is configured for "
            f"{cfg.in_channels} in and {cfg.out_channels} out."
        )
    if max(grid[1:]) > cfg.rope_max_seq_len:
        raise ValueError(f"The token grid {tuple(grid)} is larger than the planner's rope_max_seq_len.")
