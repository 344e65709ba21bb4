"""Data for t2v: the Shapes world (../shared/SHAPES.md) and folders of captioned videos."""

from .shapes import COLORS, HELD_OUT, MOTIONS, SHAPES, vocabulary
from .video_folder import VideoFolderDataset, collate_long

__all__ = ["COLORS", "HELD_OUT", "MOTIONS", "SHAPES", "VideoFolderDataset", "collate_long", "vocabulary"]
