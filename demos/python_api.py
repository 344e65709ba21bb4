"""Make a video from Python with the packaged default model and write it to an mp4.

    python demos/python_api.py "a red circle bounces left and right" --seconds 4 -o red.mp4
"""

import argparse

import torch

from t2v import T2VPipeline, default_model_path
from t2v.video_io import write_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("-o", "--output", default="demo.mp4")
    args = parser.parse_args()

    pipe = T2VPipeline.from_pretrained(default_model_path())
    out = pipe(args.prompt, seconds=args.seconds, generator=torch.Generator().manual_seed(0))
    print("planned tokens:", tuple(out.tokens.shape), "(batch, clips, tokens per clip, channels)")
    print("wrote", write_video(out.frames[0], args.output, fps=pipe.config.fps))


if __name__ == "__main__":
    main()
