"""Command-line and YAML configuration shared by the training scripts (diffusers' argument names).

A recipe is a YAML file whose keys are the scripts' option names (`learning_rate: 1e-4`); it sets
the defaults and the command line overrides them. An unknown key is an error, not a silent no-op.
"""

import argparse
import os
import sys
from pathlib import Path

from ..checks import OneLineParser

CHECKPOINTING_PARAMETERS = 100_000_000  # gradient checkpointing is on by default for a denoiser or planner larger than this


def training_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every t2v training script takes."""
    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="a YAML recipe whose keys are these options; the command line overrides it")
    p.add_argument("--data_dir", help="a video folder with metadata.jsonl (or metadata.csv)")
    p.add_argument("--model", help="the t2v model folder to start from (default: the packaged model)")
    p.add_argument("--output_dir", required=True, help="checkpoints, metrics.jsonl, validation videos and the exported model/")
    p.add_argument("--max_train_steps", type=int, default=1000)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--lr_scheduler", default="constant_with_warmup", help="a diffusers.optimization scheduler name")
    p.add_argument("--lr_warmup_steps", type=int, default=0)
    p.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw",
                   help="adafactor (transformers' Adafactor without momentum) keeps about 8 bytes per trained parameter "
                        "against AdamW's 16: for training a large planner on a smaller GPU")
    p.add_argument("--adam_weight_decay", type=float, default=0.0, help="weight decay (AdamW's or Adafactor's)")
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    p.add_argument("--train_batch_size", type=int, default=4, help="per process")
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    p.add_argument("--gradient_checkpointing", action="store_true", default=None,
                   help="recompute the denoiser's (or planner's) activations in the backward pass to save memory "
                        f"(default: on for one of over {CHECKPOINTING_PARAMETERS // 10**6} M parameters)")
    p.add_argument("--no_gradient_checkpointing", dest="gradient_checkpointing", action="store_false", help="keep every activation")
    p.add_argument("--use_ema", action="store_true", help="keep an EMA of the trained weights (diffusers EMAModel) and export it")
    p.add_argument("--ema_decay", type=float, default=0.999)
    p.add_argument("--checkpointing_steps", type=int, default=500)
    p.add_argument("--checkpoints_total_limit", type=int, default=3, help="checkpoints kept, the newest (0: all)")
    p.add_argument("--resume_from_checkpoint", help="'latest' or a checkpoint folder")
    p.add_argument("--validation_steps", type=int, default=0, help="write a validation video every N steps (0: only at the end)")
    p.add_argument("--skip_validation", action="store_true", help="write no validation video, not even at the end")
    p.add_argument("--validation_prompt", default="a red circle bounces left and right")
    p.add_argument("--report_to", choices=["none", "tensorboard"], default="none")
    p.add_argument("--dataloader_num_workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=None, help="frame rate the videos are resampled to (default: the model's)")
    add_size_arguments(p)
    return p


def add_size_arguments(parser: argparse.ArgumentParser, clip_frames: bool = True) -> None:
    """--height, --width (and --clip_frames): the size videos are trained at; checked by `common.set_training_size`."""
    parser.add_argument("--height", type=int, default=None, help="frame height videos are trained at (default: the model's)")
    parser.add_argument("--width", type=int, default=None, help="frame width videos are trained at (default: the model's)")
    if clip_frames:
        parser.add_argument("--clip_frames", type=int, default=None, help="frames of one clip, 1 + a multiple of 4 (default: the model's)")


def parse_training_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse `argv`, taking defaults from the YAML file named by --config."""
    config_only = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    config_only.add_argument("--config")
    first, _ = config_only.parse_known_args(argv)
    if first.config:
        import yaml

        path = Path(first.config)
        if not path.is_file():
            parser.error(f"the config file {path} does not exist")
        recipe = yaml.safe_load(path.read_text()) or {}
        if not isinstance(recipe, dict):
            parser.error(f"{path} must be a mapping of option names to values")
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(recipe) - known)
        if unknown:
            parser.error(f"{path} has unknown option(s): {', '.join(unknown)}")
        for action in parser._actions:  # a recipe may supply what the command line would require
            if action.dest in recipe:
                action.required = False
        parser.set_defaults(**recipe)
    args = parser.parse_args(argv)
    for name in ("max_train_steps", "train_batch_size", "gradient_accumulation_steps", "checkpointing_steps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be greater than 0, got {getattr(args, name)}")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate must be greater than 0, got {args.learning_rate}")
    for name in ("validation_steps", "checkpoints_total_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            parser.error(f"--{name} must be 0 or more, got {getattr(args, name)}")
    return args


def run(main) -> None:
    """Run a training script's `main`: a problem with the data, the model or the options ends it with one line on
    stderr and exit status 1, Ctrl-C with 130 (set T2V_DEBUG=1 to see the traceback instead)."""
    name = Path(sys.argv[0]).name
    try:
        main()
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted; the last checkpoint is kept (go on with --resume_from_checkpoint latest).", file=sys.stderr)
        raise SystemExit(130) from None
    except (ValueError, OSError, FloatingPointError) as err:
        if os.environ.get("T2V_DEBUG"):
            raise
        print(f"{name}: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(1) from None
