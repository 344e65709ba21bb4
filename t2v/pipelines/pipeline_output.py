"""Output dataclass of `T2VPipeline`."""

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class T2VPipelineOutput(BaseOutput):
    r"""
    Output of `T2VPipeline`.

    Args:
        frames (`np.ndarray`, `torch.Tensor` or `list[list[PIL.Image.Image]]`):
            The videos: (batch, frames, height, width, 3) floats in [0, 1] for "np"; (batch, frames, 3,
            height, width) for "pt"; a list of frame lists for "pil"; the denoised latents
            (batch, channels, latent frames, height/8, width/8) for "latent".
        tokens (`torch.Tensor`):
            The planned condensed tokens the denoiser followed, (batch, clips, K, token_dim), on the CPU.
    """

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]
    tokens: torch.Tensor
