"""Fine-tuning on your own videos, as the README walks through it: a folder of ordinary videos, a LoRA of the
denoiser, then `t2v generate --lora`; and the training errors a user meets on the way, each one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from t2v import T2VPipeline, default_model_path
from t2v.shapes.model import build_default_pipeline
from t2v.video_io import read_video, write_video

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "2", "--planner-steps", "2"]


def ordinary_videos(folder: Path, count: int, seconds: float = 3.0, size=(120, 160), fps: int = 24) -> Path:
    """`count` videos that are not of the Shapes world: a striped background and a moving bar, 160x120 at 24 fps."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    lines = []
    for i in range(count):
        frames = np.zeros((int(seconds * fps), h, w, 3), dtype=np.uint8)
        frames[:, ::8] = (30, 60 + 20 * i, 90)
        for t in range(len(frames)):
            x = (3 * t) % (w - 20)
            frames[t, 40:80, x : x + 20] = (220, 180 - 30 * i, 40)
        name = f"clip{i}.webm" if i == count - 1 else f"clip{i}.mp4"
        write_video(frames, folder / name, fps)
        lines.append(json.dumps({"file_name": name, "text": f"a yellow bar slides over stripes number {i}"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def train_script(*args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    env.pop("T2V_DEBUG", None)
    return subprocess.run([sys.executable, str(ROOT / "training" / "train_to2v.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def t2v(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("T2V_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "t2v.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def errors(result) -> list[str]:
    """stderr's lines that are not warnings (the data set's own warnings name the skipped files)."""
    return [line for line in result.stderr.splitlines() if line.strip() and "Warning" not in line and not line.startswith("  ")]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    data = ordinary_videos(root / "videos", 4)
    result = train_script("--data_dir", str(data), "--output_dir", str(root / "run"), "--train_mode", "lora", "--lora_rank", "4",
                          "--learning_rate", "1e-2", "--train_batch_size", "2", "--max_train_steps", "3", "--checkpointing_steps", "3",
                          cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "the VAE does not know videos like these" in result.stderr  # the packaged VAE knows the Shapes world only
    return root / "run" / "lora"


def test_lora_writes_the_adapter_alone(adapter):
    assert sorted(p.name for p in adapter.iterdir()) == ["pytorch_lora_weights.safetensors", "t2v_adapter.json"]
    assert not (adapter.parent / "model").exists()  # the model it applies to is unchanged, so it is not copied
    from safetensors.torch import load_file

    names = list(load_file(adapter / "pytorch_lora_weights.safetensors"))
    assert names and all("lora_A" in n or "lora_B" in n for n in names)
    assert any("add_k_proj" in n for n in names)  # the token branch adapts too
    assert json.loads((adapter / "t2v_adapter.json").read_text())["rank"] == 4
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == 0o666 & ~umask for p in adapter.iterdir())  # as the umask says, not owner-only


@pytest.mark.slow
def test_generate_with_the_adapter(adapter, tmp_path):
    for name, extra in (("plain.mp4", []), ("zero.mp4", ["--lora", str(adapter), "--lora-scale", "0"]),
                        ("lora.mp4", ["--lora", str(adapter)])):
        result = t2v("generate", "a yellow bar slides over stripes", "--frames", "9", "-o", name, *FAST, *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    plain, zero, lora = (read_video(tmp_path / n)[0] for n in ("plain.mp4", "zero.mp4", "lora.mp4"))
    assert lora.shape == plain.shape == (9, 64, 64, 3)
    assert np.array_equal(zero, plain) and not np.array_equal(lora, plain)


def test_python_loads_the_adapter_and_refuses_it_on_another_model(adapter, tmp_path):
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_frames=5, num_inference_steps=2, planner_steps=2)
    plain = pipe("a yellow bar slides", generator=torch.Generator().manual_seed(0), **call).frames
    pipe.load_lora_weights(adapter)
    adapted = pipe("a yellow bar slides", generator=torch.Generator().manual_seed(0), **call).frames
    assert not np.allclose(plain, adapted)

    other = tmp_path / "other"
    build_default_pipeline(seed=1).save_pretrained(other)
    with pytest.raises(ValueError, match="made on another model"):
        T2VPipeline.from_pretrained(other).load_lora_weights(adapter)
    result = t2v("generate", "a red circle", "--frames", "5", "--model", str(other), "--lora", str(adapter), "-o", "x.mp4", *FAST,
                 cwd=tmp_path)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "made on another model" in result.stderr and not (tmp_path / "x.mp4").exists()


@pytest.mark.slow
def test_training_errors_are_one_line(tmp_path):
    too_few = ordinary_videos(tmp_path / "few", 3)
    result = train_script("--data_dir", str(too_few), "--output_dir", str(tmp_path / "o1"), "--train_mode", "lora", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert errors(result) == [errors(result)[0]] and "lower --train_batch_size to 3" in errors(result)[0]

    short = ordinary_videos(tmp_path / "short", 2, seconds=1.5)  # 12 frames at 8 fps: a clip needs 17
    result = train_script("--data_dir", str(short), "--output_dir", str(tmp_path / "o2"), "--train_batch_size", "1", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors(result)) == 1 and "No usable videos" in errors(result)[0]
    assert "fewer than the 17" in result.stderr  # the warning says why each video was skipped

    broken = ordinary_videos(tmp_path / "broken", 3)
    (broken / "clip0.mp4").write_bytes(b"not a video")
    result = train_script("--data_dir", str(broken), "--output_dir", str(tmp_path / "o3"), "--train_batch_size", "1",
                          "--max_train_steps", "1", "--train_mode", "lora", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Skipping clip0.mp4" in result.stderr and (tmp_path / "o3" / "lora").is_dir()

    result = train_script("--data_dir", str(broken), "--output_dir", str(tmp_path / "o4"), "--train_mode", "lora",
                          "--train_text_encoder", cwd=tmp_path)
    assert result.returncode == 2 and len(errors(result)) == 1 and "leave out --train_text_encoder" in result.stderr
