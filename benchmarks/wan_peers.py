"""Long video against its peers on one Wan-shaped transformer: t2v's FIFO, SkyReels-V2 diffusion forcing, WanPipeline.

One random text-to-video Wan folder in diffusers' format (a Wan-shaped DiT, an `AutoencoderKLWan`, a 1-layer UMT5 text
encoder, Wan's UniPC scheduler) is saved once, and every method makes its videos from it:

- t2v FIFO: `T2VPipeline.from_wan(folder, fps=..., clip_frames=..., height=..., width=...)` (the planner off),
  `pipe.stream(..., stitching="fifo")`. A queue of S latent frames at rising noise is cut into ceil(S / f) windows of
  the f latent frames of one clip; every iteration runs those windows, cond and uncond, as one batch, and one frame
  leaves clean and is decoded at once. Frames are streamed, not kept.
- SkyReels-V2 DF: diffusers' `SkyReelsV2DiffusionForcingPipeline` with a `SkyReelsV2Transformer3DModel` loaded from the
  same folder (its parameters have the Wan DiT's names and shapes, so every weight is copied; the settings line says
  how many) and the folder's UniPC scheduler, in its long-video mode: chunks of `base_num_frames` (one clip), each one
  after the first starting from the last `overlap_history` frames of the video so far (re-noised by
  `addnoise_condition`), synchronous (`ar_step=0`: all frames of a chunk at the same step; the pipeline's default and
  its cheapest mode). Every chunk takes all S steps, cond and uncond as two calls; the latents of the whole video are
  kept and decoded at the end, and the whole video is returned.
- WanPipeline: one clip, its ordinary use (a longer video in one window is not what it is made for).

Every row is a fresh process: it loads its pipeline, warms up (one step; past one window for the two long-video
methods), then times `--repeats` calls (the prompt is encoded inside each) and keeps the fastest. Columns: wall
seconds per second of video; the DiT's calls, the latent frames they processed (batch x frames, summed) and the
seconds spent in them (the rest is text encoding, scheduler steps and the VAE); peak memory and its growth during the
calls. On a CPU that is the process's peak RSS (VmHWM, reset after the warm-up through /proc/self/clear_refs; Linux)
with glibc told to return freed buffers at once (MALLOC_MMAP_THRESHOLD_=65536, so RSS follows live memory), over the
RSS before the calls; on CUDA `torch.cuda.max_memory_allocated` over the memory allocated before. All methods run the
same steps, resolution, guidance (`--guidance`, 5) and frame counts (4k + 1, which SkyReels rounds to); the ratio
columns divide t2v FIFO's figure by the row's at the same length. Random weights measure time and memory, not quality.

Default (CPU): a 2-layer Wan of width 128 at 64x64, 8 fps, windows of 17 frames (5 latent frames), 20 steps (FIFO's
reference of 4 partitions), the smallest `AutoencoderKLWan` (base_dim 8, no channel growth) so that the DiT is a fair
part of the time (about 40%; at full size it is most of it), one torch thread (these small ops gain nothing from more, and on a busy
2-core machine a second thread mostly waits); about 3 minutes. `--device cuda`: Wan2.1-1.3B's shape (30 layers, 12
heads x 128, FFN 8960, 4096-channel text), 480x832, 16 fps, 81-frame windows (21 latent frames, 32,760 tokens), bf16,
the default `AutoencoderKLWan`, 21 steps (one FIFO partition). That is about 1,500 DiT forwards of a window (an
estimate: well over 10 minutes on one H100); `--layers 10` or `--seconds 10 30` for a shorter run.

    python benchmarks/wan_peers.py
    python benchmarks/wan_peers.py --device cuda --layers 10
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

PROMPT = "a cat walks along the beach at sunset"
METHODS = ("t2v FIFO", "SkyReels-V2 DF", "WanPipeline")
CPU = dict(layers=2, dim=128, heads=2, text_dim=64, height=64, width=64, fps=8, clip_frames=17, steps=20, repeats=2, threads=1)
CUDA = dict(layers=30, dim=1536, heads=12, text_dim=4096, height=480, width=832, fps=16, clip_frames=81, steps=21, repeats=1, threads=None)
SMALLEST_VAE = dict(base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1)  # so that the DiT is a fair part of the time on a CPU


def log(message: str) -> None:
    print(f"[wan_peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def video_frames(seconds: float, fps: int) -> int:
    """Frames of a video of `seconds`, as 4k + 1 (what the causal VAE makes and what SkyReels rounds to)."""
    return round(seconds * fps) // 4 * 4 + 1


def default_overlap(clip_frames: int) -> int:
    """About a quarter of a window as history: 17 frames (5 latent frames) of an 81-frame window, SkyReels' advice."""
    latent = max(1, round(((clip_frames - 1) // 4 + 1) / 4))
    return 4 * (latent - 1) + 1


def load(method: str, folder: str, args, dtype) -> tuple:
    """The method's pipeline on `folder`, and a note on how its DiT was made."""
    from diffusers import SkyReelsV2DiffusionForcingPipeline, SkyReelsV2Transformer3DModel, WanPipeline

    from t2v import T2VPipeline

    note = ""
    if method == "t2v FIFO":
        pipe = T2VPipeline.from_wan(folder, dtype=dtype, fps=args.fps, clip_frames=args.clip_frames, height=args.height,
                                    width=args.width)
    elif method == "SkyReels-V2 DF":
        from diffusers.pipelines.skyreels_v2 import pipeline_skyreels_v2_diffusion_forcing as skyreels
        from diffusers.pipelines.wan import pipeline_wan

        # diffusers 0.42's SkyReels cleans prompts with ftfy unconditionally (WanPipeline only when it is installed)
        skyreels.prompt_clean = pipeline_wan.prompt_clean
        transformer, info = SkyReelsV2Transformer3DModel.from_pretrained(folder, subfolder="transformer", dtype=dtype,
                                                                         output_loading_info=True)
        total = len(transformer.state_dict())
        note = f"{total - len(info['missing_keys'])} of {total} DiT tensors copied from the Wan folder"
        pipe = SkyReelsV2DiffusionForcingPipeline.from_pretrained(folder, transformer=transformer, dtype=dtype)
    else:
        pipe = WanPipeline.from_pretrained(folder, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe, note


def generate(pipe, method: str, num_frames: int, steps: int, args, device: str) -> int:
    """Make one video of `num_frames` frames with the method's ordinary call; return the frames made."""
    import torch

    generator = torch.Generator(device).manual_seed(0)
    common = dict(num_frames=num_frames, height=args.height, width=args.width, num_inference_steps=steps,
                  guidance_scale=args.guidance, generator=generator)
    if method == "t2v FIFO":
        return sum(chunk.shape[1] for chunk in pipe.stream(PROMPT, stitching="fifo", **common))
    if method == "SkyReels-V2 DF":
        long = num_frames > args.clip_frames
        frames = pipe(PROMPT, base_num_frames=args.clip_frames, overlap_history=args.overlap_history if long else None,
                      addnoise_condition=args.addnoise_condition if long else 0, ar_step=0, fps=args.fps, **common).frames
    else:
        frames = pipe(PROMPT, **common).frames
    return frames.shape[1]


def rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", open("/proc/self/status").read()).group(1))


def child(args) -> None:
    """One row: load the method, warm up, make the video `--repeats` times, print the figures as one JSON line."""
    import gc

    import torch

    device = args.device
    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    if not cuda:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pipe, note = load(args.method, args.folder, args, dtype)
    pipe.to(device)
    loading = time.perf_counter() - start
    # warm-up, one step: kernels, allocator, lazy initialisation; past one window for the two long-video methods
    generate(pipe, args.method, args.clip_frames + (0 if args.method == "WanPipeline" else 8), 1, args, device)
    counts = {}

    def before_dit(module, positional, keywords):
        latents = positional[0] if positional else keywords["hidden_states"]
        counts["calls"] += 1
        counts["dit_frames"] += latents.shape[0] * latents.shape[2]
        if cuda:
            torch.cuda.synchronize()
        counts["started"] = time.perf_counter()

    def after_dit(module, positional, output):
        if cuda:
            torch.cuda.synchronize()
        counts["dit_seconds"] += time.perf_counter() - counts.pop("started")

    pipe.transformer.register_forward_pre_hook(before_dit, with_kwargs=True)
    pipe.transformer.register_forward_hook(after_dit)
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM, the peak RSS, to the RSS now
        before = rss_kib("VmRSS") * 1024
    best = dict(seconds=float("inf"))
    for _ in range(args.repeats):  # the fastest call's figures; the memory peak over all
        counts.update(calls=0, dit_frames=0, dit_seconds=0.0)
        start = time.perf_counter()
        frames = generate(pipe, args.method, args.frames, args.steps, args, device)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed < best["seconds"]:
            best = dict(seconds=elapsed, frames=frames, **counts)
    peak = torch.cuda.max_memory_allocated() if cuda else rss_kib("VmHWM") * 1024
    print(json.dumps(dict(best, peak=peak / 2**20, growth=max(0, peak - before) / 2**20, loading=loading, note=note)))


def measure(args, method: str, frames: int, folder: str) -> dict:
    """Run one row in a fresh process with the same settings."""
    command = [sys.executable, os.path.abspath(__file__), "--child", method, str(frames), "--folder", folder, "--device", args.device]
    for name in ("layers", "dim", "heads", "text_dim", "height", "width", "fps", "clip_frames", "steps", "guidance",
                 "overlap_history", "addnoise_condition", "repeats", "threads"):
        if getattr(args, name) is not None:
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ)
    if args.device == "cpu":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # freed buffers go back to the system at once: RSS follows live memory
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{method} at {frames} frames failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(args, rows: list, window_frames: int, dtype, total: float) -> None:
    """Print the heading, the device, date and command, the settings and the table."""
    from t2v.benchmark_utils import describe_run

    window = (args.clip_frames - 1) // 4 + 1
    overlap = (args.overlap_history - 1) // 4 + 1
    tokens = window * (args.height // 16) * (args.width // 16)
    copied = next(r["note"] for _, method, r in rows if method == "SkyReels-V2 DF")
    cuda = args.device == "cuda"
    print("\n### Long video against its peers on a Wan-shaped transformer\n")
    describe_run()
    print(f"random Wan-shaped DiT: {args.layers} layers, width {args.dim} ({args.heads} heads x {args.dim // args.heads}), FFN "
          f"{args.dim * 8960 // 1536}, {str(dtype)[6:]} ({copied}); {'the default' if cuda else 'the smallest'} AutoencoderKLWan, "
          f"1-layer UMT5 of width {args.text_dim}; {args.height}x{args.width}, {args.fps} fps, windows of {args.clip_frames} frames "
          f"({window} latent frames, {tokens} tokens); {args.steps} steps and guidance {args.guidance:g} for all; SkyReels-V2 DF "
          f"synchronous (ar_step 0), base_num_frames {args.clip_frames}, overlap_history {args.overlap_history} ({overlap} latent "
          f"frame{'s' if overlap > 1 else ''}), addnoise_condition {args.addnoise_condition:g}; t2v FIFO streams its frames, the "
          f"peers return the whole video; a fresh process per row, the fastest of {args.repeats} timed "
          f"call{'s' if args.repeats > 1 else ''} after a warm-up; whole run {total / 60:.1f} minutes\n")
    memory = "GPU memory" if cuda else "RSS"
    print(f"| video | method | frames | wall time (s) | wall s per video second | DiT calls | latent frames through the DiT | "
          f"in the DiT (s) | peak {memory} (MiB) | growth (MiB) | t2v / this: time | t2v / this: growth |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ours = {frames: r for frames, method, r in rows if method == METHODS[0]}
    for frames, method, r in rows:
        video = f"{frames / args.fps:.1f} s" + (" (one window)" if frames == window_frames else "")
        per_second = r["seconds"] * args.fps / r["frames"]
        ratio_time = ours[frames]["seconds"] / r["seconds"]
        ratio_growth = f"{ours[frames]['growth'] / r['growth']:.2f}" if r["growth"] >= 1 else "-"  # not below 1 MiB
        print(f"| {video} | {method} | {r['frames']} | {r['seconds']:.1f} | {per_second:.3f} | {r['calls']} | {r['dit_frames']} | "
              f"{r['dit_seconds']:.1f} | {r['peak']:.0f} | {r['growth']:.0f} | {ratio_time:.2f} | {ratio_growth} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu: a tiny Wan; cuda: Wan2.1-1.3B's shape")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60], help="lengths of the long videos (one window is added)")
    parser.add_argument("--layers", type=int, help="DiT blocks (cpu 2, cuda 30)")
    parser.add_argument("--dim", type=int, help="DiT width, heads x head dim (cpu 128, cuda 1536); FFN in Wan2.1-1.3B's ratio")
    parser.add_argument("--heads", type=int, help="attention heads (cpu 2, cuda 12)")
    parser.add_argument("--text-dim", type=int, help="text encoder width (cpu 64, cuda 4096, UMT5-XXL's)")
    parser.add_argument("--height", type=int, help="pixels (cpu 64, cuda 480)")
    parser.add_argument("--width", type=int, help="pixels (cpu 64, cuda 832)")
    parser.add_argument("--fps", type=int, help="frames per second (cpu 8, cuda 16)")
    parser.add_argument("--clip-frames", type=int, help="frames of one window, 4k + 1 (cpu 17, cuda 81)")
    parser.add_argument("--steps", type=int, help="denoising steps of every method (cpu 20, cuda 21)")
    parser.add_argument("--repeats", type=int, help="timed calls per row, the fastest kept (cpu 2, cuda 1)")
    parser.add_argument("--threads", type=int, help="cpu: torch threads (default 1: these small ops gain nothing from more)")
    parser.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance of every method")
    parser.add_argument("--overlap-history", type=int, help="SkyReels: frames of history per chunk (default about a quarter window)")
    parser.add_argument("--addnoise-condition", type=float, default=20, help="SkyReels: noise on the history (its advice: 20)")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "FRAMES"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in (CUDA if args.device == "cuda" else CPU).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.overlap_history is None:
        args.overlap_history = default_overlap(args.clip_frames)
    if args.child:
        args.method, args.frames = args.child[0], int(args.child[1])
        return child(args)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda needs a CUDA GPU; without one run the CPU default (no --device).", file=sys.stderr)
        sys.exit(2)
    if args.clip_frames % 4 != 1 or args.dim % args.heads or args.height % 16 or args.width % 16:
        parser.error("--clip-frames must be 4k + 1, --dim a multiple of --heads, --height and --width multiples of 16.")
    if args.overlap_history >= args.clip_frames:
        parser.error("--overlap-history must be shorter than a window (--clip-frames).")

    import diffusers
    import transformers

    from t2v.benchmark_utils import random_wan_folder

    if args.device == "cpu":
        torch.set_num_threads(args.threads)  # as the rows run; describe_run prints it
    for library in (diffusers, transformers):  # saving's progress bars and dtype notes: not for the table
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    lengths = [video_frames(args.clip_frames / args.fps, args.fps), *(video_frames(s, args.fps) for s in args.seconds)]
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        log("saving a random Wan folder")
        random_wan_folder(folder, layers=args.layers, dim=args.dim, heads=args.heads, ffn=args.dim * 8960 // 1536, text_layers=1,
                          text_width=args.text_dim, vae=None if args.device == "cuda" else SMALLEST_VAE, words=PROMPT.split(),
                          dtype=dtype, device=args.device)
        for index, frames in enumerate(lengths):
            for method in METHODS if index == 0 else METHODS[:2]:
                log(f"{method}: {frames} frames")
                rows.append((frames, method, measure(args, method, frames, folder)))
    report(args, rows, lengths[0], dtype, time.perf_counter() - start)

if __name__ == "__main__":
    main()
