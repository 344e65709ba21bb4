"""ShapesBench: ground-truth Shapes videos score perfect, also through mp4; corrupted ones are caught; `t2v eval shapes`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from t2v.cli import main
from t2v.shapes.bench import GOALS, classify_motion, evaluate_folder, measure_video, score_video, summarize
from t2v.shapes.evaluate import drawn_counts
from t2v.shapes.world import COLORS, MOTIONS, SHAPES, render_video, render_video_with_truth
from t2v.video_io import read_video, write_video

CAPTION = "a red circle bounces left and right"
MULTI = [
    "a blue square moves in a circle, then it turns yellow, then it stays still",
    "a green circle stays still, then it moves in a circle",  # steps onto the orbit: the world's own jump
    "an orange triangle moves diagonally, then it bounces up and down",
    "a white square bounces left and right, then it turns magenta, then it turns cyan, then it moves diagonally",
]


def assert_perfect(score, codec=False):
    assert score.color_accuracy == 1.0 and score.shape_accuracy == 1.0
    assert score.motion_accuracy == 1.0, [w for w in score.windows if w.measured != w.expected]
    assert score.identity_consistency == 1.0 and score.detected == 1.0
    assert score.jumps == 0 and score.jumps_per_minute == 0.0
    assert score.flicker < (0.5 if codec else 1e-9)
    assert score.color_flicker < (3.0 if codec else 1e-9)
    assert score.change_accuracy in (None, 1.0), score.changes


@pytest.mark.parametrize("shape", SHAPES)
def test_ground_truth_is_perfect_for_every_color_shape_and_motion(shape):
    for i, color in enumerate(COLORS):
        motion = MOTIONS[(i + SHAPES.index(shape)) % len(MOTIONS)]
        caption = f"a {color} {shape} {motion}"
        video, truth = render_video_with_truth(caption, 24, seed=i)
        assert_perfect(score_video(video, caption))
        measured = measure_video(video)
        assert [(m.color, m.shape) for m in measured] == [(color, shape)] * 24
        below = 7 / 3 if shape == "triangle" else 0.0  # a triangle's centroid sits a sixth of its height below its centre
        for m, t in zip(measured, truth):
            assert m.x == pytest.approx(t["x"], abs=0.3) and m.y == pytest.approx(t["y"] + below, abs=0.3)


@pytest.mark.parametrize("caption", MULTI)
def test_multi_segment_ground_truth_is_perfect(caption):
    video = render_video(caption, 48, seed=3)
    score = score_video(video, caption)
    assert_perfect(score)
    assert [w.start for w in score.windows][0] == 0 and score.windows[-1].end == 48
    assert {w.expected for w in score.windows} == {w.measured for w in score.windows}


def test_windows_follow_the_segments():
    score = score_video(render_video(MULTI[0], 96, seed=1), MULTI[0])  # parts of 32 frames: two 2 s windows each
    assert [(w.start, w.end, w.measured) for w in score.windows] == [
        (0, 16, "moves in a circle"), (16, 32, "moves in a circle"), (32, 48, "moves in a circle"),
        (48, 64, "moves in a circle"), (64, 80, "stays still"), (80, 96, "stays still")]


@pytest.mark.parametrize("caption,suffix", [(CAPTION, ".mp4"), (MULTI[0], ".mp4"), (MULTI[2], ".webm")])
def test_ground_truth_is_perfect_through_a_codec(tmp_path, caption, suffix):
    frames, fps = read_video(write_video(render_video(caption, 40, seed=7), tmp_path / f"v{suffix}", 8))
    assert_perfect(score_video(frames, caption, fps), codec=True)


def test_float_frames_score_like_uint8():
    video = render_video(MULTI[1], 24, seed=2)
    assert_perfect(score_video(video.astype(np.float32) / 255, MULTI[1]))


def test_wrong_color_or_shape_is_wrong_but_consistent():
    video = render_video(CAPTION, 24, seed=0)
    wrong_color = score_video(video, "a blue circle bounces left and right")
    assert wrong_color.color_accuracy == 0.0 and wrong_color.shape_accuracy == 1.0
    assert wrong_color.identity_consistency == 1.0  # the same wrong color throughout is still one object
    wrong_shape = score_video(video, "a red square bounces left and right")
    assert wrong_shape.shape_accuracy == 0.0 and wrong_shape.color_accuracy == 1.0 and wrong_shape.motion_accuracy == 1.0
    upside_down = score_video(render_video("a red triangle stays still", 8, 0)[:, ::-1], "a red triangle stays still")
    assert upside_down.shape_accuracy == 0.0  # a triangle must be upright
    grey = score_video(render_video("a white square stays still", 8, 0) // 2, "a white square stays still")
    assert grey.color_accuracy == 0.0 and grey.shape_accuracy == 1.0  # (117, 117, 117) is no palette color


def test_wrong_motion():
    video = render_video("a red circle bounces up and down", 32, seed=0)
    assert score_video(video, CAPTION).motion_accuracy == 0.0
    assert score_video(video, "a red circle stays still").motion_accuracy == 0.0
    orbit = "a red circle moves in a circle"
    clockwise = render_video(orbit, 32, seed=0)[:, :, ::-1]  # mirrored: the orbit turns the wrong way
    assert score_video(clockwise, orbit).motion_accuracy == 0.0
    assert classify_motion(np.zeros((16, 2)) + 30) == "stays still"
    assert classify_motion(np.stack([np.arange(16.0) * 2 + 10, np.arange(16.0) * 0.5 + 10], 1)) == "other"  # y drifts


def test_morphing_object_breaks_identity():
    circle, square = render_video(CAPTION, 32, seed=5), render_video("a red square bounces left and right", 32, seed=5)
    video = circle.copy()
    video[8:16] = square[8:16]
    score = score_video(video, CAPTION)
    assert score.shape_accuracy == score.identity_consistency == 0.75
    blue = render_video("a blue circle bounces left and right", 32, seed=5)
    video = circle.copy()
    video[::4] = blue[::4]
    score = score_video(video, CAPTION)
    assert score.color_accuracy == score.identity_consistency == 0.75
    assert score.color_flicker > 50


def test_teleport_and_shuffled_frames_are_jumps():
    still = "a cyan triangle stays still"
    (here, truth_here), (there, truth_there) = render_video_with_truth(still, 16, 1), render_video_with_truth(still, 16, 2)
    assert np.hypot(truth_here[0]["x"] - truth_there[0]["x"], truth_here[0]["y"] - truth_there[0]["y"]) > 2 * 6
    score = score_video(np.concatenate([here, there]), still)
    assert score.jumps == 1 and score.jumps_per_minute == pytest.approx(60 / 4)
    assert score.jump_frames == [16]  # the first frame of the second video
    assert score.motion_accuracy == 1.0  # still in both windows: only the jump count sees it
    video = render_video("a cyan triangle moves diagonally", 32, seed=1)
    shuffled = video[np.random.default_rng(0).permutation(32)]
    score = score_video(shuffled, "a cyan triangle moves diagonally")
    assert score.jumps >= 10 and score.motion_accuracy == 0.0
    assert score.color_accuracy == 1.0  # every frame is still right on its own


def test_missing_object_is_wrong():
    video, truth = render_video_with_truth(CAPTION, 32, seed=4)
    video[4:8] = 0
    video[5, 10, 10] = 255  # a stray bright pixel is not an object
    video[20, 2 if truth[20]["x"] > 32 else 61, 2 if truth[20]["y"] > 32 else 61] = 255  # nor does it move one
    score = score_video(video, CAPTION)
    assert score.detected == score.color_accuracy == score.shape_accuracy == score.identity_consistency == 28 / 32
    assert score.motion_accuracy == 0.5  # the window with the gap
    assert score.jumps == 0  # the track picks up where it would be


def test_noise_and_pulsing_are_flicker():
    video = render_video(CAPTION, 24, seed=6)
    noise = np.random.default_rng(0).integers(0, 40, video.shape)
    noisy = score_video(np.clip(video + noise, 0, 255).astype(np.uint8), CAPTION)
    assert noisy.flicker > 5 and noisy.color_accuracy == 1.0
    pulsing = video.copy()
    pulsing[::2] = (pulsing[::2] * 0.75).astype(np.uint8)
    score = score_video(pulsing, CAPTION)
    assert score.color_flicker > 10 and score.color_accuracy == 1.0 and score.flicker == 0.0


def test_a_change_at_the_wrong_time_is_caught():
    late = "a red square stays still, then it stays still, then it stays still, then it turns blue"  # blue from frame 36
    score = score_video(render_video(late, 48, seed=0), "a red square stays still, then it turns blue")  # from frame 24
    assert score.color_accuracy == 1 - 12 / 48
    assert score.identity_consistency == 1 - 12 / 48  # red where the caption's blue phase has begun
    assert score.change_accuracy == 0.0  # 1.5 s late: the 2 s after frame 24 are mostly red
    late = "a red square stays still, then it stays still, then it stays still, then it bounces up and down"
    score = score_video(render_video(late, 48, seed=0), "a red square stays still, then it bounces up and down")
    assert [(w.start, w.measured) for w in score.windows] == [
        (0, "stays still"), (12, "stays still"), (24, "stays still"), (36, "bounces up and down")]
    assert score.motion_accuracy == 0.75
    assert score.change_accuracy == 0.0 and [(c.frame, c.kind, c.on_time) for c in score.changes] == [(24, "motion", False)]


def test_changes_of_ground_truth_are_judged_and_on_time():
    score = score_video(render_video(MULTI[3], 128, seed=5), MULTI[3])  # parts of 32 frames: every change judged
    assert [(c.frame, c.kind, c.new, c.on_time) for c in score.changes] == [
        (32, "color", "magenta", True), (64, "color", "cyan", True), (96, "motion", "moves diagonally", True)]
    assert score.change_accuracy == 1.0
    assert score_video(render_video(CAPTION, 48, seed=0), CAPTION).change_accuracy is None  # no change to judge
    assert score_video(render_video(MULTI[1], 8, seed=0), MULTI[1]).changes == []  # parts too short to judge


@pytest.mark.parametrize("caption,half_second_late", [("a red square bounces left and right, then it turns blue", 1.0),
                                                      ("a cyan circle stays still, then it moves in a circle", 0.0)])
def test_changes_two_seconds_off_are_caught(caption, half_second_late):
    """A change rendered 16 frames (2 s) late or early is not on time. 4 frames (0.5 s) late, a color
    change still is (most of the 2 s after show it); a motion change is not (the 2 s after are judged
    as one motion, and half a second still, then an orbit, is neither)."""
    n = 96
    late = render_video(caption, n + 32, seed=1)[:n]  # the change at frame 64 instead of 48
    early = render_video(caption, n + 32, seed=1)[32:]  # at frame 32
    slightly_late = render_video(caption, n + 8, seed=1)[:n]  # at frame 52
    assert score_video(late, caption).change_accuracy == 0.0
    assert score_video(early, caption).change_accuracy == 0.0
    assert score_video(slightly_late, caption).change_accuracy == half_second_late


def test_summary_means_and_goals():
    perfect = score_video(render_video(CAPTION, 32, seed=0), CAPTION)
    wrong = score_video(render_video(CAPTION, 16, seed=0), "a blue circle bounces left and right")
    summary = summarize([perfect, wrong])
    assert summary.num_videos == 2 and summary.num_frames == 48 and summary.seconds == 6.0
    assert summary.color_accuracy == 0.5 and summary.shape_accuracy == 1.0
    assert summary.goals() == {name: name != "color_accuracy" for name in GOALS}
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError, match="64x64"):
        score_video(np.zeros((4, 32, 32, 3), np.uint8), CAPTION)


def run_cli(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("T2V_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "t2v.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_eval_shapes_command_scores_the_data_command_perfect(tmp_path):
    result = run_cli("data", "shapes", "--out", "data", "--num", "3", "--seconds", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_cli("eval", "shapes", "--videos", "data", "--json", "scores.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ShapesBench: 3 videos, 12 s (96 frames)" in result.stdout
    for label in ("color accuracy", "shape accuracy", "motion accuracy", "identity consistency"):
        assert f"{label:22s}   1.000  >= " in result.stdout, result.stdout
    assert f"{'jumps per minute':22s} {'0.00':>7s}  <= 1  met (0 jumps in all)" in result.stdout
    report = json.loads((tmp_path / "scores.json").read_text())
    assert all(report["goals"].values()) and len(report["videos"]) == 3
    assert report["summary"]["flicker"] < 0.5
    assert f"{'changes on time':22s}" in result.stdout and report["summary"]["change_accuracy"] in (None, 1.0)
    again = evaluate_folder(tmp_path / "data")  # the Python API reads the same folder to the same numbers
    assert again.summary.color_accuracy == report["summary"]["color_accuracy"]
    assert [v.text for v in again.videos] == [v["text"] for v in report["videos"]]


def test_eval_shapes_mistakes_are_one_line(tmp_path, capsys):
    def fails(*args):
        code = main(["eval", "shapes", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("t2v: error: "), err
        return code, err[0]

    assert fails("--videos", str(tmp_path / "nowhere"))[0] == 2
    assert fails()[0] == 2
    assert fails("--videos", str(tmp_path))[0] == 1  # no metadata.jsonl
    write_video(render_video(CAPTION, 8, 0), tmp_path / "a.mp4", 8)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.mp4", "text": "a red blob wobbles"}) + "\n")
    code, line = fails("--videos", str(tmp_path))
    assert code == 1 and "a.mp4" in line and "blob" in line
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "b.mp4", "text": CAPTION}) + "\n")
    assert "b.mp4" in fails("--videos", str(tmp_path))[1]
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.mp4", "text": CAPTION}) + "\n")
    assert fails("--videos", str(tmp_path), "--json", str(tmp_path / "no" / "s.json"))[0] == 2
    assert main(["eval", "shapes", "--videos", str(tmp_path)]) == 0
    assert "1.000" in capsys.readouterr().out


def test_drawn_as_script_reads_what_a_folder_draws(tmp_path):
    """research/drawn_as.py (`t2v.shapes.evaluate.drawn_counts`): ground truth is drawn as its caption asks; a
    caption that asks for the wrong color shows the color drawn instead, and a folder without metadata is one line."""
    root = Path(__file__).resolve().parents[1]

    write_video(render_video("a red circle stays still", 16, seed=0), tmp_path / "a.mp4", 8)
    write_video(render_video("a blue square moves diagonally", 16, seed=1), tmp_path / "b.mp4", 8)
    lines = [{"file_name": "a.mp4", "text": "a red circle stays still"},
             {"file_name": "b.mp4", "text": "a yellow square moves diagonally"}]  # b is blue, not yellow
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    counts = drawn_counts(tmp_path)
    assert set(counts) == {("red", "circle"), ("yellow", "square")}
    colors, shapes = counts[("red", "circle")]
    assert colors == {"red": 16} and shapes == {"circle": 16}
    colors, shapes = counts[("yellow", "square")]
    assert colors == {"blue": 16} and shapes == {"square": 16}
    result = subprocess.run([sys.executable, str(root / "research" / "drawn_as.py"), str(tmp_path / "none")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Could not read" in result.stderr and "metadata.jsonl" in result.stderr
    assert "Traceback" not in result.stderr
