"""A stock diffusers WanTransformer3DModel forward with dense, semantic and PARO self-attention, in one run.

The model has Wan2.1-1.3B's layer shape (width 1536, 12 heads of 128 channels, FFN 8960, 4096-channel
text of 512 tokens, patch 1x2x2) with random weights and `--layers` blocks; the token grid is
`--grid` (frames, height, width after patching), 8x32x64 = 16,384 tokens by default. For each mode
it reports the time of a whole forward (best of `--repeats` after a warm-up), the time of the first
block's self-attention alone on the same queries, keys and values (for sparse modes this includes
k-means, reordering and block selection), the key-block density actually used, and the relative L2
error of the output against dense. Sparse attention runs in every layer here (`dense_layers=0`, a
mid-trajectory timestep); PARO is calibrated first on one dense forward of the same input.

Random weights attend diffusely, so the errors here are an upper bound on what a trained model
sees; the picture's error is measured on the trained default model.

    python benchmarks/sparse_transformer.py --grid 8 32 64 --layers 2 --density 0.25
"""

import argparse
import time

import torch
from diffusers import WanTransformer3DModel

from t2v.attention import calibrate_attention, disable_sparse_attention, enable_sparse_attention
from t2v.attention.processor import self_attention_qkv
from t2v.benchmark_utils import describe_run, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, nargs=3, default=[8, 32, 64], help="latent frames, height and width in tokens")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--density", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    describe_run()
    frames, height, width = args.grid
    tokens = frames * height * width
    print(f"stock WanTransformer3DModel, Wan2.1-1.3B layer shape, {args.layers} layers, random weights, {args.dtype}; "
          f"{tokens} tokens ({frames}x{height}x{width}); density {args.density}; best of {args.repeats} after a warm-up\n")

    torch.manual_seed(0)
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=args.layers,
    ).to(device).eval()
    if dtype != torch.float32:  # keep Wan's float32 modules (rope, norms, time embedding) in float32
        model = model.to(dtype)
    g = torch.Generator(device).manual_seed(0)
    latents = torch.randn(1, 16, frames, 2 * height, 2 * width, generator=g, device=device, dtype=dtype)
    text = torch.randn(1, 512, 4096, generator=g, device=device, dtype=dtype)
    timestep = torch.tensor([500.0], device=device)
    captured = {}

    def capture(module, args_):
        captured["args"] = args_

    handle = model.blocks[0].attn1.register_forward_pre_hook(capture)
    with torch.no_grad():
        forward = lambda: model(latents, timestep, text, return_dict=False)[0]  # noqa: E731
        reference = forward()
        handle.remove()
        hidden, _, _, rotary = captured["args"]
        q, k, v = self_attention_qkv(model.blocks[0].attn1, hidden, rotary)
        processor = model.blocks[0].attn1.processor
        attention = lambda p: p._attend(q, k, v, None) if hasattr(p, "_attend") else p._dense(q, k, v)  # noqa: E731
        dense_attention = torch.nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v))).transpose(1, 2)

        start = time.perf_counter()
        plan = calibrate_attention(model, forward, density=args.density)
        calibration = time.perf_counter() - start

        rows = []
        for mode in ("dense", "semantic", "paro"):
            if mode == "dense":
                disable_sparse_attention(model)
                attn_time = timed(lambda: torch.nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v))), args.repeats)
                density, out, attn_error = 1.0, reference, 0.0
            else:
                enable_sparse_attention(model, args.density, mode, plan=plan if mode == "paro" else None, dense_layers=0)
                processor = model.blocks[0].attn1.processor
                out = forward()  # also tells the processors the token grid and timestep
                attn_time = timed(lambda: attention(processor), args.repeats)
                attn_out = attention(processor)
                density = processor.last_density
                attn_error = float((attn_out - dense_attention).float().norm() / dense_attention.float().norm())
            forward_time = timed(forward, args.repeats)
            error = float((out - reference).float().norm() / reference.float().norm())
            rows.append((mode, density, forward_time, attn_time, error, attn_error))
        disable_sparse_attention(model)

    print(f"PARO calibration (one dense forward, 6 axis orders): {calibration:.1f} s\n")
    print("| attention | density used | forward (s) | speed-up | self-attention, block 0 (s) | speed-up | "
          "output rel. L2 error | attention rel. L2 error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    dense_forward, dense_attn = rows[0][2], rows[0][3]
    for mode, density, forward_time, attn_time, error, attn_error in rows:
        print(f"| {mode} | {density:.2f} | {forward_time:.2f} | {dense_forward / forward_time:.2f}x | {attn_time:.2f} | "
              f"{dense_attn / attn_time:.2f}x | {error:.3f} | {attn_error:.3f} |")


if __name__ == "__main__":
    main()
