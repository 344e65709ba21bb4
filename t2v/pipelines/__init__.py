"""Pipelines: `T2VPipeline`, text to video through planned condensed tokens."""

from .pipeline_output import T2VPipelineOutput, T2VStream
from .pipeline_t2v import T2VPipeline

__all__ = ["T2VPipeline", "T2VPipelineOutput", "T2VStream"]
