"""The Wan-base recipe (training/recipes/wan/run.sh) end to end on a tiny random Wan folder at a small size."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_wan_base import ARGS, tiny_wan

from t2v import T2VPipeline
from t2v.shapes.folder import write_shapes_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wan_recipe_runs_end_to_end_and_resumes_as_done(tmp_path):
    wan, data, out = tmp_path / "wan", tmp_path / "videos", tmp_path / "run"
    tiny_wan().save_pretrained(wan)
    write_shapes_folder(data, num_videos=2, seconds=6, seed=0)  # two clips each: To2V's FIFO windows
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONVERT_ARGS": " ".join(ARGS),
           "TRAIN_ARGS": "--max_train_steps 2 --checkpointing_steps 1 --skip_validation", "PYTHONWARNINGS": "ignore"}
    command = ["bash", str(ROOT / "training/recipes/wan/run.sh"), str(wan), str(data), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    record = json.loads((out / "recipe.json").read_text())
    assert all(record["stages"][name]["seconds"] is not None for name in ("latents", "to2v", "codec", "planner"))
    pipe = T2VPipeline.from_pretrained(out / "model")
    assert pipe.token_codec.config.fitted and "Wan2.1 base" in pipe.config.trained_on and "2 videos" in pipe.config.trained_on
    for stage in ("to2v", "planner"):  # checkpoints hold what trains, never the frozen base
        checkpoints = sorted((out / stage / "checkpoints").glob("checkpoint-*"))
        assert len(checkpoints) == 2  # the YAML's limit
        weights = sum(f.stat().st_size for f in checkpoints[-1].rglob("*.safetensors"))
        trained = sum(p.numel() for p in (pipe.planner if stage == "planner" else pipe.video_tokenizer).parameters())
        assert weights < 8 * trained + sum(p.numel() for p in pipe.transformer.parameters()) * 4 * 0.5
    out_frames = pipe("a red circle", num_frames=17, num_inference_steps=2, planner_steps=2, output_type="latent").frames
    assert torch.isfinite(out_frames).all()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("already done") == 5


@pytest.mark.slow
def test_the_wan_recipe_refuses_a_folder_without_metadata(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "training/recipes/wan/run.sh"), "wan", str(tmp_path), str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not a video folder" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_cpu_processes_train_on_a_wan_base_and_resume_exactly(tmp_path):
    """tokens_only To2V in 2 gloo processes (torchrun; `accelerate launch --cpu` would start one): stopped after 4 steps
    and resumed, the losses of steps 5 and 6 are those of a run that never stopped."""
    wan, data = tmp_path / "wan", tmp_path / "videos"
    tiny_wan().save_pretrained(wan)
    write_shapes_folder(data, num_videos=4, seconds=6, seed=0)
    from t2v.pipelines.wan_base import main as convert

    convert([str(wan), str(tmp_path / "init"), *ARGS])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "PYTHONWARNINGS": "ignore"}

    def run(out, steps):
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
                   str(ROOT / "training/train_to2v.py"), "--config", str(ROOT / "training/recipes/wan/to2v.yaml"), "--data_dir", str(data),
                   "--model", str(tmp_path / "init"), "--output_dir", str(out), "--max_train_steps", str(steps), "--checkpointing_steps", "2",
                   "--train_batch_size", "1", "--skip_validation", "--resume_from_checkpoint", "latest"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    straight = run(tmp_path / "a", 6)
    run(tmp_path / "b", 4)
    resumed = run(tmp_path / "b", 6)
    assert len(straight) == len(resumed) == 6 and resumed == straight
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints" / "checkpoint-6").glob("random_states_*")) == \
        ["random_states_0.pkl", "random_states_1.pkl"]  # two processes really ran
