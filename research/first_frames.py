"""How often the first frames of a generated video have the prompt's color, frame by frame.

    python research/first_frames.py runs/card1/training_pairs runs/card1/held_out [--frames 24]
        [--roundtrip runs/full/data/train --model t2v/default_model --videos 12] [--latents runs/full/latents]
        [--generate t2v/default_model runs/full3/model ...]

Each folder is a set of generated videos with its metadata.jsonl (file_name, text), as benchmarks/shapes_model_card.py
writes them. For every pixel frame up to --frames it prints the share of the set's videos whose object
ShapesBench measures in the prompt's color. With --roundtrip it does the same for training videos encoded and
decoded by the model's VAE, which tells a decoder at fault from a denoiser at fault. The causal VAE encodes frame 0
alone into latent frame 0 and every later 4 frames into one latent frame, so frame 0 and frames 1-4 are the
video's first two latent frames. With --latents it prints how often To2V's training draws a window that starts at
a video's start (`LatentWindows` draws a window's offset uniformly over each video's whole clips), and the
per-channel mean and standard deviation of the cache's latent frame 0, latent frame 1 and the later ones. With
--generate it prints the same statistics of the first window (17 frames) each model draws for 4 prompts x 4 seeds (a
denoiser that knows where a video starts draws latent frame 0 with frame 0's statistics), and how often those
windows' first pixel frames have the prompt's color.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from t2v import T2VPipeline
from t2v.data.video_folder import read_metadata, to_unit
from t2v.models.vae import encode_latents
from t2v.shapes.bench import measure_video
from t2v.shapes.world import parse_caption
from t2v.training.latents import LatentVideos
from t2v.video_io import read_video, to_uint8


def color_hits(frames: np.ndarray, caption: str, count: int) -> list[bool]:
    """Whether ShapesBench measures an object of the caption's (first) color in each of the first `count` frames."""
    color = parse_caption(caption)[0]["color"]
    return [m is not None and m.color == color for m in measure_video(frames[:count])]


@torch.no_grad()
def decode(pipe: T2VPipeline, latents: torch.Tensor) -> np.ndarray:
    """Normalised latents (B, C, F, h, w) -> uint8 frames (B, T, H, W, 3), decoded as the pipeline decodes them."""
    return to_uint8((pipe.decode_latents(latents).permute(0, 2, 3, 4, 1).numpy() + 1) / 2)


@torch.no_grad()
def roundtrip(pipe: T2VPipeline, frames: np.ndarray) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 encoded and decoded by the pipeline's VAE."""
    video = to_unit(torch.from_numpy(frames)).permute(3, 0, 1, 2)[None]
    return decode(pipe, encode_latents(pipe.vae, video))[0]


GENERATE_PROMPTS = ["a green square bounces left and right", "a cyan square moves in a circle", "a red circle stays still",
                    "a blue triangle moves diagonally"]


def show_stats(name: str, frames: dict[str, torch.Tensor]) -> None:
    """Per-channel mean and standard deviation of latent frames, each (N, C, H, W), under `name`."""
    for label, z in frames.items():
        mean, std = z.mean((0, 2, 3)).tolist(), z.std((0, 2, 3)).tolist()
        print(f"{name}, {label}: mean {' '.join(f'{m:+.2f}' for m in mean)} | std {' '.join(f'{d:.2f}' for d in std)}")


def show(name: str, hits: list[list[bool]]) -> None:
    share = np.mean(hits, axis=0)
    print(f"{name} ({len(hits)} videos): " + " ".join(f"{s:.2f}" for s in share))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path, help="folders of generated videos, each with its metadata.jsonl")
    parser.add_argument("--frames", type=int, default=24, help="pixel frames to report (default 24: 3 s at 8 fps)")
    parser.add_argument("--roundtrip", type=Path, help="a Shapes video folder (metadata.jsonl) to encode and decode")
    parser.add_argument("--model", default="t2v/default_model", help="the model whose VAE --roundtrip uses")
    parser.add_argument("--videos", type=int, default=12, help="videos of --roundtrip's folder (the first ones)")
    parser.add_argument("--latents", type=Path, help="a latent cache (training/cache_latents.py): its start windows and latent statistics")
    parser.add_argument("--window", type=int, default=5, help="latent frames of a training window (default 5)")
    parser.add_argument("--generate", nargs="+", default=[],
                        help="models whose first windows to draw: their latent statistics and first frames' colors")
    args = parser.parse_args()

    if args.sets:
        print(f"share of videos in the prompt's color, pixel frames 0 to {args.frames - 1}:")
    for folder in args.sets:
        rows = read_metadata(folder / "metadata.jsonl")
        hits = [color_hits(read_video(folder / name)[0], text, args.frames) for name, text, _ in rows]
        show(str(folder), hits)
    if args.roundtrip:
        torch.set_num_threads(1)
        pipe = T2VPipeline.from_pretrained(args.model)
        hits = []
        for name, text, _ in read_metadata(args.roundtrip / "metadata.jsonl")[: args.videos]:
            frames = read_video(args.roundtrip / name)[0][: 1 + 4 * (args.frames // 4 + 1)]
            hits.append(color_hits(roundtrip(pipe, frames), text, args.frames))
        show(f"{args.roundtrip} through {args.model}'s VAE", hits)
    if args.latents:
        videos = [latents for latents, _ in LatentVideos(args.latents)]
        lengths = np.array([latents.shape[1] for latents in videos])
        usable = lengths[lengths >= 2 * args.window]  # LatentWindows' videos
        offsets = usable // args.window * args.window - args.window + 1
        print(f"{args.latents}: {len(usable)} videos of {usable.min()} to {usable.max()} latent frames; a window starts at "
              f"its video's start in {np.mean(1 / offsets):.2%} of draws")
        show_stats(str(args.latents), {"latent frame 0": torch.stack([z[:, 0] for z in videos]),
                                       "latent frame 1": torch.stack([z[:, 1] for z in videos]),
                                       "later frames": torch.cat([z[:, 2:].transpose(0, 1) for z in videos])})
    for model in args.generate:
        pipe = T2VPipeline.from_pretrained(model)
        pipe.set_progress_bar_config(disable=True)
        draws = [(prompt, seed) for prompt in GENERATE_PROMPTS for seed in range(4)]
        first = torch.cat([pipe(prompt, num_frames=17, output_type="latent", generator=torch.Generator().manual_seed(seed)).frames
                           for prompt, seed in draws])  # (16, C, 5, h, w): normalised, as cached
        show_stats(f"{model}, first windows", {f"latent frame {f}": first[:, :, f] for f in range(3)})
        show(f"{model}, first windows", [color_hits(video, prompt, 17) for video, (prompt, _) in zip(decode(pipe, first), draws)])


if __name__ == "__main__":
    main()
