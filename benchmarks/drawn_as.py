"""What a model draws for each color-shape pair of its captions: the colors and shapes ShapesBench reads.

    python benchmarks/drawn_as.py runs/val20/planner_fifo [more folders...]

Reads back a folder of videos and its metadata.jsonl (as `shapes_ablation.py` writes them) and, over
every frame whose caption asks for a given color and shape, counts the color and the shape
ShapesBench reads there ("-": no object seen, "?": no palette color or shape fits). Held-out pairs
(SHAPES.md) are marked. Color and shape accuracy say how often a model is wrong; this says what it
draws instead, e.g. whether a held-out orange triangle comes out as a training pair's red one.
"""

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_run  # noqa: E402

from t2v.shapes.bench import measure_video, read_metadata  # noqa: E402
from t2v.shapes.world import HELD_OUT, parse_caption, trajectory  # noqa: E402
from t2v.video_io import read_video  # noqa: E402


def drawn_counts(folder: Path) -> dict[tuple[str, str], tuple[Counter, Counter]]:
    """(caption color, caption shape) -> (Counter of colors read, Counter of shapes read), over the folder's frames."""
    counts = defaultdict(lambda: (Counter(), Counter()))
    for entry in read_metadata(folder):
        measured = measure_video(read_video(folder / entry["file_name"])[0])
        expected = trajectory(parse_caption(entry["text"]), len(measured), seed=0)  # the seed moves the object only
        for want, got in zip(expected, measured):
            colors, shapes = counts[(want["color"], want["shape"])]
            colors["-" if got is None else got.color or "?"] += 1
            shapes["-" if got is None else got.shape or "?"] += 1
    return dict(counts)


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
