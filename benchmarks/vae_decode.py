"""Streaming decoding on a CPU with PyTorch's stock 3D convolutions against oneDNN's (`use_onednn_convolutions`).

    python benchmarks/vae_decode.py [--latent-frames 12] [--rounds 3]

`StreamingDecoder` decodes a video one latent frame at a time, so every 3D convolution has batch 1 and a
short input, which ATen runs with its slow kernel; `t2v.models.vae.use_onednn_convolutions` sends them to
oneDNN. For the packaged VAE (8x spatial compression, a 2x2 pixel fold) and the default model's VAE of 4x
(`t2v.shapes.model.build_vae(4)`, random weights: weights do not change the cost), at 64x64, this times
decoding `--latent-frames` latent frames with each, interleaved (`timed_interleaved`), and prints the
ratio and the largest difference between the two videos.
"""

import argparse
import copy

import torch

from t2v import default_model_path
from t2v.benchmark_utils import describe_run, timed_interleaved
from t2v.models.vae import StreamingDecoder, use_onednn_convolutions
from t2v.shapes.model import build_vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from diffusers import AutoencoderKLWan

    describe_run()
    print(f"{args.latent_frames} latent frames decoded one at a time, best of {args.rounds} interleaved rounds\n")
    print("| VAE | stock kernels (s) | oneDNN (s) | speed-up | largest difference |")
    print("| --- | --- | --- | --- | --- |")
    torch.manual_seed(0)
    vaes = {"packaged (8x)": AutoencoderKLWan.from_pretrained(default_model_path() / "vae"), "4x, random weights": build_vae(4)}
    for name, stock in vaes.items():
        stock.eval()
        fast = use_onednn_convolutions(copy.deepcopy(stock))
        side = 64 // stock.config.scale_factor_spatial
        z = torch.randn(1, stock.config.z_dim, args.latent_frames, side, side, generator=torch.Generator().manual_seed(0))

        def decode(vae):
            decoder = StreamingDecoder.__new__(StreamingDecoder)  # StreamingDecoder(vae) would patch the stock VAE too
            decoder.vae, decoder._states = vae, {}
            return torch.cat([decoder.decode(z[:, :, i : i + 1]) for i in range(z.shape[2])], dim=2)

        best = timed_interleaved({"stock": lambda: decode(stock), "onednn": lambda: decode(fast)}, args.rounds, 1)
        difference = (decode(stock) - decode(fast)).abs().max().item()
        print(f"| {name} | {best['stock']:.2f} | {best['onednn']:.2f} | {best['stock'] / best['onednn']:.2f}x | {difference:.1e} |")


if __name__ == "__main__":
    main()
