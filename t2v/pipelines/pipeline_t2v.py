"""T2VPipeline: text -> planned condensed tokens -> clips rendered by a Wan DiT -> frames.

The TokensGen recipe (Ouyang et al., 2025) as a diffusers pipeline: a text encoder reads the prompt;
the planner (T2To) generates the condensed tokens of every clip in one token-diffusion pass; the
denoiser (To2V) renders the video from the text and the tokens, and the 3D causal VAE decodes.

The video is one causal latent sequence; clip c of the plan covers latent frames [c·f, (c+1)·f).
FIFO diagonal denoising (`t2v/fifo.py`) renders it window by window, every latent frame following
its own clip's tokens, and each latent frame is decoded as it leaves the queue: `stream` yields the
frames in constant memory, and `__call__` gathers the same frames into one array. With a storyboard
(one prompt per equal part of the video, FIFO-Diffusion's multi-prompt generation) each part's clips
are planned from its own prompt and its windows read that prompt.

Both entry points share one path: `_start` runs steps 1-4 (checks, sizes, prompt encoding, the plan)
at once and returns a `_Call` holding what the rest needs; `_render` runs steps 5-7 lazily, one
latent frame at a time, through `_noise`, `_predict`, `_on_step` and `_denoised_frames`, then decodes.
"""

import contextlib
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.loaders import WanLoraLoaderMixin
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..attention import PLAN_NAME, disable_sparse_attention, enable_sparse_attention
from ..checks import finite_number, is_hub_id, is_prompt_list, positive_number, read_model_index
from ..fifo import FIFOSampler, denoise_window
from ..models import TokenCodec, VideoTokenizer
from ..models.denoiser import (
    TEXT_CONTEXT_LENGTH,
    check_denoiser,
    expand_frame_timesteps,
    frame_clips,
    set_frame_token_attention,
    storyboard_part,
)
from ..models.planner import check_planner, grid_to_tokens
from ..models.text_encoder import unknown_words
from ..models.vae import StreamingDecoder
from ..schedulers import PerFrameFlowMatch
from .adapters import check_adapter
from .pipeline_output import T2VPipelineOutput, T2VStream

logger = logging.get_logger(__name__)

EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> from t2v import T2VPipeline, default_model_path
        >>> pipe = T2VPipeline.from_pretrained(default_model_path())
        >>> out = pipe("a red circle bounces left and right", seconds=4, generator=torch.Generator().manual_seed(0))
        >>> out.frames.shape  # (batch, frames, height, width, 3), floats in [0, 1]
        (1, 32, 64, 64, 3)
        ```
"""

OUTPUT_TYPES = ("np", "pt", "pil", "latent")
STITCHING = ("fifo", "clips", "single")
RENDER_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of video [{elapsed}<{remaining}]"


def _first_sentence(err: Exception) -> str:
    """The first sentence of an exception's message, on one line."""
    text = " ".join(str(err).split()).split(". ")[0].rstrip(".")
    if text.count("(") > text.count(")"):  # cut an aside that the first sentence leaves open
        text = text[: text.rfind(" (")]
    return (text or type(err).__name__) + "."


def _class_name(path: str) -> str | None:
    """The `_class_name` of a local pipeline folder's model_index.json, or None where there is none to read."""
    try:
        return json.loads((Path(path) / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def write_folder(output_dir: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """`write(folder)` into a temporary folder beside `output_dir`, then renamed over it: a crash mid-write never
    leaves a half-written folder. Its files get the umask's permissions (safetensors writes them owner-only)."""
    output_dir = Path(output_dir)
    partial = output_dir.with_name(f".{output_dir.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write(partial)
    except BaseException:  # nothing half-written is left behind, not even under the temporary name
        shutil.rmtree(partial, ignore_errors=True)
        raise
    umask = os.umask(0)
    os.umask(umask)
    for file in partial.rglob("*"):
        if file.is_file():
            file.chmod(0o666 & ~umask)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(partial, output_dir)
    return output_dir


def _on_cpu(tokens: torch.Tensor | None) -> torch.Tensor | None:
    return None if tokens is None else tokens.float().cpu()


@dataclass
class _Call:
    """One call of `T2VPipeline`, as steps 1-4 (`_start`) leave it for steps 5-7 (`_render`).

    Made once the inputs are checked and the sizes known (step 2); step 3 adds the prompt embeddings and
    step 4 the planned tokens. The callback may replace `prompt_embeds` / `negative_prompt_embeds` mid-run.
    """

    device: torch.device
    batch_size: int
    num_frames: int  # pixel frames the call yields in all
    fps: float
    num_clips: int
    window: int  # latent frames per clip, f
    latent_shape: tuple[int, int, int, int, int]  # (B, C, latent frames, H/8, W/8)
    storyboard_frames: float  # the frames that the storyboard's parts divide (see `storyboard_part`)
    num_inference_steps: int
    guidance_scale: float
    stitching: str
    lookahead: bool
    max_windows: int | None  # FIFO windows in one denoiser call at most (None: all of an iteration's)
    generator: torch.Generator | list[torch.Generator] | None
    latents: torch.Tensor | None  # the starting noise given, if any
    attention_kwargs: dict[str, Any] | None
    callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None
    callback_on_step_end_tensor_inputs: list[str]
    decode: bool  # False for output_type="latent"
    prompt_embeds: torch.Tensor | None = None  # step 3
    negative_prompt_embeds: torch.Tensor | None = None  # step 3, with guidance
    storyboard_embeds: torch.Tensor | None = None  # step 3, one prompt per part of the storyboard
    tokens: torch.Tensor | None = None  # step 4: (B, clips, K, token_dim); None without a planner


class T2VPipeline(DiffusionPipeline, WanLoraLoaderMixin):
    r"""
    Text-to-video in two stages: a token planner for the whole video, then a DiT per clip.

    LoRA adapters of the denoiser (diffusers/peft format, as `training/train_to2v.py --train_mode lora`
    writes them) load with `pipe.load_lora_weights(folder)`.

    Without a planner (`video_tokenizer`, `token_codec` and `planner` all None) the denoiser follows the text
    alone: that is a plain Wan2.1 model (`T2VPipeline.from_wan`), given FIFO, storyboards and sparse attention.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]): tokenizer of the text encoder.
        text_encoder ([`~transformers.PreTrainedModel`]): a transformers text encoder (UMT5, T5, CLIP text).
        video_tokenizer ([`VideoTokenizer`], *optional*): condenses a clip's latents into K tokens (used in training and to
            encode reference videos).
        token_codec ([`TokenCodec`], *optional*): PCA map between the tokenizer's tokens and the planner's channels.
        planner ([`~diffusers.WanTransformer3DModel`], *optional*): the T2To token-diffusion transformer, patch (1, 1, 1).
        transformer ([`~diffusers.WanTransformer3DModel`]): the To2V denoiser, with the image branch for tokens.
        vae ([`~diffusers.AutoencoderKLWan`]): the 3D causal VAE.
        scheduler ([`~diffusers.FlowMatchEulerDiscreteScheduler`]): the flow-matching schedule of both stages.
        fps (`int`): frames per second the model was trained at.
        clip_frames (`int`): frames of one clip (1 + 4·n for the causal VAE).
        height, width (`int`): the default resolution.
        trained_on (`str`): one line saying what the weights were trained on, shown by `t2v info`.
        text_context_length (`int`): text tokens the prompt is padded (or cut) to; Wan's is 512.
        caption_grammar (`str`, *optional*): the caption grammar the model was trained on, if any ("shapes": the
            Shapes world's, whose captions with changes `t2v generate` splits into a storyboard).
    """

    model_cpu_offload_seq = "text_encoder->planner->transformer"
    _optional_components = ["video_tokenizer", "token_codec", "planner"]
    # small parts called through methods other than forward, which offloading hooks do not see: they stay on the
    # device (the VAE decodes a frame between every two FIFO iterations, so it would travel back and forth)
    _exclude_from_cpu_offload = ["video_tokenizer", "token_codec", "vae"]
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        video_tokenizer: VideoTokenizer | None,
        token_codec: TokenCodec | None,
        planner: WanTransformer3DModel | None,
        transformer: WanTransformer3DModel,
        vae: AutoencoderKLWan,
        scheduler: FlowMatchEulerDiscreteScheduler,
        fps: int = 8,
        clip_frames: int = 17,
        height: int = 64,
        width: int = 64,
        trained_on: str = "unknown",
        text_context_length: int = TEXT_CONTEXT_LENGTH,
        caption_grammar: str | None = None,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            video_tokenizer=video_tokenizer,
            token_codec=token_codec,
            planner=planner,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
        )
        self.register_to_config(fps=fps, clip_frames=clip_frames, height=height, width=width, trained_on=trained_on,
                                text_context_length=text_context_length, caption_grammar=caption_grammar)
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial
        if (clip_frames - 1) % self.vae_scale_factor_temporal:
            raise ValueError(f"clip_frames must be 1 + a multiple of {self.vae_scale_factor_temporal}, got {clip_frames}.")
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        token_parts = (video_tokenizer, token_codec, planner)
        if all(part is None for part in token_parts):  # the planner off: the text alone
            check_denoiser(transformer, vae.config.z_dim, None)
            return
        if any(part is None for part in token_parts):
            raise ValueError("video_tokenizer, token_codec and planner go together: give all three, or none for a model "
                             "that follows the text alone.")
        check_denoiser(transformer, vae.config.z_dim, video_tokenizer.config.token_dim)
        check_planner(planner, token_codec.config.codec_dim, tuple(video_tokenizer.config.grid))
        if token_codec.config.token_dim != video_tokenizer.config.token_dim:
            raise ValueError(
                f"The token codec expects {token_codec.config.token_dim}-channel tokens but the video tokenizer "
                f"makes {video_tokenizer.config.token_dim}."
            )
        # a FIFO window may straddle two clips: each latent frame then reads its own clip's tokens
        set_frame_token_attention(transformer, video_tokenizer.num_tokens, text_context_length)

    # ------------------------------------------------------------------------------------------------
    # Loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "T2VPipeline":
        """Load a saved pipeline; a local folder is checked first so that a broken one fails in one sentence.

        A name that is not a local folder is passed to diffusers as a hub id (downloaded only because
        the caller named it).
        """
        path = os.fspath(pretrained_model_name_or_path)
        if is_hub_id(path):
            try:
                if DiffusionPipeline.load_config(path).get("_class_name") == "WanPipeline":
                    return cls.from_wan(path, **kwargs)
                return super().from_pretrained(path, **kwargs)
            except Exception as err:
                raise ValueError(f"No model folder at {path}, and it could not be loaded as a hub id: {_first_sentence(err)}") from err
        if _class_name(path) == "WanPipeline":
            return cls.from_wan(path, **kwargs)
        index = read_model_index(path, cls.__name__, "t2v model")
        if any(isinstance(spec, list) and str(spec[0]).startswith("t2v.tokenizers.") for spec in index.values()):
            # a folder saved before the video tokenizer and the codec moved to t2v.models names their old modules
            sys.modules.setdefault("t2v.tokenizers.video_tokenizer", sys.modules[VideoTokenizer.__module__])
            sys.modules.setdefault("t2v.tokenizers.token_codec", sys.modules[TokenCodec.__module__])
        try:
            pipe = super().from_pretrained(path, **kwargs)
        except Exception as err:  # diffusers, transformers and safetensors each raise their own kinds
            raise ValueError(f"Could not load the model in {path}: {_first_sentence(err)}") from err
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module):
                empty = [n for n, t in (*component.named_parameters(), *component.named_buffers()) if t.is_meta]
                if empty:
                    raise ValueError(
                        f"Could not load the model in {path}: the {name} has no weights for {len(empty)} tensors "
                        f"(such as {empty[0]}), so its config does not match its weights."
                    )
        return pipe

    @classmethod
    def from_wan(cls, wan: str | os.PathLike, torch_dtype: torch.dtype | None = None, dtype: torch.dtype | None = None,
                 **config) -> "T2VPipeline":
        """A diffusers Wan2.1 text-to-video folder (or a hub id the caller names) as it stands, the planner off.

        `config` may set fps, clip_frames, height and width (Wan2.1's 16, 81, 480, 832 otherwise). See
        `t2v.pipelines.wan_base.load_wan`. `from_pretrained` hands a WanPipeline folder here.
        """
        from .wan_base import load_wan

        dtype = torch_dtype or dtype or torch.float32
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"A Wan folder loads in one dtype (such as torch.bfloat16), got {dtype!r}.")
        try:
            return load_wan(wan, torch_dtype=dtype, **config)
        except TypeError as err:
            raise ValueError(f"A Wan folder takes only fps, clip_frames, height, width and a dtype: {_first_sentence(err)}") from err

    def export(self, output_dir: str | os.PathLike, trained_on: str | None = None) -> Path:
        """`save_pretrained` under a temporary name, then renamed over `output_dir`: a crash mid-save never
        leaves a half-written model. `trained_on` replaces the line `t2v info` prints about the weights."""
        if trained_on is not None:
            self.register_to_config(trained_on=trained_on)
        return write_folder(output_dir, self.save_pretrained)

    def load_lora_weights(self, pretrained_model_name_or_path_or_dict, adapter_name=None, **kwargs):
        """diffusers' LoRA loading for the denoiser, after checking that a t2v adapter folder was made on this
        model (`t2v.pipelines.adapters`): an adapter of another model is refused in one sentence."""
        if isinstance(pretrained_model_name_or_path_or_dict, (str, os.PathLike)):
            check_adapter(self, pretrained_model_name_or_path_or_dict)
        return super().load_lora_weights(pretrained_model_name_or_path_or_dict, adapter_name=adapter_name, **kwargs)

    def enable_offload(self, mode: str, device: str | torch.device = "cuda") -> None:
        """Keep the weights in CPU memory and bring them to `device` when they are used: "model" moves a whole
        component at a time (diffusers' `enable_model_cpu_offload`); "sequential" one layer at a time, for a GPU
        that cannot hold the largest component (diffusers' leaf-level group offloading, which overlaps the copies
        with compute on CUDA streams). The video tokenizer, codec and VAE, small and called between every two
        denoiser calls, stay on `device`."""
        device = torch.device(device)
        if mode == "model":
            self.enable_model_cpu_offload(device=device)
        elif mode == "sequential":
            kept = [name for name in self._exclude_from_cpu_offload if getattr(self, name) is not None]
            self.enable_group_offload(device, offload_type="leaf_level", use_stream=device.type == "cuda", exclude_modules=kept)
        else:
            raise ValueError(f"offload must be 'model' or 'sequential', got {mode!r}.")

    # ------------------------------------------------------------------------------------------------
    # Attention

    def enable_sparse_attention(self, density: float = 0.25, mode: str = "semantic", plan=None, **options) -> None:
        """Sparse, reordered self-attention in the denoiser (and, in semantic mode, the planner).

        See `t2v.attention.enable_sparse_attention` for `density`, `mode` and `options`. "paro" reads the
        plan that `t2v calibrate-attention` saved beside the denoiser (`transformer/attention_plan.safetensors`)
        unless `plan` names another. `mode="dense"` turns sparse attention off.
        """
        if mode == "dense":
            return self.disable_sparse_attention()
        if mode == "paro":
            if plan is None:
                folder = getattr(self.transformer.config, "_name_or_path", None)
                if not folder:
                    raise ValueError("paro attention needs a plan: this denoiser was not loaded from a folder, so pass plan=PATH.")
                plan = Path(folder) / PLAN_NAME
            enable_sparse_attention(self.transformer, density, mode, plan=plan, **options)
            return
        enable_sparse_attention(self.transformer, density, mode, **options)
        if self.planner is not None:
            enable_sparse_attention(self.planner, density, mode, **options)

    def disable_sparse_attention(self) -> None:
        """Dense self-attention everywhere again."""
        disable_sparse_attention(self.transformer)
        if self.planner is not None:
            disable_sparse_attention(self.planner)

    # ------------------------------------------------------------------------------------------------
    # Prompt encoding

    def _text_embeds(self, prompt: list[str], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        length = self.config.text_context_length
        if max(len(ids) for ids in self.tokenizer(prompt).input_ids) > length:
            logger.warning(f"A prompt is longer than this model's {length} text tokens; the rest of it is left out.")
        inputs = self.tokenizer(
            prompt,
            padding="longest",
            max_length=length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
        hidden = self.text_encoder(ids, mask).last_hidden_state.to(device=device, dtype=dtype)
        # Wan's convention: keep each prompt's real tokens and pad with zeros to the fixed context length.
        hidden = hidden * mask.to(device=device, dtype=dtype).unsqueeze(-1)
        return torch.nn.functional.pad(hidden, (0, 0, 0, length - hidden.shape[1]))

    def encode_prompt(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode prompts (and negative prompts for guidance) to (B, text_context_length, text_dim) embeddings (Wan: 512)."""
        device = device or self._execution_device
        dtype = dtype or self.transformer.dtype
        prompt = [prompt] if isinstance(prompt, str) else list(prompt)
        prompt_embeds = self._text_embeds(prompt, device, dtype)
        negative_prompt_embeds = None
        if do_classifier_free_guidance:
            negative_prompt = negative_prompt or ""
            if isinstance(negative_prompt, str):
                negative_prompt = [negative_prompt] * len(prompt)
            if len(negative_prompt) != len(prompt):
                raise ValueError(f"Got {len(negative_prompt)} negative prompts for {len(prompt)} prompts; give one each.")
            negative_prompt_embeds = self._text_embeds(list(negative_prompt), device, dtype)
        return prompt_embeds, negative_prompt_embeds

    # ------------------------------------------------------------------------------------------------
    # Checks and sizes

    def check_inputs(
        self,
        prompt,
        negative_prompt,
        num_frames,
        seconds,
        fps,
        height,
        width,
        num_inference_steps,
        guidance_scale,
        planner_steps,
        planner_guidance_scale,
        stitching,
        lookahead,
        callback_on_step_end_tensor_inputs,
        storyboard=None,
    ) -> None:
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be a non-empty string or a list of them.")
        if any(not p.strip() for p in prompts):
            raise ValueError("prompt is empty; describe the video you want.")
        if storyboard is not None and not is_prompt_list(storyboard):
            raise ValueError("storyboard must be a non-empty list of prompts, one per part of the video.")
        if negative_prompt is not None and not isinstance(negative_prompt, (str, list, tuple)):
            raise ValueError("negative_prompt must be a string or a list of strings.")
        if num_frames is not None and seconds is not None:
            raise ValueError("Give either num_frames or seconds, not both.")
        if num_frames is not None:
            positive_number("num_frames", num_frames, integer=True)
        if seconds is not None:
            positive_number("seconds", seconds)
        positive_number("fps", fps)
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % multiple:
                raise ValueError(f"{name} must be a positive multiple of {multiple} (the VAE's 8x times the 2x patch), got {value!r}.")
        positive_number("num_inference_steps", num_inference_steps, integer=True)
        positive_number("planner_steps", planner_steps, integer=True)
        finite_number("guidance_scale", guidance_scale)
        finite_number("planner_guidance_scale", planner_guidance_scale)
        if stitching not in STITCHING:
            raise ValueError(f"stitching must be one of {', '.join(STITCHING)}, got {stitching!r}.")
        if not isinstance(lookahead, bool):
            raise ValueError(f"lookahead must be True or False, got {lookahead!r}.")
        if callback_on_step_end_tensor_inputs is not None:
            unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
            if unknown:
                raise ValueError(f"callback_on_step_end_tensor_inputs may name only {self._callback_tensor_inputs}, got {unknown}.")

    def _warn_outside_training(self, prompt, storyboard, height: int, width: int, fps: float) -> None:
        """One warning each for words the text tokenizer does not know and for a size or frame rate the model was
        not trained at: the call goes on, but the video will not show what was asked."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        unknown = list(dict.fromkeys(w for p in [*prompts, *(storyboard or [])] for w in unknown_words(self.tokenizer, p)))
        if unknown:
            logger.warning(f"This model does not know the words {', '.join(map(repr, unknown))}: it reads them as unknown and "
                           "draws without them (`t2v info` lists the words it knows).")
        cfg = self.config
        if (height, width) != (cfg.height, cfg.width) or fps != cfg.fps:
            logger.warning(f"This model was trained at {cfg.width}x{cfg.height}, {cfg.fps:g} fps; {width}x{height} at {fps:g} fps is "
                           "outside what it knows, so expect a poorer video (and a longer wait at a higher frame rate).")

    def num_frames_for(self, num_frames: int | None, seconds: float | None, fps: float) -> int:
        """The number of frames a call makes: num_frames, or round(seconds·fps), or one clip."""
        if num_frames is not None:
            return int(num_frames)
        if seconds is not None:
            return max(1, round(seconds * fps))
        return self.config.clip_frames

    def _windows_that_fit(self, call: _Call) -> int | None:
        """How many FIFO windows one denoiser call can take in the GPU memory free now: a rough estimate, per token
        ~40 bytes a channel (diffusers' per-token timestep projections in float32, the residual stream) and 2 bytes
        per feed-forward channel, times the batch and guidance's double batch, within half the free memory. None
        off CUDA."""
        if call.device.type != "cuda":
            return None
        cfg = self.transformer.config
        _, _, _, height, width = call.latent_shape
        tokens = call.window * (height // cfg.patch_size[1]) * (width // cfg.patch_size[2])
        per_window = tokens * (40 * cfg.num_attention_heads * cfg.attention_head_dim + 2 * cfg.ffn_dim)
        per_window *= call.batch_size * (2 if call.guidance_scale > 1.0 else 1)
        free, _ = torch.cuda.mem_get_info(call.device)
        return max(1, int(free // 2 // per_window))

    @property
    def latent_frames_per_clip(self) -> int:
        return (self.config.clip_frames - 1) // self.vae_scale_factor_temporal + 1

    # ------------------------------------------------------------------------------------------------
    # Stages

    def _guided(self, model, latents, timestep, prompt_embeds, negative_prompt_embeds, guidance_scale, **kwargs):
        """One model call with classifier-free guidance on the text, conditional and unconditional in one batch.

        The tokens (`encoder_hidden_states_image`), if any, go to both halves.
        """
        if negative_prompt_embeds is None:
            return model(hidden_states=latents, timestep=timestep, encoder_hidden_states=prompt_embeds, return_dict=False, **kwargs)[0]
        if kwargs.get("encoder_hidden_states_image") is not None:
            kwargs["encoder_hidden_states_image"] = kwargs["encoder_hidden_states_image"].repeat(2, 1, 1)
        pred = model(
            hidden_states=latents.repeat(2, 1, 1, 1, 1),
            timestep=timestep.repeat(2, *[1] * (timestep.ndim - 1)),
            encoder_hidden_states=torch.cat([prompt_embeds, negative_prompt_embeds]),
            return_dict=False,
            **kwargs,
        )[0]
        cond, uncond = pred.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def _bar(self, total: float, desc: str, **kwargs) -> tqdm:
        """A progress bar honouring `set_progress_bar_config` (disable, leave, ...), with its own description."""
        return tqdm(total=total, **{**getattr(self, "_progress_bar_config", {}), "desc": desc, **kwargs})

    def plan(self, prompt_embeds, negative_prompt_embeds, num_clips, num_steps, guidance_scale, generator, progress_bar=None):
        """Token diffusion over all clips at once -> tokens (B, clips, K, token_dim) in the tokenizer's space."""
        if self.planner is None:
            raise ValueError("This model has no planner: it follows the text alone.")
        grid = tuple(self.video_tokenizer.config.grid)
        device, dtype = prompt_embeds.device, self.planner.dtype
        shape = (prompt_embeds.shape[0], self.token_codec.config.codec_dim, num_clips * grid[0], grid[1], grid[2])
        if shape[2] > self.planner.config.rope_max_seq_len:
            max_clips = self.planner.config.rope_max_seq_len // grid[0]
            raise ValueError(f"This planner can plan at most {max_clips} clips, and the video needs {num_clips}.")
        codes = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        sampler = PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config), num_steps, device)
        for i in range(num_steps):
            index = torch.full((shape[2],), i, device=device, dtype=torch.long)
            timestep = sampler.timesteps_at(index[:1]).expand(shape[0])
            pred = self._guided(self.planner, codes, timestep, prompt_embeds, negative_prompt_embeds, guidance_scale)
            codes = sampler.step(pred, codes, index)
            if progress_bar is not None:
                progress_bar.update()
        codec_device = self.token_codec.mean.device
        tokens = self.token_codec.decode(grid_to_tokens(codes, grid).to(codec_device, torch.float32))
        return tokens.to(device=device, dtype=self.transformer.dtype)

    def encode_video_tokens(self, latents: torch.Tensor, num_clips: int) -> torch.Tensor:
        """Condensed tokens of normalised latents (B, C, clips·frames, H, W) -> (B, clips, K, token_dim)."""
        if self.video_tokenizer is None:
            raise ValueError("This model has no video tokenizer: it follows the text alone.")
        clips = latents.chunk(num_clips, dim=2)
        return torch.stack([self.video_tokenizer(clip.to(self.video_tokenizer.dtype)) for clip in clips], dim=1)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, F, H, W) of one causal video (output_type="latent") -> video (B, 3, frames, H, W) in [-1, 1]."""
        return StreamingDecoder(self.vae).decode(latents)

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self):
        return self._guidance_scale > 1.0

    @property
    def interrupt(self):
        return self._interrupt

    # ------------------------------------------------------------------------------------------------
    # Generation

    def _start(
        self,
        *,
        prompt,
        negative_prompt,
        num_frames,
        seconds,
        fps,
        height,
        width,
        num_inference_steps,
        guidance_scale,
        planner_steps,
        planner_guidance_scale,
        stitching,
        lookahead,
        max_windows_per_call,
        storyboard,
        generator,
        latents,
        attention_kwargs,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        decode,
    ) -> _Call:
        """Steps 1-4 of a call, done at once; returns the `_Call` that steps 5-7 (`_render`) read lazily."""
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        fps = self.config.fps if fps is None else fps
        height = self.config.height if height is None else height
        width = self.config.width if width is None else width

        # 1. Check inputs
        self.check_inputs(
            prompt,
            negative_prompt,
            num_frames,
            seconds,
            fps,
            height,
            width,
            num_inference_steps,
            guidance_scale,
            planner_steps,
            planner_guidance_scale,
            stitching,
            lookahead,
            callback_on_step_end_tensor_inputs,
            storyboard,
        )
        self._guidance_scale = guidance_scale
        self._interrupt = False

        # 2. Define call parameters
        device = self._execution_device
        batch_size = 1 if isinstance(prompt, str) else len(prompt)
        num_frames = self.num_frames_for(num_frames, seconds, float(fps))
        window = self.latent_frames_per_clip
        if stitching == "clips":  # independent clips, each decoded on its own
            num_clips = math.ceil(num_frames / self.config.clip_frames)
            num_latent_frames = num_clips * window
        else:  # one causal latent video; clip c of the plan covers latent frames [c·f, (c+1)·f)
            num_latent_frames = 1 + math.ceil((num_frames - 1) / self.vae_scale_factor_temporal)
            num_clips = math.ceil(num_latent_frames / window)
        latent_shape = (
            batch_size,
            self.transformer.config.in_channels,
            num_latent_frames,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        if latents is not None and tuple(latents.shape) != latent_shape:
            raise ValueError(f"latents must have shape {latent_shape} for this call, got {tuple(latents.shape)}.")
        call = _Call(
            device=device,
            batch_size=batch_size,
            num_frames=num_frames,
            fps=float(fps),
            num_clips=num_clips,
            window=window,
            latent_shape=latent_shape,
            # independent clips hold clip_frames pixel frames in `window` latent frames, not window·4
            storyboard_frames=num_frames * (window * self.vae_scale_factor_temporal / self.config.clip_frames if stitching == "clips" else 1),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            stitching=stitching,
            lookahead=lookahead,
            max_windows=max_windows_per_call,
            generator=generator,
            latents=latents,
            attention_kwargs=attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            decode=decode,
        )

        if max_windows_per_call is None:
            call.max_windows = self._windows_that_fit(call)
        else:
            positive_number("max_windows_per_call", max_windows_per_call, integer=True)
        self._warn_outside_training(prompt, storyboard, height, width, float(fps))
        if lookahead and stitching != "clips" and num_inference_steps <= (window + 1) // 2:
            logger.warning(f"lookahead changes nothing with {num_inference_steps} steps and windows of {window} latent frames: "
                           f"it needs more than {(window + 1) // 2} steps.")

        # 3. Encode the prompt (and, with a storyboard, the prompt of every part)
        call.prompt_embeds, call.negative_prompt_embeds = self.encode_prompt(
            prompt, negative_prompt, guidance_scale > 1.0 or planner_guidance_scale > 1.0, device
        )
        if storyboard is not None:
            call.storyboard_embeds = self.encode_prompt(list(storyboard), None, False, device)[0]

        # 4. Plan the condensed tokens of every clip in one go (with a storyboard: each part's clips from its prompt)
        if self.planner is None:  # the text alone
            return call
        negative = None if planner_guidance_scale <= 1.0 else call.negative_prompt_embeds.to(self.planner.dtype)
        if call.storyboard_embeds is None:
            texts, counts = call.prompt_embeds[None], [num_clips]
        else:
            clip_frames = torch.arange(num_clips)[:, None] * window + torch.arange(window)
            clip_part = storyboard_part(clip_frames, len(storyboard), call.storyboard_frames, self.vae_scale_factor_temporal)
            texts = call.storyboard_embeds[:, None].expand(-1, batch_size, -1, -1)
            counts = torch.bincount(clip_part, minlength=len(storyboard)).tolist()
            if 0 in counts:
                logger.warning(f"{counts.count(0)} of the storyboard's {len(storyboard)} parts are shorter than one clip "
                               f"({self.config.clip_frames} frames) and are planned with no clip of their own: give fewer parts "
                               "or a longer video.")
        with self._bar(planner_steps * sum(map(bool, counts)), "planning", unit="step") as bar:
            call.tokens = torch.cat([
                self.plan(text.to(self.planner.dtype), negative, count, planner_steps, planner_guidance_scale, generator, bar)
                for text, count in zip(texts, counts) if count
            ], dim=1)
        return call

    def _noise(self, call: _Call, frame: int) -> torch.Tensor:
        """Step 5: the starting noise (B, C, H, W) of one latent frame, drawn as it joins (or read from the latents given)."""
        dtype = self.transformer.dtype
        if call.latents is not None:
            return call.latents[:, :, frame].to(device=call.device, dtype=dtype)
        return randn_tensor(call.latent_shape[:2] + call.latent_shape[3:], generator=call.generator, device=call.device, dtype=dtype)

    def _predict(self, call: _Call, x: torch.Tensor, timesteps: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
        """Step 6: one guided denoiser call on windows of latent frames (see `t2v.fifo.Predict`).

        Every latent frame follows the planned tokens of its own clip, and the video's latent frame 0 the
        tokenizer's start tokens if it has them; with a storyboard, each window reads the prompt of its part.
        """
        windows, frame_tokens, per_frame = frame_index.shape[0], None, contextlib.nullcontext()
        if call.tokens is not None:
            index = frame_index.to(call.tokens.device)
            tokens, clips = self.video_tokenizer.with_start_tokens(call.tokens, index // call.window, index == 0)
            if (clips == clips[0, 0]).all():  # one clip: its K tokens, exactly as in training
                frame_tokens = tokens[:, clips[0, 0]].repeat(windows, 1, 1)
            else:  # each window's clips once, and which of them each latent frame reads (FrameTokenAttnProcessor)
                local = clips - clips[:, :1]
                chosen = (clips[:, :1] + torch.arange(int(local.max()) + 1, device=clips.device)).clamp(max=tokens.shape[1] - 1)
                frame_tokens = tokens[:, chosen].transpose(0, 1).flatten(0, 1).flatten(1, 2)  # (windows·B, G·K, D)
                per_frame = frame_clips(self.transformer, local.repeat_interleave(call.batch_size, dim=0))
        negative = call.negative_prompt_embeds if call.guidance_scale > 1.0 else None
        if call.storyboard_embeds is None:
            text = call.prompt_embeds.repeat(windows, 1, 1)
        else:  # each window reads the prompt of its part of the storyboard
            parts = call.storyboard_embeds
            part = storyboard_part(frame_index, parts.shape[0], call.storyboard_frames, self.vae_scale_factor_temporal)
            text = parts[part.to(parts.device)].repeat_interleave(x.shape[0] // windows, dim=0)
        with per_frame:
            return self._guided(
                self.transformer,
                x,
                expand_frame_timesteps(timesteps, x.shape, self.transformer.config.patch_size),
                text,
                None if negative is None else negative.repeat(windows, 1, 1),
                call.guidance_scale,
                encoder_hidden_states_image=frame_tokens,
                attention_kwargs=call.attention_kwargs,
            )

    def _on_step(self, call: _Call, step: int, timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Step 6, after each step: the user's callback sees the latents and may replace them or the prompt embeddings."""
        if call.callback_on_step_end is None:
            return latents
        callback_kwargs = {
            "latents": latents,
            "prompt_embeds": call.prompt_embeds,
            "negative_prompt_embeds": call.negative_prompt_embeds,
        }
        callback_kwargs = {k: callback_kwargs[k] for k in call.callback_on_step_end_tensor_inputs}
        outputs = call.callback_on_step_end(self, step, timestep, callback_kwargs) or {}
        # replaced prompt embeddings hold for the rest of the call
        call.prompt_embeds = outputs.get("prompt_embeds", call.prompt_embeds)
        call.negative_prompt_embeds = outputs.get("negative_prompt_embeds", call.negative_prompt_embeds)
        return outputs.get("latents", latents)

    @torch.no_grad()  # on a generator function, torch enters and leaves no_grad around every resumption
    def _denoised_frames(self, call: _Call) -> Iterator[tuple[int, torch.Tensor]]:
        """Steps 5-6: yields (clip, clean latent frame (B, C, 1, H, W)) in order; the clip is 0 except for independent clips."""
        noise, predict, on_step = partial(self._noise, call), partial(self._predict, call), partial(self._on_step, call)
        # a copy of the scheduler, so that streams made from one pipeline do not share its state
        sampler = PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config), call.num_inference_steps, call.device)
        num_latent_frames = call.latent_shape[2]
        if call.stitching == "clips":  # each clip denoised on its own window, its frames drawn as it starts
            for c in range(num_latent_frames // call.window):
                frames = torch.arange(c * call.window, (c + 1) * call.window)
                start = torch.stack([noise(a) for a in frames.tolist()], dim=2)
                clip = denoise_window(predict, start, sampler, frames, on_step=on_step)
                yield from ((c, frame) for frame in clip.split(1, dim=2))
        else:  # the FIFO queue ("single": one window as long as the video)
            window = num_latent_frames if call.stitching == "single" else call.window
            fifo = FIFOSampler(predict, sampler, window, call.lookahead, call.max_windows)
            yield from ((0, frame) for frame in fifo(noise, num_latent_frames, on_step=on_step))

    @torch.no_grad()  # on a generator function, torch enters and leaves no_grad around every resumption
    def _render(self, call: _Call) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Steps 5-7, one latent frame at a time: yields (latent frame, its pixels, or None without decoding)."""
        # 5.-6. Noise and denoising (`_noise`, `_predict`, `_on_step`): clean latent frames, in order
        frames = self._denoised_frames(call)

        # 7. Decode each latent frame as it leaves (the causal VAE's cache carries the video on)
        made, decoder, clip = 0, StreamingDecoder(self.vae), 0
        with self._bar(call.num_frames, "rendering", unit="s", unit_scale=1.0 / call.fps, bar_format=RENDER_BAR) as bar:
            for c, latent in frames:
                if self.interrupt or made >= call.num_frames:
                    break
                if not call.decode:
                    yield latent, None
                    continue
                if c != clip:  # independent clips start the decoder afresh
                    decoder, clip = StreamingDecoder(self.vae), c
                pixels = decoder.decode(latent)[:, :, : call.num_frames - made]
                made += pixels.shape[2]
                bar.update(pixels.shape[2])  # counted in frames, shown in seconds of video
                yield latent, pixels
        self.maybe_free_model_hooks()

    @torch.no_grad()
    def stream(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_frames: int | None = None,
        seconds: float | None = None,
        fps: float | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 5.0,
        planner_steps: int = 25,
        planner_guidance_scale: float = 3.0,
        stitching: str = "fifo",
        lookahead: bool = False,
        max_windows_per_call: int | None = None,
        storyboard: list[str] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[int, int], None] | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> T2VStream:
        r"""
        Plan a video now and make its frames as they are read: memory stays flat for any length.

        Takes the arguments of `__call__` except `output_type` and `return_dict`. Returns a [`T2VStream`]:
        iterate it to get (batch, n, height, width, 3) float frames in order; `pipe(...)` gathers the same
        frames into one array.
        """
        call = self._start(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_frames=num_frames,
            seconds=seconds,
            fps=fps,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            planner_steps=planner_steps,
            planner_guidance_scale=planner_guidance_scale,
            stitching=stitching,
            lookahead=lookahead,
            max_windows_per_call=max_windows_per_call,
            storyboard=storyboard,
            generator=generator,
            latents=latents,
            attention_kwargs=attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            decode=True,
        )
        chunks = (self.video_processor.postprocess_video(pixels.float(), output_type="np") for _, pixels in self._render(call))
        return T2VStream(tokens=_on_cpu(call.tokens), num_frames=call.num_frames, fps=call.fps, chunks=chunks)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_frames: int | None = None,
        seconds: float | None = None,
        fps: float | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 5.0,
        planner_steps: int = 25,
        planner_guidance_scale: float = 3.0,
        stitching: str = "fifo",
        lookahead: bool = False,
        max_windows_per_call: int | None = None,
        storyboard: list[str] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[int, int], None] | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> T2VPipelineOutput | tuple:
        r"""
        Generate a video from a prompt.

        Steps 1-4 (check, encode, plan) run first; steps 5-7 (noise, FIFO denoising, decoding) make one latent
        frame at a time, the same code that `stream` runs. For long videos prefer `stream`: this call holds
        every frame in memory.

        Args:
            prompt (`str` or `list[str]`): what the video shows.
            negative_prompt (`str` or `list[str]`, *optional*): what guidance steers away from (default: empty).
            num_frames (`int`, *optional*): frames to make; or give `seconds`. Default: one clip.
            seconds (`float`, *optional*): length of the video; frames = round(seconds · fps).
            fps (`float`, *optional*): frames per second of the result (default: the model's).
            height, width (`int`, *optional*): size in pixels, multiples of 16 (default: the model's).
            num_inference_steps (`int`): S, the steps every latent frame takes (and the FIFO queue's length).
            guidance_scale (`float`): classifier-free guidance of the denoiser (off at <= 1).
            planner_steps (`int`): denoising steps of the token planner.
            planner_guidance_scale (`float`): classifier-free guidance of the planner (off at <= 1).
            stitching (`str`): how clips join. "fifo": FIFO diagonal denoising, seamless, constant memory.
                "clips": every clip made and decoded on its own (visible seams). "single": all frames in one
                window (memory and time grow with the square of the length).
            lookahead (`bool`): FIFO lookahead denoising, about twice the model calls.
            max_windows_per_call (`int`, *optional*): FIFO windows denoised in one batched model call at most; fewer
                hold less memory and give the same video. Default: on a GPU, as many as its free memory holds by a
                rough estimate (`_windows_that_fit`); elsewhere all of an iteration's.
            storyboard (`list[str]`, *optional*): one prompt per equal part of the video in time, the same for
                every prompt of the batch (FIFO-Diffusion's multi-prompt generation). Each part's clips are
                planned from its prompt, and each window of the denoiser reads the prompt of the part that holds
                its middle latent frame (`storyboard_part`; a clip's part is the part of its middle latent frame),
                so no model reads `prompt` itself. (`t2v generate` splits a caption with changes into its parts
                for a model trained on the Shapes grammar.)
            generator (`torch.Generator`, *optional*): makes the call deterministic.
            latents (`torch.Tensor`, *optional*): the starting noise of every latent frame, (B, C, L, H/8, W/8).
            output_type (`str`): "np", "pt", "pil" or "latent".
            return_dict (`bool`): return a [`T2VPipelineOutput`] rather than a tuple.
            attention_kwargs (`dict`, *optional*): passed to the denoiser (LoRA scale).
            callback_on_step_end (`Callable`, *optional*): called as `callback(pipe, step, timestep, callback_kwargs)`
                after each step of the first window and after each FIFO iteration (then "latents" holds the frames
                in the queue); may return replacements for the tensors.
            callback_on_step_end_tensor_inputs (`list[str]`): tensors given to the callback.

        Examples:
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}.")
        # steps 1-4: check, sizes, prompt, plan
        call = self._start(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_frames=num_frames,
            seconds=seconds,
            fps=fps,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            planner_steps=planner_steps,
            planner_guidance_scale=planner_guidance_scale,
            stitching=stitching,
            lookahead=lookahead,
            max_windows_per_call=max_windows_per_call,
            storyboard=storyboard,
            generator=generator,
            latents=latents,
            attention_kwargs=attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            decode=output_type != "latent",
        )
        # steps 5-7: noise, denoising, decoding, gathered in CPU memory as they are made (a GPU holds only the queue)
        parts = [pixels.cpu() if call.decode else latent.cpu() for latent, pixels in self._render(call)]
        if output_type == "latent":
            video = torch.cat(parts, dim=2)
        else:
            video = self.video_processor.postprocess_video(torch.cat(parts, dim=2).float(), output_type=output_type)
        tokens = _on_cpu(call.tokens)
        if not return_dict:
            return (video, tokens)
        return T2VPipelineOutput(frames=video, tokens=tokens)
