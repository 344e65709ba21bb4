"""Output dataclasses of `T2VPipeline`: the whole video, or a stream of its frames."""

from dataclasses import dataclass, field
from typing import Iterator

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
            (batch, channels, latent frames, height/8, width/8) for "latent". Tensors are on the CPU: each frame leaves
            the GPU as it is made.
        tokens (`torch.Tensor` or `None`):
            The planned condensed tokens the denoiser followed, (batch, clips, K, token_dim), on the CPU; None for a
            model without a planner (a plain Wan).
    """

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]
    tokens: torch.Tensor | None


@dataclass
class T2VStream:
    r"""
    A video that is made while it is read: iterate to get its frames in order, a few at a time.

    Args:
        tokens (`torch.Tensor` or `None`): the planned condensed tokens, (batch, clips, K, token_dim), on the CPU
            (None without a planner).
        num_frames (`int`): frames the iteration will yield in all.
        fps (`float`): frames per second.
        chunks: an iterator of (batch, n, height, width, 3) float arrays in [0, 1]; each latent frame that
            leaves the FIFO queue becomes one chunk (1 frame for the first, 4 for the others).
    """

    tokens: torch.Tensor | None
    num_frames: int
    fps: float
    chunks: Iterator[np.ndarray] = field(repr=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.chunks
