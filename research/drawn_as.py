"""What a model draws for each color-shape pair of its captions: the colors and shapes ShapesBench reads.

    python research/drawn_as.py runs/val20/planner_fifo [more folders...]

Reads back a folder of videos and its metadata.jsonl (as `shapes_ablation.py` writes them) and, over
every frame whose caption asks for a given color and shape, counts the color and the shape
ShapesBench reads there ("-": no object seen, "?": no palette color or shape fits). Held-out pairs
(docs/shapes_world.md) are marked. Color and shape accuracy say how often a model is wrong; this says what it
draws instead, e.g. whether a held-out orange triangle comes out as a training pair's red one.
"""

import argparse
from collections import Counter
from pathlib import Path

from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import read_metadata
from t2v.shapes.evaluate import drawn_counts
from t2v.shapes.world import HELD_OUT


def shares(counter: Counter, top: int = 3) -> str:
    total = sum(counter.values())
    return ", ".join(f"{name} {n / total:.2f}" for name, n in counter.most_common(top))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="folders of videos with a metadata.jsonl")
    args = parser.parse_args()
    for folder in args.folders:
        try:
            read_metadata(folder)  # ShapesBench's own check of the list, before anything is printed
        except ValueError as err:
            parser.error(str(err))
    describe_run()
    for folder in map(Path, args.folders):
        print(f"\n{folder}")
        for (color, shape), (colors, shapes) in sorted(drawn_counts(folder).items()):
            mark = " (held out)" if (color, shape) in HELD_OUT else ""
            print(f"  {color} {shape}{mark}, {sum(colors.values())} frames: color {shares(colors)}; shape {shares(shapes)}")


if __name__ == "__main__":
    main()
