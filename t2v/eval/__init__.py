"""Evaluation of generated videos.

ShapesBench (`shapes_bench`, `t2v eval shapes`) measures Shapes-world videos (../shared/SHAPES.md)
from the pixels against their captions: color, shape and motion accuracy, identity consistency over
the whole video, jumps (centroid moves faster than the world allows) and temporal flicker.
"""

from .shapes_bench import (
    GOALS,
    BenchResult,
    BenchSummary,
    FrameMeasurement,
    MotionWindow,
    VideoResult,
    VideoScore,
    classify_motion,
    evaluate_folder,
    measure_video,
    read_metadata,
    score_video,
    summarize,
)

__all__ = [
    "GOALS",
    "BenchResult",
    "BenchSummary",
    "FrameMeasurement",
    "MotionWindow",
    "VideoResult",
    "VideoScore",
    "classify_motion",
    "evaluate_folder",
    "measure_video",
    "read_metadata",
    "score_video",
    "summarize",
]
