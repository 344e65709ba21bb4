"""The `t2v` command line: `t2v generate PROMPT` writes a video, `t2v info` describes a model,
`t2v data shapes` writes a Shapes-world training folder, `t2v eval shapes` scores a folder of
Shapes-world videos against their captions (ShapesBench), `t2v calibrate-attention` makes the plan of
paro sparse attention.

Every mistake in the input ends the command with one line on stderr and a non-zero exit, and never
leaves an output file behind (set T2V_DEBUG=1 to see the traceback of an unexpected error).
"""

import argparse
import os
import re
import sys
from pathlib import Path

from .checks import OneLineParser, argparse_type

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """A mistake in the command line; printed as one line."""


def default_output_name(prompt: str, extension: str = ".mp4") -> str:
    """A file name derived from the prompt: lower case, words joined by dashes, at most 60 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60].strip("-")
    return (slug or "video") + extension


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="t2v", description="Text-to-video: minute-long videos from a prompt.")
    parser.add_argument("--version", action="version", version=f"t2v {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    gen = sub.add_parser("generate", help="make a video from a prompt", description="Make a video from a prompt.")
    gen.add_argument("prompt", help="what the video shows, e.g. \"a red circle bounces left and right\"")
    gen.add_argument("-o", "--output", help="the file to write: .mp4, .webm or .gif (default: named after the prompt, here)")
    length = gen.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=argparse_type("--seconds"), help="length in seconds (default: 4)")
    length.add_argument("--frames", type=argparse_type("--frames", integer=True), help="length in frames")
    gen.add_argument("--fps", type=argparse_type("--fps"), help="frames per second (default: the model's)")
    gen.add_argument("--height", type=argparse_type("--height", integer=True), help="height in pixels (default: the model's)")
    gen.add_argument("--width", type=argparse_type("--width", integer=True), help="width in pixels (default: the model's)")
    gen.add_argument("--steps", type=argparse_type("--steps", integer=True), default=25, help="denoising steps every frame takes (default: 25)")
    gen.add_argument("--planner-steps", type=argparse_type("--planner-steps", integer=True), default=25, help="token planner steps (default: 25)")
    gen.add_argument("--guidance-scale", type=argparse_type("--guidance-scale", finite=True), default=5.0, help="text guidance (default: 5.0)")
    gen.add_argument("--planner-guidance-scale", type=argparse_type("--planner-guidance-scale", finite=True), default=3.0, help="planner text guidance (default: 3.0)")
    gen.add_argument("--negative-prompt", default=None, help="what to steer away from")
    gen.add_argument("--storyboard", nargs="+", metavar="PART", default=None,
                     help="one prompt per equal part of the video: each part is planned and rendered from its own prompt "
                          "(default: a Shapes caption with changes, such as '... moves in a circle, then it turns yellow', "
                          "is split into its parts)")
    gen.add_argument("--stitching", choices=["fifo", "clips", "single"], default="fifo",
                     help="how clips join: fifo (seamless, constant memory), clips (each on its own, with seams), "
                          "single (one window, memory grows with length) (default: fifo)")
    gen.add_argument("--lookahead", action="store_true", help="FIFO lookahead denoising: smoother, about twice as slow")
    gen.add_argument("--attention", choices=["dense", "semantic", "paro"], default="dense",
                     help="denoiser self-attention: dense, semantic (sparse, k-means reordered) or paro (sparse, "
                          "needs `t2v calibrate-attention` first) (default: dense)")
    gen.add_argument("--attention-density", type=argparse_type("--attention-density"), default=0.25,
                     help="share of key blocks sparse attention keeps, at most 1 (default: 0.25)")
    gen.add_argument("--seed", type=int, default=0, help="random seed; the same seed on the same device gives the same video (default: 0)")
    gen.add_argument("--model", help="a t2v model folder, or a diffusers Wan2.1 text-to-video folder or hub id (default: the model shipped with t2v)")
    gen.add_argument("--lora", metavar="DIR", help="a LoRA adapter of the model's denoiser (train_to2v.py --train_mode lora writes OUT/lora)")
    gen.add_argument("--lora-scale", type=argparse_type("--lora-scale", finite=True), default=1.0,
                     help="how strongly the adapter applies: 0 is the model alone (default: 1)")
    gen.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run (default: auto, a GPU if there is one)")
    gen.add_argument("--dtype", choices=DTYPES, default="auto",
                     help="the weights' precision: auto is bfloat16 on a GPU and float32 on the CPU (default: auto)")
    gen.add_argument("--max-windows-per-call", type=argparse_type("--max-windows-per-call", integer=True),
                     help="FIFO windows in one model call at most; fewer use less GPU memory, same video "
                          "(default: what the GPU's free memory holds; all on the CPU)")
    gen.add_argument("--vae-tiling", action="store_true",
                     help="decode each frame in overlapping tiles (diffusers' VAE tiling): less GPU memory at 720p, same streaming")
    gen.add_argument("--offload", choices=["model", "sequential"],
                     help="for a GPU too small for the model: keep the weights in CPU memory and move each component "
                          "(model) or each layer (sequential, slower) to the GPU when it is used")

    data = sub.add_parser("data", help="make training data", description="Make training data.")
    data_sub = data.add_subparsers(dest="data_command", metavar="KIND", parser_class=OneLineParser, required=True)
    shapes = data_sub.add_parser("shapes", help="a Shapes-world video folder", description="Write Shapes-world videos and metadata.jsonl.")
    shapes.add_argument("--out", required=True, help="the folder to write")
    shapes.add_argument("--num", type=argparse_type("--num", integer=True), required=True, help="number of videos")
    shapes.add_argument("--seconds", type=argparse_type("--seconds"), required=True, help="length of each video")
    shapes.add_argument("--max-seconds", type=argparse_type("--max-seconds"), default=None,
                        help="draw each video's length from [--seconds, --max-seconds] instead")
    shapes.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same folder (default: 0)")
    shapes.add_argument("--max-changes", type=int, default=2, help="most changes per caption, e.g. 'then it turns blue' (default: 2)")
    shapes.add_argument("--include-held-out", action="store_true", help="also use the held-out color-shape pairs")

    evaluate = sub.add_parser("eval", help="measure videos", description="Measure videos against their captions.")
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="BENCH", parser_class=OneLineParser, required=True)
    bench = eval_sub.add_parser("shapes", help="ShapesBench: Shapes-world videos against their captions",
                                description="Score Shapes-world videos against their captions from the pixels: color, shape "
                                            "and motion accuracy, identity consistency, jumps and flicker.")
    bench.add_argument("--videos", required=True, help="a folder of videos and metadata.jsonl (lines {\"file_name\", \"text\"}), "
                                                       "as `t2v data shapes` writes")
    bench.add_argument("--json", help="also write the summary and every video's scores to this JSON file")

    cal = sub.add_parser("calibrate-attention", help="calibrate paro sparse attention for a model",
                         description="Record dense attention on a few prompts and save the paro attention plan "
                                     "(per head an axis order and block masses) beside the model's denoiser.")
    cal.add_argument("--model", help="a t2v model folder (default: the model shipped with t2v)")
    cal.add_argument("--prompts", required=True, help="a text file with one prompt per line")
    cal.add_argument("--out", help="where to save the plan (default: MODEL/transformer/attention_plan.safetensors)")
    cal.add_argument("--density", type=argparse_type("--density"), default=0.25, help="the density the axis orders are chosen for (default: 0.25)")
    cal.add_argument("--seconds", type=argparse_type("--seconds"), default=4.0, help="length of each calibration video (default: 4)")
    cal.add_argument("--steps", type=argparse_type("--steps", integer=True), default=10, help="denoising steps per video (default: 10)")
    cal.add_argument("--query-tile", type=argparse_type("--query-tile", integer=True), default=512, help="queries per tile (default: 512)")
    cal.add_argument("--key-block", type=argparse_type("--key-block", integer=True), default=64, help="keys per block (default: 64)")
    cal.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    cal.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run (default: auto)")

    info = sub.add_parser("info", help="describe a model", description="Print a model's components, sizes and training.")
    info.add_argument("--model", help="a t2v model folder (default: the model shipped with t2v)")
    return parser


def _quiet_libraries() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


DTYPES = ("auto", "float32", "bfloat16", "float16")


def _load(model: str | None, device: str = "cpu", dtype: str = "float32", offload: str | None = None):
    """The model on `device` (or offloaded to it), its weights in `dtype` ("auto": bfloat16 on a GPU, float32 on the CPU)."""
    import torch

    from . import T2VPipeline, default_model_path

    _quiet_libraries()
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    pipe = T2VPipeline.from_pretrained(model or default_model_path(), dtype=getattr(torch, dtype))
    if offload:
        pipe.enable_offload(offload, device)
        return pipe
    return pipe.to(device)


def _resolve_device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine.")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def cmd_generate(args) -> int:
    import torch

    from .video_io import check_output_path, write_frames

    if not args.prompt.strip():
        raise UsageError("The prompt is empty; describe the video you want.")
    if args.storyboard and not all(part.strip() for part in args.storyboard):
        raise UsageError("A --storyboard part is empty; give one prompt for each part of the video.")
    try:
        output = check_output_path(args.output or default_output_name(args.prompt))
    except ValueError as err:
        raise UsageError(str(err)) from None
    device = _resolve_device(args.device)
    if args.attention_density > 1:
        raise UsageError(f"--attention-density must be at most 1, got {args.attention_density:g}.")
    if args.lora_scale != 1.0 and not args.lora:
        raise UsageError("--lora-scale needs --lora, the adapter it scales.")
    if args.offload and device != "cuda":
        raise UsageError("--offload moves weights between CPU memory and a GPU; it needs a CUDA GPU (--device cuda).")
    pipe = _load(args.model, device, args.dtype, args.offload)
    if args.lora:
        pipe.load_lora_weights(args.lora, adapter_name="lora")  # refused, in one sentence, if made on another model
        pipe.set_adapters(["lora"], [args.lora_scale])
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    if args.attention != "dense":
        pipe.enable_sparse_attention(args.attention_density, args.attention)
    seconds = args.seconds if args.frames is None and args.seconds is not None else (None if args.frames else 4.0)
    if args.storyboard is None:
        from .shapes import storyboard_for  # splits a Shapes caption with changes, for a model trained on that grammar

        storyboard = storyboard_for(pipe, args.prompt)
    else:
        storyboard = args.storyboard
    if storyboard and len(storyboard) > 1:
        print(f"storyboard: {len(storyboard)} parts: " + " | ".join(storyboard), file=sys.stderr)
    try:  # the pipeline's own checks of the request (size, length), before anything is written
        stream = pipe.stream(
            args.prompt,
            negative_prompt=args.negative_prompt,
            num_frames=args.frames,
            seconds=seconds,
            fps=args.fps,
            height=args.height,
            width=args.width,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance_scale,
            planner_steps=args.planner_steps,
            planner_guidance_scale=args.planner_guidance_scale,
            stitching=args.stitching,
            lookahead=args.lookahead,
            max_windows_per_call=args.max_windows_per_call,
            storyboard=storyboard,
            generator=torch.Generator(device).manual_seed(args.seed),
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    # frames go to the file as they are made; Ctrl-C keeps what was made as a playable video. A name made from
    # the prompt never replaces an existing file (the video becomes NAME-2.mp4, ...); an explicit -o does.
    output, written, interrupted = write_frames((chunk[0] for chunk in stream), output, stream.fps, keep_existing=not args.output)
    if interrupted:
        print(f"\nt2v: interrupted; wrote the first {written / stream.fps:.1f} s ({_frames(written)}) to {output}", file=sys.stderr)
        return 130
    height, width = args.height or pipe.config.height, args.width or pipe.config.width
    print(f"wrote {output} ({_frames(written)}, {width}x{height}, {stream.fps:g} fps)")
    return 0


def _frames(count: int) -> str:
    return f"{count} frame" + ("" if count == 1 else "s")


def cmd_calibrate_attention(args) -> int:
    import torch

    from . import default_model_path
    from .attention import PLAN_NAME, calibrate_attention

    if args.density > 1:
        raise UsageError(f"--density must be at most 1, got {args.density:g}.")
    if args.query_tile % args.key_block:
        raise UsageError(f"--query-tile ({args.query_tile}) must be a multiple of --key-block ({args.key_block}).")
    try:
        prompts = [line.strip() for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"Could not read --prompts {args.prompts}: {getattr(err, 'strerror', None) or err}.") from None
    if not prompts:
        raise UsageError(f"--prompts {args.prompts} has no prompts; write one per line.")
    out = Path(args.out) if args.out else Path(args.model or default_model_path()) / "transformer" / PLAN_NAME
    if not out.parent.is_dir():
        raise UsageError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    device = _resolve_device(args.device)
    pipe = _load(args.model, device)
    pipe.set_progress_bar_config(disable=True)

    def run():
        for i, prompt in enumerate(prompts):
            print(f"calibrating on prompt {i + 1}/{len(prompts)}: {prompt}", file=sys.stderr)
            pipe(prompt, seconds=args.seconds, num_inference_steps=args.steps, output_type="latent",
                 generator=torch.Generator(device).manual_seed(args.seed + i))

    plan = calibrate_attention(pipe.transformer, run, args.density, args.query_tile, args.key_block, sink_tokens=args.key_block)
    plan.save(out)
    print(f"wrote {out} (token grid {plan.grid}, {len(plan.orders)} layers, axis orders chosen at density {args.density:g})")
    return 0


def cmd_data(args) -> int:
    from .shapes.folder import write_shapes_folder

    for option, value in (("--seed", args.seed), ("--max-changes", args.max_changes)):
        if value < 0:
            raise UsageError(f"{option} must be 0 or more, got {value}.")
    out = write_shapes_folder(args.out, args.num, args.seconds, args.seed, not args.include_held_out, args.max_changes, args.max_seconds)
    length = f"{args.seconds:g} s" if args.max_seconds is None else f"{args.seconds:g} to {args.max_seconds:g} s"
    print(f"wrote {args.num} videos of {length} and metadata.jsonl to {out}")
    return 0


def cmd_eval(args) -> int:
    import json

    from .shapes.bench import GOALS, evaluate_folder

    videos = Path(args.videos)
    if not videos.is_dir():
        raise UsageError(f"--videos {videos} is not a folder; give the folder with the videos and their metadata.jsonl.")
    out = Path(args.json) if args.json else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise UsageError(f"Cannot write --json {out}: " + ("it is a folder." if out.is_dir() else f"the folder {out.parent} does not exist."))
    result = evaluate_folder(videos, progress=sys.stderr.isatty())
    summary, met = result.summary, result.summary.goals()
    print(f"ShapesBench: {summary.num_videos} videos, {summary.seconds:g} s ({summary.num_frames} frames) in {videos}")
    print(f"  {'metric':22s} {'score':>7s}  goal")
    for name, label in (("color_accuracy", "color accuracy"), ("shape_accuracy", "shape accuracy"),
                        ("motion_accuracy", "motion accuracy"), ("identity_consistency", "identity consistency"),
                        ("jumps_per_minute", "jumps per minute")):
        value, (op, target) = getattr(summary, name), GOALS[name]
        verdict = {True: "met", False: "NOT met", None: "no segment long enough to judge"}[met[name]]
        shown = "n/a" if value is None else (f"{value:.2f}" if name == "jumps_per_minute" else f"{value:.3f}")
        if name == "jumps_per_minute":
            verdict += f" ({summary.jumps} jumps in all)"
        print(f"  {label:22s} {shown:>7s}  {op} {target:{'g' if name == 'jumps_per_minute' else '.2f'}}  {verdict}")
    print(f"  {'flicker':22s} {summary.flicker:7.2f}  (levels 0-255, background; ground truth ~0)")
    print(f"  {'color flicker':22s} {summary.color_flicker:7.2f}  (levels 0-255, the object's color; ground truth ~0)")
    print(f"  {'object found':22s} {summary.detected:7.3f}  (share of frames)")
    changes = "n/a" if summary.change_accuracy is None else f"{summary.change_accuracy:.3f}"
    print(f"  {'changes on time':22s} {changes:>7s}  (share of the captions' changes shown at their time, judged on the 2 s around it)")
    if out is not None:
        partial = out.with_name(out.name + ".partial")  # never a half-written file
        partial.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        partial.replace(out)
        print(f"wrote {out}")
    return 0


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cmd_info(args) -> int:
    from . import default_model_path
    from .models.text_encoder import word_vocabulary

    pipe = _load(args.model)
    root = Path(args.model or default_model_path())
    cfg = pipe.config
    print(f"model: {root.resolve()}")
    print(f"trained on: {cfg.trained_on}")
    print(f"video: {cfg.width}x{cfg.height} at {cfg.fps} fps, clips of {cfg.clip_frames} frames (what it was trained at)")
    words = word_vocabulary(pipe.tokenizer)
    if words is not None:  # a word-level tokenizer: any other word is read as unknown
        print(f"vocabulary: {len(words)} words: {' '.join(words)}")
    if pipe.planner is None:
        print("condensed tokens: none (no planner: the video follows the text alone)")
    else:
        grid = tuple(pipe.video_tokenizer.config.grid)
        print(f"condensed tokens: {pipe.video_tokenizer.num_tokens} per clip on a {grid} grid, "
              f"{pipe.video_tokenizer.config.token_dim} channels, planned in {pipe.token_codec.config.codec_dim}"
              + ("; the video's first latent frame reads learned start tokens" if pipe.video_tokenizer.start_tokens is not None else ""))
    print("components:")
    for name, component in pipe.components.items():
        if component is None:
            continue
        params = sum(p.numel() for p in component.parameters()) if hasattr(component, "parameters") else None
        size = _folder_size(root / name) if (root / name).is_dir() else 0
        detail = f"{params / 1e6:9.2f} M parameters" if params is not None else " " * 22
        print(f"  {name:16s} {type(component).__name__:34s} {detail}  {size / 2**20:7.2f} MiB")
    print(f"total on disk: {_folder_size(root) / 2**20:.2f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as stop:  # --help, --version, or a mistake already printed as one line
            return stop.code
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        commands = {"generate": cmd_generate, "info": cmd_info, "data": cmd_data, "eval": cmd_eval,
                    "calibrate-attention": cmd_calibrate_attention}
        return commands[args.command](args)
    except UsageError as err:
        print(f"t2v: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("t2v: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        if os.environ.get("T2V_DEBUG"):
            raise
        print(f"t2v: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # an unexpected failure still gets one line; T2V_DEBUG=1 shows the traceback
        if os.environ.get("T2V_DEBUG"):
            raise
        print(f"t2v: error: {type(err).__name__}: {err} (set T2V_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
