"""t2v: minute-long text-to-video with a token planner, a Wan DiT and FIFO diagonal denoising."""

from pathlib import Path

from .pipelines import T2VPipeline, T2VPipelineOutput
from .tokenizers import TokenCodec, VideoTokenizer

__version__ = "0.1.0"


def default_model_path() -> Path:
    """The folder of the model shipped inside the package (the default of the CLI and the API)."""
    return Path(__file__).parent / "default_model"


__all__ = ["T2VPipeline", "T2VPipelineOutput", "TokenCodec", "VideoTokenizer", "default_model_path"]
