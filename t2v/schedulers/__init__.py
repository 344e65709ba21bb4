"""Schedulers: diffusers' flow-matching sigmas, stepped per latent frame (for FIFO diagonal denoising)."""

from .per_frame import PerFrameFlowMatch

__all__ = ["PerFrameFlowMatch"]
