"""A minute (or an hour) from one prompt, written to disk as it is made, in constant memory.

    python demos/long_video.py "a blue square moves in a circle, then it turns yellow" --seconds 60 -o long.mp4

The planner plans every clip of the whole video first. For a model trained on Shapes captions, a
caption with changes becomes a storyboard, so that each part is planned and rendered from its own
prompt (`--storyboard` gives the parts by hand). FIFO diagonal denoising then renders the video frame
after frame and the causal VAE decodes each frame as it leaves the queue, so the progress bar counts
seconds of video. Ctrl-C stops it (exit status 130, as `t2v generate`) and keeps what was made as a
playable file; before the first frame, nothing is written.

The windows of one FIFO iteration are independent, so several processes can share them: under
`accelerate launch --num_processes 2 demos/long_video.py ...` (GPUs; torchrun on CPUs) every process computes
its share of the windows, all end with the same video, and the first process writes the file.
"""

import os
import sys

import torch

from t2v import T2VPipeline, default_model_path
from t2v.checks import OneLineParser, argparse_type
from t2v.shapes import storyboard_for
from t2v.video_io import check_output_path, write_frames


def main() -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--seconds", type=argparse_type("--seconds"), default=60.0, help="length of the video (default: 60)")
    parser.add_argument("-o", "--output", default="long_video.mp4", help="an .mp4, .webm or .gif file")
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    parser.add_argument("--steps", type=argparse_type("--steps", integer=True), default=25, help="denoising steps, also the FIFO queue's length")
    parser.add_argument("--lookahead", action="store_true", help="lookahead denoising (about twice the model calls)")
    parser.add_argument("--storyboard", nargs="+", metavar="PART", help="one prompt per equal part of the video, for the planner and the denoiser")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        output = check_output_path(args.output)
    except ValueError as err:
        parser.error(str(err))

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by accelerate or torchrun: share the windows
        from accelerate import PartialState

        state = PartialState()
        device, main_process = state.device, state.is_main_process
    else:
        device, main_process = torch.device("cuda" if torch.cuda.is_available() else "cpu"), True

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path()).to(device)
    pipe.set_progress_bar_config(disable=not main_process)
    stream = pipe.stream(
        args.prompt,
        seconds=args.seconds,
        num_inference_steps=args.steps,
        lookahead=args.lookahead,
        storyboard=args.storyboard or storyboard_for(pipe, args.prompt),
        generator=torch.Generator(device).manual_seed(args.seed),  # the same on every process
    )
    if not main_process:
        for _ in stream:  # take part in every FIFO iteration; the first process writes
            pass
        return 0
    written, interrupted = write_frames((chunk[0] for chunk in stream), output, stream.fps)
    if interrupted:
        print(f"\ninterrupted; wrote the first {written / stream.fps:.1f} s ({written} frames) to {output}", file=sys.stderr)
        return 130
    print(f"wrote {output}: {written} frames, {written / stream.fps:.1f} s at {stream.fps:g} fps")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the first frame (loading, planning): nothing was written
        print("\ninterrupted; nothing was written.", file=sys.stderr)
        sys.exit(130)
