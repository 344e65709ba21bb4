"""The models of t2v: the video tokenizer and token codec (TokensGen), and how diffusers' Wan DiT is
configured as the planner (T2To) and the denoiser (To2V), the VAE's streaming decoder and offline text
encoders."""

from .denoiser import expand_frame_timesteps
from .planner import grid_to_tokens, tokens_to_grid
from .text_encoder import build_text_encoder, build_word_tokenizer
from .token_codec import TokenCodec
from .video_tokenizer import VideoTokenizer

__all__ = ["TokenCodec", "VideoTokenizer", "build_text_encoder", "build_word_tokenizer", "expand_frame_timesteps", "grid_to_tokens",
           "tokens_to_grid"]
