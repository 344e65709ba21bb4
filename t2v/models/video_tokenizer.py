"""Video tokenizer: a Perceiver resampler that condenses one clip's VAE latents into K tokens.

TokensGen (Ouyang et al., 2025) describes a video by a few "condensed tokens" per clip: learned
queries laid on a coarse t×h×w grid read the clip's latents through cross-attention and return
K = t·h·w tokens. It has no decoder of its own: it is trained jointly with the To2V denoiser through
the diffusion loss, so the denoiser is its de-tokenizer. The attention blocks are diffusers'
Flamingo-style resampler blocks (the IP-Adapter Plus resampler); what is added here is the 3D
geometry: sinusoidal positions of every latent voxel and of every query, both measured in units of
the coarse grid, so that the same tokenizer reads clips of any resolution.

A video's first latent frame is unlike the others: the causal VAE encodes pixel frame 0 alone into
it, every later latent frame from four. A denoiser that renders windows with relative positions
cannot tell the video's first window from any other, and draws an ordinary latent frame there, which
the VAE decodes pale. With `has_start_tokens` the tokenizer holds K learned tokens that latent frame 0 of
a video reads in place of its clip's tokens (`with_start_tokens`); the planner never plans them.
"""

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import IPAdapterPlusImageProjectionBlock, get_1d_sincos_pos_embed_from_grid
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def grid_positions(frames: int, height: int, width: int, grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Centres of a frames×height×width lattice in coarse-grid units, shape (frames·height·width, 3)."""
    axes = [
        (torch.arange(n, device=device, dtype=torch.float32) + 0.5) * (g / n)
        for n, g in zip((frames, height, width), grid)
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def sincos_3d(positions: torch.Tensor, dim_per_axis: int) -> torch.Tensor:
    """Sinusoidal features of (N, 3) positions: one 1D sin/cos embedding per axis, concatenated."""
    feats = [
        get_1d_sincos_pos_embed_from_grid(dim_per_axis, positions[:, i], dtype=torch.float32) for i in range(3)
    ]
    return torch.cat(feats, dim=-1)


class VideoTokenizer(ModelMixin, ConfigMixin):
    r"""
    Perceiver resampler from a clip's latents (B, C, F, H, W) to condensed tokens (B, K, token_dim).

    Args:
        in_channels (`int`): latent channels of the VAE (`z_dim`).
        grid (`tuple[int, int, int]`): the coarse (t, h, w) grid of queries; K = t·h·w tokens per clip.
        hidden_dim (`int`): width of the resampler.
        token_dim (`int`): channels of each output token (the denoiser's `image_dim`).
        num_layers (`int`): resampler blocks.
        num_heads (`int`): attention heads per block.
        pos_dim_per_axis (`int`): sinusoidal features per axis for the 3D positions (even).
        has_start_tokens (`bool`): hold K learned tokens for a video's first latent frame (`add_start_tokens`).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        grid: tuple[int, int, int] = (4, 8, 12),
        hidden_dim: int = 512,
        token_dim: int = 512,
        num_layers: int = 4,
        num_heads: int = 8,
        pos_dim_per_axis: int = 32,
        has_start_tokens: bool = False,
    ):
        super().__init__()
        if hidden_dim % num_heads != 0:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}).")
        if pos_dim_per_axis % 2 != 0:
            raise ValueError(f"pos_dim_per_axis must be even, got {pos_dim_per_axis}.")
        num_queries = grid[0] * grid[1] * grid[2]
        self.queries = nn.Parameter(torch.randn(1, num_queries, hidden_dim) * hidden_dim**-0.5)
        self.proj_in = nn.Linear(in_channels, hidden_dim)
        self.pos_proj = nn.Linear(3 * pos_dim_per_axis, hidden_dim)
        self.blocks = nn.ModuleList(
            [
                IPAdapterPlusImageProjectionBlock(hidden_dim, hidden_dim // num_heads, num_heads, ffn_ratio=4)
                for _ in range(num_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(hidden_dim)
        self.proj_out = nn.Linear(hidden_dim, token_dim)
        self.register_parameter("start_tokens", None)
        if has_start_tokens:
            self.add_start_tokens()

    def add_start_tokens(self) -> None:
        """Give the tokenizer start tokens (random, at unit scale) if it has none; `has_start_tokens` makes them at
        construction, and training the denoiser with them teaches both what they mean."""
        if self.start_tokens is None:
            self.start_tokens = nn.Parameter(torch.randn(self.num_tokens, self.config.token_dim, device=self.device, dtype=self.dtype))
            self.register_to_config(has_start_tokens=True)

    def with_start_tokens(self, tokens: torch.Tensor, frame_clip: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Put the start tokens beside the clips' tokens for the frames that start a video.

        `tokens` (B, N, K, D) are the tokens of N clips, `frame_clip` the clip each latent frame reads (any shape) and
        `first` (its shape) True where a frame is a video's latent frame 0. Returns tokens (B, N + 1, K, D), the start
        tokens first, and each frame's clip in that list. Without start tokens both come back unchanged.
        """
        if self.start_tokens is None:
            return tokens, frame_clip
        start = self.start_tokens.to(tokens.dtype).expand(tokens.shape[0], 1, *tokens.shape[2:])
        return torch.cat([start, tokens], dim=1), torch.where(first, 0, frame_clip + 1)

    @property
    def num_tokens(self) -> int:
        t, h, w = self.config.grid
        return t * h * w

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Condense latents (B, C, F, H, W) of one clip into tokens (B, K, token_dim)."""
        if latents.ndim != 5 or latents.shape[1] != self.config.in_channels:
            raise ValueError(
                f"VideoTokenizer expects latents shaped (batch, {self.config.in_channels}, frames, height, width), "
                f"got {tuple(latents.shape)}."
            )
        batch, _, frames, height, width = latents.shape
        grid = tuple(self.config.grid)
        dim = self.config.pos_dim_per_axis
        key_pos = sincos_3d(grid_positions(frames, height, width, grid, latents.device), dim)
        query_pos = sincos_3d(grid_positions(*grid, grid, latents.device), dim)

        x = self.proj_in(latents.flatten(2).transpose(1, 2))
        x = x + self.pos_proj(key_pos.to(x.dtype))
        tokens = (self.queries + self.pos_proj(query_pos.to(x.dtype))).expand(batch, -1, -1)
        for block in self.blocks:
            tokens = block(x, tokens, tokens)
        return self.proj_out(self.norm_out(tokens))
