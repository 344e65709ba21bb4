"""Latents cached once per video, and the samples the later stages draw from them.

The VAE encodes every training video a single time, whole and continuously, into one causal latent
sequence: the same latents the pipeline makes at inference, where clip c of the plan covers latent
frames [c·f, (c+1)·f) (f = 5 for 17-frame clips). The later stages then never run the VAE again:

- `LatentWindows` (tokenizer + To2V): f consecutive latent frames at any offset, so a window may
  straddle two clips, as FIFO's windows do, with the latents of the two clips its frames belong to.
- `LatentPlans` (codec, planner): all whole clips of a video, so the planner learns the tokens of
  exactly the chunks it plans at inference, with the caption of the whole video.

The cache is one safetensors file (`latents.safetensors`): tensor `"i"` is video i's normalised
latents (C, L, h, w); its metadata holds the captions and the frame counts as JSON.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, safe_open, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..data.video_folder import VideoFolderDataset, read_whole_uint8, resample_indices, to_unit
from ..models.denoiser import storyboard_part
from ..models.vae import encode_latents

LATENTS_FILE = "latents.safetensors"


@torch.no_grad()
def cache_latents(pipe, videos: VideoFolderDataset, out_dir, batch_size: int = 8, show_progress: bool = True) -> Path:
    """Encode every video of `videos` whole with `pipe.vae`; write OUT_DIR/latents.safetensors (atomically).

    Videos are encoded `batch_size` at a time, in order of length, each padded at its end to the
    longest of its batch: the encoder is causal in time, so a video's latents do not see the padding,
    and its extra latent frames are cut off. The Shapes recipe's 240 videos take 171 s on a 2-core CPU
    this way, 978 s one at a time. A file that holds fewer frames than its header says (a cut file) is
    cached as far as it goes (`read_whole_uint8`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    indices = [resample_indices(video.frames, video.fps, videos.fps) for video in videos.videos]
    order = sorted(range(len(indices)), key=lambda i: len(indices[i]))
    tensors, stride = {}, pipe.vae.config.scale_factor_temporal
    with tqdm(total=len(order), desc="latents", unit="video", disable=not show_progress) as progress:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            decoded = []
            for i in batch:
                indices[i], frames = read_whole_uint8(videos.videos[i], videos.fps, videos.height, videos.width)
                decoded.append(to_unit(frames))
            longest = max(video.shape[1] for video in decoded)
            pixels = torch.stack([F.pad(video, (0, 0, 0, 0, 0, longest - video.shape[1])) for video in decoded])
            latents = encode_latents(pipe.vae, pixels.to(pipe.vae.device)).float().cpu()
            for i, z in zip(batch, latents):
                length = 1 + (len(indices[i]) - 1) // stride  # the latent frames of this many frames alone
                tensors[str(i)] = z[:, :length].contiguous()
            progress.update(len(batch))
    texts = [video.text for video in videos.videos]
    storyboards = [video.storyboard for video in videos.videos]
    frames = [len(i) for i in indices]
    partial = out_dir / f".{LATENTS_FILE}.partial"
    save_file(tensors, partial, metadata={"texts": json.dumps(texts), "storyboards": json.dumps(storyboards),
                                          "num_frames": json.dumps(frames), "fps": str(videos.fps)})
    os.replace(partial, out_dir / LATENTS_FILE)
    return out_dir / LATENTS_FILE


class LatentVideos:
    """The cached latents of a folder: `videos[i]` is (latents (C, L, h, w), caption)."""

    def __init__(self, root):
        path = Path(root) / LATENTS_FILE if Path(root).is_dir() else Path(root)
        if not path.is_file():
            raise ValueError(f"No latent cache at {path}: make one with training/cache_latents.py.")
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
        if "texts" not in metadata:
            raise ValueError(f"{path} is not a t2v latent cache (its metadata has no captions).")
        self.texts = json.loads(metadata["texts"])
        self.storyboards = json.loads(metadata.get("storyboards", "null")) or [None] * len(self.texts)
        self.num_frames = json.loads(metadata["num_frames"])
        tensors = load_file(path)
        self.latents = [tensors[str(i)] for i in range(len(self.texts))]

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        return self.latents[index], self.texts[index]


class LatentWindows(Dataset):
    """Windows of `window` latent frames for To2V training, at a random offset drawn from the seed.

    Each item: {"latents": (C, window, h, w), "clips": (2, C, window, h, w) the whole clips of the
    window's first and last frame, "frame_clip": LongTensor (window,), 0 or 1 per frame, "text",
    "first_window": whether the window starts at the video's first frame}.
    "text" is the video's caption or, for a video with a storyboard and in a share `part_prompts` of
    the draws (default none), the prompt of the part that holds the window (`storyboard_part`, the
    rule the pipeline follows at inference). Keep some draws on the whole caption when the text
    encoder trains: the planner reads it frozen, and must still tell captions with changes apart.
    A share `start_windows` of the draws (default none) starts at the video's first latent frame. That
    frame holds one video frame alone (the causal VAE encodes the first frame by itself, every later
    latent frame four), and a video's first window, which the pipeline denoises at one noise level
    before FIFO begins, is the only one that holds it; a uniform offset starts there about once in a
    few dozen draws. To2V gives such windows one noise level, as the pipeline does (`fifo_sigmas`).
    Videos shorter than two clips are left out.
    """

    def __init__(self, videos: LatentVideos, window: int, part_prompts: float = 0.0, start_windows: float = 0.0):
        self.videos, self.window, self.part_prompts, self.start_windows = videos, window, part_prompts, start_windows
        self.usable = [i for i, (z, _) in enumerate(videos) if z.shape[1] >= 2 * window]
        if not self.usable:
            raise ValueError(f"No cached video holds two clips ({2 * window} latent frames).")

    def __len__(self) -> int:
        return len(self.usable)

    def get(self, index: int, seed: int) -> dict:
        latents, text = self.videos[self.usable[index]]
        f = self.window
        whole = latents.shape[1] // f * f  # frames inside whole clips
        rng = np.random.default_rng(seed)
        start = int(rng.integers(0, whole - f + 1))
        if self.start_windows and rng.random() < self.start_windows:
            start = 0
        first, last = start // f, (start + f - 1) // f
        clips = torch.stack([latents[:, first * f : (first + 1) * f], latents[:, last * f : (last + 1) * f]])
        frame_clip = (torch.arange(start, start + f) // f != first).long()
        storyboard = self.videos.storyboards[self.usable[index]]
        if storyboard and rng.random() < self.part_prompts:
            part = storyboard_part(torch.arange(start, start + f)[None], len(storyboard), self.videos.num_frames[self.usable[index]])
            text = storyboard[int(part)]
        return {"latents": latents[:, start : start + f], "clips": clips, "frame_clip": frame_clip, "text": text,
                "first_window": start == 0}


class LatentPlans(Dataset):
    """Whole videos for the planner: all whole clips, up to `max_clips`, with the video's caption.

    Each item: {"latents": (C, K·f, h, w), "num_clips": K, "text"}; batch with `collate_plans`.
    A video's clips beyond `max_clips` are cut off (its caption's timing then no longer fits, so
    choose max_clips to cover the longest training video).
    """

    def __init__(self, videos: LatentVideos, window: int, max_clips: int):
        self.videos, self.window, self.max_clips = videos, window, max_clips
        self.usable = [i for i, (z, _) in enumerate(videos) if z.shape[1] >= window]
        if not self.usable:
            raise ValueError(f"No cached video holds one clip ({window} latent frames).")

    def __len__(self) -> int:
        return len(self.usable)

    def get(self, index: int, seed: int | None = None) -> dict:
        latents, text = self.videos[self.usable[index]]
        clips = min(latents.shape[1] // self.window, self.max_clips)
        return {"latents": latents[:, : clips * self.window], "num_clips": clips, "text": text}


def collate_plans(batch: list[dict]) -> dict:
    """Pad to the batch's largest clip count; "clip_mask" (B, K) is True where a clip is real."""
    counts = torch.tensor([item["num_clips"] for item in batch])
    longest = max(item["latents"].shape[1] for item in batch)
    latents = torch.zeros(len(batch), *batch[0]["latents"].shape[:1], longest, *batch[0]["latents"].shape[2:])
    for b, item in enumerate(batch):
        latents[b, :, : item["latents"].shape[1]] = item["latents"]
    return {
        "latents": latents,
        "text": [item["text"] for item in batch],
        "num_clips": counts,
        "clip_mask": torch.arange(int(counts.max()))[None] < counts[:, None],
    }
