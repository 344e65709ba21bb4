"""Between the VAE and the later stages: encode a video folder once into a latent cache (see latents.py).

`--height --width` choose the size the videos are encoded at (default: the model's); the stages that read the
cache train at its size."""

from accelerate import Accelerator

from ..checks import OneLineParser
from .args import add_size_arguments
from .common import load_base, set_training_size, video_dataset
from .latents import cache_latents


def main(argv=None):
    parser = OneLineParser(description="Encode every video of a folder once, whole, into OUTPUT_DIR/latents.safetensors.")
    parser.add_argument("--data_dir", required=True, help="a video folder with metadata.jsonl (or metadata.csv)")
    parser.add_argument("--model", required=True, help="the t2v model folder whose (trained) VAE encodes the videos")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--fps", type=float, default=None, help="frame rate the videos are resampled to (default: the model's)")
    parser.add_argument("--batch_size", type=int, default=8, help="videos encoded together, in order of length (lower it if memory runs out)")
    parser.add_argument("--seed", type=int, default=0)
    add_size_arguments(parser, clip_frames=False)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}.")

    accelerator = Accelerator()
    pipe = load_base(args.model)
    set_training_size(pipe, args)
    pipe.vae.to(accelerator.device)  # the VAE alone runs here
    videos = video_dataset(args, pipe, num_frames=1)
    out = cache_latents(pipe, videos, args.output_dir, batch_size=args.batch_size, show_progress=accelerator.is_main_process)
    print(f"encoded {len(videos)} videos into {out}")
    return out


if __name__ == "__main__":
    main()
