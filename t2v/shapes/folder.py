"""Write a Shapes-world video folder (mp4s + metadata.jsonl) that the trainers read like any user's folder.

The layout is Hugging Face's videofolder: `00000.mp4`, `00001.mp4`, ... and one metadata.jsonl line
per video, `{"file_name", "text", "seed", "num_frames"}` and, for a caption with changes, its
`"storyboard"` (`shapes.storyboard`: one prompt per part); `render_video(text, num_frames, seed)`
draws a video again and `trajectory(text, num_frames, seed)` gives its ground truth.
"""

import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..checks import positive_number
from ..video_io import write_video
from .world import FPS, auto_storyboard, render_video, sample_caption


def _whole_number(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a whole number of at least 0, got {value!r}.")
    return int(value)


def write_shapes_folder(out_dir, num_videos: int, seconds: float, seed: int = 0, exclude_held_out: bool = True, max_changes: int = 2,
                        max_seconds: float | None = None) -> Path:
    """Write `num_videos` Shapes videos of `seconds` each (8 fps) to out_dir, with metadata.jsonl; returns out_dir.

    With `max_seconds`, every video's length is drawn uniformly from [seconds, max_seconds] instead.

    Video i has seed `seed * 1_000_003 + i` and a caption with 0 to `max_changes` changes. If writing
    fails or is interrupted, the videos this call wrote are removed again (and out_dir, if it made it).
    """
    num_videos = positive_number("num_videos", num_videos, integer=True)
    shortest = max(1, round(positive_number("seconds", seconds) * FPS))
    longest = shortest if max_seconds is None else max(1, round(positive_number("max_seconds", max_seconds) * FPS))
    if longest < shortest:
        raise ValueError(f"max_seconds ({max_seconds}) must be at least seconds ({seconds}).")
    seed, max_changes = _whole_number("seed", seed), _whole_number("max_changes", max_changes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the videos need a folder.")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written, lines = [], []
    try:
        for i in tqdm(range(num_videos), desc="shapes", unit="video"):
            video_seed = seed * 1_000_003 + i
            caption = sample_caption(np.random.default_rng([video_seed, 1]), max_changes, exclude_held_out)
            num_frames = int(np.random.default_rng([video_seed, 2]).integers(shortest, longest + 1))
            written.append(write_video(render_video(caption, num_frames, video_seed), out / f"{i:05d}.mp4", FPS))
            record = {"file_name": written[-1].name, "text": caption, "seed": video_seed, "num_frames": num_frames}
            parts = auto_storyboard(caption)  # the prompt of each part, for the To2V stage's windows
            if parts:
                record["storyboard"] = parts
            lines.append(json.dumps(record))
        partial = out / ".metadata.jsonl.partial"
        partial.write_text("\n".join(lines) + "\n")
        os.replace(partial, out / "metadata.jsonl")
    except BaseException:
        for path in [*written, out / ".metadata.jsonl.partial"]:
            path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    return out
