"""The default model: a small configuration of every component at 64×64, 8 fps, clips of 17 frames.

`build_default_pipeline` makes it from a seed, with random weights, and `python -m
t2v.shapes.model OUT_DIR` saves it: the Shapes recipe (`training/recipes/shapes/run.sh`) starts
from that and trains every component; the folder shipped in `t2v/default_model/` is its result at
the recipe's size (`--width 192 --vae-compression 4 --patch 4`), and its `trained_on` line says with
which command and commit. The defaults here (width 64, the 8× VAE) are a smaller, faster model that
the tests build.
"""

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

from ..checks import OneLineParser
from ..models import TokenCodec, VideoTokenizer
from ..models.text_encoder import build_text_encoder, build_word_tokenizer
from . import GRAMMAR
from .world import vocabulary

RANDOM_WEIGHTS = (
    "nothing: these weights are random, so videos are noise (the trained Shapes-world model replaces them)"
)

LATENT_CHANNELS = 8
TEXT_DIM = 64
TOKEN_GRID = (2, 2, 2)
TOKEN_DIM = 32
CODEC_DIM = 8
TEXT_CONTEXT = 32  # text tokens; the longest caption of the Shapes data (two changes) has 22


def build_vae(spatial_compression: int = 8) -> AutoencoderKLWan:
    """The default model's VAE, freshly initialised from the current torch seed.

    Wan 2.2's residual layout (average-pool shortcuts around every down- and up-sampling block),
    scaled down, with two 2× downsamplings in space and time. At 8× (the default) pixels are first
    folded 2×2 into channels, which keeps Wan 2.1's 8× spatial and 4× temporal compression; the
    shortcuts make it learn far faster from scratch than Wan 2.1's layout (research/vae_layouts.py).
    At 4× there is no fold, so a 64×64 frame gives a 16×16 latent frame (research/vae_compression.py).
    """
    if spatial_compression not in (4, 8):
        raise ValueError(f"spatial_compression must be 4 or 8, got {spatial_compression!r}.")
    fold = 2 if spatial_compression == 8 else None
    channels = 3 * (fold or 1) ** 2
    return AutoencoderKLWan(
        base_dim=32,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[True, True],
        is_residual=True,
        patch_size=fold,
        in_channels=channels,
        out_channels=channels,
        scale_factor_spatial=spatial_compression,
        scale_factor_temporal=4,
        latents_mean=[0.0] * LATENT_CHANNELS,
        latents_std=[1.0] * LATENT_CHANNELS,
    )


def build_default_pipeline(
    seed: int = 0, trained_on: str = RANDOM_WEIGHTS, width: int = 64, layers: int = 4, vae_compression: int = 8, patch: int = 2
):
    """Every component of the default model, freshly initialised from `seed`.

    `width` and `layers` size the To2V denoiser (heads of 16 channels, a feed-forward of 4× the
    width), `vae_compression` is the VAE's spatial compression (`build_vae`) and `patch` the side of
    the denoiser's square patches: with 2×2 patches the 4× VAE's 16×16 latent frames give the
    denoiser four times the tokens of the 8× VAE's 8×8 ones, with 4×4 patches the same number.
    """
    if width < 16 or width % 16 or layers < 1:
        raise ValueError(f"width must be a positive multiple of 16 and layers at least 1, got {width} and {layers}.")
    if patch not in (1, 2, 4):
        raise ValueError(f"patch must be 1, 2 or 4 (the latent frame's side is a multiple of 4), got {patch}.")
    from ..pipelines import T2VPipeline

    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(vocabulary())
    text_encoder = build_text_encoder(len(tokenizer), d_model=TEXT_DIM)
    torch.manual_seed(seed)  # the VAE from the seed alone, the same whatever the other components' sizes
    vae = build_vae(vae_compression)
    video_tokenizer = VideoTokenizer(
        in_channels=LATENT_CHANNELS, grid=TOKEN_GRID, hidden_dim=64, token_dim=TOKEN_DIM, num_layers=2, num_heads=4, pos_dim_per_axis=16
    )
    token_codec = TokenCodec(token_dim=TOKEN_DIM, codec_dim=CODEC_DIM)
    common = dict(num_attention_heads=4, attention_head_dim=16, text_dim=TEXT_DIM, freq_dim=64, ffn_dim=256, num_layers=4)
    planner = WanTransformer3DModel(patch_size=(1, 1, 1), in_channels=CODEC_DIM, out_channels=CODEC_DIM, **common)
    transformer = WanTransformer3DModel(
        patch_size=(1, patch, patch),
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        image_dim=TOKEN_DIM,
        added_kv_proj_dim=width,
        **{**common, "num_attention_heads": width // 16, "ffn_dim": 4 * width, "num_layers": layers},
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return T2VPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        video_tokenizer=video_tokenizer,
        token_codec=token_codec,
        planner=planner,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        fps=8,
        clip_frames=17,
        height=64,
        width=64,
        trained_on=trained_on,
        text_context_length=TEXT_CONTEXT,
        caption_grammar=GRAMMAR,
    )


def main() -> None:
    parser = OneLineParser(description="Save the default t2v model, freshly initialised (random weights), to a folder.")
    parser.add_argument("output_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=64, help="the To2V denoiser's width (a multiple of 16)")
    parser.add_argument("--layers", type=int, default=4, help="the To2V denoiser's number of blocks")
    parser.add_argument("--vae-compression", type=int, choices=(4, 8), default=8, help="the VAE's spatial compression")
    parser.add_argument("--patch", type=int, choices=(1, 2, 4), default=2, help="the side of the denoiser's square patches")
    args = parser.parse_args()
    pipe = build_default_pipeline(
        args.seed, width=args.width, layers=args.layers, vae_compression=args.vae_compression, patch=args.patch
    )
    pipe.save_pretrained(args.output_dir)
    print(f"saved the default model to {args.output_dir}")


if __name__ == "__main__":
    main()
