"""FIFO diagonal denoising: a video of any length from a model trained on short windows, in constant memory.

FIFO-Diffusion (Kim et al., 2024) keeps a queue of S latent frames at rising noise levels, one per
step of an S-step schedule. Each iteration denoises the queue in windows of f frames, every frame by
one step from its own noise level; the front frame leaves clean and fresh noise joins the back. A
frame therefore meets every noise level exactly once, in order, while the frames around it change,
and memory holds S frames whatever the length of the video.

Here, in the frame-indexed form used by this module: at iteration t, latent frame a sits at step
`t - a` (0 = pure noise, S = clean); it joins at t = a and leaves clean after t = a + S - 1.

- Latent partitioning (FIFO-Diffusion): the queue is cut into n = ceil(S / f) windows, so one
  iteration costs n model calls and each output frame costs n calls.
- Lookahead denoising (FIFO-Diffusion): windows overlap by f // 2 frames and write only their back
  ceil(f / 2) frames, so every frame is denoised with cleaner frames ahead of it; 2n calls per frame
  when f is even. Windows near the front reach past it into the frames that already left the queue
  (clean, shown at timestep 0), so no padding frames are ever made up.
- Start: the first window (f frames) is denoised normally and its whole trajectory kept; those
  frames enter the queue at their diagonal noise levels from that trajectory and stay fixed context
  until they leave. Windows with nothing left to compute (only first-window frames, or frames
  before the start or after the end of the video) are skipped: TokensGen's adaptive start, and the
  same at the tail. A video no longer than one window is exactly ordinary sampling.
- Several processes: the windows of one iteration read only the states from before it and write
  disjoint frames, so they are spread round-robin over `torch.distributed` ranks and the written
  frames summed across ranks (each frame is written by one rank; the others add zeros).
"""

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.distributed as dist

from .schedulers import PerFrameFlowMatch

# predict(latents (N, C, F, H, W), timesteps (N, F), frame_index (W, F)) -> velocity (N, C, F, H, W), where
# N = W windows x the batch, window-major; frame_index holds the absolute latent frame of every window frame.
Predict = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Window:
    """One model call of an iteration: frames [start, end) are read, frames [write_start, write_end) written."""

    start: int
    end: int
    write_start: int
    write_end: int


class FIFOSchedule:
    r"""
    Which frames every FIFO iteration reads and writes; no tensors, so its invariants are easy to test.

    Args:
        num_frames (`int`): L, latent frames of the whole video.
        window (`int`): f, latent frames the model sees at once (the frames of one training clip).
        num_steps (`int`): S, steps of the schedule and length of the queue.
        lookahead (`bool`): overlapping windows that write only their back part.
    """

    def __init__(self, num_frames: int, window: int, num_steps: int, lookahead: bool = False):
        if min(num_frames, window, num_steps) < 1:
            raise ValueError("num_frames, window and num_steps must all be at least 1.")
        self.num_frames, self.window, self.num_steps, self.lookahead = num_frames, window, num_steps, lookahead
        self.first = min(window, num_frames)  # frames of the normally denoised first window
        self.stride = (window + 1) // 2 if lookahead else window  # frames written per window

    @property
    def iterations(self) -> range:
        """Values of t: from the first frame after the first window joining to the last frame leaving."""
        if self.num_frames <= self.first:
            return range(0)
        return range(self.first, self.num_frames + self.num_steps - 1)

    @property
    def calls_per_frame(self) -> int:
        """Model calls per iteration once the queue is full: ceil(S / written frames per window)."""
        return -(-self.num_steps // self.stride)

    def level(self, t: int, frame: int) -> int:
        """Step index of `frame` at iteration t (S once it is clean)."""
        return min(max(t - frame, 0), self.num_steps)

    def windows(self, t: int) -> list[Window]:
        """The windows that run at iteration t, back (noisiest) first."""
        front = t - self.num_steps + 1  # the frame at the front of the queue, about to take its last step
        out = []
        for write_end in range(t + 1, front, -self.stride):
            write_start = max(write_end - self.stride, front)
            start, end = max(write_end - self.window, 0), min(write_end, self.num_frames)
            todo_start, todo_end = max(write_start, self.first), end
            if todo_start < todo_end:  # something in the written part still needs denoising
                out.append(Window(start, end, todo_start, todo_end))
        return out


def denoise_window(predict: Predict, noise: torch.Tensor, sampler: PerFrameFlowMatch, frame_index: torch.Tensor,
                   trajectory: bool = False, on_step: Callable | None = None):
    """Ordinary sampling of one window: all frames of `noise` (B, C, F, H, W) step together through the schedule.

    Returns the clean latents, or with `trajectory` the list of all S + 1 states (noise first, clean last).
    """
    x, states = noise, [noise]
    for i in range(sampler.num_steps):
        index = torch.full((x.shape[2],), i, device=x.device, dtype=torch.long)
        timesteps = sampler.timesteps_at(index).expand(x.shape[0], -1)
        x = sampler.step(predict(x, timesteps, frame_index[None]), x, index)
        if on_step is not None:
            x = on_step(i, timesteps[0, 0], x)
        if trajectory:
            states.append(x)
    return states if trajectory else x


class FIFOSampler:
    r"""
    Runs the FIFO queue and yields clean latent frames, in order, as they leave it.

    Args:
        predict: the model call (see `Predict`); classifier-free guidance and conditioning live in it.
        sampler (`PerFrameFlowMatch`): the per-frame flow-matching schedule (S steps).
        window (`int`): latent frames per model call.
        lookahead (`bool`): lookahead denoising (about twice the calls, smoother motion).
        max_windows (`int`, *optional*): at most this many windows in one model call (all of an iteration's otherwise);
            fewer windows per call hold less memory at once and give the same frames.
    """

    def __init__(self, predict: Predict, sampler: PerFrameFlowMatch, window: int, lookahead: bool = False,
                 max_windows: int | None = None):
        if max_windows is not None and max_windows < 1:
            raise ValueError(f"max_windows must be at least 1, got {max_windows}.")
        self.predict, self.sampler, self.window, self.lookahead = predict, sampler, window, lookahead
        self.max_windows = max_windows
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world_size = dist.get_world_size() if distributed else 1

    def __call__(self, noise: Callable[[int], torch.Tensor], num_frames: int, on_step: Callable | None = None) -> Iterator[torch.Tensor]:
        """Yield the L clean latent frames (B, C, 1, H, W) in order; `noise(a)` gives frame a's starting noise (B, C, H, W).

        `on_step(step, timestep, latents) -> latents` sees the first window after each of its steps and then
        the frames in the queue after each iteration (timestep: the newest frame's).
        """
        S = self.sampler.num_steps
        schedule = FIFOSchedule(num_frames, self.window, S, self.lookahead)
        first = schedule.first
        frame_index = torch.arange(first)
        start = torch.stack([noise(a) for a in range(first)], dim=2)
        states = denoise_window(self.predict, start, self.sampler, frame_index, trajectory=bool(schedule.iterations), on_step=on_step)
        if not schedule.iterations:
            yield from states.split(1, dim=2)
            return
        trajectory = torch.stack(states)  # (S + 1, B, C, first, H, W): the first frames at every level
        yield from trajectory[S].split(1, dim=2)

        latents: dict[int, torch.Tensor] = {}  # frames past the first window, in the queue or just left it

        def frame(t, a):
            return trajectory[schedule.level(t, a), :, :, a] if a < first else latents[a]

        for t in schedule.iterations:
            if t < num_frames:
                latents[t] = noise(t)
            windows = schedule.windows(t)
            written = self._run(windows[self.rank :: self.world_size], t, schedule, frame)
            if self.world_size > 1:
                written = self._share(written, windows, t, frame)
            latents.update(written)

            if on_step is not None:
                queue = list(range(max(t - S + 1, first), min(t + 1, num_frames)))
                newest = self.sampler.timesteps_at(torch.tensor(schedule.level(t, queue[-1])))
                new = on_step(S + t - first, newest, torch.stack([latents[a] for a in queue], dim=2))
                latents.update(zip(queue, new.unbind(2)))

            done = t - S + 1
            if done >= first:
                yield latents[done].unsqueeze(2)
            for a in [a for a in latents if a <= done - self.window]:  # keep only what a window can still read
                del latents[a]

    def _run(self, windows: list[Window], t: int, schedule: FIFOSchedule, frame) -> dict[int, torch.Tensor]:
        """Denoise these windows by one step each, batched by length (at most `max_windows` a call); returns the frames
        they write."""
        written = {}
        by_length: dict[int, list[Window]] = {}
        for w in windows:
            by_length.setdefault(w.end - w.start, []).append(w)
        cap = self.max_windows or len(windows)
        for group in (same[i : i + cap] for same in by_length.values() for i in range(0, len(same), cap)):
            x = torch.cat([torch.stack([frame(t, a) for a in range(w.start, w.end)], dim=2) for w in group])
            batch = x.shape[0] // len(group)
            levels = torch.tensor([[schedule.level(t, a) for a in range(w.start, w.end)] for w in group], device=x.device)
            frame_index = torch.tensor([list(range(w.start, w.end)) for w in group])
            timesteps = self.sampler.timesteps_at(levels).repeat_interleave(batch, dim=0)
            velocity = self.predict(x, timesteps, frame_index)
            # every frame is stepped, but only the written ones (all at levels below S) are kept
            step_levels = levels.clamp(max=self.sampler.num_steps - 1).repeat_interleave(batch, dim=0)
            stepped = self.sampler.step(velocity, x, step_levels)
            for i, w in enumerate(group):
                part = stepped[i * batch : (i + 1) * batch]
                for a in range(w.write_start, w.write_end):
                    written[a] = part[:, :, a - w.start].clone()  # not a view: the batch tensor can go
        return written

    def _share(self, written: dict[int, torch.Tensor], windows: list[Window], t: int, frame) -> dict[int, torch.Tensor]:
        """All ranks end the iteration with every written frame: a sum in which each frame comes from one rank."""
        frames = [a for w in windows for a in range(w.write_start, w.write_end)]
        if not frames:
            return {}
        reference = frame(t, frames[0])
        buffer = torch.stack([written.get(a, torch.zeros_like(reference)) for a in frames])
        dist.all_reduce(buffer)
        return dict(zip(frames, buffer.unbind(0)))
