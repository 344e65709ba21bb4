"""Stage 2: the video tokenizer and the To2V denoiser, trained together through the flow-matching loss.

The TokensGen recipe: the tokenizer condenses a clip's latents into K tokens and the denoiser learns
to rebuild the clip from its text and those tokens, so the tokenizer is trained by the diffusion
loss alone and the denoiser becomes its de-tokenizer. Text and tokens are each dropped now and then
(empty prompt / zero tokens) so that classifier-free guidance works at inference.

`--train_mode` picks what of the denoiser learns: `full`; `tokens_only` (the base frozen, only the image
branch that reads the tokens — TokensGen's recipe with a frozen base; the tokenizer trains with it);
`lora` (fine-tuning a finished model on your own videos: peft adapters on the denoiser's attention
projections, the token branch's included, and nothing else, so the adapter alone, OUTPUT_DIR/lora,
carries the change and applies to the model it was made on: `t2v generate --lora OUTPUT_DIR/lora`).
`--train_text_encoder` trains the text encoder too (for worlds trained from scratch).

With `--latents_dir` (a cache from training/cache_latents.py) the stage trains as FIFO samples:
windows of one clip's length at any offset of a continuous latent video, every frame following the
tokens of its own clip, and half of the windows at FIFO's diagonal noise levels (`fifo_sigmas`).
Without it, clips are read from `--data_dir` and encoded by the VAE at every step. `--part_prompts`
captions a share of the windows of videos with a storyboard by their part's prompt (the text the
pipeline's `storyboard` gives such a window at inference); `--freeze_tokenizer` keeps the tokens a
finished model's codec and planner were fitted to.
"""

import math
import warnings

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from ..models.denoiser import expand_frame_timesteps
from ..models.vae import decode_unclamped, encode_latents
from ..pipelines.adapters import save_adapter
from .args import parse_training_args, training_parser
from .common import (
    fifo_sigmas,
    flow_matching_loss,
    foreground_weights,
    freeze,
    load_base,
    set_training_size,
    trained_on,
    training_scheduler,
    use_gradient_checkpointing,
    video_dataset,
    write_validation,
)
from .latents import LatentVideos, LatentWindows
from .loop import Stage, StageModule, train

IMAGE_BRANCH = ("add_k_proj", "add_v_proj", "norm_added_k", "condition_embedder.image_embedder")
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "add_v_proj"]


class To2VTraining(StageModule):
    def __init__(self, pipe, text_dropout: float, token_dropout: float, validation: bool = True, foreground_weight: float = 0.0,
                 token_noise: float = 0.0):
        super().__init__()
        # every component the stage calls is a submodule, so that accelerate puts it where the stage runs
        self.vae, self.text_encoder = pipe.vae, pipe.text_encoder
        self.video_tokenizer, self.transformer = pipe.video_tokenizer, pipe.transformer
        if validation:  # a validation video is planned, then rendered
            self.planner = pipe.planner
        if validation or token_noise:
            self.token_codec = pipe.token_codec
        self.pipe = pipe  # not a module: used for its prompt encoding
        self.scheduler = training_scheduler(pipe)
        self.text_dropout, self.token_dropout = text_dropout, token_dropout
        self.foreground_weight, self.token_noise = foreground_weight, token_noise

    def forward(self, batch, generator):
        if "latents" in batch:  # a window of cached latents, following the tokens of its frames' clips
            latents = batch["latents"]
            sigma = fifo_sigmas(self.scheduler, latents.shape[0], latents.shape[2], generator,
                                first_window=batch.get("first_window")).to(latents.device)
            clips = batch["clips"]  # (B, 2, C, f, h, w)
            tokens = self.video_tokenizer(clips.flatten(0, 1).to(self.video_tokenizer.dtype)).unflatten(0, clips.shape[:2])
            if self.token_noise:
                tokens = tokens + planner_space_noise(self.token_codec, tokens, self.token_noise, generator)
            first = torch.zeros_like(batch["frame_clip"], dtype=torch.bool)  # a video's latent frame 0
            first[:, 0] = batch["first_window"]
            tokens, frame_clip = self.video_tokenizer.with_start_tokens(tokens, batch["frame_clip"], first)
            index = frame_clip[..., None, None].expand(-1, -1, *tokens.shape[2:])
            tokens = tokens.gather(1, index).flatten(1, 2)  # (B, f·K, D): K tokens per latent frame
        else:
            with torch.no_grad():
                latents = encode_latents(self.vae, batch["video"])
            sigma = None
            tokens = self.video_tokenizer(latents.to(self.video_tokenizer.dtype))
        batch_size = latents.shape[0]
        drop = torch.rand(2, batch_size, generator=generator, device=latents.device)
        captions = ["" if d < self.text_dropout else text for d, text in zip(drop[0].tolist(), batch["text"])]
        text, _ = self.pipe.encode_prompt(captions, do_classifier_free_guidance=False, device=latents.device, dtype=self.transformer.dtype)
        tokens = tokens * (drop[1] >= self.token_dropout).to(tokens.dtype).view(-1, 1, 1)
        patch_size = self.transformer.config.patch_size

        def predict(noisy, timesteps):
            if timesteps.ndim == 2:
                timesteps = expand_frame_timesteps(timesteps, noisy.shape, patch_size)
            return self.transformer(noisy, timesteps, text, encoder_hidden_states_image=tokens, return_dict=False)[0]

        weights = foreground_weights(latents, self.foreground_weight) if self.foreground_weight else None
        return flow_matching_loss(predict, latents.to(self.transformer.dtype), self.scheduler, generator, weights, sigma=sigma)


def planner_space_noise(codec, tokens: torch.Tensor, max_level: float, generator: torch.Generator) -> torch.Tensor:
    """Noise for `tokens` (B, ..., token_dim) drawn where the planner errs: Gaussian in the codec's normalised space
    (where the planner generates), at a level drawn for each sample uniformly from [0, max_level], carried back to
    token space by the codec's linear decoding.

    Conditioning augmentation (Ho et al., 2021, "Cascaded Diffusion Models for High Fidelity Image Generation"):
    the denoiser trains on the tokenizer's exact tokens but renders the planner's at inference, and a denoiser
    trained long on exact tokens comes to need them (a still object fades out with planned tokens and stays with
    the true ones: docs/research_log.md, "A longer refine, weighted to the object"); corrupted tokens teach it to read
    approximate ones.
    """
    batch, codec_dim = tokens.shape[0], codec.config.codec_dim
    level = torch.rand(batch, generator=generator, device=tokens.device) * max_level
    codes = torch.randn(*tokens.shape[:-1], codec_dim, generator=generator, device=tokens.device)
    codes = codes * level.view(batch, *[1] * (codes.ndim - 1))
    with torch.no_grad():
        noise = codec.decode(codes) - codec.decode(torch.zeros_like(codes))
    return noise.to(tokens.dtype)


@torch.no_grad()
def warn_if_unlike_the_vae(pipe, dataset, count: int = 4, min_psnr: float = 25.0) -> None:
    """Warn when the model's VAE cannot redraw these videos (reconstruction PSNR under `min_psnr` dB): it was
    trained on other videos, and the denoiser can only learn to draw what the VAE can."""
    errors = []
    for i in range(min(count, len(dataset))):
        video = dataset.get(i, seed=i)["video"][None].to(pipe.vae.device, pipe.vae.dtype)
        redrawn = decode_unclamped(pipe.vae, pipe.vae.encode(video).latent_dist.mode()).clamp(-1, 1)
        errors.append(((redrawn - video).float() ** 2).mean())
    psnr = 10 * math.log10(4.0 / max(torch.stack(errors).mean().item(), 1e-10))  # pixels in [-1, 1]
    if psnr < min_psnr:
        warnings.warn(
            f"This model's VAE redraws these videos at {psnr:.1f} dB PSNR: it was trained on other videos, so the VAE "
            "does not know videos like these and the denoiser cannot learn to draw them well. Train the VAE on them "
            "first (training/train_vae.py --data_dir ...; see training/README.md).",
            stacklevel=3,  # the line of main() that called it, past torch.no_grad's wrapper
        )


def set_trainable(pipe, mode: str, rank: int, train_text_encoder: bool, train_tokenizer: bool = True) -> None:
    """What trains in each --train_mode (see the module's docstring); in `lora` only the adapters."""
    freeze(pipe.vae, pipe.planner)
    pipe.text_encoder.requires_grad_(train_text_encoder)
    pipe.video_tokenizer.requires_grad_(train_tokenizer and mode != "lora")
    if pipe.video_tokenizer.start_tokens is not None:  # they carry no planned content: they train with the denoiser
        pipe.video_tokenizer.start_tokens.requires_grad_(mode != "lora")
    transformer = pipe.transformer
    if mode == "full":
        transformer.requires_grad_(True)
        return
    transformer.requires_grad_(False)
    if mode == "lora":
        from peft import LoraConfig

        transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
        return
    for name, param in transformer.named_parameters():
        if any(part in name for part in IMAGE_BRANCH):
            param.requires_grad_(True)


def main(argv=None):
    parser = training_parser("Train the video tokenizer and the To2V denoiser together on a video folder.")
    parser.add_argument("--train_mode", choices=["full", "lora", "tokens_only"], default="full")
    parser.add_argument("--lora_rank", type=int, default=16)
    parser.add_argument("--train_text_encoder", action="store_true", help="train the text encoder too (worlds trained from scratch)")
    parser.add_argument("--text_dropout", type=float, default=0.1)
    parser.add_argument("--token_dropout", type=float, default=0.1)
    parser.add_argument("--freeze_tokenizer", action="store_true",
                        help="keep the video tokenizer as it is, so that a trained planner and codec still fit its tokens "
                             "(fine-tuning the denoiser of a finished model; then leave out --train_text_encoder too)")
    parser.add_argument("--latents_dir", help="train on FIFO windows of cached latents (training/cache_latents.py) instead of --data_dir")
    parser.add_argument("--part_prompts", type=float, default=0.0,
                        help="with --latents_dir: the share of windows of a video with a storyboard that read their part's "
                             "prompt instead of the whole caption (default: 0, every window reads the whole caption)")
    parser.add_argument("--start_tokens", action="store_true",
                        help="give the video tokenizer learned tokens that a video's first latent frame reads (if it has "
                             "none yet) and train them with the denoiser; use with --start_windows")
    parser.add_argument("--start_windows", type=float, default=0.0,
                        help="with --latents_dir: the share of windows that start at a video's first frame, where every "
                             "generated video starts (default: 0, the window's offset is uniform)")
    parser.add_argument("--foreground_weight", type=float, default=0.0,
                        help="weigh the loss 1 + this much more where a latent departs from its frame's background (the "
                             "object), so that small objects' shapes count (default: 0, every position alike)")
    parser.add_argument("--token_noise", type=float, default=0.0,
                        help="with --latents_dir and a fitted codec (refine): add noise to the tokens at a level drawn from "
                             "[0, this] in the codec's normalised space, where the planner errs (default: 0, exact tokens)")
    args = parse_training_args(parser, argv)
    for name in ("foreground_weight", "token_noise"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be 0 or more, got {getattr(args, name):g}.")
    for name in ("part_prompts", "start_windows"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name} must be between 0 and 1, got {getattr(args, name):g}.")
    if args.train_mode == "lora" and args.train_text_encoder:
        parser.error("--train_mode lora trains adapters of the denoiser alone; leave out --train_text_encoder")

    pipe = load_base(args.model)
    videos = LatentVideos(args.latents_dir) if args.latents_dir else None
    set_training_size(pipe, args, videos)
    if args.start_tokens:
        pipe.video_tokenizer.add_start_tokens()
    set_trainable(pipe, args.train_mode, args.lora_rank, args.train_text_encoder, not args.freeze_tokenizer)
    use_gradient_checkpointing(pipe.transformer, args.gradient_checkpointing)
    if videos is not None:
        dataset = LatentWindows(videos, pipe.latent_frames_per_clip, args.part_prompts, args.start_windows)
    else:
        dataset = video_dataset(args, pipe, num_frames=pipe.config.clip_frames)
        # where the stage will run (a real base's VAE is slow on a CPU); the state is the one the Accelerator takes up,
        # so it must read `accelerate launch --cpu` as the Accelerator would
        pipe.vae.to(PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")).device)
        warn_if_unlike_the_vae(pipe, dataset)
    previous = pipe.config.trained_on

    def export(model, output_dir):
        if args.train_mode == "lora":  # the adapter alone; the model it applies to is unchanged
            from peft.utils import get_peft_model_state_dict

            save_adapter(pipe, get_peft_model_state_dict(model.transformer), output_dir, trained_on(args, "LoRA", previous))
            return
        pipe.export(output_dir, trained_on(args, f"tokenizer + To2V ({args.train_mode})", previous))

    def validate(model, path):
        write_validation(pipe, args.validation_prompt, path, pipe.config.fps)

    if args.token_noise and (pipe.token_codec is None or not pipe.token_codec.config.fitted):
        parser.error("--token_noise needs a model whose token codec is fitted (refine a model after its codec stage).")
    model = To2VTraining(pipe, args.text_dropout, args.token_dropout, validation=not args.skip_validation,
                         foreground_weight=args.foreground_weight, token_noise=args.token_noise)
    return train(Stage("to2v", model, dataset, export, validate, export_name="lora" if args.train_mode == "lora" else "model"), args)


if __name__ == "__main__":
    main()
