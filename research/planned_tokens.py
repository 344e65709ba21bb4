"""Whether a model keeps a still object in view with the planner's tokens and with the true video's tokens.

    python research/planned_tokens.py t2v/default_model runs/lr1/fg_model [--prompts "a red square stays still" ...]
        [--seeds 4] [--seconds 4] [--shift 1]

Renders each prompt for each seed twice as `t2v generate` does (FIFO, at `--shift`): once from the planner's
tokens, once from the tokens of the Shapes generator's own video for that prompt and seed (`true_tokens`, the
tokens a perfect planner would plan). Prints, per seed, the share of frames where ShapesBench finds the object,
and with `--frames` a line per video with a letter per frame (the color ShapesBench reads, "." where it finds
nothing). A model that keeps the object with true tokens and loses it with planned ones has learned to need
the tokenizer's exact tokens.
"""

import torch
from still_objects import load_at_shift, still_parser

from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import measure_video
from t2v.shapes.evaluate import true_tokens
from t2v.video_io import to_uint8


def main():
    parser = still_parser(__doc__.splitlines()[0])
    parser.add_argument("--frames", action="store_true", help="print each video's frames, a letter each")
    args = parser.parse_args()
    describe_run()
    for model in args.models:
        pipe = load_at_shift(model, args.shift)
        plan, num_frames = pipe.plan, round(args.seconds * pipe.config.fps)
        for prompt in args.prompts:
            for source in ("planned", "true"):
                cells, lines = [], []
                for seed in range(args.seeds):
                    if source == "true":
                        tokens = true_tokens(pipe, prompt, num_frames, seed)
                        pipe.plan = lambda *_, _tokens=tokens, **__: _tokens
                    frames = pipe(prompt, num_frames=num_frames, generator=torch.Generator().manual_seed(seed)).frames[0]
                    pipe.plan = plan
                    measured = measure_video(to_uint8(frames))
                    cells.append(f"{sum(m is not None for m in measured) / len(measured):.2f}")
                    lines.append("".join("." if m is None else (m.color or "?")[0] for m in measured))
                print(f"{model} | {prompt} | {source} tokens | detected, seeds 0-{args.seeds - 1}: {'  '.join(cells)}")
                if args.frames:
                    print("\n".join(f"    seed {seed}: {line}" for seed, line in enumerate(lines)))


if __name__ == "__main__":
    main()
