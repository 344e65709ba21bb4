"""Is the object's shape in a VAE's latents? A probe on the latent cells around the object.

    python research/latent_probe.py [--models DIR ...] [--videos-per-pair 8]

The VAE's ceiling (`vae_ceiling.py`) says what comes back through encoder and decoder together; this
asks the encoder alone. The Shapes generator renders every color-shape pair (33 frames, the motions
in turn) `--videos-per-pair` times with other seeds; each model's VAE encodes them as the latent
cache does (`encode_latents`), and for every latent frame after the first the 3×3 latent cells
around the object's true centre (bilinear, at the centre's sub-cell position) are the features. A
linear classifier and a one-hidden-layer MLP learn the shape from the first three quarters of the
seeds and are scored on the last quarter (chance: 1/3). High accuracy with a decoder that draws
circles and squares alike means the decoder, not the latent, loses the shape.
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.models.vae import encode_latents
from t2v.shapes.world import COLORS, MOTIONS, SHAPES, render_video_with_truth

NUM_FRAMES = 33


@torch.no_grad()
def latent_features(pipe: T2VPipeline, videos_per_pair: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(features, shape labels, seed of each row): 3×3 latent cells around the object, per latent frame."""
    vae, scale, stride = pipe.vae, pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
    features, labels, seeds = [], [], []
    for seed in range(videos_per_pair):
        for color in COLORS:
            for label, shape in enumerate(SHAPES):
                caption = f"a {color} {shape} {MOTIONS[seed % len(MOTIONS)]}"
                video, truth = render_video_with_truth(caption, NUM_FRAMES, seed * 100 + label)
                pixels = torch.from_numpy(video.astype(np.float32) / 255).permute(3, 0, 1, 2)[None] * 2 - 1
                latents = encode_latents(vae, pixels.to(vae.device))[0].float().cpu()
                _, frames, height, width = latents.shape
                offsets = torch.tensor([-1.0, 0.0, 1.0])
                for t in range(1, frames):  # latent frame t ends at pixel frame stride·t
                    x, y = truth[stride * t]["x"] / scale - 0.5, truth[stride * t]["y"] / scale - 0.5  # in cells
                    gy, gx = torch.meshgrid(y + offsets, x + offsets, indexing="ij")
                    grid = torch.stack([gx / (width - 1) * 2 - 1, gy / (height - 1) * 2 - 1], dim=-1)[None]
                    cells = F.grid_sample(latents[:, t][None], grid, align_corners=True)
                    features.append(cells.flatten())
                    labels.append(label)
                    seeds.append(seed)
    return torch.stack(features), torch.tensor(labels), np.array(seeds)


def probe(features: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, hidden: int) -> list[float]:
    """Test accuracy overall and per shape of a classifier fitted on the `train` rows (full batch, Adam)."""
    mean, std = features[train].mean(0), features[train].std(0) + 1e-6
    x = (features - mean) / std
    torch.manual_seed(0)
    dims = x.shape[1]
    net = torch.nn.Linear(dims, len(SHAPES)) if not hidden else torch.nn.Sequential(
        torch.nn.Linear(dims, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, len(SHAPES)))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(500):
        optimizer.zero_grad()
        F.cross_entropy(net(x[train]), labels[train]).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = net(x[~train]).argmax(1)
    truth = labels[~train]
    return [(predicted == truth).float().mean().item()] + [
        (predicted[truth == k] == k).float().mean().item() for k in range(len(SHAPES))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="model folders (default: the packaged model)")
    parser.add_argument("--videos-per-pair", type=int, default=8, help="videos of every color-shape pair (at least 4)")
    args = parser.parse_args()
    if args.videos_per_pair < 4:
        parser.error("--videos-per-pair must be at least 4 (a quarter of the seeds is the test set)")
    describe_run()
    print("\n| model | probe | accuracy | circle | square | triangle |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model in args.models or [default_model_path()]:
        features, labels, seeds = latent_features(T2VPipeline.from_pretrained(model), args.videos_per_pair)
        train = torch.from_numpy(seeds < args.videos_per_pair * 3 // 4)
        for name, hidden in (("linear", 0), ("MLP, 128 hidden", 128)):
            cells = " | ".join(f"{a:.3f}" for a in probe(features, labels, train, hidden))
            print(f"| {model} | {name} | {cells} |")
    print(f"\n({len(labels) - int(train.sum())} test latent frames of {len(labels)} per model; chance 0.333)")


if __name__ == "__main__":
    main()
