"""The packaged model is the trained Shapes-world model: it says so, and it draws what the prompt asks for."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from t2v import T2VPipeline, default_model_path
from t2v.eval.shapes_bench import score_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe():
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_packaged_model_says_how_it_was_trained(pipe):
    line = pipe.config.trained_on
    assert "Shapes world" in line and "bash training/recipes/shapes/run.sh" in line and "commit" in line


@pytest.mark.parametrize("prompt", ["a red square stays still", "a blue circle bounces left and right"])
def test_packaged_model_draws_the_color_and_shape_of_the_prompt(pipe, prompt):
    frames = pipe(prompt, seconds=4, generator=torch.Generator().manual_seed(0)).frames[0]
    score = score_video((frames * 255).round().astype(np.uint8), prompt)
    assert score.detected > 0.9
    assert score.color_accuracy >= COLOR_FLOOR and score.shape_accuracy >= SHAPE_FLOOR


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
    assert row["videos"] == 2
    assert row["color_accuracy"] >= COLOR_FLOOR and row["identity_consistency"] >= IDENTITY_FLOOR
