"""Model configurations of t2v: the planner (T2To), the denoiser (To2V) and offline text encoders."""

from .denoiser import expand_frame_timesteps
from .planner import grid_to_tokens, tokens_to_grid
from .text_encoder import build_text_encoder, build_word_tokenizer

__all__ = ["build_text_encoder", "build_word_tokenizer", "expand_frame_timesteps", "grid_to_tokens", "tokens_to_grid"]
