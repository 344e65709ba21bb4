"""The ceiling a VAE sets on ShapesBench: ground-truth Shapes videos, encoded and decoded, then scored.

    python research/vae_ceiling.py [--model DIR] --out OUT [--seconds 60] [--prompts 5] [--seeds 2]

The same held-out prompts as `shapes_ablation.py` are rendered by the Shapes generator (the truth),
then every video is encoded whole by the model's VAE (the posterior's mode, as training caches it)
and decoded whole. ShapesBench scores both folders: the truth must score perfect, and the
reconstruction shows how much of a generated video's score the VAE alone can lose. A denoiser can do
no better than its VAE, so a low ceiling means the VAE, not the denoiser, needs training.
Also prints the PSNR of the reconstruction over all pixels and over the object's pixels.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import evaluate_folder
from t2v.shapes.evaluate import METRICS, add_prompt_options, held_out_prompts, table_cells
from t2v.shapes.world import render_video
from t2v.video_io import write_video


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays in [0, 1]."""
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def psnr_and_object_psnr(truth: np.ndarray, recon: np.ndarray) -> tuple[float, float]:
    """PSNR over all pixels and over the object's (where the truth is brighter than 0.05), frames (..., 3) in [0, 1]."""
    mask = truth.max(axis=-1) > 0.05
    return psnr(truth, recon), psnr(truth[mask], recon[mask])


@torch.no_grad()
def reconstruct(vae, frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) in [0, 1] -> the VAE's reconstruction, same shape, in [0, 1]."""
    video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].to(vae.device, vae.dtype) * 2 - 1
    recon = vae.decode(vae.encode(video).latent_dist.mode()).sample
    return ((recon[0].permute(1, 2, 3, 0).float().cpu().numpy() + 1) / 2).clip(0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the truth/ and recon/ folders and vae_ceiling.json go")
    add_prompt_options(parser)
    args = parser.parse_args()
    describe_run()

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    fps = pipe.config.fps
    num_frames = 1 + 4 * round((args.seconds * fps - 1) / 4)  # whole latent frames
    out = Path(args.out)
    lines, whole, inside = [], [], []
    for folder in ("truth", "recon"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for p, prompt in enumerate(held_out_prompts(args.prompts, args.prompt_seed)):
        for seed in range(args.seeds):
            name = f"{p:02d}-seed{seed}.mp4"
            truth = render_video(prompt, num_frames, seed).astype(np.float32) / 255.0
            recon = reconstruct(pipe.vae, truth)
            write_video(truth, out / "truth" / name, fps)
            write_video(recon, out / "recon" / name, fps)
            lines.append(json.dumps({"file_name": name, "text": prompt, "seed": seed}))
            frame_psnr, object_psnr = psnr_and_object_psnr(truth, recon)
            whole.append(frame_psnr)
            inside.append(object_psnr)
    results = {}
    for folder in ("truth", "recon"):
        (out / folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        summary = evaluate_folder(out / folder).summary
        results[folder] = {m: getattr(summary, m) for m in METRICS}
    results["recon"].update(psnr=float(np.mean(whole)), object_psnr=float(np.mean(inside)))

    print(f"\n{len(lines)} videos of {num_frames} frames ({args.prompts} held-out prompts x {args.seeds} seeds)\n")
    print("| videos | " + " | ".join(METRICS) + " |")
    print("| --- |" + " --- |" * len(METRICS))
    for folder, r in results.items():
        print(f"| {folder} | " + " | ".join(table_cells(r)) + " |")
    print(f"\nreconstruction PSNR: {results['recon']['psnr']:.1f} dB over all pixels, "
          f"{results['recon']['object_psnr']:.1f} dB over the object's")
    (out / "vae_ceiling.json").write_text(json.dumps({"num_frames": num_frames, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
