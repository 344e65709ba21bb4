"""A picture of one video made several ways: the same file from several folders, a frame every few seconds.

    python research/change_strip.py --file 01-seed0.mp4 --every 4 --out docs/storyboard_change.png \
        runs/ablation/planner_fifo runs/ablation/planner_fifo-whole-caption

Reads back videos that `shapes_ablation.py` wrote (each folder's metadata.jsonl names the caption,
printed with the picture) and draws them with its `write_strip`, one row per folder, labelled by
the folder's name. The README's storyboard picture is this command on the ablation's second
prompt, "a cyan square moves in a circle, then it turns blue", whose change is due at 30 s.
"""

import argparse
from pathlib import Path

from t2v.shapes.bench import read_metadata
from t2v.shapes.evaluate import write_strip
from t2v.video_io import read_video


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="folders of videos with a metadata.jsonl")
    parser.add_argument("--file", required=True, help="the video's file name in every folder")
    parser.add_argument("--every", type=float, default=6.0, help="seconds between the frames shown (default: 6)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args()
    rows, fps = {}, None
    for folder in map(Path, args.folders):
        frames, fps = read_video(folder / args.file)
        rows[folder.name] = list(frames)
    caption = next(entry["text"] for entry in read_metadata(args.folders[0]) if entry["file_name"] == args.file)
    write_strip(rows, fps, args.every, Path(args.out))
    print(f"wrote {args.out}: {caption!r}, {len(rows)} rows, a frame every {args.every:g} s")


if __name__ == "__main__":
    main()
