"""The ceiling a planner sets on ShapesBench: the denoiser driven by the true videos' own tokens.

    python research/token_ceiling.py [--model DIR] --out OUT [--seconds 60] [--prompts 5] [--seeds 2]

The same held-out prompts and seeds as `shapes_ablation.py`. For every prompt the Shapes generator
renders the true video; the model's VAE encodes it whole and its video tokenizer condenses every
clip into tokens, the tokens a perfect planner would plan. The full pipeline (FIFO, the same
seeds; the noise still differs from the planner row's, whose planning draws from the generator
first) then renders the video from the prompt and those tokens instead of the planner's, in three
rows:

- `true tokens`: the tokenizer's tokens as they are;
- `true tokens through the codec`: encoded and decoded by the token codec (the planner works in the
  codec's few channels, so this is the best a perfect planner could hand over);
- `planner tokens`: the ablation's `planner+fifo` row, for comparison in the same run.

The gap between the first two rows is the codec's share of a low score, between the last two the
planner's, and what stays below the VAE's ceiling (`vae_ceiling.py`) in the first row is the
denoiser's. Videos go to OUT/<row>/ with a metadata.jsonl (`t2v eval shapes` scores them again).
"""

import argparse
import json
from pathlib import Path

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import evaluate_folder
from t2v.shapes.evaluate import METRICS, add_prompt_options, generate, held_out_prompts, table_cells, through_codec, true_tokens

ROWS = {"true tokens": "true", "true tokens through the codec": "true_codec", "planner tokens": "planner"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the videos, their metadata and token_ceiling.json go")
    add_prompt_options(parser)
    args = parser.parse_args()
    describe_run()

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    num_frames = pipe.num_frames_for(None, args.seconds, float(pipe.config.fps))
    prompts = held_out_prompts(args.prompts, args.prompt_seed)
    plan, out, results = pipe.plan, Path(args.out), {}
    truth = {}  # (prompt, seed) -> the true video's tokens, made once for both rows that use them
    for row, folder_name in ROWS.items():
        folder = out / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for p, prompt in enumerate(prompts):
            for seed in range(args.seeds):
                if row != "planner tokens":
                    if (p, seed) not in truth:
                        truth[p, seed] = true_tokens(pipe, prompt, num_frames, seed)
                    tokens = through_codec(pipe, truth[p, seed]) if "codec" in row else truth[p, seed]
                    pipe.plan = lambda *_, _tokens=tokens, **__: _tokens
                file_name = f"{p:02d}-seed{seed}.mp4"
                generate(pipe, prompt, args.seconds, seed, "fifo", folder / file_name)
                pipe.plan = plan
                lines.append(json.dumps({"file_name": file_name, "text": prompt, "seed": seed}))
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        summary = evaluate_folder(folder).summary
        results[row] = {m: getattr(summary, m) for m in METRICS}
        print(f"{row}: done", flush=True)

    print(f"\n{len(prompts)} held-out prompts x {args.seeds} seeds, {args.seconds:g} s each, FIFO\n")
    print("| tokens | " + " | ".join(METRICS) + " |")
    print("| --- |" + " --- |" * len(METRICS))
    for row, r in results.items():
        print(f"| {row} | " + " | ".join(table_cells(r)) + " |")
    (out / "token_ceiling.json").write_text(json.dumps({"prompts": prompts, "seeds": args.seeds, "seconds": args.seconds,
                                                        "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
