"""The Shapes world as ../shared/SHAPES.md specifies it: colors, sizes, motions, captions, held-out pairs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from t2v.data.shapes import COLORS, HELD_OUT, MOTIONS, SHAPES, format_caption, parse_caption, render_video, sample_caption, trajectory
from t2v.data.shapes_folder import write_shapes_folder
from t2v.video_io import read_video


@pytest.mark.parametrize("shape,area", [("circle", np.pi * 49), ("square", 196), ("triangle", 112)])
def test_color_size_and_antialiasing(shape, area):
    video = render_video(f"a red {shape} stays still", 3, seed=4)
    t = trajectory(f"a red {shape} stays still", 3, seed=4)[0]
    frame = video[0].astype(float)
    assert tuple(video[0, round(t["y"]), round(t["x"])]) == COLORS["red"]
    coverage = frame[..., 0] / COLORS["red"][0]
    assert coverage.sum() == pytest.approx(area, rel=0.03)
    assert ((coverage > 0.05) & (coverage < 0.95)).any()  # soft edges
    far = np.hypot(*np.meshgrid(np.arange(64) - t["x"], np.arange(64) - t["y"])) > 12
    assert frame[far].max() == 0  # black background


@pytest.mark.parametrize("motion,axes", [("bounces left and right", (1, 0)), ("bounces up and down", (0, 1)), ("moves diagonally", (1, 1))])
def test_bounces_move_2px_and_stay_inside(motion, axes):
    for shape in SHAPES:
        truth = trajectory(f"a blue {shape} {motion}", 480, seed=7)
        xy = np.array([[t["x"], t["y"]] for t in truth])
        steps = np.abs(np.diff(xy, axis=0))
        for a, moving in enumerate(axes):
            if moving:
                assert np.all(steps[:, a] <= 2.0 + 1e-9) and np.median(steps[:, a]) == pytest.approx(2.0)
            else:
                assert np.all(steps[:, a] == 0)
        hx, hy = {"triangle": (8, 7)}.get(shape, (7, 7))  # the object stays wholly inside the 64x64 frame
        assert xy[:, 0].min() >= hx and xy[:, 0].max() <= 64 - hx and xy[:, 1].min() >= hy and xy[:, 1].max() <= 64 - hy


def test_orbit_radius_period_and_direction():
    truth = trajectory("a green circle moves in a circle", 33, seed=1)
    xy = np.array([[t["x"] - 32, 32 - t["y"]] for t in truth])  # y up
    assert np.allclose(np.hypot(*xy.T), 16)
    assert np.allclose(xy[0], xy[32])  # one turn in 32 frames (4 s)
    angles = np.unwrap(np.arctan2(xy[:, 1], xy[:, 0]))
    assert np.all(np.diff(angles) > 0)  # counter-clockwise on screen


def test_deterministic_per_seed_and_any_length():
    a, b = render_video("a white square moves diagonally", 100, 3), render_video("a white square moves diagonally", 100, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_video("a white square moves diagonally", 100, 4))
    assert render_video("a white square moves diagonally", 1, 3).shape == (1, 64, 64, 3)


def test_changes_take_effect_at_their_part():
    caption = "a blue square moves in a circle, then it turns yellow, then it stays still"
    truth = trajectory(caption, 48, seed=0)
    assert [t["color"] for t in truth] == ["blue"] * 16 + ["yellow"] * 32
    assert [t["motion"] for t in truth] == ["moves in a circle"] * 32 + ["stays still"] * 16
    assert truth[32]["x"] == truth[47]["x"] and truth[31]["x"] == truth[32]["x"]  # still from where it was


def test_caption_grammar_round_trip_and_typing_variants():
    for color in COLORS:
        for shape in SHAPES:
            for motion in MOTIONS:
                caption = format_caption([{"color": color, "shape": shape, "motion": motion}])
                assert caption.startswith("an " if color == "orange" else "a ")
                assert format_caption(parse_caption(caption)) == caption
    assert parse_caption("  A Red CIRCLE bounces left and right. ") == parse_caption("a red circle bounces left and right")
    assert parse_caption("an red circle stays still, then it turns blue")[1] == {"color": "blue"}
    for bad in ["a purple circle stays still", "a red circle", "a red circle stays still, then it flies", ""]:
        with pytest.raises(ValueError):
            parse_caption(bad)


def test_held_out_pairs_never_sampled():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        segments = parse_caption(sample_caption(rng, max_changes=3))
        shape = segments[0]["shape"]
        assert all((s["color"], shape) not in HELD_OUT for s in segments if "color" in s)


def test_folder_and_command(tmp_path):
    out = write_shapes_folder(tmp_path / "d", num_videos=2, seconds=2.5, seed=1)
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [line["file_name"] for line in lines] == ["00000.mp4", "00001.mp4"]
    frames, fps = read_video(out / "00000.mp4")
    assert frames.shape == (20, 64, 64, 3) and fps == 8
    run = lambda *a: subprocess.run([sys.executable, "-m", "t2v.cli", "data", "shapes", *a], cwd=tmp_path, capture_output=True, text=True)
    ok = run("--out", "cli", "--num", "2", "--seconds", "1")
    assert ok.returncode == 0 and len((tmp_path / "cli" / "metadata.jsonl").read_text().splitlines()) == 2
    for bad in (["--num", "0", "--seconds", "1"], ["--num", "2", "--seconds", "nan"]):
        result = run("--out", "bad", *bad)
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("t2v: error:") and not (tmp_path / "bad").exists()
