"""When does a video's color change come? Each color change of each caption, against its time.

    python research/change_timing.py runs/val20/planner_fifo [more folders...]

Reads back a folder of videos and its metadata.jsonl (as `shapes_ablation.py` writes them) and, for
every video whose caption changes color, prints the object's color second by second (the color
ShapesBench reads in most of that second's frames, "-" where it finds no object) and the change's
onset: the first frame from which three quarters of the next two seconds show the new color, in
seconds after the caption's time (negative: early; "never": the new color never holds). ShapesBench
counts a change on time from the two seconds before and after it; this shows which way a missed
one went.
"""

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import FPS, measure_video, read_metadata
from t2v.shapes.world import parse_caption, segment_starts, trajectory
from t2v.video_io import read_video


def color_onsets(colors: list[str | None], expected: list[dict], starts: list[int], hold: int = 2 * FPS) -> list[tuple[int, int | None]]:
    """(caption frame, onset frame or None) for every part that starts with a new color."""
    out = []
    for start in starts[1:]:
        new = expected[start]["color"]
        if new == expected[start - 1]["color"]:
            continue
        shown = np.array([c == new for c in colors], dtype=float)
        onset = next((i for i in range(len(colors) - hold + 1) if shown[i : i + hold].mean() >= 0.75), None)
        out.append((start, onset))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="folders of videos with a metadata.jsonl")
    args = parser.parse_args()
    describe_run()
    for folder in map(Path, args.folders):
        print(f"\n{folder}")
        for entry in read_metadata(folder):
            measured = measure_video(read_video(folder / entry["file_name"])[0])
            colors = [m.color if m is not None else None for m in measured]
            segments = parse_caption(entry["text"])
            starts = segment_starts(len(segments), len(colors))
            onsets = color_onsets(colors, trajectory(segments, len(colors), seed=0), starts)
            if not onsets:
                continue
            seconds = [Counter(colors[i : i + FPS]).most_common(1)[0][0] for i in range(0, len(colors), FPS)]
            when = ", ".join("never" if onset is None else f"{(onset - start) / FPS:+.1f} s" for start, onset in onsets)
            print(f"{entry['file_name']}: {entry['text']!r}; onset {when}")
            print("  " + " ".join((c or "-")[:3] for c in seconds))


if __name__ == "__main__":
    main()
