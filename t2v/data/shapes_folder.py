"""Write a Shapes-world video folder (mp4s + metadata.jsonl) that the trainers read like any user's folder."""

import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..validation import positive_number
from ..video_io import write_video
from .shapes import FPS, render_video, sample_caption


def write_shapes_folder(out_dir, num_videos: int, seconds: float, seed: int = 0, exclude_held_out: bool = True, max_changes: int = 2) -> Path:
    """Write `num_videos` Shapes videos of `seconds` each to out_dir, with metadata.jsonl; returns out_dir."""
    num_videos = positive_number("num_videos", num_videos, integer=True)
    num_frames = max(1, round(positive_number("seconds", seconds) * FPS))
    if isinstance(max_changes, bool) or not isinstance(max_changes, int) or max_changes < 0:
        raise ValueError(f"max_changes must be a whole number of at least 0, got {max_changes!r}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in tqdm(range(num_videos), desc="shapes", unit="video"):
        video_seed = seed * 1_000_003 + i
        caption = sample_caption(np.random.default_rng([video_seed, 1]), max_changes, exclude_held_out)
        name = f"{i:05d}.mp4"
        write_video(render_video(caption, num_frames, video_seed), out / name, FPS)
        lines.append(json.dumps({"file_name": name, "text": caption, "seed": video_seed, "num_frames": num_frames}))
    partial = out / ".metadata.jsonl.partial"
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, out / "metadata.jsonl")
    return out
