"""The Shapes recipe (training/recipes/shapes/run.sh) end to end at a reduced size, with a profile file."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from diffusers import FlowMatchEulerDiscreteScheduler

from t2v import T2VPipeline

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "training/recipes/shapes/run.sh"

# The quick profile's form at a reduced size: a narrow denoiser on the 4x VAE, 3 short videos, 1-3 steps a stage, and
# To2V in two parts (2 steps, then 3) as the full profile splits its long stages, and a sampling shift of its own.
TINY = """
MODEL_ARGS=(--width 32 --vae-compression 4)
DATA_ARGS=(--num 3 --seconds 9 --max-seconds 9 --seed 0)
declare -A STEPS=([vae]=2 [vae_video]=1 [to2v]="2 3" [planner]=1 [refine]=1 [decoder]=1)
TRAIN_ARGS=(--skip_validation --checkpointing_steps 1 --train_batch_size 2)
SAMPLING_SHIFT=1.5
"""


@pytest.mark.slow
def test_the_shapes_recipe_runs_every_stage_in_parts_and_resumes_as_done(tmp_path):
    profile, out = tmp_path / "tiny.sh", tmp_path / "run"
    profile.write_text(TINY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2"}
    command = ["bash", str(RUN), "--profile", str(profile), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]

    record = json.loads((out / "recipe.json").read_text())
    stages = ("data", "vae", "vae_video", "latents", "to2v", "codec", "planner", "refine", "decoder")
    assert all(record["stages"][name]["seconds"] is not None for name in stages)
    assert record["command"] == f"bash training/recipes/shapes/run.sh --profile {profile}"
    assert [json.loads(line)["step"] for line in (out / "to2v" / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (out / "to2v.1.done").exists() and (out / "to2v.2.done").exists()
    pipe = T2VPipeline.from_pretrained(out / "model")
    assert pipe.vae.config.scale_factor_spatial == 4 and pipe.transformer.config.num_attention_heads == 2
    assert pipe.scheduler.config.shift == 1.5 == record["sampling_shift"]
    assert FlowMatchEulerDiscreteScheduler.load_config(out / "decoder" / "model", subfolder="scheduler")["shift"] == 3.0  # stages train at 3
    assert "t2v data shapes --num 3" in pipe.config.trained_on and "3 videos" in pipe.config.trained_on
    frames = pipe("a red circle stays still", num_frames=9, num_inference_steps=2, planner_steps=2).frames
    assert frames.shape == (1, 9, 64, 64, 3)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("already done") == 11  # 8 stages, To2V's two parts, data, init


def test_an_unknown_profile_is_one_sentence(tmp_path):
    result = subprocess.run(["bash", str(RUN), "--profile", "fast", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and "no profile 'fast'" in result.stderr and not (tmp_path / "out").exists()


def test_a_stage_killed_midway_counts_its_time_when_started_again(tmp_path):
    """training/recipes/stage.sh: the seconds of a run killed midway are added when the stage runs again;
    a stage whose command fails is not marked done and passes its exit status on."""
    script = f'set -euo pipefail; OUT={tmp_path}; source {ROOT / "training/recipes/stage.sh"}; stage train "$@"'
    env = {**os.environ, "STAGE_TICK": "1"}
    killed = subprocess.Popen(["bash", "-c", script, "stage", "sleep", "60"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL)
    running = tmp_path / "train.running"
    deadline = time.monotonic() + 30
    while not (running.exists() and running.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert running.exists() and not (tmp_path / "train.done").exists()

    failed = subprocess.run(["bash", "-c", script, "stage", "false"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and not (tmp_path / "train.done").exists()
    again = subprocess.run(["bash", "-c", script, "stage", "true"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "train.done").exists() and not running.exists()
    assert int((tmp_path / "train.seconds").read_text()) >= 1


def test_an_empty_running_file_does_not_stop_the_stage(tmp_path):
    """A `.running` file left empty (a stop while it was being written) counts as 0 seconds, not an error."""
    script = f'set -euo pipefail; OUT={tmp_path}; source {ROOT / "training/recipes/stage.sh"}; stage train "$@"'
    (tmp_path / "train.running").write_text("")
    (tmp_path / "train.seconds").write_text("7\n")
    done = subprocess.run(["bash", "-c", script, "stage", "true"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "train.done").exists() and int((tmp_path / "train.seconds").read_text()) >= 7
