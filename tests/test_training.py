"""Every training stage for a few steps on tiny data, the exported pipeline loaded back, exact resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from t2v import T2VPipeline, default_model_path
from t2v.shapes.folder import write_shapes_folder
from t2v.video_io import write_video

COMMON = ["--train_batch_size", "2", "--max_train_steps", "2", "--checkpointing_steps", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    """A generated Shapes folder, read by the trainers like any user's folder."""
    root = tmp_path_factory.mktemp("shapes")
    write_shapes_folder(root, num_videos=4, seconds=5, seed=0)
    return root


@pytest.fixture(scope="module")
def mp4_dir(tmp_path_factory):
    """A folder of a few synthetic mp4s of other sizes and frame rates, captions in metadata.csv."""
    root = tmp_path_factory.mktemp("mp4s")
    rows = ["file_name,text"]
    for i, (fps, h, w) in enumerate([(24, 72, 96), (8, 64, 64), (12, 80, 64)]):
        frames = np.zeros((int(fps * 3), h, w, 3), dtype=np.uint8)
        for t in range(len(frames)):
            x = (t * 2) % (w - 16)
            frames[t, h // 2 - 8 : h // 2 + 8, x : x + 16] = (50 + 60 * i, 200, 90)
        write_video(frames, root / f"v{i}.mp4", fps=fps)
        rows.append(f"v{i}.mp4,a square number {i} moves")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def weights(model_dir: Path, name: str) -> dict[str, torch.Tensor]:
    """The tensors of one component of an exported model folder."""
    from safetensors.torch import load_file

    return load_file(next((model_dir / name).glob("*.safetensors")))


def same(a: dict, b: dict, keys=None) -> bool:
    return all(torch.equal(a[k], b[k]) for k in (a if keys is None else keys))


def metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def generate(model_dir: Path, **kwargs):
    pipe = T2VPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe, pipe("a red circle bounces left and right", num_frames=5, num_inference_steps=2, planner_steps=2,
                      generator=torch.Generator().manual_seed(0), **kwargs)


@pytest.fixture(scope="module")
def chain(shapes_dir, tmp_path_factory):
    """VAE -> tokenizer + To2V -> codec -> planner, each stage starting from the previous export."""
    from t2v.training import codec, planner, to2v, vae

    root = tmp_path_factory.mktemp("runs")
    out = {}
    out["vae"] = vae.main(["--data_dir", str(shapes_dir), "--output_dir", str(root / "vae"), "--from_scratch", "--use_ema", *COMMON])
    out["to2v"] = to2v.main(["--data_dir", str(shapes_dir), "--model", str(out["vae"]), "--output_dir", str(root / "to2v"),
                             "--train_text_encoder", "--validation_steps", "1", *COMMON])
    out["codec"] = codec.main(["--data_dir", str(shapes_dir), "--model", str(out["to2v"]), "--output_dir", str(root / "codec"), "--clips_per_video", "2"])
    out["planner"] = planner.main(["--data_dir", str(shapes_dir), "--model", str(out["codec"]), "--output_dir", str(root / "planner"),
                                   "--num_clips", "2", *COMMON])
    return root, out


def test_each_stage_writes_metrics_checkpoints_and_a_loadable_model(chain):
    root, out = chain
    for stage in ("vae", "to2v", "planner"):
        lines = metrics(root / stage)
        assert [m["step"] for m in lines] == [1, 2]
        assert all(np.isfinite(m["loss"]) and m["lr"] > 0 for m in lines)
        assert sorted(p.name for p in (root / stage / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]
    assert (root / "to2v" / "validation" / "step-1.mp4").exists()
    for stage, model_dir in out.items():
        pipe, result = generate(model_dir)
        assert result.frames.shape == (1, 5, 64, 64, 3)
    info = T2VPipeline.from_pretrained(out["planner"]).config.trained_on
    assert "VAE" in info and "To2V" in info and "codec" in info and "planner" in info and "random" not in info


def test_checkpoints_hold_only_what_trains_and_resume(chain, shapes_dir):
    """A stage's checkpoint holds its trained weights, not the frozen ones (the model folder has those), and a run
    resumes from it."""
    from safetensors.torch import load_file

    from t2v.training import planner

    root, out = chain
    to2v_keys = set(load_file(root / "to2v" / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    assert {k.split(".")[0] for k in to2v_keys} == {"text_encoder", "video_tokenizer", "transformer"}  # no VAE
    planner_keys = set(load_file(root / "planner" / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    assert planner_keys and all(k.startswith("planner.") for k in planner_keys)
    resumed = planner.main(["--data_dir", str(shapes_dir), "--model", str(out["codec"]), "--output_dir", str(root / "planner"),
                            "--num_clips", "2", *COMMON[:2], "--seed", "0", "--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    assert [m["step"] for m in metrics(root / "planner")] == [1, 2, 3] and (resumed / "model_index.json").exists()


def test_adafactor_trains_with_a_fraction_of_adamws_state(chain, shapes_dir, tmp_path):
    """--optimizer adafactor (for a large planner on a small GPU): it trains, and its checkpointed optimizer state is a
    small fraction of AdamW's two moments per weight."""
    from t2v.training import planner

    root, out = chain
    planner.main(["--data_dir", str(shapes_dir), "--model", str(out["codec"]), "--output_dir", str(tmp_path / "planner"),
                  "--num_clips", "2", *COMMON, "--optimizer", "adafactor"])
    lines = metrics(tmp_path / "planner")
    assert [m["step"] for m in lines] == [1, 2] and all(np.isfinite(m["loss"]) for m in lines)
    adamw, adafactor = ((folder / "checkpoints" / "checkpoint-2" / "optimizer.bin").stat().st_size
                        for folder in (root / "planner", tmp_path / "planner"))
    assert adafactor < 0.25 * adamw
    assert not same(weights(out["codec"], "planner"), weights(tmp_path / "planner" / "model", "planner"))


def test_vae_export_records_latent_statistics(chain):
    _, out = chain
    config = json.loads((out["vae"] / "vae" / "config.json").read_text())
    assert config["latents_std"] != [1.0] * len(config["latents_std"])


def test_decoder_only_fine_tune_keeps_the_latent_space(chain, shapes_dir, tmp_path):
    from t2v.training import vae

    _, out = chain
    tuned = vae.main(["--data_dir", str(shapes_dir), "--model", str(out["planner"]), "--output_dir", str(tmp_path / "dec"),
                      "--decoder_only", "--learning_rate", "1e-3", *COMMON])
    before, after = weights(out["planner"], "vae"), weights(tuned, "vae")
    encoder = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder and decoder and len(encoder) + len(decoder) == len(before)
    assert same(before, after, encoder)
    assert not same(before, after, decoder)
    assert "VAE decoder" in T2VPipeline.from_pretrained(tuned).config.trained_on
    config = [json.loads((d / "vae" / "config.json").read_text()) for d in (out["planner"], tuned)]
    assert config[0]["latents_mean"] == config[1]["latents_mean"] and config[0]["latents_std"] == config[1]["latents_std"]
    for name in ("transformer", "planner", "video_tokenizer"):
        assert same(weights(out["planner"], name), weights(tuned, name))
    with pytest.raises(SystemExit):
        vae.main(["--data_dir", str(shapes_dir), "--output_dir", str(tmp_path / "x"), "--decoder_only", "--from_scratch", *COMMON])


def test_stages_change_only_their_components(chain):
    _, out = chain
    assert not same(weights(out["vae"], "transformer"), weights(out["to2v"], "transformer"))
    assert same(weights(out["vae"], "vae"), weights(out["to2v"], "vae"))  # the VAE is frozen in stage 2
    assert same(weights(out["codec"], "planner"), weights(out["to2v"], "planner"))
    assert not same(weights(out["codec"], "planner"), weights(out["planner"], "planner"))
    assert json.loads((out["codec"] / "token_codec" / "config.json").read_text())["fitted"]


def test_user_video_folder_with_lora(mp4_dir, tmp_path):
    """LoRA fine-tuning of the To2V on a folder of mp4s writes an adapter the pipeline loads and applies."""
    from t2v.training import to2v

    lora = to2v.main(["--data_dir", str(mp4_dir), "--output_dir", str(tmp_path / "lora_run"), "--train_mode", "lora",
                      "--lora_rank", "4", "--learning_rate", "1e-2", *COMMON[:2], "--max_train_steps", "3", "--checkpointing_steps", "3"])
    adapter = tmp_path / "lora_run" / "lora" / "pytorch_lora_weights.safetensors"
    assert adapter.exists() and lora == adapter.parent
    pipe, plain = generate(default_model_path())  # the adapter applies to the model it was trained on
    pipe.load_lora_weights(adapter.parent)
    adapted = pipe("a red circle bounces left and right", num_frames=5, num_inference_steps=2, planner_steps=2,
                   generator=torch.Generator().manual_seed(0))
    assert not np.allclose(plain.frames, adapted.frames)


def test_yaml_recipe_and_command_line_override(shapes_dir, tmp_path):
    from t2v.training.args import parse_training_args, training_parser

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data_dir: {shapes_dir}\noutput_dir: {tmp_path / 'o'}\nlearning_rate: 0.003\nmax_train_steps: 7\n")
    args = parse_training_args(training_parser("x"), ["--config", str(recipe), "--max_train_steps", "9"])
    assert args.learning_rate == 0.003 and args.max_train_steps == 9 and args.output_dir == str(tmp_path / "o")
    recipe.write_text("learning_rat: 0.1\n")
    with pytest.raises(SystemExit):
        parse_training_args(training_parser("x"), ["--config", str(recipe), "--output_dir", "o"])


def test_latest_ignores_a_checkpoint_cut_off_mid_save(tmp_path):
    from t2v.training.loop import checkpoints

    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "checkpoints" / "checkpoint-2" / "t2v_training_state.json").write_text('{"step": 2}')
    (tmp_path / "checkpoints" / "checkpoint-4.tmp").mkdir()  # a save that never finished
    (tmp_path / "checkpoints" / "checkpoint-10").mkdir()  # no state file: incomplete
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2"]


def _train_cmd(data_dir, output_dir, steps, *extra):
    return [sys.executable, "-m", "t2v.training.to2v", "--data_dir", str(data_dir), "--output_dir", str(output_dir),
            "--train_batch_size", "2", "--max_train_steps", str(steps), "--checkpointing_steps", "2",
            "--gradient_accumulation_steps", "2", "--use_ema", "--seed", "3", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_losses(shapes_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    steps = 8
    subprocess.run(_train_cmd(shapes_dir, tmp_path / "straight", steps), check=True, env=env, capture_output=True, timeout=600)
    reference = metrics(tmp_path / "straight")

    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(shapes_dir, run, steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = run / "checkpoints" / "checkpoint-2" / "t2v_training_state.json"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(metrics(run)) < steps

    subprocess.run(_train_cmd(shapes_dir, run, steps, "--resume_from_checkpoint", "latest"), check=True, env=env, capture_output=True, timeout=600)
    resumed = metrics(run)
    assert [m["step"] for m in resumed] == list(range(1, steps + 1))
    assert [m["loss"] for m in resumed] == [m["loss"] for m in reference]  # exact, step by step


@pytest.mark.slow
def test_two_cpu_processes(shapes_dir, tmp_path):
    """accelerate launch --num_processes 2 --cpu (gloo): the run completes and its checkpoint loads."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "t2v.training.to2v",
           "--data_dir", str(shapes_dir), "--output_dir", str(tmp_path / "ddp"), *COMMON]
    subprocess.run(cmd, check=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert [m["step"] for m in metrics(tmp_path / "ddp")] == [1, 2]
    generate(tmp_path / "ddp" / "model")
    from t2v.training import to2v

    resumed = to2v.main(["--data_dir", str(shapes_dir), "--output_dir", str(tmp_path / "ddp"), "--resume_from_checkpoint", "latest",
                         *COMMON[:2], "--max_train_steps", "3", "--checkpointing_steps", "1"])
    assert [m["step"] for m in metrics(tmp_path / "ddp")] == [1, 2, 3]
    assert resumed.exists()
