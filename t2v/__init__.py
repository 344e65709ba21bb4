"""t2v: minute-long text-to-video with a token planner, a Wan DiT and FIFO diagonal denoising.

The heavy libraries (torch, diffusers, transformers) are imported on first use of a name below, so
that `t2v --help` and the command line's input checks answer at once.
"""

import importlib
from pathlib import Path

__version__ = "0.1.0"

_LAZY = {
    "T2VPipeline": "t2v.pipelines",
    "T2VPipelineOutput": "t2v.pipelines",
    "T2VStream": "t2v.pipelines",
    "TokenCodec": "t2v.models",
    "VideoTokenizer": "t2v.models",
}


def default_model_path() -> Path:
    """The folder of the model shipped inside the package (the default of the CLI and the API)."""
    return Path(__file__).parent / "default_model"


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't2v' has no attribute {name!r}")


__all__ = ["T2VPipeline", "T2VPipelineOutput", "T2VStream", "TokenCodec", "VideoTokenizer", "default_model_path"]
