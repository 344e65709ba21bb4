"""One-GPU suite for BENCHMARKS.md: the sparse attention kernel, a Wan-1.3B-shaped forward, and FIFO at 480x832.

Meant for one NVIDIA H100/H200 in under 10 minutes. Every section prints a heading, the device, date
and command (`describe_run()`), a line of settings and Markdown tables; progress goes to stderr.

- kernel: dense SDPA against `t2v.attention.kernels.sparse_attention` (compiled FlexAttention on CUDA),
  batch 1, 12 heads x 128, bf16, at 32,760 tokens (Wan 480p x 81 frames: 21x30x52) and 75,600 (720p:
  21x45x80), with random key-block selections of density 0.1/0.25/0.5. As the sparse processor does,
  the sequence is padded to 512-query tiles (64-key blocks) and the padding masked. Seconds (best of
  `--repeats` after a warm-up; the sparse time includes building the BlockMask, as every semantic
  step does), speed-up, relative L2 error against the gather kernel `block_sparse_attention` on the
  same blocks, and how often FlexAttention was compiled: at the first call of a shape, over 3 more
  calls with the same blocks, and over calls with other blocks, densities and per-tile block counts.
- transformer: diffusers' `WanTransformer3DModel` with Wan2.1-1.3B's config (30 layers, 12 heads x 128,
  FFN 8960, 4096-channel text of 512 tokens, patch 1x2x2; random bf16 weights; `--layers` for fewer)
  on a 480x832x81 video's latent (21x60x104; 21x30x52 = 32,760 tokens), timestep 500: dense against
  `enable_sparse_attention(..., mode="semantic")` and "paro" (calibrated by `calibrate_attention` on one
  dense forward), density 0.25, sparse in every layer (dense_layers=0). Seconds per forward, speed-up,
  relative L2 error of the output against dense, and FlexAttention compilations in each mode's first
  forward and in its later ones (the first is 0 when the kernel section already compiled the shape).
- fifo: a random Wan folder in diffusers' format with the 1.3B DiT, the default `AutoencoderKLWan()` and
  a 1-layer UMT5 of d_model 4096 (tokenizer: `build_word_tokenizer`), converted by `pipeline_from_wan`
  (bf16, CUDA; 16 fps, clips of 81 frames, 480x832), then `pipe.stream(...)` of 10 s and 60 s in one
  process: wall seconds per video second and peak `torch.cuda.max_memory_allocated`. Few steps
  (`--steps 4`) and no guidance (`--guidance 1`) by default to fit the time: with S steps below the
  window's 21 latent frames every latent frame costs one window call whatever S, and guidance doubles it.

Compilations are counted with `torch._dynamo.utils.counters["frames"]["ok"]` (torch 2.13): the frames
Dynamo has compiled in this process; each compilation or recompilation of FlexAttention adds one, and
nothing else here is compiled (`TORCH_LOGS=recompiles` prints each one's reason). "unique_graphs" is not
used: uncompiled `flex_attention` compiles a graph of its own. The kernel table also says whether Dynamo
hit `torch._dynamo.config.recompile_limit`; FlexAttention then runs uncompiled, and uncompiled it attends
every key its mask_mod allows (dense attention, N^2 memory), ignoring the block list.

`--dry-run` runs every section at toy sizes on the CPU in well under a minute (tests/test_gpu_suite.py):
float32, FlexAttention compiled with backend="eager" for the compilation counts (the same Dynamo guards,
hence the same counts; Inductor takes about 30 s per shape on a CPU), the gather kernel elsewhere.

    python benchmarks/gpu_suite.py
    python benchmarks/gpu_suite.py --sections kernel transformer --layers 10
    python benchmarks/gpu_suite.py --dry-run
"""

import argparse
import math
import sys
import tempfile
import time

import diffusers
import torch
import torch.nn.functional as F
import transformers
from torch._dynamo.utils import counters

from t2v.attention import calibrate_attention, disable_sparse_attention, enable_sparse_attention, kernels
from t2v.benchmark_utils import describe_run, random_wan_folder, timed

SECTIONS = ("kernel", "transformer", "fifo")
PROMPT = "a red circle bounces left and right"
WAN_13B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
               text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30)
TINY = dict(WAN_13B, num_attention_heads=2, attention_head_dim=32, text_dim=64, freq_dim=32, ffn_dim=128)
FULL = dict(kernel_tokens=[32760, 75600], heads=12, dim=128, grid=[21, 30, 52], layers=30, seconds=[10, 60])
DRY = dict(kernel_tokens=[1000, 1800], heads=2, dim=32, grid=[4, 32, 32], layers=2, seconds=[1, 3])
# what pipeline_from_wan makes: Wan2.1's 480p video and TokensGen's token sizes; toy sizes for the dry run
FIFO_FULL = dict(fps=16, clip_frames=81, height=480, width=832, token_grid=(4, 8, 12), token_dim=512, codec_dim=16)
FIFO_DRY = dict(fps=8, clip_frames=17, height=64, width=64, token_grid=(2, 2, 2), token_dim=32, codec_dim=8)
TILE, BLOCK = 512, 64  # the sparse processor's default query tile and key block


def compilations() -> int:
    """Frames Dynamo has compiled so far in this process (each FlexAttention compilation or recompilation is one)."""
    return counters["frames"]["ok"]


def hit_recompile_limit() -> bool:
    return any("recompile limit" in reason.lower() for reason in counters["unimplemented"])


def log(message: str) -> None:
    print(f"[gpu_suite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cast(model, dtype):
    """`model` in `dtype` but for the modules diffusers keeps in float32 when a Wan loads with `torch_dtype` (rope,
    norms, time embedding), so that it runs as a bf16 Wan2.1 does; `model.to(dtype)` would cast those too."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or [])
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not keep & set(name.split(".")):
            tensor.data = tensor.data.to(dtype)
    return model


def heading(title: str, settings: str) -> None:
    print(f"\n### {title}\n")
    describe_run()
    print(f"{settings}\n", flush=True)


def kernel_length(args, length: int, g: torch.Generator, device, dtype) -> tuple[int, int, int]:
    """Print the timing rows of one sequence length; return FlexAttention's compilations at its first call, over 3
    more calls with the same blocks, and over the later calls (other blocks, densities and per-tile counts)."""
    padded = math.ceil(length / TILE) * TILE
    tiles, blocks = padded // TILE, padded // BLOCK
    q, k, v = (torch.randn(1, args.heads, length, args.dim, generator=g, device=device, dtype=dtype) for _ in range(3))
    qp, kp, vp = (F.pad(x, (0, 0, 0, padded - length)) for x in (q, k, v))

    def select(density):
        chosen = max(1, round(density * blocks))
        return torch.rand(1, args.heads, tiles, blocks, generator=g, device=device).argsort(-1)[..., :chosen]

    def sparse(kv, counts=None, kernel=kernels.sparse_attention):
        return kernel(qp, kp, vp, kv, TILE, BLOCK, num_keys=length, counts=counts)

    start, fixed = compilations(), select(0.25)
    sparse(fixed, kernel=kernels.flex_block_sparse_attention)  # what sparse_attention runs on CUDA
    first = compilations() - start
    for _ in range(3):
        sparse(fixed, kernel=kernels.flex_block_sparse_attention)
    same = compilations() - start - first
    dense = timed(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats)
    for density in args.densities:
        kv = select(density)
        seconds = timed(lambda kv=kv: sparse(kv), args.repeats)
        error = "-"  # on a CPU sparse_attention is the gather kernel itself
        if device == "cuda":
            out, ref = sparse(kv)[:, :, :length].float(), sparse(kv, kernel=kernels.block_sparse_attention)[:, :, :length].float()
            error = f"{float((out - ref).norm() / ref.norm()):.1e}"
        print(f"| {length} | {kv.shape[-1] / blocks:.2f} | {dense:.4f} | {seconds:.4f} | {dense / seconds:.2f}x | {error} |", flush=True)
    counts = torch.Generator().manual_seed(1)
    for density in args.densities:  # fresh blocks again, and per-tile counts as semantic mode passes them
        kv = select(density)
        sparse(kv, kernel=kernels.flex_block_sparse_attention)
        sparse(kv, torch.randint(1, kv.shape[-1] + 1, (tiles,), generator=counts).tolist(), kernels.flex_block_sparse_attention)
    return first, same, compilations() - start - first - same


def kernel_section(args, device, dtype) -> None:
    heading("Attention kernel: dense SDPA against block-sparse FlexAttention",
            f"batch 1, {args.heads} heads x {args.dim}, {str(dtype)[6:]}; random key blocks; query tile {TILE}, key block "
            f"{BLOCK}, padded to whole tiles and masked; best of {args.repeats} after a warm-up")
    print("| tokens | density | dense SDPA (s) | block-sparse (s) | speed-up | rel. L2 error vs gather kernel |")
    print("| --- | --- | --- | --- | --- | --- |")
    g = torch.Generator(device).manual_seed(0)
    compiled = []
    for length in args.kernel_tokens:
        log(f"kernel: {length} tokens")
        compiled.append((length, *kernel_length(args, length, g, device, dtype)))
    print(f"\nFlexAttention compilations (Dynamo frames compiled; recompile limit {torch._dynamo.config.recompile_limit}):\n")
    print("| tokens | first call | 3 more calls, same blocks | later calls: other blocks, densities, per-tile counts | "
          "hit the recompile limit |")
    print("| --- | --- | --- | --- | --- |")
    for length, first, same, other in compiled:
        print(f"| {length} | {first} | {same} | {other} | {'yes' if hit_recompile_limit() else 'no'} |")


def transformer_section(args, device, dtype) -> None:
    from diffusers import WanTransformer3DModel

    frames, height, width = args.grid
    config = {**(TINY if args.dry_run else WAN_13B), "num_layers": args.layers}
    log(f"transformer: {args.layers} layers, {frames}x{height}x{width} tokens")
    torch.manual_seed(0)
    with torch.device(device):  # random initialisation where the model runs (fast on a GPU)
        model = cast(WanTransformer3DModel(**config), dtype).eval()
    g = torch.Generator(device).manual_seed(0)
    latents = torch.randn(1, config["in_channels"], frames, 2 * height, 2 * width, generator=g, device=device, dtype=dtype)
    text = torch.randn(1, 512, config["text_dim"], generator=g, device=device, dtype=dtype)
    timestep = torch.tensor([500.0], device=device)

    def forward():
        return model(latents, timestep, text, return_dict=False)[0]

    rows = []
    with torch.no_grad():
        reference = forward()
        start = time.perf_counter()
        plan = calibrate_attention(model, forward, density=args.density)
        calibration = time.perf_counter() - start
        for mode in ("dense", "semantic", "paro"):
            log(f"transformer: {mode}")
            if mode != "dense":
                enable_sparse_attention(model, args.density, mode, plan=plan if mode == "paro" else None, dense_layers=0)
            before = compilations()
            out = forward()
            first = compilations() - before
            seconds = timed(forward, args.repeats)
            used = [b.attn1.processor.last_density for b in model.blocks if getattr(b.attn1.processor, "last_density", None)]
            density = sum(used) / len(used) if used else 1.0
            error = float((out - reference).float().norm() / reference.float().norm())
            rows.append((mode, density, seconds, error, first, compilations() - before - first))
            disable_sparse_attention(model)
    kept = " (rope, norms, time embedding in float32, as diffusers loads Wan)" if dtype != torch.float32 else ""
    heading("A Wan2.1-1.3B-shaped transformer forward: dense, semantic and PARO attention",
            f"stock WanTransformer3DModel, 1.3B config, {args.layers} layers, random weights, {str(dtype)[6:]}{kept}; "
            f"{frames * height * width} tokens ({frames}x{height}x{width}), timestep 500, density {args.density}, sparse in every "
            f"layer; best of {args.repeats} after a warm-up; PARO calibration (one dense forward): {calibration:.1f} s")
    print("| attention | density used | forward (s) | speed-up | output rel. L2 error vs dense | "
          "FlexAttention compilations: first forward | later forwards |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, density, seconds, error, first, later in rows:
        print(f"| {mode} | {density:.2f} | {seconds:.3f} | {rows[0][2] / seconds:.2f}x | {error:.3f} | {first} | {later} |")


def fifo_section(args, device, dtype) -> None:
    from t2v.pipelines.wan_base import pipeline_from_wan

    size = FIFO_DRY if args.dry_run else FIFO_FULL
    cuda = device == "cuda"
    with tempfile.TemporaryDirectory() as folder:
        log("fifo: saving a random Wan folder and converting it")
        start = time.perf_counter()
        dit = TINY if args.dry_run else WAN_13B
        random_wan_folder(folder, layers=args.layers, dim=dit["num_attention_heads"] * dit["attention_head_dim"],
                          heads=dit["num_attention_heads"], ffn=dit["ffn_dim"], freq_dim=dit["freq_dim"], text_layers=1,
                          text_width=dit["text_dim"], text_heads=4 if args.dry_run else 64, words=PROMPT.split(),
                          vae=dict(base_dim=16, num_res_blocks=1) if args.dry_run else None, dtype=dtype, device=device)
        pipe = pipeline_from_wan(folder, torch_dtype=dtype, **size).to(device)
        setup = time.perf_counter() - start
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=args.steps, planner_steps=args.steps, guidance_scale=args.guidance,
                planner_guidance_scale=args.guidance)
    window = pipe.latent_frames_per_clip
    tokens = window * (size["height"] // 16) * (size["width"] // 16)
    # warm-up: a first window and two FIFO iterations with one step, decoded (kernel selection, allocator)
    pipe(PROMPT, num_frames=size["clip_frames"] + 8, **{**call, "num_inference_steps": 1, "planner_steps": 1})
    rows = []
    for seconds in args.seconds:
        log(f"fifo: {seconds:g} s of video")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start, first, frames = time.perf_counter(), None, 0
        stream = pipe.stream(PROMPT, seconds=seconds, generator=torch.Generator(device).manual_seed(0), **call)
        for chunk in stream:
            first = first or time.perf_counter()
            frames += chunk.shape[1]
        elapsed = time.perf_counter() - start
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f}" if cuda else "-"
        rows.append((seconds, frames, elapsed, first - start, peak))
    heading(f"FIFO at {size['height']}x{size['width']}: time per video second and peak GPU memory",
            f"T2VPipeline by pipeline_from_wan from a random Wan folder: {args.layers}-layer Wan2.1-1.3B-shaped DiT (denoiser and "
            f"planner), {'a toy' if args.dry_run else 'the default'} AutoencoderKLWan, 1-layer UMT5 text encoder; {str(dtype)[6:]}; "
            f"{size['fps']} fps, clips of {size['clip_frames']} frames (FIFO window {window} latent frames, {tokens} tokens); "
            f"{args.steps} steps, planner {args.steps} steps, guidance {args.guidance:g}; fifo stitching, frames decoded as they "
            f"leave; folder saving and conversion {setup:.0f} s")
    print("| video | frames | wall time (s) | to first frame (s) | wall s per video second | peak GPU memory (GiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for seconds, frames, elapsed, to_first, peak in rows:
        print(f"| {seconds:g} s | {frames} | {elapsed:.1f} | {to_first:.1f} | {elapsed / seconds:.2f} | {peak} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--dry-run", action="store_true", help="every section at toy sizes on the CPU (for the tests)")
    parser.add_argument("--kernel-tokens", type=int, nargs="+", help="kernel: sequence lengths (default 32760 75600)")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.25, 0.5], help="kernel: key-block densities")
    parser.add_argument("--heads", type=int, help="kernel: attention heads (default 12)")
    parser.add_argument("--dim", type=int, help="kernel: channels per head (default 128)")
    parser.add_argument("--grid", type=int, nargs=3, help="transformer: latent frames, height and width in tokens (default 21 30 52)")
    parser.add_argument("--layers", type=int, help="transformer and fifo: DiT blocks (default 30, Wan2.1-1.3B's)")
    parser.add_argument("--density", type=float, default=0.25, help="transformer: sparse attention density")
    parser.add_argument("--seconds", type=float, nargs="+", help="fifo: video lengths in seconds (default 10 60)")
    parser.add_argument("--steps", type=int, default=4, help="fifo: denoising steps (and planner steps)")
    parser.add_argument("--guidance", type=float, default=1.0, help="fifo: guidance scale (1: off; above 1 doubles the time)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after a warm-up; the best is kept")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("error: benchmarks/gpu_suite.py needs a CUDA GPU (or --dry-run for toy sizes on the CPU).", file=sys.stderr)
        sys.exit(2)
    for key, value in (DRY if args.dry_run else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    device, dtype = ("cpu", torch.float32) if args.dry_run else ("cuda", torch.bfloat16)
    for library in (diffusers, transformers):  # progress bars and dtype notes of saving and loading: not for the tables
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    if args.dry_run:  # Dynamo's guards without Inductor's CPU compile (see the module docstring)
        from torch.nn.attention.flex_attention import flex_attention

        kernels._compiled_flex = torch.compile(flex_attention, dynamic=False, backend="eager")
    start = time.perf_counter()
    sections = {"kernel": kernel_section, "transformer": transformer_section, "fifo": fifo_section}
    for name in SECTIONS:
        if name in args.sections:
            with torch.no_grad():
                sections[name](args, device, dtype)
            if device == "cuda":
                torch.cuda.empty_cache()
    log(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
