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
        timesteps = scheduler.timesteps.to(device=device, dtype=torch.float32)  # (S,)
        self.timesteps = timesteps
        # index S is a clean frame (sigma 0), shown to the model as timestep 0 when it is context
        self._timesteps_with_clean = torch.cat([timesteps, timesteps.new_zeros(1)])

    def _check(self, step_index: torch.Tensor, last: int) -> None:
        if step_index.numel() and (step_index.min() < 0 or step_index.max() > last):
            raise ValueError(f"Step indices must lie in [0, {last}], got {step_index.tolist()}.")

    def timesteps_at(self, step_index: torch.Tensor) -> torch.Tensor:
        """Model timesteps for frames at these step indices (any shape); index S (clean) gives timestep 0."""
        self._check(step_index, self.num_steps)
        return self._timesteps_with_clean[step_index]

    def step(self, model_output: torch.Tensor, sample: torch.Tensor, step_index: torch.Tensor) -> torch.Tensor:
        """One Euler step for latents (B, C, F, H, W) whose frame f is at step_index[f].

        `step_index` is (F,), shared by the batch, or (B, F), one row per sample (FIFO windows batched).
        """
        self._check(step_index, self.num_steps - 1)
        frames = sample.shape[2]
        if step_index.shape not in ((frames,), (sample.shape[0], frames)):
            raise ValueError(f"Expected one step index per latent frame ({frames}), got shape {tuple(step_index.shape)}.")
        dt = self.sigmas[step_index + 1] - self.sigmas[step_index]
        dt = dt.view(1, 1, -1, 1, 1) if step_index.ndim == 1 else dt.view(sample.shape[0], 1, frames, 1, 1)
        prev = sample.to(torch.float32) + dt * model_output.to(torch.float32)
        return prev.to(model_output.dtype)
