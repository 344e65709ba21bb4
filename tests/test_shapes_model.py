"""The packaged model is the trained Shapes-world model: it says so, and it draws what the prompt asks for."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from t2v import T2VPipeline, default_model_path
from t2v.shapes.bench import centroids, measure_video, score_video
from t2v.video_io import to_uint8

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe():
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_packaged_model_says_how_it_was_trained(pipe):
    line = pipe.config.trained_on
    assert "Shapes world" in line and "bash training/recipes/shapes/run.sh --profile full" in line and "commit" in line
    assert "hours of training" in line


def test_packaged_model_has_learned_the_black_background(pipe):
    """Random weights give grey noise; the trained model draws on black, as every Shapes video is."""
    frames = pipe("a red square stays still", seconds=4, generator=torch.Generator().manual_seed(0)).frames[0]
    assert frames.shape == (32, 64, 64, 3)
    assert np.median(frames, axis=(1, 2)).max() < 0.1


@pytest.mark.parametrize("prompt", ["a red square stays still", "a blue circle bounces left and right"])
def test_packaged_model_draws_the_color_of_the_prompt(pipe, prompt):
    """Seen color-shape pairs, 4 s: the object is there in (almost) every frame, in the asked color
    (the model card: color 0.994 on trained pairs; shape and motion are not reached yet, see README)."""
    frames = pipe(prompt, seconds=4, generator=torch.Generator().manual_seed(0)).frames[0]
    score = score_video(to_uint8(frames), prompt)
    assert score.detected > 0.9
    assert score.color_accuracy >= 0.8


def test_the_readme_first_command_draws_a_red_circle_across_the_frame(pipe):
    """`t2v generate "a red circle bounces left and right" --seconds 8` (seed 0): a red circle whose centre
    crosses most of the frame (a bounce across the whole frame spans about x = 7 to 57; the model card
    measured 7 to 57, color 1.00, shape 0.95), red from its first frame on (the start tokens: the model
    without them drew this video's first seven frames blue, cyan, white and magenta). Its path is not yet
    a clean bounce (motion 0.5, README)."""
    prompt = "a red circle bounces left and right"
    frames = pipe(prompt, seconds=8, generator=torch.Generator().manual_seed(0)).frames[0]
    video = to_uint8(frames)
    score = score_video(video, prompt)
    assert score.color_accuracy >= 0.8 and score.shape_accuracy >= 0.8
    measured = measure_video(video)
    assert [m is not None and m.color for m in measured[:4]] == ["red"] * 4
    xs = centroids(measured)[:, 0]
    assert np.nanmin(xs) < 16 and np.nanmax(xs) > 48


@pytest.mark.slow
def test_ablation_script_reproduces_a_small_table(tmp_path):
    """A small version of README's table: the full pipeline on held-out prompts, scored by ShapesBench."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "shapes_ablation.py"), "--out", str(tmp_path), "--seconds", "20",
         "--prompts", "2", "--seeds", "1", "--configs", "planner+fifo"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| planner+fifo |" in result.stdout
    row = json.loads((tmp_path / "ablation.json").read_text())["results"]["planner+fifo"]
    assert row["videos"] == 2 and len(list((tmp_path / "planner_fifo").glob("*.mp4"))) == 2
    for name in ("color_accuracy", "shape_accuracy", "identity_consistency"):
        assert 0.0 <= row[name] <= 1.0
    assert row["realtime_factor"] > 0


@pytest.mark.slow
def test_vae_compression_script_saves_a_4x_model_that_makes_videos(tmp_path):
    """research/vae_compression.py: the default model with 16×16 latent frames at 64×64 and the
    denoiser's 4×4 patches, loadable and able to make a video of the asked size."""
    result = subprocess.run([sys.executable, str(ROOT / "research" / "vae_compression.py"), str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    four = T2VPipeline.from_pretrained(tmp_path / "m")
    four.set_progress_bar_config(disable=True)
    assert four.vae.config.scale_factor_spatial == 4 and tuple(four.transformer.config.patch_size) == (1, 4, 4)
    with torch.no_grad():
        latents = four.vae.encode(torch.zeros(1, 3, 5, 64, 64)).latent_dist.mode()
    assert latents.shape == (1, 8, 2, 16, 16)
    frames = four("a red circle stays still", num_frames=9, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(0)).frames[0]
    assert frames.shape == (9, 64, 64, 3)


def test_scaling_study_table_reads_every_scored_run(tmp_path):
    """research/scaling_study.py table: one row per scored mark, with the denoiser's patches and parameters from its weights."""
    from t2v.shapes.model import build_default_pipeline

    run = tmp_path / "4x-w64-p4"
    transformer = build_default_pipeline(0, patch=4).transformer
    assert tuple(transformer.config.patch_size) == (1, 4, 4)
    transformer.save_pretrained(run / "m15" / "to2v" / "model" / "transformer")
    row = {"step": 5600, "loss": 0.389, "color_accuracy": 0.832, "shape_accuracy": 0.388, "motion_accuracy": 0.234,
           "identity_consistency": 0.427, "jumps_per_minute": 88.9, "flicker": 0.495}
    (run / "scores.json").write_text(json.dumps({"width": 64, "layers": 4, "patch": 4, "vae": "4", "scores": {"15": row}}))
    result = subprocess.run([sys.executable, str(ROOT / "research" / "scaling_study.py"), "table", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[2] == ("| width 64, 4 blocks, 4×4 patches (0.36 M) | 4× | 15 | 5600 | 0.389 | 0.832 | 0.388 | 0.234 | "
                                            "0.427 | 88.9 | 0.495 |")


def test_scaling_estimate_recovers_a_power_law(tmp_path):
    """research/scaling_estimate.py: scores that follow shortfall = 2 * steps^-0.5 give b = 0.5 and the goal's hours."""
    names = ("color_accuracy", "shape_accuracy", "motion_accuracy", "identity_consistency")
    scores = {str(m): {"step": s, **{n: 1 - 2 * s ** -0.5 for n in names}, "jumps_per_minute": 400 * s ** -1.0}
              for m, s in ((5, 16), (20, 64))}  # keyed by minutes, as scaling_study.py writes them; the fit reads the steps
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "scores.json").write_text(json.dumps({"seconds_per_step": 36.0, "scores": scores}))
    command = [sys.executable, str(ROOT / "research" / "scaling_estimate.py"), str(tmp_path / "run"), "--times", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")}
    # shape: 1 - 2 * 256^-0.5 = 0.875 at 4x the largest steps; the goal 0.9 at (2 / 0.1)^2 = 400 steps of 36 s = 4.0 h
    assert rows["shape_accuracy"][2] == "0.500" and rows["shape_accuracy"][4] == "0.875" and rows["shape_accuracy"][6] == "4.0 |"
    assert rows["jumps_per_minute"][4] == "1.562"  # 400 / 256
    (tmp_path / "kept.json").write_text(json.dumps({"scores": scores}))  # a kept table without its speed: hours need one
    result = subprocess.run(command[:2] + [str(tmp_path / "kept.json")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--seconds-per-step" in result.stderr
