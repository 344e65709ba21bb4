"""Pieces every training stage uses: the base model, the data, latents, the flow-matching loss."""

import functools
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.training_utils import compute_density_for_timestep_sampling

from .. import T2VPipeline, default_model_path
from ..checks import stored_dtype
from ..schedulers import PerFrameFlowMatch
from ..video_io import write_video
from .args import CHECKPOINTING_PARAMETERS


def load_base(model: str | None) -> T2VPipeline:
    """The pipeline a stage starts from (the packaged model by default), quiet and on the CPU, every component in
    the dtype its weights are stored in (diffusers would load them all in float32), so that the stage exports a
    bfloat16 base in bfloat16."""
    from diffusers.utils import logging as dlogging
    from transformers.utils import logging as tlogging

    dlogging.disable_progress_bar()
    tlogging.disable_progress_bar()
    path = model or default_model_path()
    dtypes = stored_dtypes(path)
    pipe = T2VPipeline.from_pretrained(path, **({"dtype": dtypes} if dtypes else {}))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stored_dtypes(folder) -> dict[str, torch.dtype]:
    """{component: the floating dtype most of its stored weights have} of a local t2v model folder ({} for other folders)."""
    folder = Path(folder)
    try:
        if json.loads((folder / "model_index.json").read_text()).get("_class_name") != T2VPipeline.__name__:
            return {}
    except (OSError, ValueError, AttributeError):
        return {}
    found = {component.name: stored_dtype(component) for component in sorted(p for p in folder.iterdir() if p.is_dir())}
    return {name: dtype for name, dtype in found.items() if dtype is not None}


def set_training_size(pipe: T2VPipeline, args, videos=None) -> None:
    """Check the size a stage trains at (`args.height`, `args.width`, `args.clip_frames`; None: the model's) and
    record it in `pipe.config`, which the stage's data, validation and exported model read. With a latent cache
    (`videos`, a `LatentVideos`) the frame size is the cache's. Raises ValueError in one sentence for a size the VAE
    and the denoiser cannot take, or a cache this model's VAE did not make."""
    height, width, clip_frames = args.height, args.width, getattr(args, "clip_frames", None)
    spatial, temporal = pipe.vae.config.scale_factor_spatial, pipe.vae.config.scale_factor_temporal
    if videos is not None and len(videos):
        channels, _, h, w = videos[0][0].shape
        if channels != pipe.vae.config.z_dim:
            raise ValueError(f"The latent cache holds {channels}-channel latents but this model's VAE makes {pipe.vae.config.z_dim}: "
                             "make the cache with this model (cache_latents.py --model).")
        if (height or h * spatial, width or w * spatial) != (h * spatial, w * spatial):
            raise ValueError(f"The latent cache holds {w * spatial}x{h * spatial} videos, not {width}x{height}: leave out --height "
                             "and --width, or make a cache at that size (cache_latents.py --height --width).")
        height, width = h * spatial, w * spatial
    patch = pipe.transformer.config.patch_size
    for name, value, multiple in (("height", height, spatial * patch[1]), ("width", width, spatial * patch[2])):
        if value is not None and (value <= 0 or value % multiple):
            raise ValueError(f"--{name} must be a positive multiple of {multiple} (the VAE's {spatial}x downscaling times the "
                             f"denoiser's {multiple // spatial}x patch), got {value}.")
    if clip_frames is not None and (clip_frames <= 1 or (clip_frames - 1) % temporal):
        raise ValueError(f"--clip_frames must be 1 + a positive multiple of {temporal} (the VAE's {temporal}x in time; e.g. "
                         f"{1 + 4 * temporal} or 81), got {clip_frames}.")
    size = {"height": height, "width": width, "clip_frames": clip_frames}
    pipe.register_to_config(**{name: value for name, value in size.items() if value is not None})


def use_gradient_checkpointing(module: torch.nn.Module, choice: bool | None, threshold: int = CHECKPOINTING_PARAMETERS) -> bool:
    """Turn on gradient checkpointing in `module` if `choice` says so or, when it is None, if the module has more than
    `threshold` parameters (a real base, not the Shapes world's small models); returns whether it is on."""
    on = choice if choice is not None else sum(p.numel() for p in module.parameters()) > threshold
    if on:
        module.enable_gradient_checkpointing()
    return on


def video_dataset(args, pipe: T2VPipeline, **mode):
    """The stage's VideoFolderDataset at the model's size and frame rate; `mode` picks clips or long samples."""
    from ..data.video_folder import VideoFolderDataset

    if not args.data_dir:
        raise ValueError("--data_dir is required: a folder of videos with metadata.jsonl or metadata.csv.")
    return VideoFolderDataset(
        args.data_dir,
        fps=args.fps or pipe.config.fps,
        height=pipe.config.height,
        width=pipe.config.width,
        seed=args.seed,
        **mode,
    )


def freeze(*modules: torch.nn.Module) -> None:
    for module in modules:
        module.requires_grad_(False).eval()


def training_scheduler(pipe: T2VPipeline) -> FlowMatchEulerDiscreteScheduler:
    """A fresh copy of the pipeline's schedule: all num_train_timesteps sigmas, shifted as at inference."""
    return FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)


def flow_matching_loss(predict, x0: torch.Tensor, scheduler, generator: torch.Generator, mask: torch.Tensor | None = None,
                       sigma: torch.Tensor | None = None):
    """Rectified-flow loss: x_σ = (1−σ)·x0 + σ·ε, target ε − x0; σ drawn logit-normally (SD3, Wan).

    `predict(x_σ, timesteps)` returns the velocity; `mask`, broadcastable to x0, selects what counts.
    `sigma` (B, F) gives every latent frame its own noise level instead (see `fifo_sigmas`); the
    timesteps are then (B, F) too, and frames at σ = 0 (clean context) do not count.
    """
    batch = x0.shape[0]
    if sigma is None:
        u = compute_density_for_timestep_sampling("logit_normal", batch, logit_mean=0.0, logit_std=1.0, device=x0.device, generator=generator)
        index = (u * scheduler.config.num_train_timesteps).long().clamp(max=len(scheduler.timesteps) - 1).cpu()
        timesteps = scheduler.timesteps[index].to(x0.device)
        sigma = scheduler.sigmas[index].to(device=x0.device, dtype=x0.dtype).view(-1, *[1] * (x0.ndim - 1))
    else:
        timesteps = sigma * scheduler.config.num_train_timesteps
        noisy_frames = (sigma > 0).view(batch, 1, -1, 1, 1)
        mask = noisy_frames if mask is None else mask * noisy_frames
        sigma = sigma.to(x0.dtype).view(batch, 1, -1, 1, 1)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    noisy = (1.0 - sigma) * x0 + sigma * noise
    error = (predict(noisy, timesteps).float() - (noise - x0).float()) ** 2
    if mask is None:
        return error.mean()
    mask = mask.to(error.dtype).expand_as(error)
    return (error * mask).sum() / mask.sum().clamp_min(1.0)


def foreground_weights(latents: torch.Tensor, weight: float, threshold: float = 3.5) -> torch.Tensor:
    """Per-position loss weights (B, 1, F, h, w): 1 + `weight` where a latent departs from its frame's background.

    On a mostly empty frame the flow-matching loss is mostly background, and the few latents that hold
    the object (and its corners, which tell a square from a circle) weigh little. The background is
    the per-channel median over the frame's positions (the object covers a small part of it); a
    position whose channel vector lies more than `threshold` from it (Euclidean, in normalised latent
    units) counts as object. A foreground-weighted reconstruction loss, as used for small objects
    in detection and segmentation, applied to the denoiser's velocity error.
    """
    background = latents.flatten(3).median(dim=3).values[..., None, None]
    foreground = (latents - background).float().norm(dim=1, keepdim=True) > threshold
    return 1.0 + weight * foreground.float()


def fifo_sigmas(scheduler, batch: int, frames: int, generator: torch.Generator, steps: tuple[int, int] = (10, 50),
                diagonal_share: float = 0.5, first_window: torch.Tensor | None = None) -> torch.Tensor:
    """Noise levels (B, F) of the windows the model meets at inference (FIFO-Diffusion, Kim et al., 2024).

    A `diagonal_share` of the rows sit on FIFO's diagonal: with S steps (drawn from `steps`) frame j
    of a window is at step k + (F − 1 − j), k uniform in [−(F − 1), S − 1], clamped to [0, S], so
    earlier frames are cleaner, one step apart, and frames past the queue's front are clean context
    (σ = 0). The other rows have one level for all frames, drawn logit-normally: the first window,
    ordinary sampling and independent clips. Rows where `first_window` (B,) is True (windows at a
    video's start) always have one level, as the pipeline's first window does. Sigmas follow the
    scheduler's shift, as at inference.
    """
    device = generator.device
    u = compute_density_for_timestep_sampling("logit_normal", batch, logit_mean=0.0, logit_std=1.0, device=device, generator=generator)
    num_steps = torch.randint(steps[0], steps[1] + 1, (batch, 1), generator=generator, device=device).cpu()
    k = (torch.rand(batch, 1, generator=generator, device=device).cpu() * (num_steps + frames - 1)).floor() - (frames - 1)
    index = torch.minimum((k + torch.arange(frames - 1, -1, -1)).clamp(min=0), num_steps.float()).long()
    config = _config_key(scheduler)  # once per batch, not once per row
    diagonal = torch.stack([_inference_sigmas(config, int(n))[i] for n, i in zip(num_steps[:, 0], index)])
    on_diagonal = torch.rand(batch, 1, generator=generator, device=device).cpu() < diagonal_share
    if first_window is not None:
        on_diagonal &= ~first_window.cpu().view(batch, 1)
    shift = scheduler.config.shift
    u = u.cpu().view(batch, 1).expand(batch, frames)
    level = shift * u / (1 + (shift - 1) * u)
    return torch.where(on_diagonal, diagonal, level)


def _config_key(scheduler) -> str:
    """The scheduler's config as a hashable key of the sigma cache below."""
    return json.dumps(dict(scheduler.config), sort_keys=True)


@functools.lru_cache(maxsize=256)
def _inference_sigmas(config: str, num_steps: int) -> torch.Tensor:
    """The S + 1 sigmas of an S-step schedule, as `PerFrameFlowMatch` steps through them (last: 0, clean).

    Cached and shared between callers: never modify the result in place."""
    # building a scheduler costs ~0.3 ms and `fifo_sigmas` needs one per row: about 4% of a To2V step on a CPU, uncached
    return PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler.from_config(json.loads(config)), num_steps).sigmas


def trained_on(args, stage: str, previous: str) -> str:
    """One line for `t2v info`: what this stage trained on, after what the base model had."""
    source = args.data_dir or getattr(args, "latents_dir", None)
    data = Path(source).name if source else "?"
    line = f"{stage} on {data} ({args.max_train_steps} steps, seed {args.seed})"
    if previous and "random" not in previous and previous != "unknown":
        return f"{previous}; {line}"
    return line


def write_validation(pipe: T2VPipeline, prompt: str, path: Path, fps: float) -> Path:
    """Generate a one-clip validation video at the training size with the weights as they are now. The stage's
    module holds every component this calls, so they are where the stage runs (`placement.check_placement`)."""
    frames = pipe(prompt, num_frames=pipe.config.clip_frames, num_inference_steps=10, planner_steps=10,
                  generator=torch.Generator().manual_seed(0)).frames[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(np.asarray(frames), path.with_suffix(".mp4"), fps)
