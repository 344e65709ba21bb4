"""Block-sparse attention kernel against dense SDPA, in one run on one device.

For every sequence length and density: the time of dense `scaled_dot_product_attention` and of
`t2v.attention.kernels.sparse_attention` (the gather into dense SDPA on CPU, compiled FlexAttention
on CUDA) with random key-block selections of that density
(the kernel's speed does not depend on which blocks are chosen), their ratio, and at the smallest
length the kernel's relative L2 error against dense SDPA restricted to the same blocks. The error
against full dense attention depends on how blocks are chosen (semantic / PARO selection), not on
this kernel, and is measured with them. Wan2.1-1.3B's attention shape: 12 heads of 128 channels.

    python benchmarks/sparse_kernel.py --lengths 4096 8192 16384 32768 --densities 0.1 0.25 0.5
"""

import argparse

import torch
import torch.nn.functional as F

from t2v.attention.kernels import masked_dense_attention, sparse_attention
from t2v.benchmark_utils import describe_run, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--query-tile", type=int, default=512)
    parser.add_argument("--key-block", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after a warm-up; the best is kept")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    describe_run()
    print(f"{args.heads} heads x {args.dim} channels, batch 1, float32; query tile {args.query_tile}, key block {args.key_block}; "
          f"best of {args.repeats} after a warm-up\n")
    print("| tokens | density | dense SDPA (s) | block-sparse (s) | speed-up | rel. L2 error vs masked dense |")
    print("| --- | --- | --- | --- | --- | --- |")
    g = torch.Generator(device).manual_seed(0)
    for length in args.lengths:
        q, k, v = (torch.randn(1, args.heads, length, args.dim, generator=g, device=device) for _ in range(3))
        dense = timed(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats)
        tiles, blocks = length // args.query_tile, length // args.key_block
        for density in args.densities:
            selected = max(1, round(density * blocks))
            kv = torch.rand(1, args.heads, tiles, blocks, generator=g, device=device).argsort(-1)[..., :selected]
            sparse = timed(lambda: sparse_attention(q, k, v, kv, args.query_tile, args.key_block), args.repeats)
            error = "-"
            if length == min(args.lengths) and length <= 8192:  # the element mask of the reference is N² per head
                ref = masked_dense_attention(q, k, v, kv, args.query_tile, args.key_block)
                out = sparse_attention(q, k, v, kv, args.query_tile, args.key_block)
                error = f"{float((out - ref).norm() / ref.norm()):.1e}"
            print(f"| {length} | {selected / blocks:.2f} | {dense:.3f} | {sparse:.3f} | {dense / sparse:.2f}x | {error} |", flush=True)


if __name__ == "__main__":
    main()
