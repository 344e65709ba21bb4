"""ShapesBench: how well videos follow their Shapes-world captions, measured from the pixels (docs/shapes_world.md).

`measure_video` measures every frame on its own: the object is the pixels clearly brighter than the
black background; its centroid, its size, how much of its bounding box it fills and how bottom-heavy
it is give the shape, the median color of its inner pixels the nearest palette color. `score_video`
compares that with what the caption says every frame shows (the caption's segments and the frame
count, through `parse_caption`, `segment_starts` and `trajectory` of t2v.shapes.world, so a change
must show from the frame its segment starts). Positions are not known for generated videos, so
motion is judged from the measured centroid track. `evaluate_folder` scores a folder of videos with
a metadata.jsonl (the layout `t2v data shapes` writes) and `summarize` averages over videos. The
thresholds leave room for the noise of mp4/webm compression: ground-truth videos score perfect
through a codec too.

Metrics of one video (frames with no object, misses, count as wrong for color, shape and identity):

- color_accuracy: share of frames whose measured color is the color the caption gives that frame.
- shape_accuracy: share of frames whose measured shape is the caption's shape.
- motion_accuracy: every segment is cut into windows of about WINDOW_SECONDS (2 s, 16 frames; a
  segment shorter than MIN_WINDOW_FRAMES is not judged); share of windows whose centroid track
  `classify_motion` classifies as the segment's motion (a window with a miss is wrong). None when
  no window was judged.
- identity_consistency: share of frames showing the video's one object: the shape most frames
  show, in the color most frames of its color phase show (a phase: the frames the caption gives one
  color, so the caption's color changes are no inconsistency; ties go to the caption's). It measures
  whether the object stays the same object, right or wrong: a consistently wrong color is consistent.
- jumps: consecutive frames whose centroids are more than JUMP_PX (6 px) apart; the world's fastest
  motion is the orbit's 2π·16/32 ≈ 3.14 px a frame (a diagonal moves 2.83). Across missed frames the
  allowance is JUMP_PX per frame. The step onto the orbit at the start of a "moves in a circle"
  segment that follows another motion is the world's own (see `trajectory`) and is not counted.
  jumps_per_minute: jumps per minute of video.
- flicker: mean absolute change between consecutive frames of the pixels away from the object
  (more than 2 px from it in both frames), in 8-bit levels (0-255). Ground truth: 0; about 0.1
  after mp4 compression.
- color_flicker: mean absolute change of the object's inner color between consecutive frames of one
  color phase, in levels. Ground truth: 0; a few levels after mp4 compression.
- detected: share of frames in which an object was found.
- change_accuracy: share of the caption's changes ("..., then it turns yellow", "..., then it stays
  still") that show at the right time. Each change is judged on the window of WINDOW_SECONDS before
  its part starts and the one after (each cut at the neighbouring changes; both at least
  MIN_WINDOW_FRAMES long, else the change is not judged): a color change is on time when most frames
  after show the new color and most frames before do not, so it may come up to about a second early
  or late; a motion change when `classify_motion` gives the new motion after and another one before.
  None when no change was judged (captions of one segment).
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .world import COLORS, FPS, ORBIT_FRAMES, ORBIT_RADIUS, SIZE, parse_caption, segment_starts, trajectory

MIN_PEAK = 64.0  # an object is at least this much brighter than the background (max channel, levels) over 3×3 pixels
MIN_PIXELS = 20  # and covers at least this many pixels at half its brightness
MAX_COLOR_DISTANCE = 80.0  # RGB distance (levels) beyond which the inner color is no palette color
SIZE_RANGE = (7.0, 24.0)  # object width and height in px (the world's are 14 to 16)
JUMP_PX = 6.0
WINDOW_SECONDS = 2.0
MIN_WINDOW_FRAMES = 6
MOVING_PX = (1.0, 4.0)  # an axis moves if its mean step is within this (px a frame; the world's is 2)
FIXED_PX = 2.0  # an axis is fixed if its range over the window is at most this (px)
ORBIT_TOLERANCE = dict(radius=4.0, centre=6.0, residual=1.5, speed=0.5, turn=0.4)  # px, px, px rms, relative, rad a frame

GOALS = {
    "color_accuracy": (">=", 0.95),
    "shape_accuracy": (">=", 0.90),
    "motion_accuracy": (">=", 0.90),
    "identity_consistency": (">=", 0.98),
    "jumps_per_minute": ("<=", 1.0),
}

_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[name] for name in _PALETTE_NAMES], dtype=np.float64)


@dataclass
class FrameMeasurement:
    """What one frame shows: the object's centroid (x, y in px, y down; pixel i spans [i, i+1]), its
    area, width and height (px, anti-aliased edges counted by coverage), `fill` (area / (width·height):
    square 1.0, circle 0.785, triangle 0.5, measured about 0.56 as its thin corners count less), `drop` (how far the centroid sits below the middle of its
    rows, as a share of the height: an upright triangle 1/6, circle and square 0), `rgb` (median color
    of the inner pixels), and the nearest palette `color` and the `shape` (None when neither fits)."""

    x: float
    y: float
    area: float
    width: float
    height: float
    fill: float
    drop: float
    rgb: tuple[float, float, float]
    color: str | None
    shape: str | None
    mask: np.ndarray = field(repr=False, compare=False)


@dataclass
class MotionWindow:
    """Frames [start, end) of one segment, the caption's motion there and the one measured."""

    start: int
    end: int
    expected: str
    measured: str


@dataclass
class ChangeCheck:
    """One change of the caption: the frame its part starts, what changes (color or motion), to what,
    and whether the windows before and after show it at the right time."""

    frame: int
    kind: str
    new: str
    on_time: bool


@dataclass
class Scores:
    """The ShapesBench metrics (see the module docstring for the definitions)."""

    num_frames: int
    seconds: float
    color_accuracy: float
    shape_accuracy: float
    motion_accuracy: float | None
    identity_consistency: float
    jumps: int
    jumps_per_minute: float
    flicker: float
    color_flicker: float
    detected: float
    change_accuracy: float | None


@dataclass
class VideoScore(Scores):
    """ShapesBench scores of one video, with its judged motion windows and the frames a jump lands on."""

    windows: list[MotionWindow] = field(default_factory=list)
    jump_frames: list[int] = field(default_factory=list)
    changes: list[ChangeCheck] = field(default_factory=list)


@dataclass
class BenchSummary(Scores):
    """Means over videos of the per-video scores (motion and changes over the videos with a judged window
    or change); jumps and jumps_per_minute pool all videos: total jumps, and per total minute."""

    num_videos: int

    def goals(self) -> dict[str, bool | None]:
        """For every goal in GOALS whether it is met (None for a motion accuracy with no window)."""
        met = {}
        for name, (op, target) in GOALS.items():
            value = getattr(self, name)
            met[name] = None if value is None else (value >= target if op == ">=" else value <= target)
        return met


@dataclass
class VideoResult:
    file_name: str
    text: str
    score: VideoScore


@dataclass
class BenchResult:
    """`evaluate_folder`'s answer: every video's scores and the summary."""

    videos: list[VideoResult]
    summary: BenchSummary

    def to_dict(self) -> dict:
        return {"summary": asdict(self.summary), "goals": self.summary.goals(), "videos": [asdict(v) for v in self.videos]}


def _neighbourhood_min(a: np.ndarray) -> np.ndarray:
    """Minimum over each pixel's 3×3 neighbourhood (edges repeated) of (..., H, W) arrays."""
    pad = [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(a, pad, mode="edge")
    h, w = a.shape[-2:]
    return np.min([p[..., i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=0)


def _as_levels(frames) -> np.ndarray:
    """Frames (N, 64, 64, 3), uint8 or floats in [0, 1] -> float32 levels 0-255."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"Shapes videos are frames of {SIZE}x{SIZE} RGB, shaped (N, {SIZE}, {SIZE}, 3); got {frames.shape}.")
    if len(frames) == 0:
        raise ValueError("The video has no frames.")
    if frames.dtype == np.uint8:
        return frames.astype(np.float32)
    return np.clip(frames.astype(np.float32), 0.0, 1.0) * 255.0


def _classify_shape(width: float, height: float, fill: float, drop: float) -> str | None:
    """Width and height within SIZE_RANGE, then: fill < 0.66 and drop > 0.08 a triangle; else, if about as
    wide as tall (0.8 to 1.25) and not top- or bottom-heavy (|drop| <= 0.06), fill >= 0.9 a square and
    below a circle; anything else None."""
    lo, hi = SIZE_RANGE
    if not (lo <= width <= hi and lo <= height <= hi):
        return None
    if fill < 0.66:  # triangle 0.5; it must also be upright (wider at the bottom)
        return "triangle" if drop > 0.08 else None
    if not 0.8 <= width / height <= 1.25 or abs(drop) > 0.06:
        return None
    return "square" if fill >= 0.9 else "circle"  # square 1.0, circle π/4


def _measure(levels: np.ndarray, background: float, solid: np.ndarray, core: np.ndarray) -> FrameMeasurement:
    rgb = np.median(levels[core], axis=0)
    distance = np.linalg.norm(_PALETTE - rgb, axis=1)
    color = _PALETTE_NAMES[int(distance.argmin())] if distance.min() <= MAX_COLOR_DISTANCE else None
    rows, cols = np.nonzero(solid)
    r0, r1 = max(rows.min() - 3, 0), min(rows.max() + 4, SIZE)
    c0, c1 = max(cols.min() - 3, 0), min(cols.max() + 4, SIZE)
    brightness = levels[r0:r1, c0:c1].max(axis=-1) - background
    coverage = np.clip(brightness / max(float(rgb.max()) - background, 1.0), 0.0, 1.0)
    coverage[coverage < 0.15] = 0.0  # codec ringing around the edges
    area = float(coverage.sum())
    row_profile, col_profile = coverage.max(axis=1), coverage.max(axis=0)
    height, width = float(row_profile.sum()), float(col_profile.sum())
    ys, xs = np.arange(r0, r1) + 0.5, np.arange(c0, c1) + 0.5
    x = float(coverage.sum(axis=0) @ xs / area)
    y = float(coverage.sum(axis=1) @ ys / area)
    middle = float(row_profile @ ys / height)
    fill, drop = area / (width * height), (y - middle) / height
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[r0:r1, c0:c1] = coverage > 0
    return FrameMeasurement(x, y, area, width, height, fill, drop, tuple(float(v) for v in rgb), color,
                            _classify_shape(width, height, fill, drop), mask)


def measure_video(frames) -> list[FrameMeasurement | None]:
    """Measure every frame of (N, 64, 64, 3) frames (uint8, or floats in [0, 1]); None where no object is seen.

    Brightness is the max over R, G, B above the frame's background (its median brightness). The
    object: the pixels at least half as bright as the frame's brightest 3×3 patch, if that patch is
    MIN_PEAK levels above the background and at least MIN_PIXELS such pixels remain once specks
    smaller than 3×3 are removed. Within a few pixels of it, brightness relative to the object's
    gives each pixel's coverage (soft edges count partly): area, width, height and centroid come from
    it. The inner pixels (the object shrunk by one pixel) give its color: their median, robust to
    soft edges and codec noise.
    """
    return _measure_levels(_as_levels(frames))


def _measure_levels(levels: np.ndarray) -> list[FrameMeasurement | None]:
    brightness = levels.max(axis=-1)
    backgrounds = np.median(brightness, axis=(1, 2))
    peaks = _neighbourhood_min(brightness).max(axis=(1, 2)) - backgrounds
    masks = brightness - backgrounds[:, None, None] >= peaks[:, None, None] / 2
    cores = _neighbourhood_min(masks)  # shrunk by one pixel
    solids = ~_neighbourhood_min(~cores)  # and grown back: specks smaller than 3×3 are gone
    out = []
    for frame, background, peak, solid, core in zip(levels, backgrounds, peaks, solids, cores):
        if peak < MIN_PEAK or solid.sum() < MIN_PIXELS:
            out.append(None)
            continue
        out.append(_measure(frame, float(background), solid, core if core.sum() >= 3 else solid))
    return out


def centroids(measured: list[FrameMeasurement | None]) -> np.ndarray:
    """The object's centroid track (N, 2) in pixels from `measure_video`'s frames; NaN where none was found."""
    return np.array([[m.x, m.y] if m is not None else [np.nan, np.nan] for m in measured])


def _orbit(xy: np.ndarray) -> bool:
    """Whether a track follows the world's orbit: a circle of 16 px around the frame centre (fitted by least
    squares, so a triangle's centroid offset is allowed), counter-clockwise on screen at about 2π/32 a
    frame, its heading turning by about that every frame (so a bounce's corner is no arc)."""
    if len(xy) < 5:
        return False
    x, y = xy[:, 0], xy[:, 1]
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    (px, py, c), *_ = np.linalg.lstsq(a, x**2 + y**2, rcond=None)
    cx, cy = px / 2, py / 2
    r2 = c + cx**2 + cy**2
    if r2 <= 0:
        return False
    radius, tol = np.sqrt(r2), ORBIT_TOLERANCE
    residual = np.sqrt(np.mean((np.hypot(x - cx, y - cy) - radius) ** 2))
    angle = np.unwrap(np.arctan2(-(y - cy), x - cx))  # y is down: counter-clockwise on screen is increasing
    steps, expected = np.diff(angle), 2 * np.pi / ORBIT_FRAMES
    move = np.diff(xy, axis=0)
    turns = np.diff(np.unwrap(np.arctan2(-move[:, 1], move[:, 0])))
    return bool(
        abs(radius - ORBIT_RADIUS) <= tol["radius"]
        and np.hypot(cx - SIZE / 2, cy - SIZE / 2) <= tol["centre"]
        and residual <= tol["residual"]
        and (steps > 0).all()
        and abs(steps.mean() / expected - 1) <= tol["speed"]
        and (np.abs(turns - expected) <= tol["turn"]).all()
    )


def classify_motion(xy) -> str:
    """The motion phrase of docs/shapes_world.md a centroid track (n, 2) shows, or "other".

    Orbit: see `_orbit`. Otherwise an axis is fixed if its range is at most FIXED_PX (2 px) and moving if
    its mean step is within MOVING_PX (1 to 4 px a frame; the world's is 2): both fixed is "stays still",
    one moving and the other fixed a bounce along it, both moving with mean steps within a factor 2 of
    each other "moves diagonally"; anything else is "other".
    """
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 2 or not np.isfinite(xy).all():
        return "other"
    if _orbit(xy):
        return "moves in a circle"
    fixed = np.ptp(xy, axis=0) <= FIXED_PX
    step = np.abs(np.diff(xy, axis=0)).mean(axis=0)
    moving = (MOVING_PX[0] <= step) & (step <= MOVING_PX[1])
    if fixed.all():
        return "stays still"
    if moving[0] and fixed[1]:
        return "bounces left and right"
    if fixed[0] and moving[1]:
        return "bounces up and down"
    if moving.all() and 0.5 <= step[0] / step[1] <= 2.0:
        return "moves diagonally"
    return "other"


def _windows(starts: list[int], num_frames: int, window: int) -> list[tuple[int, int]]:
    """Cut every segment [start, next start) into round(length / window) nearly equal windows (at least one)."""
    out = []
    for start, end in zip(starts, [*starts[1:], num_frames]):
        length = end - start
        if length < MIN_WINDOW_FRAMES:
            continue
        k = max(1, int(length / window + 0.5))
        cuts = [start + s for s in segment_starts(k, length)] + [end]
        out += list(zip(cuts[:-1], cuts[1:]))
    return out


def _check_changes(measured, xy, expected, starts: list[int], window: int) -> list[ChangeCheck]:
    """Every change of the caption that alters the color or the motion, judged on the windows around it
    (see change_accuracy in the module docstring)."""
    bounds = sorted(set(starts)) + [len(expected)]
    checks = []
    for previous, start, following in zip(bounds, bounds[1:], bounds[2:]):
        before, after = range(max(previous, start - window), start), range(start, min(following, start + window))
        if len(before) < MIN_WINDOW_FRAMES or len(after) < MIN_WINDOW_FRAMES:
            continue
        for kind in ("color", "motion"):
            new = expected[start][kind]
            if new == expected[start - 1][kind]:
                continue
            if kind == "color":
                shown = [np.mean([measured[i] is not None and measured[i].color == new for i in frames]) > 0.5
                         for frames in (before, after)]
            else:
                shown = [classify_motion(xy[frames.start : frames.stop]) == new for frames in (before, after)]
            checks.append(ChangeCheck(start, kind, new, on_time=bool(shown[1] and not shown[0])))
    return checks


def _phases(expected: list[dict]) -> np.ndarray:
    """Color phase of every frame: a new phase where the caption's color changes."""
    changes = [0] + [int(a["color"] != b["color"]) for a, b in zip(expected, expected[1:])]
    return np.cumsum(changes)


def _majority(values, prefer) -> object:
    """The most common value that is not None; ties go to `prefer` (the caption's), then to the first seen."""
    values = [v for v in values if v is not None]
    return max(dict.fromkeys(values), key=lambda v: (values.count(v), v == prefer)) if values else None


def score_video(frames, caption: str, fps: float = FPS) -> VideoScore:
    """Score one video (N, 64, 64, 3; uint8 or floats in [0, 1]) against its caption (see the module docstring).

    The caption decides what each frame should show: its k segments split the N frames as
    `segment_starts(k, N)` does, and `trajectory` gives each frame's color, shape and motion.
    `fps` sets the window length (WINDOW_SECONDS) and the minutes of jumps_per_minute; the world's
    motions are defined per frame at 8 fps.
    """
    segments = parse_caption(caption)
    levels = _as_levels(frames)
    measured = _measure_levels(levels)
    n = len(measured)
    expected = trajectory(segments, n, seed=0)  # color, shape and motion per frame; its positions are not used
    starts = segment_starts(len(segments), n)
    found = np.array([m is not None for m in measured])

    color_ok = np.array([m is not None and m.color == e["color"] for m, e in zip(measured, expected)])
    shape_ok = np.array([m is not None and m.shape == e["shape"] for m, e in zip(measured, expected)])

    xy = centroids(measured)
    window = max(1, round(WINDOW_SECONDS * fps))
    windows = []
    for start, end in _windows(sorted(set(starts)), n, window):
        want = expected[start]["motion"]
        windows.append(MotionWindow(start, end, want, classify_motion(xy[start:end])))
    motion = float(np.mean([w.measured == w.expected for w in windows])) if windows else None

    changes = _check_changes(measured, xy, expected, starts, window)

    phases = _phases(expected)
    shape = _majority([m.shape for m in measured if m is not None], expected[0]["shape"])
    phase_color = {}
    for p in set(phases):
        frames_p = np.flatnonzero(phases == p)
        phase_color[p] = _majority([measured[i].color for i in frames_p if found[i]], expected[frames_p[0]]["color"])
    identity = np.array([m is not None and m.shape == shape and m.color == phase_color[p] for m, p in zip(measured, phases)])

    jump_frames, last = [], None
    for i in np.flatnonzero(found):
        onto_orbit = expected[i]["motion"] == "moves in a circle" and i > 0 and expected[i - 1]["motion"] != "moves in a circle"
        if last is not None and not onto_orbit and np.hypot(*(xy[i] - xy[last])) > JUMP_PX * (i - last):
            jump_frames.append(int(i))
        last = i
    jumps = len(jump_frames)

    near = np.stack([m.mask if m is not None else np.zeros((SIZE, SIZE), bool) for m in measured])
    for _ in range(2):
        near = ~_neighbourhood_min(~near)  # grow by one pixel
    away = ~(near[1:] | near[:-1])
    change = np.abs(np.diff(levels, axis=0)).mean(axis=-1)
    flicker = float(change[away].mean()) if n > 1 and away.any() else 0.0
    color_steps = [np.abs(np.subtract(measured[i + 1].rgb, measured[i].rgb)).mean()
                   for i in range(n - 1) if found[i] and found[i + 1] and phases[i] == phases[i + 1]]

    seconds = n / fps
    return VideoScore(
        num_frames=n,
        seconds=seconds,
        color_accuracy=float(color_ok.mean()),
        shape_accuracy=float(shape_ok.mean()),
        motion_accuracy=motion,
        identity_consistency=float(identity.mean()),
        jumps=jumps,
        jumps_per_minute=jumps * 60.0 / seconds,
        flicker=flicker,
        color_flicker=float(np.mean(color_steps)) if color_steps else 0.0,
        detected=float(found.mean()),
        change_accuracy=float(np.mean([c.on_time for c in changes])) if changes else None,
        windows=windows,
        jump_frames=jump_frames,
        changes=changes,
    )


def summarize(scores: list[VideoScore]) -> BenchSummary:
    """Means over videos (motion and changes over the videos with one judged); jumps pooled over all minutes."""
    if not scores:
        raise ValueError("There are no videos to summarize.")

    def mean(name):
        values = [getattr(s, name) for s in scores if getattr(s, name) is not None]
        return float(np.mean(values)) if values else None

    jumps, seconds = sum(s.jumps for s in scores), sum(s.seconds for s in scores)
    return BenchSummary(
        num_videos=len(scores),
        num_frames=sum(s.num_frames for s in scores),
        seconds=seconds,
        color_accuracy=mean("color_accuracy"),
        shape_accuracy=mean("shape_accuracy"),
        motion_accuracy=mean("motion_accuracy"),
        identity_consistency=mean("identity_consistency"),
        jumps=jumps,
        jumps_per_minute=jumps * 60.0 / seconds,
        flicker=mean("flicker"),
        color_flicker=mean("color_flicker"),
        detected=mean("detected"),
        change_accuracy=mean("change_accuracy"),
    )


def read_metadata(folder) -> list[dict]:
    """The entries of `folder/metadata.jsonl` ({"file_name", "text"}), read by the video folder's own parser;
    one sentence when the file is missing, malformed or empty."""
    from ..data.video_folder import read_metadata as read_rows

    path = Path(folder) / "metadata.jsonl"
    try:
        rows = read_rows(path)
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"Could not read {path}: {getattr(err, 'strerror', None) or err}; ShapesBench needs one "
                         'line {"file_name": ..., "text": ...} per video.') from None
    if not rows:
        raise ValueError(f"{path} lists no videos.")
    return [{"file_name": file_name, "text": text} for file_name, text, _ in rows]


def evaluate_folder(folder, progress: bool = False) -> BenchResult:
    """Score every video metadata.jsonl lists in `folder` (mp4, webm or gif; 64×64 at 8 fps) against its text."""
    from tqdm.auto import tqdm

    from ..video_io import read_video

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of videos.")
    results = []
    for entry in tqdm(read_metadata(folder), desc="ShapesBench", unit="video", disable=not progress):
        path = folder / entry["file_name"]
        if not path.is_file():
            raise ValueError(f"{path} is listed in metadata.jsonl but is not there.")
        try:
            frames, fps = read_video(path)
        except Exception as err:  # imageio raises many kinds; one line naming the file is what helps
            raise ValueError(f"Could not read the video {path}: {err}") from None
        if abs(fps - FPS) > 0.05 * FPS:
            raise ValueError(f"{path} is {fps:g} fps; Shapes-world videos are {FPS} fps.")
        try:
            score = score_video(frames, entry["text"], fps)
        except ValueError as err:
            raise ValueError(f"{entry['file_name']}: {err}") from None
        results.append(VideoResult(entry["file_name"], entry["text"], score))
    return BenchResult(results, summarize([r.score for r in results]))
