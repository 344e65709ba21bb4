"""Per-frame flow-matching steps: every latent frame may sit at its own point of the schedule.

FIFO-Diffusion (Kim et al., 2024) denoises a queue whose frames are at rising noise levels, so one
model call must step each frame from its own sigma to its own next sigma. The sigmas and timesteps
are diffusers' `FlowMatchEulerDiscreteScheduler`'s (shift, dynamic shifting and all); this class only
indexes them per frame and takes the same Euler step the scheduler takes
(x ← x + (σ_next − σ)·v). With every frame at the same index it is exactly `scheduler.step`.
"""

import torch
from diffusers import FlowMatchEulerDiscreteScheduler


class PerFrameFlowMatch:
    r"""
    Sigmas of a flow-matching schedule, indexed per frame.

    Args:
        scheduler (`FlowMatchEulerDiscreteScheduler`): supplies the schedule; `set_timesteps` is called on it.
        num_inference_steps (`int`): S, the number of steps every frame takes from noise to clean.
        device: where the sigma tables live.
    """

    def __init__(self, scheduler: FlowMatchEulerDiscreteScheduler, num_inference_steps: int, device=None):
        if not isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
            raise ValueError(f"Per-frame stepping needs a FlowMatchEulerDiscreteScheduler, got {type(scheduler).__name__}.")
        scheduler.set_timesteps(num_inference_steps, device=device)
        self.num_steps = num_inference_steps
        self.sigmas = scheduler.sigmas.to(device=device, dtype=torch.float32)  # (S + 1,), ends at 0
        self.timesteps = scheduler.timesteps.to(device=device, dtype=torch.float32)  # (S,)

    def _check(self, step_index: torch.Tensor) -> None:
        if step_index.min() < 0 or step_index.max() >= self.num_steps:
            raise ValueError(f"Step indices must lie in [0, {self.num_steps}), got {step_index.tolist()}.")

    def timesteps_at(self, step_index: torch.Tensor) -> torch.Tensor:
        """Model timesteps for frames at these step indices (any shape of long indices)."""
        self._check(step_index)
        return self.timesteps[step_index]

    def sigmas_at(self, step_index: torch.Tensor) -> torch.Tensor:
        """Noise levels of frames at these step indices; index S is the clean end (sigma 0)."""
        return self.sigmas[step_index]

    def step(self, model_output: torch.Tensor, sample: torch.Tensor, step_index: torch.Tensor) -> torch.Tensor:
        """One Euler step for latents (B, C, F, H, W) whose frame f is at step_index[f] (shape (F,))."""
        self._check(step_index)
        if step_index.shape != (sample.shape[2],):
            raise ValueError(f"Expected one step index per latent frame ({sample.shape[2]}), got shape {tuple(step_index.shape)}.")
        dt = (self.sigmas[step_index + 1] - self.sigmas[step_index]).view(1, 1, -1, 1, 1)
        prev = sample.to(torch.float32) + dt * model_output.to(torch.float32)
        return prev.to(model_output.dtype)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, step_index: torch.Tensor) -> torch.Tensor:
        """Flow-matching interpolation x_σ = (1 − σ)·x0 + σ·ε, one sigma per latent frame."""
        sigma = self.sigmas[step_index].view(1, 1, -1, 1, 1)
        return (1.0 - sigma) * clean + sigma * noise
