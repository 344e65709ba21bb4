"""Vocabulary of the Shapes world (../shared/SHAPES.md), the procedural world the default model learns.

This module holds the world's words, from which the default model's text tokenizer is built. The
video generator itself arrives with the training issue.
"""

COLORS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "magenta": (210, 60, 200),
    "cyan": (40, 200, 210),
    "white": (235, 235, 235),
    "orange": (240, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = (
    "bounces left and right",
    "bounces up and down",
    "moves diagonally",
    "moves in a circle",
    "stays still",
)
HELD_OUT = (
    ("orange", "triangle"),
    ("cyan", "square"),
    ("white", "circle"),
    ("green", "triangle"),
    ("magenta", "circle"),
)


def vocabulary() -> list[str]:
    """Every word a Shapes caption can contain, in a fixed order (the grammar's words, then punctuation)."""
    words = ["a", "an", *COLORS, *SHAPES]
    for phrase in (*MOTIONS, "then it turns"):
        words += phrase.split()
    words += [",", "."]
    return list(dict.fromkeys(words))


