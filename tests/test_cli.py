"""The command line as a user runs it: a subprocess, files read back, one-line errors, no leftovers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from t2v import default_model_path
from t2v.cli import default_output_name
from t2v.video_io import read_video

FAST = ["--steps", "2", "--planner-steps", "2"]


def run_cli(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("T2V_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "t2v.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_generate_writes_the_mp4_asked_for(tmp_path):
    """The README's first command: 4 s at the default 8 fps, 64x64."""
    result = run_cli("generate", "a red circle bounces left and right", "--seconds", "4", "-o", "a.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote a.mp4" in result.stdout
    frames, fps = read_video(tmp_path / "a.mp4")
    assert frames.shape == (32, 64, 64, 3)
    assert fps == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temporary file left


@pytest.mark.slow  # two generate processes each
def test_a_caption_with_changes_becomes_a_storyboard(tmp_path):
    result = run_cli("generate", "a red circle stays still, then it turns blue", "--seconds", "2", "-o", "a.mp4", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "storyboard: 2 parts: a red circle stays still | a blue circle stays still" in result.stderr
    given = run_cli("generate", "a red circle", "--storyboard", "a red circle stays still", "a red circle bounces up and down",
                    "--seconds", "2", "-o", "b.mp4", *FAST, cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert "storyboard: 2 parts: a red circle stays still | a red circle bounces up and down" in given.stderr
    assert read_video(tmp_path / "b.mp4")[0].shape == (16, 64, 64, 3)


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "t2v"
    if not script.exists():
        script = shutil.which("t2v")
    assert script, "the t2v console script is not installed"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "generate" in result.stdout and "info" in result.stdout


@pytest.mark.parametrize("name,frames,fps", [("clip.webm", 10, 8), ("clip.gif", 6, 5)])
def test_other_containers_frames_and_fps(tmp_path, name, frames, fps):
    result = run_cli("generate", "a blue square stays still", "--frames", str(frames), "--fps", str(fps), "-o", name, *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    read, read_fps = read_video(tmp_path / name)
    assert read.shape == (frames, 64, 64, 3)
    assert read_fps == pytest.approx(fps, rel=0.05)  # gif stores delays in 1/100 s


def test_default_output_name_and_size(tmp_path):
    result = run_cli("generate", "A Blue square, stays still!", "--frames", "3", "--height", "32", "--width", "48", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a-blue-square-stays-still.mp4"
    assert out.exists()
    frames, _ = read_video(out)
    assert frames.shape == (3, 32, 48, 3)
    assert default_output_name("...") == "video.mp4"


@pytest.mark.slow  # two generate processes each
def test_same_seed_same_file(tmp_path):
    for name in ("x.mp4", "y.mp4"):
        assert run_cli("generate", "a red circle", "--frames", "5", "--seed", "7", "-o", name, *FAST, cwd=tmp_path).returncode == 0
    assert (tmp_path / "x.mp4").read_bytes() == (tmp_path / "y.mp4").read_bytes()


def test_info_describes_the_default_model(tmp_path):
    result = run_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Shapes world" in out and "training/recipes/shapes/run.sh" in out  # what it was trained on, and how
    for name in ("text_encoder", "video_tokenizer", "token_codec", "planner", "transformer", "vae", "scheduler"):
        assert name in out
    assert "64x64 at 8 fps" in out and "17 frames" in out
    assert "first latent frame reads learned start tokens" in out
    total = next(line for line in out.splitlines() if line.startswith("total on disk:"))
    assert float(total.split()[3]) < 40  # MiB: small enough to ship inside the package


def _broken_models(root: Path) -> dict[str, Path]:
    models = {}
    for kind in ("no_index", "truncated", "mismatch"):
        models[kind] = shutil.copytree(default_model_path(), root / kind)
    (models["no_index"] / "model_index.json").unlink()
    weights = models["truncated"] / "transformer" / "diffusion_pytorch_model.safetensors"
    os.truncate(weights, weights.stat().st_size - 1000)
    config_file = models["mismatch"] / "transformer" / "config.json"
    config = json.loads(config_file.read_text())
    config["num_attention_heads"] = 2
    config_file.write_text(json.dumps(config))
    models["prompts"] = root / "prompts.txt"
    models["prompts"].write_text("a red circle bounces left and right\n")
    return models


@pytest.mark.slow
def test_sparse_attention_from_the_command_line(tmp_path):
    """`--attention semantic` needs nothing; `--attention paro` reads the plan `calibrate-attention` saved beside the model."""
    result = run_cli("generate", "a red circle", "--frames", "9", "--attention", "semantic", "-o", "s.mp4", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_video(tmp_path / "s.mp4")[0].shape == (9, 64, 64, 3)

    model = shutil.copytree(default_model_path(), tmp_path / "model")
    (tmp_path / "prompts.txt").write_text("a red circle bounces left and right\n\na blue square stays still\n")
    result = run_cli("calibrate-attention", "--model", "model", "--prompts", "prompts.txt", "--seconds", "1", "--steps", "2",
                     "--query-tile", "32", "--key-block", "16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2/2" in result.stderr  # the blank line is not a prompt
    plan = model / "transformer" / "attention_plan.safetensors"
    assert plan.is_file() and f"wrote {Path('model') / 'transformer' / 'attention_plan.safetensors'}" in result.stdout
    result = run_cli("generate", "a red circle", "--frames", "9", "--model", "model", "--attention", "paro", "-o", "p.mp4", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_video(tmp_path / "p.mp4")[0].shape == (9, 64, 64, 3)


BAD_ARGS = {
    "empty prompt": ["generate", ""],
    "blank storyboard part": ["generate", "a red circle stays still", "--storyboard", "a red circle stays still", " "],
    "blank prompt": ["generate", "   "],
    "seconds zero": ["generate", "a red circle", "--seconds", "0"],
    "seconds negative": ["generate", "a red circle", "--seconds", "-2"],
    "seconds nan": ["generate", "a red circle", "--seconds", "nan"],
    "seconds inf": ["generate", "a red circle", "--seconds", "inf"],
    "seconds text": ["generate", "a red circle", "--seconds", "ten"],
    "frames zero": ["generate", "a red circle", "--frames", "0"],
    "frames fraction": ["generate", "a red circle", "--frames", "2.5"],
    "fps zero": ["generate", "a red circle", "--fps", "0"],
    "fps nan": ["generate", "a red circle", "--fps", "nan"],
    "steps zero": ["generate", "a red circle", "--steps", "0"],
    "steps text": ["generate", "a red circle", "--steps", "many"],
    "seconds and frames": ["generate", "a red circle", "--seconds", "1", "--frames", "8"],
    "bad extension": ["generate", "a red circle", "-o", "out.avi"],
    "missing folder": ["generate", "a red circle", "-o", "nowhere/out.mp4"],
    "height not a multiple": ["generate", "a red circle", "--height", "60"],
    "width negative": ["generate", "a red circle", "--width", "-64"],
    "missing model": ["generate", "a red circle", "--model", "no-such-model-dir"],
    "model without index": ["generate", "a red circle", "--model", "{no_index}"],
    "truncated weights": ["generate", "a red circle", "--model", "{truncated}"],
    "config does not match weights": ["info", "--model", "{mismatch}"],
    "attention density zero": ["generate", "a red circle", "--attention", "semantic", "--attention-density", "0"],
    "attention density above one": ["generate", "a red circle", "--attention", "semantic", "--attention-density", "1.5"],
    "unknown attention": ["generate", "a red circle", "--attention", "sliding"],
    "paro without a plan": ["generate", "a red circle", "--attention", "paro"],
    "offload without a gpu": ["generate", "a red circle", "--offload", "model", "--device", "cpu"],
    "windows per call zero": ["generate", "a red circle", "--max-windows-per-call", "0"],
    "calibrate without prompts file": ["calibrate-attention", "--prompts", "no-such-file.txt"],
    "calibrate to a missing folder": ["calibrate-attention", "--prompts", "{prompts}", "--out", "nowhere/plan.safetensors"],
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return _broken_models(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_input_one_line_nonzero_no_file(tmp_path, broken, case):
    args = [a.format(**broken) for a in BAD_ARGS[case]]
    if args[0] == "generate" and "-o" not in args:
        args += ["-o", "out.mp4"]
    result = run_cli(*args, *FAST, cwd=tmp_path) if args[0] == "generate" else run_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("t2v: error: ")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a partial file


def _start_cli(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("T2V_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "t2v.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_two_generates_at_once_lose_nothing(tmp_path):
    """Two runs writing the same -o at once both finish, and the file holds one whole video of the two; two runs
    whose names come from the same prompt write two files, each reported by the run that made it."""
    runs = [_start_cli("generate", "a red circle", "--frames", "9", "--seed", str(seed), "-o", "same.mp4", *FAST, cwd=tmp_path)
            for seed in (0, 1)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    for seed in (0, 1):
        assert run_cli("generate", "a red circle", "--frames", "9", "--seed", str(seed), "-o", f"alone{seed}.mp4", *FAST,
                       cwd=tmp_path).returncode == 0
    same = (tmp_path / "same.mp4").read_bytes()
    assert same in ((tmp_path / "alone0.mp4").read_bytes(), (tmp_path / "alone1.mp4").read_bytes())

    named = tmp_path / "named"
    named.mkdir()
    runs = [_start_cli("generate", "a blue square stays still", "--frames", "5", "--seed", str(seed), *FAST, cwd=named) for seed in (0, 1)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    reported = sorted(line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("wrote "))
    assert reported == ["a-blue-square-stays-still-2.mp4", "a-blue-square-stays-still.mp4"]
    assert sorted(p.name for p in named.iterdir()) == reported  # both videos, no temporary file
    assert all(read_video(named / name)[0].shape == (5, 64, 64, 3) for name in reported)


def test_version_and_no_option_prefixes(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("t2v ")
    result = run_cli("generate", "a red circle", "--second", "1", cwd=tmp_path)  # not taken for --seconds
    assert result.returncode == 2 and result.stderr.startswith("t2v: error: ") and "--second" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_info_lists_the_words_and_the_trained_size(tmp_path):
    result = run_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "64x64 at 8 fps, clips of 17 frames (what it was trained at)" in result.stdout
    vocabulary = next(line for line in result.stdout.splitlines() if line.startswith("vocabulary:"))
    assert all(word in vocabulary.split() for word in ("red", "circle", "bounces", "then", "turns"))
