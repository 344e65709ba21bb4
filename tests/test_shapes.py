"""The Shapes world as docs/shapes_world.md specifies it: colors, sizes, motions, captions, held-out pairs, the folder and its command."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from t2v.shapes.folder import write_shapes_folder
from t2v.shapes.world import (
    COLORS,
    HELD_OUT,
    MOTIONS,
    SHAPES,
    auto_storyboard,
    format_caption,
    parse_caption,
    render_video,
    render_video_with_truth,
    sample_caption,
    segment_starts,
    storyboard,
    trajectory,
)
from t2v.video_io import read_video

AREA = {"circle": np.pi * 49, "square": 196.0, "triangle": 112.0}
HALF = {"circle": (7, 7), "square": (7, 7), "triangle": (8, 7)}


def coverage(frame: np.ndarray, color: str) -> np.ndarray:
    """How much of each pixel the object covers, read back from its one flat color."""
    return frame[..., 0].astype(float) / COLORS[color][0]


def xy(truth) -> np.ndarray:
    return np.array([[t["x"], t["y"]] for t in truth])


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_colors_sizes_soft_edges_black_background(shape):
    for color, rgb in COLORS.items():
        video, truth = render_video_with_truth(f"a {color} {shape} stays still", 1, seed=4)
        t = truth[0]
        assert tuple(video[0, int(t["y"]), int(t["x"])]) == rgb  # the object's centre pixel
    cov = coverage(video[0], "orange")
    assert cov.sum() == pytest.approx(AREA[shape], rel=0.02)
    full = int((video[0] == COLORS["orange"]).all(-1).sum())
    assert AREA[shape] * 0.75 < full < AREA[shape]  # fully covered pixels: the area less a rim
    assert ((cov > 0.05) & (cov < 0.95)).sum() > 10  # anti-aliased edges
    far = np.hypot(*np.meshgrid(np.arange(64) - t["x"], np.arange(64) - t["y"])) > 11
    assert video[0][far].max() == 0  # exactly black away from the object
    d = np.arange(64) + 0.5 - t["y"]  # each row's centre below the object's centre
    width = {"circle": 2 * np.sqrt(np.clip(49 - d**2, 0, None)), "square": np.full(64, 14.0), "triangle": 16 * (d + 7) / 14}[shape]
    rows = np.abs(d) <= 5.5  # rows the object crosses from side to side
    assert np.allclose(cov.sum(axis=1)[rows], width[rows], atol=0.4)  # circle of radius 7, 14 px square, upright 16x14 triangle


@pytest.mark.parametrize("motion,axes", [("bounces left and right", (1, 0)), ("bounces up and down", (0, 1)), ("moves diagonally", (1, 1))])
@pytest.mark.parametrize("shape", SHAPES)
def test_bounces_move_2px_reflect_and_stay_inside(shape, motion, axes):
    video, truth = render_video_with_truth(f"a blue {shape} {motion}", 480, seed=7)  # 60 s
    pos = xy(truth)
    steps = np.abs(np.diff(pos, axis=0))
    lo, hi = np.array(HALF[shape]), 64 - np.array(HALF[shape])
    for a, moving in enumerate(axes):
        if moving:
            away = (np.minimum(pos[1:, a], pos[:-1, a]) > lo[a] + 2) & (np.maximum(pos[1:, a], pos[:-1, a]) < hi[a] - 2)
            assert np.allclose(steps[away, a], 2.0) and np.all(steps[:, a] <= 2.0 + 1e-9)
            assert pos[:, a].min() < lo[a] + 2 and pos[:, a].max() > hi[a] - 2  # it reached both walls
            period = int(hi[a] - lo[a])  # there and back at 2 px a frame
            assert np.allclose(pos[period:, a], pos[:-period, a])  # reflected, not stopped, at the walls
        else:
            assert np.all(steps[:, a] == 0)
    assert np.all(pos >= lo) and np.all(pos <= hi)
    area = video[..., 2].astype(float).sum(axis=(1, 2)) / COLORS["blue"][2]
    assert np.allclose(area, AREA[shape], rtol=0.02)  # never cut by the frame's edge


def test_orbit_radius_period_and_direction():
    truth = trajectory("a green circle moves in a circle", 65, seed=1)
    v = (xy(truth) - 32) * [1, -1]  # relative to the centre, y up
    assert np.allclose(np.hypot(*v.T), 16)
    assert np.allclose(v[0], v[32]) and np.allclose(v[32], v[64])  # one turn every 32 frames (4 s)
    angles = np.unwrap(np.arctan2(v[:, 1], v[:, 0]))
    assert np.allclose(np.diff(angles), 2 * np.pi / 32)  # counter-clockwise on screen
    starts = [trajectory("a green circle moves in a circle", 1, seed=s)[0] for s in range(5)]
    assert len({round(t["x"], 6) for t in starts}) == 5  # the start angle comes from the seed


def test_orbit_after_a_bounce_starts_at_the_objects_angle():
    truth = trajectory("a red square bounces up and down, then it moves in a circle", 64, seed=3)
    v = (xy(truth) - 32) * [1, -1]
    before, orbit = v[31], v[32:]
    assert np.allclose(np.hypot(*orbit.T), 16)
    assert np.arctan2(orbit[0, 1], orbit[0, 0]) == pytest.approx(np.arctan2(before[1], before[0]))
    assert np.all(np.diff(np.unwrap(np.arctan2(orbit[:, 1], orbit[:, 0]))) > 0)


def test_pixels_follow_the_ground_truth():
    caption = "a blue square moves diagonally, then it turns yellow, then it moves in a circle, then it bounces left and right"
    video, truth = render_video_with_truth(caption, 80, seed=11)
    for frame, t in zip(video, truth):
        cov = frame.max(-1).astype(float) / max(COLORS[t["color"]])
        ys, xs = np.mgrid[:64, :64] + 0.5
        assert (cov * xs).sum() / cov.sum() == pytest.approx(t["x"], abs=0.15)  # 4x4 samples a pixel: edges within 1/8 px
        assert (cov * ys).sum() / cov.sum() == pytest.approx(t["y"], abs=0.15)
        assert tuple(frame[int(t["y"]), int(t["x"])]) == COLORS[t["color"]]
    assert np.array_equal(video, render_video(parse_caption(caption), 80, 11))  # segments work as well as text


def test_deterministic_per_seed_any_length_and_fast():
    import time

    caption = "a white square moves diagonally, then it turns red"
    start = time.perf_counter()
    a = render_video(caption, 480, 3)
    assert time.perf_counter() - start < 1.5  # a 60 s video
    assert a.shape == (480, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_video(caption, 480, 3))
    assert not np.array_equal(a, render_video(caption, 480, 4))
    assert np.array_equal(render_video(caption, 100, 3)[:50], a[:50])  # the first part does not depend on the length
    assert render_video(caption, 1, 3).shape == (1, 64, 64, 3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            render_video(caption, bad, 3)


def test_changes_take_effect_at_the_start_of_their_part():
    assert segment_starts(3, 48) == [0, 16, 32] and segment_starts(3, 20) == [0, 6, 13] and segment_starts(3, 2) == [0, 0, 1]
    caption = "a blue square moves in a circle, then it turns yellow, then it stays still"
    video, truth = render_video_with_truth(caption, 20, seed=0)
    centre = [tuple(f[int(t["y"]), int(t["x"])]) for f, t in zip(video, truth)]
    assert centre == [COLORS["blue"]] * 6 + [COLORS["yellow"]] * 14
    assert [t["motion"] for t in truth] == ["moves in a circle"] * 13 + ["stays still"] * 7
    assert np.hypot(truth[5]["x"] - truth[6]["x"], truth[5]["y"] - truth[6]["y"]) == pytest.approx(2 * 16 * np.sin(np.pi / 32))
    assert all(np.array_equal(video[12], f) for f in video[13:])  # still where the orbit left it
    short = trajectory("a red circle stays still, then it turns blue, then it bounces up and down", 2, seed=0)
    assert [(t["color"], t["motion"]) for t in short] == [("blue", "stays still"), ("blue", "bounces up and down")]


def test_caption_grammar_round_trip():
    for color in COLORS:
        for shape in SHAPES:
            for motion in MOTIONS:
                caption = format_caption([{"color": color, "shape": shape, "motion": motion}])
                assert caption == f"{'an' if color == 'orange' else 'a'} {color} {shape} {motion}"
                assert parse_caption(caption) == [{"color": color, "shape": shape, "motion": motion}]
    caption = "a blue square moves in a circle, then it turns yellow, then it stays still"
    assert parse_caption(caption) == [{"color": "blue", "shape": "square", "motion": "moves in a circle"}, {"color": "yellow"}, {"motion": "stays still"}]
    rng = np.random.default_rng(1)
    for _ in range(200):
        caption = sample_caption(rng, max_changes=3)
        assert format_caption(parse_caption(caption)) == caption


def test_storyboard_describes_each_part_whole():
    caption = "an orange square moves in a circle, then it turns blue, then it stays still"
    assert storyboard(caption) == ["an orange square moves in a circle", "a blue square moves in a circle", "a blue square stays still"]
    assert storyboard("A Red circle stays still.") == ["a red circle stays still"]
    assert auto_storyboard(caption) == storyboard(caption)
    assert auto_storyboard("a red circle stays still") is None  # one part: nothing to split
    assert auto_storyboard("a man walks, then he sits down") is None  # not a Shapes caption
    with pytest.raises(ValueError, match="is not a color"):
        storyboard("a plaid circle stays still")


def test_what_a_person_types_parses_and_mistakes_say_why():
    want = parse_caption("an orange square stays still, then it turns blue")
    for typed in ["  An ORANGE square   stays still, then it turns Blue. ", "a orange square stays still,then it turns blue",
                  "orange square stays still then it turns blue", "an orange square stays still , then it turns blue..."]:
        assert parse_caption(typed) == want
    for bad, word in [("a purple circle stays still", "purple"), ("a red blob stays still", "blob"), ("a red circle", "motion"),
                      ("a red circle flies", "flies"), ("a red circle stays still, then it flies", "it flies"), ("", "color"), (None, "text")]:
        with pytest.raises(ValueError) as err:
            parse_caption(bad)
        message = str(err.value)
        assert word in message and "\n" not in message and message.endswith(".")


def test_held_out_pairs_are_never_sampled_unless_asked():
    rng = np.random.default_rng(0)
    counts = np.zeros(4, int)
    for _ in range(2000):
        segments = parse_caption(sample_caption(rng, max_changes=3))
        counts[len(segments) - 1] += 1
        shape = segments[0]["shape"]
        assert all((s["color"], shape) not in HELD_OUT for s in segments if "color" in s)
    assert counts.min() > 300  # 0 to 3 changes
    seen = set()
    for _ in range(2000):
        segments = parse_caption(sample_caption(rng, max_changes=0, exclude_held_out=False))
        seen.add((segments[0]["color"], segments[0]["shape"]))
    assert set(HELD_OUT) <= seen


def test_write_shapes_folder(tmp_path):
    out = write_shapes_folder(tmp_path / "d", num_videos=3, seconds=2.5, seed=1)
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [line["file_name"] for line in lines] == ["00000.mp4", "00001.mp4", "00002.mp4"]
    assert sorted(p.name for p in out.iterdir()) == ["00000.mp4", "00001.mp4", "00002.mp4", "metadata.jsonl"]
    for line in lines:
        frames, fps = read_video(out / line["file_name"])
        assert frames.shape == (20, 64, 64, 3) and fps == 8 and line["num_frames"] == 20
        again = render_video(line["text"], line["num_frames"], line["seed"]).astype(float)
        assert np.abs(frames - again).mean() < 3  # the metadata redraws the video (up to the codec's loss)
    assert len({line["text"] for line in lines}) == 3
    for bad in [dict(num_videos=0, seconds=1), dict(num_videos=1.5, seconds=1), dict(num_videos=1, seconds=float("nan")),
                dict(num_videos=1, seconds=1, seed=-1), dict(num_videos=1, seconds=1, max_changes=-1)]:
        with pytest.raises(ValueError):
            write_shapes_folder(tmp_path / "bad", **bad)
    assert not (tmp_path / "bad").exists()


def test_write_shapes_folder_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    import t2v.shapes.folder as module

    real, calls = module.write_video, []

    def failing(frames, path, fps):  # the second video cannot be written
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(frames, path, fps)

    monkeypatch.setattr(module, "write_video", failing)
    with pytest.raises(OSError):
        write_shapes_folder(tmp_path / "d", num_videos=3, seconds=1)
    assert not (tmp_path / "d").exists()


def run_cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "T2V_DEBUG"}
    return subprocess.run([sys.executable, "-m", "t2v.cli", "data", "shapes", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_command(tmp_path):
    ok = run_cli("--out", "cli", "--num", "3", "--seconds", "2", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines() == ["wrote 3 videos of 2 s and metadata.jsonl to cli"]
    lines = [json.loads(line) for line in (tmp_path / "cli" / "metadata.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(read_video(tmp_path / "cli" / line["file_name"])[0].shape[0] == 16 for line in lines)
    for bad in (["--num", "0", "--seconds", "1"], ["--num", "2", "--seconds", "nan"], ["--num", "2", "--seconds", "1", "--seed", "-1"],
                ["--num", "2", "--seconds", "1", "--max-changes", "-1"]):
        result = run_cli("--out", "bad", *bad, cwd=tmp_path)
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("t2v: error:") and not (tmp_path / "bad").exists()
