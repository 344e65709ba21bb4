"""A folder of captioned videos as a torch Dataset, for training t2v.

The folder follows the Hugging Face `videofolder` convention: video files (.mp4, .webm, .gif), in
the folder or its subfolders, and exactly one metadata file at its top naming each video, relative
to the folder, with its caption:

    metadata.jsonl   one JSON object per line: {"file_name": "clips/a.mp4", "text": "a caption"}
    metadata.csv     a header row with the columns file_name,text, then one row per video

A jsonl line may also give a `"storyboard"`: a list of prompts, one per equal part of the video in
time (as `T2VPipeline(..., storyboard=...)` takes them); with `--part_prompts` the To2V stage
captions training windows with their part's prompt, and the planner always reads the whole `text`.
Other keys or columns are ignored. Videos are decoded with imageio (ffmpeg for mp4/webm, Pillow for
gif), resampled to the target frame rate by timestamp (the nearest source frame to t = k / fps),
resized with antialiasing so the shorter side fits and centre-cropped to (height, width).

A single bad video never stops an epoch: videos that are missing, undecodable or too short are
skipped with a `warnings.warn` that names them, at construction (from the metadata, without
decoding frames) or, for damage found only while decoding, on access.
"""

import csv
import json
import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..checks import is_prompt_list

VIDEO_TYPES = (".mp4", ".webm", ".gif")
CACHE_BYTES = 2**31  # the default budget for keeping a whole folder's decoded videos in memory
METADATA_FILES = ("metadata.jsonl", "metadata.csv")


@dataclass
class Video:
    file_name: str
    text: str
    path: Path
    fps: float
    frames: int  # from the metadata
    decoded_frames: int | None = None  # counted by decoding, once a draw ran past the end of the file
    storyboard: list[str] | None = None  # prompts of the video's equal parts in time, from the metadata


class VideoFolderDataset(Dataset):
    """Captioned videos from a folder; each item is a dict

        {"video": FloatTensor (3, F, height, width) in [-1, 1], "text": str, "file_name": str}

    in one of two modes:

    - clip mode (the default): F = `num_frames` (17 if not given) consecutive frames at `fps`.
    - long mode, given `clip_frames`: with `num_clips=K`, F = K·clip_frames consecutive frames (K
      whole clips); with `max_clips`, as many whole consecutive clips as the video holds, up to
      max_clips, so F varies between videos (batch them with `collate_long`). Long items also carry
      "num_clips" (int).

    Videos too short for one sample (num_frames, K·clip_frames, or one clip with max_clips, counted
    at `fps`) are skipped at construction with a warning; they are not padded.

    Where the sample starts in the video is random, and deterministic: item i's start is drawn from a
    numpy generator seeded by (seed, epoch, i), so the same seed, epoch and index always give the same
    frames (for the same files and ffmpeg), whatever the access order or number of DataLoader workers.
    `set_epoch(e)` moves every item to new starts (call it before creating the epoch's DataLoader
    iterator, as with DistributedSampler); `get(i, seed=s)` draws the start from `s` alone instead.
    A file holding fewer frames than its header says (a cut file) is counted by decoding when a draw
    runs past its end, and that draw is redone, at the same relative position, within what it holds.

    A video that fails to decode on access is warned about once (per process) and from then on
    replaced by the next usable video (i + 1, i + 2, ...), drawn with the same seed, so the result
    stays a function of the seed; RuntimeError only when no video at all can be decoded.

    Construction opens every video once to read its frame rate and length (tens of milliseconds
    per video with ffmpeg). When the whole folder, at `fps` and (height, width) in uint8, fits in
    `cache_bytes` (default CACHE_BYTES, 2 GiB; 0 turns it off), each video is decoded whole on its
    first use and kept in memory by the process that reads it (each DataLoader worker holds its
    own), so later samples cost no decoding: starting ffmpeg takes about 80 ms a sample, more than
    a training step on a small folder. The samples are the same either way.
    """

    def __init__(
        self,
        root,
        *,
        fps: float,
        height: int,
        width: int,
        num_frames: int | None = None,
        clip_frames: int | None = None,
        num_clips: int | None = None,
        max_clips: int | None = None,
        seed: int = 0,
        cache_bytes: int | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"The video folder {self.root} does not exist or is not a folder.")
        if not (isinstance(fps, Real) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}.")
        sizes = dict(height=height, width=width, num_frames=num_frames, clip_frames=clip_frames,
                     num_clips=num_clips, max_clips=max_clips)
        for name, value in sizes.items():
            if value is not None and not (is_integer(value) and value > 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        cache_bytes = CACHE_BYTES if cache_bytes is None else cache_bytes
        if not (is_integer(cache_bytes) and cache_bytes >= 0):
            raise ValueError(f"cache_bytes must be a non-negative integer, got {cache_bytes!r}.")
        if not is_integer(seed):
            raise ValueError(f"seed must be an integer, got {seed!r}.")
        if clip_frames is None and (num_clips or max_clips):
            raise ValueError("num_clips and max_clips need clip_frames, the length of one clip.")
        if clip_frames is not None and num_frames is not None:
            raise ValueError("Give num_frames for clips or clip_frames (and num_clips or max_clips) for long samples, not both.")
        if clip_frames is not None and (num_clips is None) == (max_clips is None):
            raise ValueError("Long samples need exactly one of num_clips (a fixed clip count) or max_clips (variable).")

        self.fps, self.height, self.width, self.seed, self.epoch = float(fps), int(height), int(width), int(seed), 0
        self.num_frames = (num_frames or 17) if clip_frames is None else None
        self.clip_frames, self.num_clips, self.max_clips = clip_frames, num_clips, max_clips
        self._bad = set()  # videos that failed to decode on access

        metadata = [self.root / name for name in METADATA_FILES if (self.root / name).is_file()]
        if len(metadata) != 1:
            found = "both" if metadata else "neither"
            raise ValueError(f"The video folder {self.root} must hold one metadata file, metadata.jsonl or metadata.csv, "
                             f"but it has {found}.")
        rows = read_metadata(metadata[0])
        self.videos = [video for video in (self._probe(*row) for row in rows) if video is not None]
        if not self.videos:
            raise ValueError(f"No usable videos in {self.root}: all {len(rows)} listed in {metadata[0].name} were skipped "
                             "(see the warnings).")
        frames = sum(len(resample_indices(video.frames, video.fps, self.fps)) for video in self.videos)
        self._decoded = {} if frames * 3 * self.height * self.width <= cache_bytes else None  # path -> uint8 video

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return self.get(index)

    def set_epoch(self, epoch: int) -> None:
        """Draw new random starts: item i's start is seeded by (seed, epoch, i)."""
        self.epoch = epoch

    def get(self, index: int, seed: int | None = None) -> dict:
        """Item `index`, its start drawn from a generator seeded by `seed` (default: (seed, epoch, index))."""
        count = len(self.videos)
        if not -count <= index < count:
            raise IndexError(f"Index {index} is out of range for {count} videos.")
        entropy = [self.seed, self.epoch, index % count] if seed is None else [seed]
        for step in range(count):
            video = self.videos[(index + step) % count]
            if video.path in self._bad:
                continue
            try:
                return self._load(video, entropy)
            except Exception as error:  # any decoding failure: skip this video, never end the epoch
                self._bad.add(video.path)
                warnings.warn(f"Skipping {video.file_name}: it could not be decoded ({describe(error)}); "
                              "the next video is used instead.")
        raise RuntimeError(f"None of the {count} videos in {self.root} could be decoded (see the warnings).")

    def _frames_needed(self, available: int) -> int:
        """Frames (at self.fps) one sample takes from a video with `available` frames; 0 if too short."""
        if self.num_frames is not None:
            need = self.num_frames
        elif self.num_clips is not None:
            need = self.num_clips * self.clip_frames
        else:
            need = min(self.max_clips, available // self.clip_frames) * self.clip_frames
        return need if 0 < need <= available else 0

    def _probe(self, file_name: str, text: str, storyboard: list[str] | None = None):
        """A Video from the file's metadata (no frames decoded), or None with a warning."""
        path = self.root / file_name
        if not path.is_file():
            warnings.warn(f"Skipping {file_name}: the file does not exist in {self.root}.")
            return None
        if path.suffix.lower() not in VIDEO_TYPES:
            warnings.warn(f"Skipping {file_name}: only {', '.join(VIDEO_TYPES)} videos are read.")
            return None
        try:
            fps, frames = probe(path)
        except Exception as error:  # corrupt or unreadable: skip it
            warnings.warn(f"Skipping {file_name}: it could not be decoded ({describe(error)}).")
            return None
        available = len(resample_indices(frames, fps, self.fps))
        if not self._frames_needed(available):
            need = self.num_frames or (self.num_clips or 1) * self.clip_frames
            warnings.warn(f"Skipping {file_name}: it has {available} frames at {self.fps:g} fps, "
                          f"fewer than the {need} a sample needs.")
            return None
        return Video(file_name, text, path, fps, frames, storyboard=storyboard)

    def _load(self, video: Video, entropy: list[int]) -> dict:
        where = np.random.default_rng([n % 2**64 for n in entropy]).random()  # the start, as a fraction of the room
        try:
            return self._sample(video, video.frames, where)
        except IndexError:  # the header promised more frames than the file holds (a cut file): count them
            if video.decoded_frames is None:
                video.decoded_frames = count_frames(video.path)
            return self._sample(video, video.decoded_frames, where)

    def _sample(self, video: Video, frames: int, where: float) -> dict:
        indices = resample_indices(frames, video.fps, self.fps)
        need = self._frames_needed(len(indices))
        if not need:
            raise ValueError(f"only {len(indices)} frames at {self.fps:g} fps")
        start = int(where * (len(indices) - need + 1))
        if self._decoded is None:
            frames = read_frames_uint8(video.path, indices[start : start + need], self.height, self.width)
        else:
            if video.path not in self._decoded:
                self._decoded[video.path] = read_whole_uint8(video, self.fps, self.height, self.width)[1]
            frames = self._decoded[video.path][:, start : start + need]
            if frames.shape[1] < need:  # kept from a cut file (see _load): it ends early, as reading it would
                raise IndexError(f"{video.file_name} ends before frame {start + need} at {self.fps:g} fps")
        item = {
            "video": to_unit(frames),
            "text": video.text,
            "file_name": video.file_name,
        }
        if self.clip_frames is not None:
            item["num_clips"] = need // self.clip_frames
        return item


def collate_long(batch: list[dict]) -> dict:
    """Batch long items with different clip counts: videos padded with zeros to the batch's longest.

    Returns {"video": (B, 3, K·clip_frames, H, W), "text": [str], "file_name": [str],
    "num_clips": LongTensor (B,), "clip_mask": BoolTensor (B, K)}, K the batch's largest clip
    count and clip_mask[b, k] True where clip k of item b is real.
    """
    counts = torch.tensor([item["num_clips"] for item in batch])
    clip_frames = batch[0]["video"].shape[1] // batch[0]["num_clips"]
    channels, _, height, width = batch[0]["video"].shape
    video = torch.zeros(len(batch), channels, int(counts.max()) * clip_frames, height, width)
    for b, item in enumerate(batch):
        video[b, :, : item["video"].shape[1]] = item["video"]
    return {
        "video": video,
        "text": [item["text"] for item in batch],
        "file_name": [item["file_name"] for item in batch],
        "num_clips": counts,
        "clip_mask": torch.arange(int(counts.max()))[None] < counts[:, None],
    }


def read_metadata(path: Path) -> list[tuple[str, str, list[str] | None]]:
    """(file_name, text, storyboard or None) rows of metadata.jsonl or metadata.csv; ValueError for a malformed file."""
    with open(path, newline="", encoding="utf-8") as f:
        if path.suffix == ".csv":
            reader = csv.DictReader(f)
            if not {"file_name", "text"} <= set(reader.fieldnames or ()):
                raise ValueError(f"{path} must start with a header row naming the columns file_name and text.")
            records = [(reader.line_num, row) for row in reader]
        else:
            records = [(number, json_or_none(line)) for number, line in enumerate(f, 1) if line.strip()]
    rows = []
    for number, record in records:
        if not (isinstance(record, dict) and all(isinstance(record.get(key), str) for key in ("file_name", "text"))):
            raise ValueError(f"Line {number} of {path} does not give a file_name and a text.")
        storyboard = record.get("storyboard")
        if storyboard is not None and not is_prompt_list(storyboard):  # JSON gives lists, never tuples
            raise ValueError(f"Line {number} of {path} has a storyboard that is not a list of prompts.")
        rows.append((record["file_name"], record["text"], storyboard))
    return rows


def json_or_none(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def is_integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def describe(error: Exception) -> str:
    """An exception in one line (ffmpeg's errors carry its whole log)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def probe(path: Path) -> tuple[float, int]:
    """(fps, frame count) of a video from its metadata, without decoding frames."""
    reader = imageio.get_reader(path)
    try:
        meta = reader.get_meta_data()
        if path.suffix.lower() == ".gif":
            fps, frames = 1000.0 / (meta.get("duration") or 100), reader.get_length()  # browsers show 0 ms as 100 ms
        else:
            fps = meta["fps"]
            frames = round(meta["duration"] * fps)
    finally:
        reader.close()
    if not (math.isfinite(fps) and fps > 0 and frames > 0):
        raise ValueError(f"the metadata gives {frames} frames at {fps} fps")
    return float(fps), int(frames)


def count_frames(path: Path) -> int:
    """The number of frames a video really holds, by decoding them all."""
    reader = imageio.get_reader(path)
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def resample_indices(frames: int, source_fps: float, fps: float) -> np.ndarray:
    """Source frame indices of the frames at t = k / fps, k = 0, 1, ...: the nearest source frame to each t."""
    k = np.arange(int(frames * fps / source_fps) + 2)
    indices = np.floor(k * (source_fps / fps) + 0.5).astype(np.int64)
    return indices[indices < frames]


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float in [-1, 1]."""
    return frames.float() / 127.5 - 1.0


def read_frames_uint8(path: Path, indices: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Decode the frames at source `indices` (ascending), each resized and cropped as soon as it is
    read -> uint8 (3, len(indices), height, width). IndexError if the video ends early."""
    reader = imageio.get_reader(path)
    frames = {}
    try:
        for index in sorted(set(indices.tolist())):  # ascending: imageio steps forward or seeks
            frames[index] = resize_crop(np.asarray(reader.get_data(index)), height, width)
    finally:
        reader.close()
    return torch.stack([frames[index] for index in indices.tolist()], dim=1)


def read_whole_uint8(video: Video, fps: float, height: int, width: int) -> tuple[np.ndarray, torch.Tensor]:
    """Every frame of `video` at `fps` -> (source indices, uint8 frames (3, n, height, width)). A cut file
    (fewer frames than its header says) is counted once by decoding (`video.decoded_frames`) and read
    as far as it goes."""
    if video.decoded_frames is None:
        indices = resample_indices(video.frames, video.fps, fps)
        try:
            return indices, read_frames_uint8(video.path, indices, height, width)
        except IndexError:
            video.decoded_frames = count_frames(video.path)
    indices = resample_indices(video.decoded_frames, video.fps, fps)
    return indices, read_frames_uint8(video.path, indices, height, width)


def resize_crop(frame: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 frame (h, w, 3 or 4, or h, w) -> uint8 (3, height, width): the shorter side scaled to
    cover the target (bilinear, antialiased, rounded back to uint8), then the centre cut out."""
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    image = torch.from_numpy(np.ascontiguousarray(frame[..., :3])).permute(2, 0, 1)[None].float()
    h, w = image.shape[-2:]
    scale = max(height / h, width / w)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    if size != (h, w):
        image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return image[0, :, top : top + height, left : left + width].round().clamp(0, 255).to(torch.uint8)
