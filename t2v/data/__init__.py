"""Data for t2v: the Shapes world's vocabulary now; video folders and the Shapes generator follow."""

from .shapes import COLORS, HELD_OUT, MOTIONS, SHAPES, vocabulary

__all__ = ["COLORS", "HELD_OUT", "MOTIONS", "SHAPES", "vocabulary"]
