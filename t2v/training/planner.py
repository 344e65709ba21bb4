"""Stage 4: the planner T2To, trained on long samples: every clip's tokens of a video at once.

Each sample is K consecutive clips of a video; the frozen VAE, tokenizer and codec turn them into
the token grid (codec_dim, K·t, h, w), and the planner learns, by the flow-matching loss, to generate
that grid from the caption. With `--max_clips` the clip count varies between videos: batches are
padded and the loss is masked to the real clips (the padded clips are still seen by self-attention,
which diffusers' Wan blocks run unmasked; `--num_clips`, the default, avoids padding altogether).
With `--latents_dir` each sample is a whole cached video (training/cache_latents.py), tokenised in
the chunks the pipeline plans at inference, with the caption that describes all of it.
"""

import torch

from ..models.planner import tokens_to_grid
from ..models.vae import encode_latents
from .args import parse_training_args, training_parser
from .common import (
    flow_matching_loss,
    freeze,
    load_base,
    set_training_size,
    trained_on,
    training_scheduler,
    use_gradient_checkpointing,
    video_dataset,
    write_validation,
)
from .latents import LatentPlans, LatentVideos, collate_plans
from .loop import Stage, StageModule, train


class PlannerTraining(StageModule):
    def __init__(self, pipe, text_dropout: float, validation: bool = True):
        super().__init__()
        # every component the stage calls is a submodule, so that accelerate puts it where the stage runs
        self.vae, self.video_tokenizer, self.planner = pipe.vae, pipe.video_tokenizer, pipe.planner
        self.text_encoder, self.token_codec = pipe.text_encoder, pipe.token_codec
        if validation:  # the validation video is rendered by the denoiser
            self.transformer = pipe.transformer
        self.pipe = pipe  # not a module: used for its prompt encoding
        self.scheduler = training_scheduler(pipe)
        self.text_dropout = text_dropout
        self.clip_frames = pipe.config.clip_frames

    def forward(self, batch, generator):
        grid = tuple(self.video_tokenizer.config.grid)
        with torch.no_grad():
            if "latents" in batch:  # cached latents of whole videos: clip c = latent frames [c·f, (c+1)·f)
                latents = batch["latents"]
                batch_size, clips = latents.shape[0], batch["clip_mask"].shape[1]
                latents = latents.unflatten(2, (clips, -1)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)
            else:
                video = batch["video"]  # (B, 3, K·clip_frames, H, W)
                batch_size, clips = video.shape[0], video.shape[2] // self.clip_frames
                per_clip = video.unflatten(2, (clips, self.clip_frames)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)
                latents = encode_latents(self.vae, per_clip)
            tokens = self.video_tokenizer(latents.to(self.video_tokenizer.dtype)).float()
            codes = self.token_codec.encode(tokens).unflatten(0, (batch_size, clips))
            x0 = tokens_to_grid(codes, grid).to(self.planner.dtype)
        drop = torch.rand(batch_size, generator=generator, device=x0.device)
        captions = ["" if d < self.text_dropout else text for d, text in zip(drop.tolist(), batch["text"])]
        text, _ = self.pipe.encode_prompt(captions, do_classifier_free_guidance=False, device=x0.device, dtype=self.planner.dtype)
        mask = None
        if "clip_mask" in batch:  # (B, K) -> (B, 1, K·t, 1, 1)
            mask = batch["clip_mask"].repeat_interleave(grid[0], dim=1).view(batch_size, 1, -1, 1, 1)

        def predict(noisy, timesteps):
            return self.planner(noisy, timesteps, text, return_dict=False)[0]

        return flow_matching_loss(predict, x0, self.scheduler, generator, mask)


def main(argv=None):
    parser = training_parser("Train the token planner (T2To) on long samples of a video folder.")
    parser.add_argument("--num_clips", type=int, default=4, help="consecutive clips per sample")
    parser.add_argument("--max_clips", type=int, default=None, help="variable clip counts up to this many (padded, masked)")
    parser.add_argument("--text_dropout", type=float, default=0.1)
    parser.add_argument("--latents_dir", help="train on whole videos of cached latents (training/cache_latents.py) instead of --data_dir; "
                        "every video gives all its whole clips, up to --max_clips (or --num_clips)")
    args = parse_training_args(parser, argv)

    pipe = load_base(args.model)
    videos = LatentVideos(args.latents_dir) if args.latents_dir else None
    set_training_size(pipe, args, videos)
    freeze(pipe.vae, pipe.text_encoder, pipe.video_tokenizer, pipe.token_codec, pipe.transformer)
    pipe.planner.requires_grad_(True)
    use_gradient_checkpointing(pipe.planner, args.gradient_checkpointing)
    collate = None
    if videos is not None:
        dataset = LatentPlans(videos, pipe.latent_frames_per_clip, args.max_clips or args.num_clips)
        collate = collate_plans
    elif args.max_clips:
        from ..data.video_folder import collate_long

        dataset, collate = video_dataset(args, pipe, clip_frames=pipe.config.clip_frames, max_clips=args.max_clips), collate_long
    else:
        dataset = video_dataset(args, pipe, clip_frames=pipe.config.clip_frames, num_clips=args.num_clips)
    previous = pipe.config.trained_on

    def export(model, output_dir):
        pipe.export(output_dir, trained_on(args, "planner", previous))

    def validate(model, path):
        write_validation(pipe, args.validation_prompt, path, pipe.config.fps)

    model = PlannerTraining(pipe, args.text_dropout, validation=not args.skip_validation)
    return train(Stage("planner", model, dataset, export, validate, collate), args)


if __name__ == "__main__":
    main()
