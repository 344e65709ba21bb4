"""Stage 1: train the 3D causal VAE (AutoencoderKLWan) from scratch, or fine-tune it.

Loss: L1 + MSE reconstruction of the clip plus a small KL term towards N(0, I). No perceptual term:
no perceptual model ships offline with t2v. The posterior's mode is decoded, as t2v always encodes
with the mode: from scratch, a sampled latent is mostly the posterior's initial unit noise and
training stalls. The decoder's output is not clamped (`decode_unclamped`), so overshooting pixels
still get gradients. `--detail_weight W` weights pixels that differ from their frame's background
(median color) 1 + W times, for small objects on plain backgrounds (the Shapes recipe uses 10).
`--num_frames` sets the clip length. The causal encoder and decoder see tens of frames back through
their stacked temporal convolutions (about 70 for the default model's layout), and a long video runs
in that steady state: a VAE trained only on short clips reconstructs their first second well and
then drifts in color. The Shapes recipe ends on 65-frame clips.
`--crop S` trains on S×S windows around those detail pixels (`detail_crops`): the VAE is
convolutional, so the same weights decode whole frames (its middle attention then sees a larger
grid, which the Shapes VAE, trained on crops only, handles; docs/research_log.md, "The VAE's ceiling"),
and a step costs (S/H)² of a whole frame's while the object fills (H/S)² more of it.
At export the per-channel mean and std of the latents over the data are written into the VAE's
config (`latents_mean`, `latents_std`), as Wan's VAE has them, so that the denoiser sees
unit-variance latents.
`--decoder_only` trains the decoder (and its `post_quant_conv`) of a trained VAE with the encoder
frozen: the latents and their statistics do not change, so a finished model's latent cache,
denoiser and planner stay valid (the Shapes recipe's last stage, which mends colors the decoder
drew wrong on held-out pairs).
"""

import numpy as np
import torch

from ..models.vae import decode_unclamped
from ..video_io import write_video
from .args import parse_training_args, training_parser
from .common import load_base, set_training_size, trained_on, video_dataset
from .loop import Stage, StageModule, train


class VAETraining(StageModule):
    def __init__(self, vae, kl_weight: float, detail_weight: float, crop: int | None = None, decoder_only: bool = False):
        super().__init__()
        self.vae, self.kl_weight, self.detail_weight, self.crop = vae, kl_weight, detail_weight, crop
        self.decoder_only = decoder_only
        if decoder_only:  # the latent space stays as it is: the encoder and its projection are frozen
            vae.encoder.requires_grad_(False)
            vae.quant_conv.requires_grad_(False)

    def forward(self, batch, generator):
        video = batch["video"].to(self.vae.dtype)
        if self.crop:
            video = detail_crops(video, self.crop, generator)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            posterior = self.vae.encode(video).latent_dist
        recon = decode_unclamped(self.vae, posterior.mode())
        kl = 0.5 * (posterior.mean**2 + posterior.var - 1.0 - posterior.logvar).mean()
        weight = 1.0 + self.detail_weight * detail_mask(video)
        error = recon - video
        return ((error.abs() + error**2) * weight).mean() / weight.mean() + self.kl_weight * kl


def detail_mask(video: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """1 where a pixel differs from its frame's median color (the background) by more than `threshold`.

    (B, 3, F, H, W) -> (B, 1, F, H, W). Small objects on a plain background (the Shapes world) are a
    few percent of the pixels; weighting them keeps the loss from being won by the background alone.
    """
    median = video.flatten(3).median(dim=3).values[..., None, None]
    return ((video - median).abs() > threshold).any(dim=1, keepdim=True).to(video.dtype)


def detail_crops(video: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A size×size window of every clip (B, 3, F, H, W), centred on its detail pixels (see `detail_mask`)
    over the whole clip, shifted at random by up to a quarter of the window, kept inside the frame;
    a clip without detail gets a random window."""
    _, _, _, height, width = video.shape
    mask = detail_mask(video).amax(dim=(1, 2)).cpu()  # (B, H, W)
    shift = torch.randint(-(size // 4), size // 4 + 1, (len(video), 2), generator=generator, device=generator.device)
    crops = []
    for clip, where, (dy, dx) in zip(video, mask, shift.tolist()):
        ys, xs = torch.nonzero(where, as_tuple=True)
        if len(ys):
            cy, cx = int(ys.float().mean()) + dy, int(xs.float().mean()) + dx
        else:
            cy, cx = (int(torch.randint(size // 2, n - size // 2 + 1, (1,), generator=generator, device=generator.device)) for n in (height, width))
        top = min(max(cy - size // 2, 0), height - size)
        left = min(max(cx - size // 2, 0), width - size)
        crops.append(clip[:, :, top : top + size, left : left + size])
    return torch.stack(crops)


@torch.no_grad()
def latent_statistics(vae, dataset, count: int = 64) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the posterior means over up to `count` clips of the data."""
    latents = []
    for i in range(min(count, len(dataset))):
        video = dataset.get(i, seed=i)["video"][None].to(vae.device, vae.dtype)
        latents.append(vae.encode(video).latent_dist.mode().transpose(0, 1).flatten(1))
    z = torch.cat(latents, dim=1).float()
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-4).tolist()


def main(argv=None):
    parser = training_parser("Train the t2v VAE (AutoencoderKLWan) on a video folder.")
    parser.add_argument("--from_scratch", action="store_true", help="re-initialise the VAE from its config")
    parser.add_argument("--kl_weight", type=float, default=1e-6)
    parser.add_argument("--detail_weight", type=float, default=0.0, help="extra weight of pixels that differ from their frame's median color")
    parser.add_argument("--num_frames", type=int, default=None, help="frames per training clip (default: --clip_frames)")
    parser.add_argument("--crop", type=int, default=None, help="train on crops of this size around the pixels that differ from the background")
    parser.add_argument("--decoder_only", action="store_true",
                        help="train the decoder alone: the encoder, the latents and every model trained on them stay valid")
    args = parse_training_args(parser, argv)
    if args.decoder_only and args.from_scratch:
        parser.error("--decoder_only fine-tunes the decoder of a trained VAE; it cannot start --from_scratch")

    pipe = load_base(args.model)
    set_training_size(pipe, args)
    scale = pipe.vae.config.scale_factor_spatial
    if args.crop is not None and (args.crop <= 0 or args.crop % scale or args.crop > min(pipe.config.height, pipe.config.width)):
        parser.error(f"--crop must be a multiple of the VAE's {scale}x downscaling and at most the model's "
                     f"{pipe.config.height}x{pipe.config.width} frames, got {args.crop}")
    if args.from_scratch:
        torch.manual_seed(args.seed)
        pipe.vae = type(pipe.vae).from_config(pipe.vae.config)
    dataset = video_dataset(args, pipe, num_frames=args.num_frames or pipe.config.clip_frames)
    previous = pipe.config.trained_on

    def export(model, output_dir):
        if not args.decoder_only:  # a frozen encoder keeps the latents, and their statistics, as they were
            mean, std = latent_statistics(model.vae, dataset)
            model.vae.register_to_config(latents_mean=mean, latents_std=std)
        pipe.vae = model.vae
        pipe.export(output_dir, trained_on(args, "VAE decoder" if args.decoder_only else "VAE", previous))

    def validate(model, path):
        video = dataset.get(0, seed=0)["video"][None].to(model.vae.device, model.vae.dtype)
        recon = model.vae.decode(model.vae.encode(video).latent_dist.mode()).sample
        pair = torch.cat([video, recon.clamp(-1, 1)], dim=-1)[0].permute(1, 2, 3, 0)  # original | reconstruction
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(((pair.float().cpu().numpy() + 1) / 2).astype(np.float32), path.with_suffix(".mp4"), pipe.config.fps)

    return train(Stage("vae", VAETraining(pipe.vae, args.kl_weight, args.detail_weight, args.crop, args.decoder_only), dataset, export, validate), args)


if __name__ == "__main__":
    main()
