"""Stage 3: fit the token codec (PCA + normalisation) on the video tokenizer's tokens over the data.

No gradient steps: the VAE and the tokenizer encode every clip of the data set once (clips drawn
from each video with a fixed seed; with `--latents_dir`, every whole clip of the cached latents), and `TokenCodec.fit` computes the projection the planner will
work in.
"""

from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from ..checks import OneLineParser
from ..models.vae import encode_latents
from .common import load_base, video_dataset
from .latents import LatentVideos


def main(argv=None):
    parser = OneLineParser(description="Fit the token codec (PCA + normalisation) on a video folder.")
    parser.add_argument("--data_dir", help="a video folder with metadata.jsonl (or metadata.csv)")
    parser.add_argument("--latents_dir", help="a latent cache (training/cache_latents.py) to use instead of --data_dir")
    parser.add_argument("--model", required=True, help="a t2v model folder whose tokenizer is trained")
    parser.add_argument("--output_dir", required=True, help="the fitted model is written to OUTPUT_DIR/model")
    parser.add_argument("--clips_per_video", type=int, default=4)
    parser.add_argument("--max_videos", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=None)
    args = parser.parse_args(argv)
    if not (args.data_dir or args.latents_dir):
        parser.error("give --data_dir (a video folder) or --latents_dir (a latent cache)")

    accelerator = Accelerator()
    pipe = load_base(args.model)
    pipe.vae.to(accelerator.device)  # what encodes clips into tokens; the codec is fitted on the CPU
    pipe.video_tokenizer.to(accelerator.device)
    tokens = []
    with torch.no_grad():
        if args.latents_dir:  # every whole clip of every cached video
            videos = LatentVideos(args.latents_dir)
            f = pipe.latent_frames_per_clip
            for i in tqdm(range(min(len(videos), args.max_videos or len(videos))), desc="codec", disable=not accelerator.is_main_process):
                latents = videos[i][0]
                count = latents.shape[1] // f  # whole clips, as the pipeline chunks them
                if count:
                    whole = latents[None, :, : count * f].to(accelerator.device)
                    tokens.append(pipe.encode_video_tokens(whole, count)[0].float().cpu())
        else:
            dataset = video_dataset(args, pipe, num_frames=pipe.config.clip_frames)
            count = min(len(dataset), args.max_videos or len(dataset))
            for i in tqdm(range(count), desc="codec", disable=not accelerator.is_main_process):
                for k in range(args.clips_per_video):
                    video = dataset.get(i, seed=args.seed * 7919 + i * 101 + k)["video"][None].to(accelerator.device)
                    latents = encode_latents(pipe.vae, video)
                    tokens.append(pipe.video_tokenizer(latents.to(pipe.video_tokenizer.dtype)).float().cpu())
    tokens = torch.cat(tokens).flatten(0, 1)
    pipe.token_codec.fit(tokens)
    codes = pipe.token_codec.encode(tokens)
    explained = ((pipe.token_codec.decode(codes) - pipe.token_codec.mean) ** 2).sum() / ((tokens - pipe.token_codec.mean) ** 2).sum()
    line = f"{pipe.config.trained_on}; codec fitted on {len(tokens)} tokens"
    out = pipe.export(Path(args.output_dir) / "model", line)
    print(f"fitted the codec on {len(tokens)} tokens ({float(explained):.1%} of their variance kept); wrote {out}")
    return out


if __name__ == "__main__":
    main()
