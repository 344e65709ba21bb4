"""Denoiser To2V: a Wan DiT that renders a clip from the text and the clip's condensed tokens.

The To2V stage of TokensGen. It is diffusers' `WanTransformer3DModel` as it stands, so Wan2.1
weights in diffusers format load as its base: text enters through cross-attention; the clip's
condensed tokens enter through Wan's decoupled image branch (`image_dim` = token channels,
`added_kv_proj_dim` = the model width), whose keys and values are added beside the text's. Wan's
attention processor takes the last 512 context tokens as text, so prompts are padded to 512; a
model trained from scratch may pad to fewer (`FrameTokenAttnProcessor(text_length=...)`, the
pipeline's `text_context_length`), which makes cross-attention that much cheaper.

Frames of one window may sit at different noise levels (FIFO-Diffusion): diffusers' Wan accepts a
timestep per token, shaped (B, seq_len), and `expand_frame_timesteps` turns one timestep per latent
frame into that form.

A FIFO window can straddle two clips of the plan, so each latent frame must follow the tokens of
its own clip. `FrameTokenAttnProcessor` (installed on the cross-attention by the pipeline) lets the
caller pass K tokens per latent frame, (B, F·K, D) instead of (B, K, D): the queries of frame i then
attend only to the K tokens of frame i, beside the shared text. With K tokens it is exactly
diffusers' `WanAttnProcessor`; no weights change, so stock Wan checkpoints work with it. Inside
`frame_clips(transformer, clips)` the caller passes each window's clips once instead, (B, G·K, D)
with `clips` (B, F) naming the clip each frame reads: the token branch then projects G·K tokens, not
F·K (with Wan's 21-frame windows and two clips, a tenth).
"""

from contextlib import contextmanager

import torch
from diffusers import WanTransformer3DModel
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from ..compat import wan_added_kv, wan_qkv

TEXT_CONTEXT_LENGTH = 512  # fixed by diffusers' WanAttnProcessor when the image branch is present


def expand_frame_timesteps(timesteps: torch.Tensor, latent_shape: tuple[int, ...], patch_size) -> torch.Tensor:
    """Timesteps per latent frame (B, F) -> per token (B, F·h'·w') for latents shaped (B, C, F, H, W)."""
    _, _, frames, height, width = latent_shape
    p_t, p_h, p_w = patch_size
    if timesteps.ndim != 2 or timesteps.shape[1] != frames // p_t:
        raise ValueError(f"Expected one timestep per latent frame, shape (batch, {frames // p_t}), got {tuple(timesteps.shape)}.")
    tokens_per_frame = (height // p_h) * (width // p_w)
    return timesteps.repeat_interleave(tokens_per_frame, dim=1)


def storyboard_part(frame_index: torch.Tensor, num_parts: int, num_frames: int, scale_temporal: int = 4) -> torch.Tensor:
    """Which of `num_parts` equal parts of a `num_frames`-frame video each window's text comes from.

    `frame_index` (W, F) holds the absolute latent frames of W windows. A window reads the prompt of
    the part that holds its middle latent frame (the centre of that frame's pixels, for a causal VAE
    whose latent frame 0 is pixel frame 0 and latent frame a ≥ 1 covers pixel frames 4a-3 ... 4a).
    Training (`LatentWindows`) and the pipeline pick parts with this one rule. Returns (W,) part indices.
    """
    middle = frame_index[:, frame_index.shape[1] // 2].double()
    centre = (middle * scale_temporal - (scale_temporal - 1) / 2).clamp(min=0)
    return (centre * num_parts / num_frames).long().clamp(max=num_parts - 1)


def check_denoiser(transformer: WanTransformer3DModel, latent_channels: int, token_dim: int | None) -> None:
    """Raise a clear error when a denoiser's configuration does not fit the VAE and the video tokenizer (None: there
    is none, and the denoiser must have no image branch)."""
    cfg = transformer.config
    if cfg.in_channels != latent_channels or cfg.out_channels != latent_channels:
        raise ValueError(
            f"The denoiser must read and write the VAE's {latent_channels} latent channels, but is configured for "
            f"{cfg.in_channels} in and {cfg.out_channels} out."
        )
    if token_dim is None and cfg.image_dim is not None:
        raise ValueError("A denoiser with an image branch needs the video tokenizer, the codec and the planner that feed it.")
    if cfg.image_dim != token_dim:
        raise ValueError(
            f"The denoiser's image branch must take the video tokenizer's {token_dim}-channel tokens "
            f"(image_dim), but image_dim is {cfg.image_dim}."
        )


class FrameTokenAttnProcessor(WanAttnProcessor):
    r"""
    Wan cross-attention whose image branch may give every latent frame its own K condensed tokens.

    Args:
        tokens_per_frame (`int`): K. Image context of K tokens is shared by all frames (Wan's behaviour);
            of G·K tokens it is split into G groups, one per latent frame (queries are frame-major).
        text_length (`int`): the text's share of the context, at its end (Wan: 512).
    """

    def __init__(self, tokens_per_frame: int, text_length: int = TEXT_CONTEXT_LENGTH):
        super().__init__()
        self.tokens_per_frame, self.text_length = tokens_per_frame, text_length
        self.frame_clips: torch.Tensor | None = None  # set by `frame_clips` for one call

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        image_tokens = 0
        if encoder_hidden_states is not None and attn.add_k_proj is not None:
            image_tokens = encoder_hidden_states.shape[1] - self.text_length
        groups = image_tokens // self.tokens_per_frame
        clips = self.frame_clips
        if clips is not None:  # G clips' tokens, and which clip each of the F frames reads
            clips = clips.repeat(hidden_states.shape[0] // clips.shape[0], 1)  # guidance doubles the batch
            if hidden_states.shape[1] % clips.shape[1] or int(clips.max()) >= max(groups, 1):
                raise ValueError(f"frame_clips names clips beyond the {groups} given, or does not divide the video tokens.")
        elif image_tokens % self.tokens_per_frame or (groups > 1 and hidden_states.shape[1] % groups):
            raise ValueError(
                f"Per-frame tokens must be {self.tokens_per_frame} per latent frame for {hidden_states.shape[1]} "
                f"video tokens, got {image_tokens}."
            )
        if groups <= 1 and clips is None and self.text_length == TEXT_CONTEXT_LENGTH:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        batch, groups = hidden_states.shape[0], max(groups, 1)
        image, text = encoder_hidden_states[:, :image_tokens], encoder_hidden_states[:, image_tokens:]

        query, key, value = wan_qkv(attn, hidden_states, text)
        out = dispatch_attention_fn(query, key, value, backend=self._attention_backend).flatten(2, 3).type_as(query)
        if not image_tokens:
            return attn.to_out[1](attn.to_out[0](out))

        key_img, value_img = wan_added_kv(attn, image)
        if clips is not None:  # each frame's clip's K keys and values, projected once per clip
            rows = torch.arange(batch, device=clips.device)[:, None]
            key_img, value_img = (t.unflatten(1, (groups, self.tokens_per_frame))[rows, clips].flatten(1, 2) for t in (key_img, value_img))
            groups = clips.shape[1]
        # frame i's queries against frame i's tokens: fold the frames into the batch
        per_frame = hidden_states.shape[1] // groups
        out_img = dispatch_attention_fn(
            query.reshape(batch * groups, per_frame, *query.shape[2:]),
            key_img.reshape(batch * groups, self.tokens_per_frame, *key_img.shape[2:]),
            value_img.reshape(batch * groups, self.tokens_per_frame, *value_img.shape[2:]),
            backend=self._attention_backend,
        )
        out = out + out_img.reshape(batch, -1, out.shape[-1]).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


def set_frame_token_attention(transformer: WanTransformer3DModel, tokens_per_frame: int, text_length: int = TEXT_CONTEXT_LENGTH) -> None:
    """Install `FrameTokenAttnProcessor` on every cross-attention of a Wan transformer (self-attention untouched)."""
    for block in transformer.blocks:
        block.attn2.set_processor(FrameTokenAttnProcessor(tokens_per_frame, text_length))


@contextmanager
def frame_clips(transformer: WanTransformer3DModel, clips: torch.Tensor):
    """For the denoiser calls inside: the image tokens are G clips' (B, G·K, D), and `clips` (B, F), values in
    [0, G), names the clip each latent frame reads (`FrameTokenAttnProcessor`)."""
    processors = [block.attn2.processor for block in transformer.blocks]
    for processor in processors:
        processor.frame_clips = clips
    try:
        yield
    finally:
        for processor in processors:
            processor.frame_clips = None
