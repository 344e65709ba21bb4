"""The Shapes world, following docs/shapes_world.md v1: the procedural world the default model learns.

The world's words (the default model's text tokenizer is built from `vocabulary()`, whose order
must not change), its caption grammar (`parse_caption`, `format_caption`, `sample_caption`), and the
renderer: `trajectory` gives each frame's ground truth (centre, color, shape, motion), `render_video`
draws it with anti-aliased edges (4×4 samples per pixel) and `render_video_with_truth` returns both.
Deterministic per seed, any length. `trajectory` documents the choices the spec leaves open: where
segment boundaries fall and what an orbit starting from an arbitrary position does.
"""

import re

import numpy as np

COLORS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "magenta": (210, 60, 200),
    "cyan": (40, 200, 210),
    "white": (235, 235, 235),
    "orange": (240, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = (
    "bounces left and right",
    "bounces up and down",
    "moves diagonally",
    "moves in a circle",
    "stays still",
)
HELD_OUT = (
    ("orange", "triangle"),
    ("cyan", "square"),
    ("white", "circle"),
    ("green", "triangle"),
    ("magenta", "circle"),
)


def vocabulary() -> list[str]:
    """Every word a Shapes caption can contain, in a fixed order (the grammar's words, then punctuation)."""
    words = ["a", "an", *COLORS, *SHAPES]
    for phrase in (*MOTIONS, "then it turns"):
        words += phrase.split()
    words += [",", "."]
    return list(dict.fromkeys(words))



FPS = 8
SIZE = 64
CLIP_FRAMES = 17
SPEED = 2.0  # pixels per frame
ORBIT_RADIUS = 16.0
ORBIT_FRAMES = 4 * FPS  # one turn every 4 s
HALF_EXTENT = {"circle": (7.0, 7.0), "square": (7.0, 7.0), "triangle": (8.0, 7.0)}  # (x, y)
EXAMPLE = "'a red circle bounces left and right'"


def _normalize(text: str) -> str:
    """Lower case, one space between words, ", then" between segments, no final period."""
    text = re.sub(r"[\s,]*\bthen\b\s*", ", then ", " ".join(text.lower().split()))
    return text.strip(" ,.")


def parse_caption(caption: str) -> list[dict]:
    """Caption -> segments: [{"color", "shape", "motion"}, then {"color"} or {"motion"} per change].

    Accepts what a person types: any case or spacing, a final period, either article or none, "then"
    with or without its comma.
    Anything else raises ValueError naming the word that is not in the grammar.
    """
    if not isinstance(caption, str):
        raise ValueError(f"A caption must be text such as {EXAMPLE}, got {caption!r}.")
    first, *changes = _normalize(caption).split(", then ")
    color, shape, motion = (first.removeprefix("a ").removeprefix("an ").split(" ", 2) + ["", ""])[:3]
    for word, kind, options in ((color, "color", COLORS), (shape, "shape", SHAPES), (motion, "motion", MOTIONS)):
        if word not in options:
            found = f"{word!r} is not a {kind}" if word else f"a {kind} is missing"
            raise ValueError(f"In {caption!r}, {found}; use one of: {', '.join(options)} (as in {EXAMPLE}).")
    segments = [{"color": color, "shape": shape, "motion": motion}]
    for part in changes:
        if part.startswith("it turns ") and part[9:] in COLORS:
            segments.append({"color": part[9:]})
        elif part.startswith("it ") and part[3:] in MOTIONS:
            segments.append({"motion": part[3:]})
        else:
            raise ValueError(f"{part!r} in {caption!r} is not a change such as 'it turns yellow' or 'it stays still'.")
    return segments


def format_caption(segments: list[dict]) -> str:
    """Segments -> the caption the grammar of docs/shapes_world.md writes."""
    first = segments[0]
    article = "an" if first["color"] == "orange" else "a"
    parts = [f"{article} {first['color']} {first['shape']} {first['motion']}"]
    parts += [f"it turns {s['color']}" if "color" in s else f"it {s['motion']}" for s in segments[1:]]
    return ", then ".join(parts)


def storyboard(caption: str) -> list[str]:
    """One single-segment caption per part of the video, each saying what the object is and does in that part.

    `storyboard("a blue square moves in a circle, then it turns yellow")` is
    `["a blue square moves in a circle", "a yellow square moves in a circle"]`: the prompts that
    `T2VPipeline(..., storyboard=...)` gives the denoiser part by part.
    """
    segments = parse_caption(caption)
    state, parts = dict(segments[0]), []
    for change in segments:
        state.update(change)
        parts.append(format_caption([state]))
    return parts


def auto_storyboard(prompt: str) -> list[str] | None:
    """The storyboard of a Shapes caption with changes; None for any other prompt (what `t2v generate` uses by default)."""
    try:
        parts = storyboard(prompt)
    except ValueError:
        return None
    return parts if len(parts) > 1 else None


def sample_caption(rng: np.random.Generator, max_changes: int = 2, exclude_held_out: bool = True) -> str:
    """A random caption with 0 to `max_changes` changes; held-out color-shape pairs never appear, not even after a color change."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    colors = [c for c in COLORS if not (exclude_held_out and (c, shape) in HELD_OUT)]
    color, motion = colors[rng.integers(len(colors))], MOTIONS[rng.integers(len(MOTIONS))]
    segments = [{"color": color, "shape": shape, "motion": motion}]
    for _ in range(rng.integers(max_changes + 1)):
        if rng.random() < 0.5:
            options = [c for c in colors if c != color]
            color = options[rng.integers(len(options))]
            segments.append({"color": color})
        else:
            options = [m for m in MOTIONS if m != motion]
            motion = options[rng.integers(len(options))]
            segments.append({"motion": motion})
    return format_caption(segments)


def segment_starts(num_segments: int, num_frames: int) -> list[int]:
    """First frame of each of the k equal parts of a video: part i starts at i·n//k."""
    return [i * num_frames // num_segments for i in range(num_segments)]


def trajectory(caption: str | list[dict], num_frames: int, seed: int) -> list[dict]:
    """Per-frame ground truth: {"x", "y", "color", "shape", "motion"} (x, y: the object's centre, y down).

    `caption` is a caption or its segments (`parse_caption`). The seed (numpy default_rng) draws the
    start position (uniform where the object fits wholly), the start direction of each axis and the
    orbit's start angle. A caption of k segments splits the video into k parts; part i starts at frame
    i·n//k (`segment_starts`), and every change whose part has started holds from then on (with fewer
    frames than segments some parts are empty and their changes simply apply together).
    Each frame moves on from the previous one by the motion in force at that frame (a new bounce's
    first frame is one step from where the object was). Walls reflect: a move past a bound continues
    back inside and flips that direction. An orbit that
    starts from wherever the object is keeps the object's angle around the frame centre and puts it
    on the 16 px orbit at once (so its first frame may jump onto the circle); the orbit always fits
    inside the frame, so no clamping is needed. A bounce after an orbit starts from the orbit's last
    position with the directions the seed drew (or the last ones it moved in).
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames <= 0:
        raise ValueError(f"num_frames must be a whole number greater than 0, got {num_frames!r}.")
    segments = parse_caption(caption if isinstance(caption, str) else format_caption(caption))
    rng = np.random.default_rng(seed)
    shape = segments[0]["shape"]
    hx, hy = HALF_EXTENT[shape]
    lo, hi = np.array([hx, hy]), np.array([SIZE - hx, SIZE - hy])
    pos = lo + rng.random(2) * (hi - lo)
    direction = np.where(rng.random(2) < 0.5, -1.0, 1.0)
    angle = rng.random() * 2 * np.pi
    starts = segment_starts(len(segments), num_frames)
    centre = np.array([SIZE / 2, SIZE / 2])
    color, motion, truth = segments[0]["color"], segments[0]["motion"], []
    for frame in range(num_frames):
        orbiting = motion == "moves in a circle"
        for start, change in zip(starts[1:], segments[1:]):
            if start == frame:
                color, motion = change.get("color", color), change.get("motion", motion)
        if motion == "moves in a circle":
            if not orbiting and frame > 0:  # a new orbit: from the object's angle around the centre
                angle = np.arctan2(-(pos[1] - centre[1]), pos[0] - centre[0])
            elif frame > 0:
                angle += 2 * np.pi / ORBIT_FRAMES
            pos = centre + ORBIT_RADIUS * np.array([np.cos(angle), -np.sin(angle)])  # counter-clockwise on screen
        elif frame > 0 and motion != "stays still":
            axes = {"bounces left and right": [0], "bounces up and down": [1], "moves diagonally": [0, 1]}[motion]
            for a in axes:
                pos[a] += SPEED * direction[a]
                if pos[a] > hi[a] or pos[a] < lo[a]:
                    bound = hi[a] if pos[a] > hi[a] else lo[a]
                    pos[a] = 2 * bound - pos[a]
                    direction[a] *= -1
        truth.append({"x": float(pos[0]), "y": float(pos[1]), "color": color, "shape": shape, "motion": motion})
    return truth


def _coverage(shape: str, x: float, y: float, ss: int = 4) -> tuple[slice, slice, np.ndarray]:
    """Anti-aliased coverage (ss×ss samples per pixel) of the shape in a window around (x, y)."""
    x0, y0 = max(int(x) - 10, 0), max(int(y) - 10, 0)
    x1, y1 = min(int(x) + 11, SIZE), min(int(y) + 11, SIZE)
    offsets = (np.arange(ss) + 0.5) / ss
    sx = (np.arange(x0, x1)[:, None] + offsets).reshape(-1)[None, :]
    sy = (np.arange(y0, y1)[:, None] + offsets).reshape(-1)[:, None]
    dx, dy = sx - x, sy - y
    if shape == "circle":
        inside = dx**2 + dy**2 <= 7.0**2
    elif shape == "square":
        inside = (np.abs(dx) <= 7.0) & (np.abs(dy) <= 7.0)
    else:  # apex at the top, base 16 px wide at the bottom, 14 px tall
        inside = (dy >= -7.0) & (dy <= 7.0) & (np.abs(dx) <= 8.0 * (dy + 7.0) / 14.0)
    cov = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    return slice(y0, y1), slice(x0, x1), cov


def render_video_with_truth(caption: str | list[dict], num_frames: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    """(video, per-frame ground truth): `render_video`'s frames and the `trajectory` they were drawn from."""
    truth = trajectory(caption, num_frames, seed)
    video = np.zeros((num_frames, SIZE, SIZE, 3), dtype=np.uint8)
    for frame, t in enumerate(truth):
        rows, cols, cov = _coverage(t["shape"], t["x"], t["y"])
        video[frame, rows, cols] = np.round(cov[..., None] * np.array(COLORS[t["color"]])).astype(np.uint8)
    return video, truth


def render_video(caption: str | list[dict], num_frames: int, seed: int) -> np.ndarray:
    """The video a caption (or its segments) describes: uint8 (num_frames, 64, 64, 3), black background, 8 fps."""
    return render_video_with_truth(caption, num_frames, seed)[0]
