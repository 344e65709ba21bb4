"""Writing and reading video files with imageio (ffmpeg from imageio-ffmpeg for mp4/webm, Pillow for gif).

Files are written under a temporary name of their own beside the target (unique to the writer, so
two programs writing the same file never share one) and renamed only when complete, so a failed or
interrupted write never leaves a half-written video under the name the user asked for.
"""

import os
import secrets
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9", ".gif": None}


def check_output_path(path: str | os.PathLike) -> Path:
    """Return `path` as a Path if a video can be written there, else raise ValueError in one sentence."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        kinds = ", ".join(CODECS)
        raise ValueError(f"Cannot write {path.name!r}: the file name must end in one of {kinds}.")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {path / 'video.mp4'}.")
    if not path.parent.is_dir():
        raise ValueError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    return path


class VideoWriter:
    """Append frames (uint8, (N, H, W, 3)) to a video file; the file appears under its name on a clean close.

    Use as a context manager: leaving the block by an exception removes the partial file, except Ctrl-C
    (KeyboardInterrupt) once frames were written: then the file is closed and kept, a playable video of
    what was made so far. Ctrl-C during `append` lands once the chunk is written.

    With `keep_existing`, a file already at `path` is never replaced: the video takes the first free name
    `stem-2.mp4`, `stem-3.mp4`, ... when it is complete, and `path` then says which.
    """

    def __init__(self, path: str | os.PathLike, fps: float, keep_existing: bool = False):
        self.path = check_output_path(path)
        self.keep_existing = keep_existing
        self.partial = self.path.with_name(f".{self.path.stem}.{os.getpid()}-{secrets.token_hex(4)}.partial{self.path.suffix}")
        suffix = self.path.suffix.lower()
        if suffix == ".gif":
            self._writer = imageio.get_writer(self.partial, mode="I", duration=1000.0 / fps, loop=0)
        else:
            self._writer = imageio.get_writer(
                self.partial,
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec=CODECS[suffix],
                quality=8,
                macro_block_size=1,
                ffmpeg_log_level="error",
            )
        self.frames_written = 0

    def append(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"Frames must be uint8 shaped (N, H, W, 3), got {frames.dtype} {frames.shape}.")
        with _ctrl_c_held():
            for frame in frames:
                self._writer.append_data(frame)
                self.frames_written += 1

    def close(self) -> Path:
        self._writer.close()
        if self.keep_existing:
            self.path = _reserve_free_name(self.path)
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or (issubclass(exc_type, KeyboardInterrupt) and self.frames_written):
            self.close()
        else:
            self.abort()


def _reserve_free_name(path: Path) -> Path:
    """The first of `path`, `stem-2.suffix`, `stem-3.suffix`, ... that does not exist, created empty at once
    (O_EXCL), so that two writers can never pick the same one."""
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise ValueError(f"Cannot find a free name for {path}: {path.stem}-2 to -9999 all exist.")


@contextmanager
def _ctrl_c_held():
    """Delay Ctrl-C until the block ends, then raise it as usual.

    A KeyboardInterrupt raised inside imageio-ffmpeg's frame writer makes it kill ffmpeg
    (its "kill" stop policy), which leaves an mp4 without its index: unplayable. Holding the
    signal for the few milliseconds a chunk takes to reach ffmpeg keeps the file whole.
    Only the main thread can handle signals; elsewhere, or under a handler that is not
    Python's (SIG_IGN, SIG_DFL), nothing changes.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        previous(signal.SIGINT, caught[0])


def write_frames(frames, path: str | os.PathLike, fps: float, keep_existing: bool = False) -> tuple[Path, int, bool]:
    """Write an iterable of float frame chunks (n, H, W, 3) in [0, 1] to `path` as they come.

    Returns (the file written, frames written, interrupted): with `keep_existing` the file may be
    `stem-2.mp4` and so on (see `VideoWriter`). Ctrl-C after the first frame keeps the file, playable,
    with what was written; before it, KeyboardInterrupt propagates and no file is left.
    """
    writer = VideoWriter(path, fps, keep_existing)
    with writer:
        try:
            for chunk in frames:
                writer.append(to_uint8(chunk))
        except KeyboardInterrupt:
            if not writer.frames_written:
                raise
            interrupted = True
        else:
            interrupted = False
    return writer.path, writer.frames_written, interrupted


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] -> uint8."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def write_video(frames: np.ndarray, path: str | os.PathLike, fps: float) -> Path:
    """Write frames (N, H, W, 3), uint8 or floats in [0, 1], to `path`; returns the path."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = to_uint8(frames)
    with VideoWriter(path, fps) as writer:
        writer.append(frames)
    return writer.path


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read a video file -> (frames uint8 (N, H, W, 3), fps)."""
    reader = imageio.get_reader(path)
    try:
        meta = reader.get_meta_data()
        frames = np.stack([np.asarray(frame)[..., :3] for frame in reader])
    finally:
        reader.close()
    fps = meta.get("fps") or 1000.0 / meta["duration"]
    return frames, float(fps)
