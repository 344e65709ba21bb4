"""A t2v model on a Wan2.1 text-to-video base: its text encoder, VAE and DiT, with a new token branch.

TokensGen (Ouyang et al., 2025) builds its To2V stage on a pretrained text-to-video model and trains
only what reads the condensed tokens. Here the base is Wan2.1 in diffusers format (a folder that
`diffusers.WanPipeline` loads, or a hub id the user names):

- the text encoder (UMT5), its tokenizer and the VAE (AutoencoderKLWan) are taken as they are;
- the denoiser is the base's `WanTransformer3DModel` with Wan's decoupled image branch added
  (`image_dim` = the video tokenizer's token channels, `added_kv_proj_dim` = the model width), as
  IP-Adapter adds a branch to a text-to-image model. Its value projections start at zero, so before
  training the denoiser predicts exactly what the base predicts, whatever the tokens;
- the video tokenizer (a Perceiver resampler on the VAE's latents) and the token codec are new;
- the planner has the base's shape, as TokensGen's planner has its base's, with patch (1, 1, 1)
  over the token grid; here it also starts from the base's weights (their text cross-attention is
  trained already) for everything but its input and output layers;
- the sampler is flow matching with the base's `flow_shift`.

`convert_wan` (the command below) writes the folder one component at a time: the tokenizer, the
text encoder and the VAE are copied as they are (or loaded and saved in the `--dtype` asked for), and
only the DiT is loaded, in the dtype it is stored in, to make the denoiser (sharing the base's
tensors) and the planner (a copy): about twice the DiT's size at the peak, 5–11 GB for
Wan2.1-T2V-1.3B, never the whole model in float32. diffusers' float32 modules stay float32. What then
trains the new parts, on the user's videos: `training/train_to2v.py --train_mode tokens_only` (or `lora`),
`training/fit_codec.py`, `training/train_planner.py` (README, "Training on a Wan2.1 base").

    python -m t2v.pipelines.wan_base WAN_FOLDER_OR_HUB_ID OUT_DIR

`load_wan` is the other way in: the base as it stands, with no token branch and the planner off
(`T2VPipeline.from_wan`, or `t2v generate --model WAN`). The video then follows the text alone, and
FIFO, storyboards, lookahead and sparse attention work on it as on any t2v model.
"""

import os
import shutil
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import AutoConfig, AutoTokenizer, UMT5EncoderModel

from ..checks import OneLineParser, argparse_type, is_hub_id, read_model_index, stored_dtype
from ..models import TokenCodec, VideoTokenizer
from ..models.denoiser import TEXT_CONTEXT_LENGTH

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
IMAGE_VALUE = "attn2.add_v_proj"  # the image branch's value projection in every block
SEED = 0  # of the weights the converter adds


def _check_source(wan: str) -> None:
    """One clear sentence when `wan` is neither a complete WanPipeline folder nor a hub id."""
    if not is_hub_id(wan):
        read_model_index(wan, "WanPipeline", "diffusers Wan text-to-video")


def _flow_shift(wan: str) -> float:
    """The base's sampling shift (Wan2.1: 3.0 at 480p, 5.0 at 720p), from its scheduler's config."""
    try:
        return float(FlowMatchEulerDiscreteScheduler.load_config(wan, subfolder="scheduler").get("flow_shift", 3.0))
    except OSError:  # no scheduler folder: Wan's 480p value
        return 3.0


def _reshaped(base: WanTransformer3DModel, torch_dtype: torch.dtype, copy: bool, **changes) -> WanTransformer3DModel:
    """A Wan DiT of the base's config with `changes`, holding the base's weights wherever their shapes still fit.

    The model is made on the meta device, so no memory goes to weights it then takes from the base: the base's
    own tensors (`copy=False`: shared with the base) or copies. Its other parameters get torch's default
    initialisation in `torch_dtype`; the base's tensors keep their dtypes (diffusers' float32 modules stay float32).
    """
    with init_empty_weights():
        model = WanTransformer3DModel.from_config({**base.config, **changes})
    own = model.state_dict()
    fitting = {k: v.clone() if copy else v for k, v in base.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False, assign=True)
    for prefix, module in model.named_modules():
        if any(p.is_meta for p in module.parameters(recurse=False)):
            module.to_empty(device="cpu", recurse=False)
            module.reset_parameters()
            for name, param in module.named_parameters(recurse=False):  # a reset module keeps what fitted (a bias)
                key = f"{prefix}.{name}" if prefix else name
                param.data = fitting[key] if key in fitting else param.data.to(torch_dtype)
    return model


def _token_parts(stock: WanTransformer3DModel, z_dim: int, token_grid, token_dim: int, codec_dim: int, torch_dtype) -> dict:
    """What the converter adds to the base's DiT: the denoiser with a token branch (sharing the base's tensors),
    the planner (a copy of the base but for its input and output layers), a new video tokenizer and codec. The new
    weights are drawn from `SEED` alone, so converting the same base twice gives the same folder."""
    width_dim = stock.config.num_attention_heads * stock.config.attention_head_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        planner = _reshaped(stock, torch_dtype, copy=True, patch_size=(1, 1, 1), in_channels=codec_dim, out_channels=codec_dim)
        transformer = _reshaped(stock, torch_dtype, copy=False, image_dim=token_dim, added_kv_proj_dim=width_dim)
        video_tokenizer = VideoTokenizer(in_channels=z_dim, grid=tuple(token_grid), token_dim=token_dim).to(torch_dtype)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if IMAGE_VALUE in name:
                param.zero_()  # the image branch adds nothing until it is trained: the base's picture
    return dict(
        transformer=transformer,
        planner=planner,
        video_tokenizer=video_tokenizer,
        token_codec=TokenCodec(token_dim=token_dim, codec_dim=codec_dim).to(torch_dtype),
    )


def _trained_on(wan: str) -> str:
    return (f"Wan2.1 base {wan}: its text encoder, VAE and DiT; the DiT's token branch, the video tokenizer, the codec and "
            "the planner are new and untrained (train_to2v.py --train_mode tokens_only, fit_codec.py, train_planner.py)")


def _check_text_to_video(wan: str) -> None:
    """One clear sentence when the folder's DiT is an image-to-video one (read from the configs, nothing loaded)."""
    base = WanTransformer3DModel.load_config(wan, subfolder="transformer")
    z_dim = AutoencoderKLWan.load_config(wan, subfolder="vae").get("z_dim", 16)
    if base.get("image_dim") is not None or base["in_channels"] != z_dim:
        raise ValueError(
            f"{wan} holds an image-to-video Wan (its DiT reads {base['in_channels']} channels and has an image "
            f"branch); t2v builds on a text-to-video Wan, whose DiT reads the VAE's {z_dim} latent channels."
        )


def _base_parts(wan: str, torch_dtype: torch.dtype) -> dict:
    """The base's tokenizer, text encoder, VAE and sampler, as `T2VPipeline` takes them (checked first)."""
    _check_source(wan)
    _check_text_to_video(wan)
    load = dict(dtype=torch_dtype, use_safetensors=True)  # safetensors only: never unpickle a checkpoint
    vae = AutoencoderKLWan.from_pretrained(wan, subfolder="vae", **load)
    return dict(
        tokenizer=AutoTokenizer.from_pretrained(wan, subfolder="tokenizer"),
        text_encoder=UMT5EncoderModel.from_pretrained(wan, subfolder="text_encoder", **load),
        vae=vae,
        # FIFO gives every latent frame its own noise level, which a one-step solver follows frame by frame:
        # flow-matching Euler with the base's shift, in place of the UniPC multistep solver Wan ships with
        scheduler=FlowMatchEulerDiscreteScheduler(shift=_flow_shift(wan)),
    )


def load_wan(
    wan: str | os.PathLike,
    *,
    fps: int = 16,
    clip_frames: int = 81,
    height: int = 480,
    width: int = 832,
    torch_dtype: torch.dtype = torch.float32,
):
    """A `T2VPipeline` that is a Wan2.1 text-to-video model as it stands: the planner off, no tokens.

    One window of it predicts what `diffusers.WanPipeline` predicts with the same flow-matching sampler; FIFO
    stitches windows into a video of any length. The defaults are Wan2.1's (16 fps, 81-frame clips, 480×832);
    the sampler's shift is read from the folder's scheduler config.

    Args:
        wan: a folder in diffusers' Wan format, or a hub id (downloaded only because it is named).
        fps, clip_frames, height, width: the video the base was trained at (Wan2.1-T2V-14B also 720×1280).
        torch_dtype: the dtype the weights are loaded in (diffusers keeps the DiT's float32 modules float32).
    """
    from .pipeline_t2v import T2VPipeline

    wan = os.fspath(wan)
    parts = _base_parts(wan, torch_dtype)
    transformer = WanTransformer3DModel.from_pretrained(wan, subfolder="transformer", dtype=torch_dtype, use_safetensors=True)
    return T2VPipeline(
        **parts,
        video_tokenizer=None,
        token_codec=None,
        planner=None,
        transformer=transformer,
        fps=fps,
        clip_frames=clip_frames,
        height=height,
        width=width,
        trained_on=f"Wan2.1 base {wan} as it stands, the planner off: the video follows the text alone",
        text_context_length=TEXT_CONTEXT_LENGTH,
    )


def pipeline_from_wan(
    wan: str | os.PathLike,
    *,
    fps: int = 16,
    clip_frames: int = 81,
    height: int = 480,
    width: int = 832,
    token_grid: tuple[int, int, int] = (4, 8, 12),
    token_dim: int = 512,
    codec_dim: int = 16,
    torch_dtype: torch.dtype = torch.float32,
):
    """A `T2VPipeline` on a Wan2.1 base, ready for the token stages' training (see the module docstring).

    Args:
        wan: a folder in diffusers' Wan format, or a hub id (downloaded only because it is named).
        fps, clip_frames, height, width: the video the model is trained and sampled at (Wan2.1: 16 fps,
            81 frames, 480×832 or 720×1280).
        token_grid: the coarse (t, h, w) grid of condensed tokens per clip (TokensGen: 4×8×12).
        token_dim: channels of a condensed token (the denoiser's new `image_dim`).
        codec_dim: channels the planner works in after the token codec (TokensGen: 16).
        torch_dtype: the dtype every component is loaded and made in.
    """
    from .pipeline_t2v import T2VPipeline

    wan = os.fspath(wan)
    parts = _base_parts(wan, torch_dtype)
    stock = WanTransformer3DModel.from_pretrained(wan, subfolder="transformer", dtype=torch_dtype, use_safetensors=True)
    parts.update(_token_parts(stock, parts["vae"].config.z_dim, token_grid, token_dim, codec_dim, torch_dtype))
    return T2VPipeline(**parts, fps=fps, clip_frames=clip_frames, height=height, width=width, trained_on=_trained_on(wan),
                       text_context_length=TEXT_CONTEXT_LENGTH)


def convert_wan(
    wan: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    fps: int = 16,
    clip_frames: int = 81,
    height: int = 480,
    width: int = 832,
    token_grid: tuple[int, int, int] = (4, 8, 12),
    token_dim: int = 512,
    codec_dim: int = 16,
    torch_dtype: torch.dtype | None = None,
) -> Path:
    """Write what `pipeline_from_wan` makes to `output_dir`, one component at a time (see the module docstring).

    `torch_dtype` None keeps every component in the dtype it is stored in: the tokenizer, text encoder and VAE
    are then copied file for file. The folder appears only when it is complete.
    """
    from .pipeline_t2v import T2VPipeline, write_folder

    wan = os.fspath(wan)
    _check_source(wan)
    if not os.path.isdir(wan):  # a hub id the user named: fetched once, then read as a folder
        from huggingface_hub import snapshot_download

        wan = snapshot_download(wan)
    _check_text_to_video(wan)
    load = dict(dtype=torch_dtype, use_safetensors=True)

    def write(folder: Path) -> None:
        folder.mkdir(parents=True)
        shutil.copytree(Path(wan, "tokenizer"), folder / "tokenizer")
        for name, cls in (("text_encoder", UMT5EncoderModel), ("vae", AutoencoderKLWan)):
            if torch_dtype is None:
                shutil.copytree(Path(wan, name), folder / name)
            else:  # loaded, cast and saved alone, then freed
                cls.from_pretrained(wan, subfolder=name, **load).save_pretrained(folder / name)
        vae = AutoencoderKLWan.from_config(AutoencoderKLWan.load_config(wan, subfolder="vae"))
        dtype = torch_dtype or stored_dtype(Path(wan, "transformer")) or torch.float32
        stock = WanTransformer3DModel.from_pretrained(wan, subfolder="transformer", dtype=dtype, use_safetensors=True)
        parts = _token_parts(stock, vae.config.z_dim, token_grid, token_dim, codec_dim, dtype)
        del stock
        for name, model in parts.items():
            model.save_pretrained(folder / name)
        scheduler = FlowMatchEulerDiscreteScheduler(shift=_flow_shift(wan))
        scheduler.save_pretrained(folder / "scheduler")
        # model_index.json as save_pretrained writes it, from a pipeline whose text encoder holds no weights
        with init_empty_weights():
            text_encoder = UMT5EncoderModel(AutoConfig.from_pretrained(wan, subfolder="text_encoder"))
        pipe = T2VPipeline(tokenizer=AutoTokenizer.from_pretrained(wan, subfolder="tokenizer"), text_encoder=text_encoder, vae=vae,
                           scheduler=scheduler, **parts, fps=fps, clip_frames=clip_frames, height=height, width=width,
                           trained_on=_trained_on(wan), text_context_length=TEXT_CONTEXT_LENGTH)
        pipe.save_config(folder)

    return write_folder(output_dir, write)


def main(argv=None) -> None:
    parser = OneLineParser(
        description="Make a t2v model folder on a Wan2.1 text-to-video base (diffusers format): the base's text encoder, "
        "VAE and DiT with a new token branch, video tokenizer, codec and planner, ready for the token stages' training."
    )
    parser.add_argument("wan", help="a folder in diffusers' Wan format, or a hub id (downloaded because you named it)")
    parser.add_argument("output_dir")
    parser.add_argument("--fps", type=argparse_type("--fps", integer=True), default=16)
    parser.add_argument("--clip_frames", type=argparse_type("--clip_frames", integer=True), default=81,
                        help="frames of one clip: 1 + a multiple of 4 (Wan2.1: 81)")
    parser.add_argument("--height", type=argparse_type("--height", integer=True), default=480)
    parser.add_argument("--width", type=argparse_type("--width", integer=True), default=832)
    parser.add_argument("--token_grid", type=argparse_type("--token_grid", integer=True), nargs=3, default=[4, 8, 12], metavar=("T", "H", "W"))
    parser.add_argument("--token_dim", type=argparse_type("--token_dim", integer=True), default=512)
    parser.add_argument("--codec_dim", type=argparse_type("--codec_dim", integer=True), default=16)
    parser.add_argument("--dtype", choices=["auto", *sorted(DTYPES)], default="auto",
                        help="the dtype of the weights written (auto: each component's own, copied as stored)")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"{args.output_dir} exists and is not an empty folder; name a new one.")
    try:
        convert_wan(
            args.wan, args.output_dir, fps=args.fps, clip_frames=args.clip_frames, height=args.height, width=args.width,
            token_grid=tuple(args.token_grid), token_dim=args.token_dim, codec_dim=args.codec_dim, torch_dtype=DTYPES.get(args.dtype),
        )
    except (ValueError, OSError) as err:  # OSError: diffusers and transformers on a folder without its weights
        raise SystemExit(f"error: {' '.join(str(err).split())}") from None
    print(f"saved a t2v model on the Wan2.1 base {args.wan} to {args.output_dir}")


if __name__ == "__main__":
    main()
