"""Token codec: PCA to a few channels plus mean/std normalisation, the space the planner works in.

TokensGen reduces the condensed tokens with PCA (to 16 channels at its scale) and normalises them,
so that the token-diffusion planner sees a compact, unit-variance signal. `fit` computes the
projection from tokens the video tokenizer produced on a data set; `encode` and `decode` move
between the tokenizer's space (token_dim) and the planner's (codec_dim).
"""

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class TokenCodec(ModelMixin, ConfigMixin):
    r"""
    A fitted linear map between condensed tokens (..., token_dim) and planner channels (..., codec_dim).

    Args:
        token_dim (`int`): channels of the video tokenizer's tokens.
        codec_dim (`int`): channels kept by the PCA (the planner's `in_channels`).
        fitted (`bool`): whether `fit` has set the projection; an unfitted codec keeps the first
            `codec_dim` channels unchanged.
    """

    @register_to_config
    def __init__(self, token_dim: int = 512, codec_dim: int = 16, fitted: bool = False):
        super().__init__()
        if not 0 < codec_dim <= token_dim:
            raise ValueError(f"codec_dim must be between 1 and token_dim ({token_dim}), got {codec_dim}.")
        self.register_buffer("mean", torch.zeros(token_dim))
        self.register_buffer("components", torch.eye(codec_dim, token_dim))
        self.register_buffer("std", torch.ones(codec_dim))

    @torch.no_grad()
    def fit(self, tokens: torch.Tensor) -> "TokenCodec":
        """Fit the PCA and the normalisation on tokens shaped (..., token_dim); returns self."""
        flat = tokens.reshape(-1, tokens.shape[-1]).double()
        if flat.shape[-1] != self.config.token_dim:
            raise ValueError(f"TokenCodec.fit expects tokens with {self.config.token_dim} channels, got {flat.shape[-1]}.")
        if flat.shape[0] < 2:
            raise ValueError("TokenCodec.fit needs at least two tokens.")
        mean = flat.mean(0)
        centered = flat - mean
        eigvals, eigvecs = torch.linalg.eigh(centered.T @ centered / (flat.shape[0] - 1))
        components = eigvecs.flip(-1)[:, : self.config.codec_dim].T  # (codec_dim, token_dim), largest first
        std = (centered @ components.T).std(0).clamp_min(1e-6)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.components.copy_(components.to(self.components.dtype))
        self.std.copy_(std.to(self.std.dtype))
        self.register_to_config(fitted=True)
        return self

    def _fp32(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.mean.float(), self.components.float(), self.std.float()

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (..., token_dim) -> normalised PCA coefficients (..., codec_dim), computed in float32 whatever the
        codec's dtype (a model loaded in bfloat16), returned in the tokens' dtype."""
        mean, components, std = self._fp32()
        return (((tokens.float() - mean) @ components.T) / std).to(tokens.dtype)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Normalised PCA coefficients (..., codec_dim) -> tokens (..., token_dim), in float32 inside, as `encode`."""
        mean, components, std = self._fp32()
        return ((codes.float() * std) @ components + mean).to(codes.dtype)
