"""A model on Shapes-world prompts: the prompt sets, videos rendered into a scored folder, and what it draws.

What `benchmarks/shapes_ablation.py` and the studies in `research/` share: the held-out and training
prompt sets (docs/shapes_world.md), one video streamed to a file, a folder of them with the
metadata.jsonl that ShapesBench (`t2v eval shapes`) reads, the denoiser driven by the true videos'
own tokens (the ceiling a perfect planner would set, TokensGen's token reconstruction), and what
color and shape a model draws for each pair its captions ask for.
"""

import argparse
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from ..models.vae import encode_latents
from ..video_io import VideoWriter, read_video, to_uint8
from .bench import GOALS, measure_video, read_metadata
from .world import COLORS, HELD_OUT, MOTIONS, SHAPES, auto_storyboard, format_caption, parse_caption, render_video, trajectory

METRICS = ("color_accuracy", "shape_accuracy", "motion_accuracy", "identity_consistency", "jumps_per_minute", "flicker",
           "change_accuracy")


def held_out_prompts(count: int, seed: int = 0) -> list[str]:
    """`count` captions whose first segment is a held-out pair; every second one changes halfway."""
    return _prompts([HELD_OUT[i % len(HELD_OUT)] for i in range(count)], seed)


def training_prompts(count: int, seed: int = 0) -> list[str]:
    """`count` captions whose first segment is a pair the model trained on; every second one changes halfway."""
    pairs = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in HELD_OUT]
    order = np.random.default_rng(10_000 + seed).permutation(len(pairs))
    return _prompts([pairs[order[i % len(pairs)]] for i in range(count)], seed)


def _prompts(pairs: list[tuple[str, str]], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    prompts = []
    for i, (color, shape) in enumerate(pairs):
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        segments = [{"color": color, "shape": shape, "motion": motion}]
        if i % 2:
            if rng.random() < 0.5:
                segments.append({"color": str(rng.choice([c for c in COLORS if c != color]))})
            else:
                segments.append({"motion": str(rng.choice([m for m in MOTIONS if m != motion]))})
        prompts.append(format_caption(segments))
    return prompts


def add_prompt_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick the model, the held-out prompts, their seeds and length, shared by the scripts
    that render Shapes prompts, so that their videos are the ones `benchmarks/shapes_ablation.py` makes."""
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--prompt-seed", type=int, default=0, help="draws the prompts; the tables use 0, and another "
                        "seed gives a validation set for choosing between models without looking at them")


def table_cells(row: dict) -> list[str]:
    """One markdown table row's cells for the ShapesBench METRICS of `row` (a metric may be None)."""
    return ["n/a" if row[m] is None else f"{row[m]:.2f}" if m == "jumps_per_minute" else f"{row[m]:.3f}" for m in METRICS]


def print_goal_table(first_column: str, rows: dict[str, dict]) -> None:
    """A markdown table of ShapesBench METRICS and the real-time factor: a goal row (GOALS), then one row per `rows` entry
    (its name: a dict with the METRICS and "realtime_factor")."""
    goal = {m: f"{op} {target:g}" for m, (op, target) in GOALS.items()}
    print(f"| {first_column} | " + " | ".join(METRICS) + " | real-time factor |")
    print("| --- |" + " --- |" * (len(METRICS) + 1))
    print("| goal | " + " | ".join(goal.get(m, "") for m in METRICS) + " | >= 1 |")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(table_cells(r)) + f" | {r['realtime_factor']:.2f} |")


def without_planner(pipe):
    """Make `pipe.plan` return zero tokens: the model's token-dropped (text only) condition. Returns the undo."""
    plan = pipe.plan

    def zero_plan(*args, **kwargs):
        return torch.zeros_like(plan(*args, **kwargs))

    pipe.plan = zero_plan
    return lambda: setattr(pipe, "plan", plan)


def generate(pipe, prompt, seconds, seed, stitching, path: Path, **kwargs) -> tuple[float, list[np.ndarray]]:
    """Stream one video to `path` (`kwargs` go to `pipe.stream`); returns the wall seconds and the frames (uint8)."""
    start = time.perf_counter()
    stream = pipe.stream(prompt, seconds=seconds, stitching=stitching, generator=torch.Generator().manual_seed(seed), **kwargs)
    frames = []
    with VideoWriter(path, stream.fps) as writer:
        for chunk in stream:
            pixels = to_uint8(chunk[0])
            writer.append(pixels)
            frames.extend(pixels)
    return time.perf_counter() - start, frames


def render_folder(pipe, prompts: list[str], seeds: int, seconds: float, stitching: str, folder: Path, storyboard: bool = True,
                  **kwargs) -> tuple[float, list[np.ndarray]]:
    """Every prompt with every seed as a video in `folder`, beside its metadata.jsonl (`kwargs` go to
    `pipe.stream`; with `storyboard`, a caption with changes is given as its storyboard, as `t2v generate`
    does); returns the wall seconds of all of them and the first video's frames (uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    wall, lines, first = 0.0, [], None
    for p, prompt in enumerate(prompts):
        parts = auto_storyboard(prompt) if storyboard else None
        for seed in range(seeds):
            file_name = f"{p:02d}-seed{seed}.mp4"
            taken, frames = generate(pipe, prompt, seconds, seed, stitching, folder / file_name, storyboard=parts, **kwargs)
            wall += taken
            first = frames if first is None else first
            lines.append(json.dumps({"file_name": file_name, "text": prompt, "seed": seed}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return wall, first


@torch.no_grad()
def true_tokens(pipe, prompt: str, num_frames: int, seed: int) -> torch.Tensor:
    """Tokens (1, clips, K, token_dim) of the generator's video for `prompt` and `seed`, as FIFO plans its clips:
    the tokens a perfect planner would plan."""
    latent_frames = 1 + math.ceil((num_frames - 1) / pipe.vae_scale_factor_temporal)
    num_clips = math.ceil(latent_frames / pipe.latent_frames_per_clip)
    frames = 1 + pipe.vae_scale_factor_temporal * (num_clips * pipe.latent_frames_per_clip - 1)  # whole clips
    video = torch.from_numpy(render_video(prompt, frames, seed)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    latents = encode_latents(pipe.vae, video.to(pipe.vae.device, pipe.vae.dtype))
    return pipe.encode_video_tokens(latents, num_clips).to(pipe.transformer.device, pipe.transformer.dtype)


def through_codec(pipe, tokens: torch.Tensor) -> torch.Tensor:
    """`tokens` encoded and decoded by the token codec: what the planner's space can hold of them."""
    codes = pipe.token_codec.encode(tokens.to(pipe.token_codec.mean.device, torch.float32))
    return pipe.token_codec.decode(codes).to(tokens.device, tokens.dtype)


def drawn_counts(folder: Path) -> dict[tuple[str, str], tuple[Counter, Counter]]:
    """(caption color, caption shape) -> (Counter of colors read, Counter of shapes read), over the folder's frames
    ("-": no object seen, "?": no palette color or shape fits): what a model draws instead of what was asked."""
    counts = defaultdict(lambda: (Counter(), Counter()))
    for entry in read_metadata(folder):
        measured = measure_video(read_video(Path(folder) / entry["file_name"])[0])
        expected = trajectory(parse_caption(entry["text"]), len(measured), seed=0)  # the seed moves the object only
        for want, got in zip(expected, measured):
            colors, shapes = counts[(want["color"], want["shape"])]
            colors["-" if got is None else got.color or "?"] += 1
            shapes["-" if got is None else got.shape or "?"] += 1
    return dict(counts)


def write_strip(rows: dict[str, list[np.ndarray]], fps: float, every: float, path: Path) -> None:
    """One row per configuration: its frames every `every` seconds, doubled in size, labelled on the left."""
    from PIL import Image, ImageDraw

    label_width, scale = 150, 2
    picks = {name: frames[:: max(1, round(every * fps))] for name, frames in rows.items()}
    columns = min(len(p) for p in picks.values())
    size = 64 * scale
    image = Image.new("RGB", (label_width + columns * (size + 4), len(picks) * (size + 4) + 20), "white")
    draw = ImageDraw.Draw(image)
    for c in range(columns):
        draw.text((label_width + c * (size + 4) + 4, 4), f"{c * every:g} s", fill="black")
    for r, (name, frames) in enumerate(picks.items()):
        top = 20 + r * (size + 4)
        draw.text((4, top + size // 2 - 6), name, fill="black")
        for c in range(columns):
            tile = Image.fromarray(frames[c]).resize((size, size), Image.NEAREST)
            image.paste(tile, (label_width + c * (size + 4), top))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
