"""Condensed video tokens: the Perceiver-resampler video tokenizer and the PCA token codec (TokensGen)."""

from .token_codec import TokenCodec
from .video_tokenizer import VideoTokenizer

__all__ = ["TokenCodec", "VideoTokenizer"]
