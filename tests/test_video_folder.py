"""VideoFolderDataset: frames at the right times and place, captions from either metadata file,
bad videos skipped with a warning naming them, long samples and their collation, reproducible draws."""

import json
import math
import warnings

import numpy as np
import pytest
import torch

from t2v.data.video_folder import VideoFolderDataset, collate_long, resample_indices
from t2v.video_io import write_video

SIZE = dict(height=16, width=16)


def index_frames(count: int, size: int = 16) -> np.ndarray:
    """Flat frames whose colour encodes their index: red = 8 + 16·(i // 16), green = 8 + 16·(i % 16)."""
    frames = np.zeros((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        frames[i] = (8 + 16 * (i // 16), 8 + 16 * (i % 16), 128)
    return frames


def decoded_indices(video: torch.Tensor) -> list[int]:
    """Source frame indices back from an item's video (3, F, H, W) in [-1, 1]; robust to codec loss."""
    red, green = ((video[:2].mean(dim=(2, 3)) + 1) * 127.5).numpy()
    return [int(round((r - 8) / 16)) * 16 + int(round((g - 8) / 16)) for r, g in zip(red, green)]


def is_resampled_run(got: list[int], source_fps: float, fps: float) -> bool:
    """Whether `got` are consecutive output frames: the source frames nearest to t = k / fps, k = s, s+1, ..."""
    nearest = [math.floor(k * source_fps / fps + 0.5) for k in range(400)]
    return any(nearest[s : s + len(got)] == got for s in range(400 - len(got)))


def make_folder(root, videos: dict, metadata: str = "jsonl"):
    """Write videos {file_name: (frames, fps)} (frames None: not written) and their metadata file."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (frames, fps) in videos.items():
        if frames is not None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            write_video(frames, root / name, fps)
    captions = {name: f"caption of {name}" for name in videos}
    if metadata == "jsonl":
        lines = [json.dumps({"file_name": name, "text": text, "extra": 1}) for name, text in captions.items()]
        (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    else:
        rows = ["file_name,text,extra"] + [f'{name},"{text}, quoted",1' for name, text in captions.items()]
        (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Videos of 20 frames at 8 fps or more, one per format, one in a subfolder (gif delays are in 10 ms)."""
    return make_folder(tmp_path_factory.mktemp("videos"), {
        "a.mp4": (index_frames(60), 24), "sub/b.webm": (index_frames(60), 24), "c.gif": (index_frames(30), 10),
    })


SOURCE_FPS = [24, 24, 10]


def test_items_shapes_and_range(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a clean folder warns about nothing
        dataset = VideoFolderDataset(folder, fps=8, height=16, width=24, num_frames=17)
        items = [dataset[i] for i in range(len(dataset))]
    assert len(dataset) == 3
    assert [item["file_name"] for item in items] == ["a.mp4", "sub/b.webm", "c.gif"]
    assert items[1]["text"] == "caption of sub/b.webm"
    for item in items:
        assert item["video"].dtype == torch.float32
        assert item["video"].shape == (3, 17, 16, 24)
        assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0
        assert "num_clips" not in item


def test_default_is_clips_of_17_frames(folder):
    assert VideoFolderDataset(folder, fps=8, **SIZE)[0]["video"].shape == (3, 17, 16, 16)


@pytest.mark.parametrize("fps", [8, 5, 30])
def test_fps_resampling_picks_the_nearest_frame_to_each_timestamp(folder, fps):
    dataset = VideoFolderDataset(folder, fps=fps, num_frames=5, **SIZE)
    for i, source_fps in enumerate(SOURCE_FPS):
        for seed in range(3):
            got = decoded_indices(dataset.get(i, seed=seed)["video"])
            assert is_resampled_run(got, source_fps, fps), (source_fps, got)
            if (source_fps, fps) == (24, 8):  # every third frame
                assert got[0] % 3 == 0 and np.diff(got).tolist() == [3] * 4


def test_far_starts_seek_to_the_right_frames(tmp_path):
    """Starts past frame 100 make imageio seek in the stream instead of stepping through it."""
    root = make_folder(tmp_path, {"long.mp4": (index_frames(240), 24)})
    dataset = VideoFolderDataset(root, fps=8, num_frames=4, **SIZE)
    starts = set()
    for seed in range(6):
        got = decoded_indices(dataset.get(0, seed=seed)["video"])
        assert got == [got[0] + 3 * j for j in range(4)] and got[0] % 3 == 0
        starts.add(got[0])
    assert max(starts) > 100


def test_resize_then_centre_crop(tmp_path):
    # 96 wide, 64 high: red | green | blue in columns [0, 16) [16, 80) [80, 96)
    frame = np.zeros((64, 96, 3), dtype=np.uint8)
    frame[:, :16] = (220, 20, 20)
    frame[:, 16:80] = (20, 220, 20)
    frame[:, 80:] = (20, 20, 220)
    wide, tall = np.stack([frame] * 4), np.stack([frame.transpose(1, 0, 2)] * 4)
    root = make_folder(tmp_path, {"wide.mp4": (wide, 8), "tall.mp4": (tall, 8)})
    for size in (64, 32):  # 64: a pure crop of columns 16..80; 32: halved to 48x32, then columns 8..40
        dataset = VideoFolderDataset(root, fps=8, num_frames=2, height=size, width=size)
        for i in range(2):
            video = (dataset[i]["video"] + 1) * 127.5
            red, green, blue = video[:, 0].unbind(0)
            assert (green > red + 100).all() and (green > blue + 100).all(), f"a side stripe kept ({size}, {i})"
    # a rectangular target from the wide video: scaled to 48x72 (shorter side 48), columns 12..60 kept
    video = (VideoFolderDataset(root, fps=8, num_frames=2, height=48, width=48)[0]["video"] + 1) * 127.5
    assert video.shape == (3, 2, 48, 48) and (video[1] > video[0] + 100).all()
    small = VideoFolderDataset(root, fps=8, num_frames=2, height=32, width=96)[0]["video"]  # scale 1 in width
    assert small.shape == (3, 2, 32, 96) and small[0, 0, :, 2].mean() > 0.5  # red kept: nothing cropped sideways


def test_csv_metadata_and_subfolders(tmp_path):
    root = make_folder(tmp_path, {"x/one.mp4": (index_frames(20), 8), "two.gif": (index_frames(20), 8)}, metadata="csv")
    dataset = VideoFolderDataset(root, fps=8, num_frames=17, **SIZE)
    assert [dataset[i]["file_name"] for i in range(2)] == ["x/one.mp4", "two.gif"]
    assert dataset[0]["text"] == "caption of x/one.mp4, quoted"


def test_a_storyboard_in_the_metadata_reaches_the_video(tmp_path):
    root = make_folder(tmp_path, {"a.mp4": (index_frames(20), 8), "b.mp4": (index_frames(20), 8)})
    lines = [json.dumps({"file_name": "a.mp4", "text": "a, then b", "storyboard": ["a", "b"]}), json.dumps({"file_name": "b.mp4", "text": "c"})]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    dataset = VideoFolderDataset(root, fps=8, num_frames=17, **SIZE)
    assert [video.storyboard for video in dataset.videos] == [["a", "b"], None]


def test_metadata_must_be_exactly_one_file(tmp_path):
    root = make_folder(tmp_path, {"a.mp4": (index_frames(20), 8)})
    (root / "metadata.csv").write_text("file_name,text\na.mp4,hello\n")
    with pytest.raises(ValueError, match="one metadata file, metadata.jsonl or metadata.csv, but it has both"):
        VideoFolderDataset(root, fps=8, **SIZE)
    (root / "metadata.csv").unlink()
    (root / "metadata.jsonl").unlink()
    with pytest.raises(ValueError, match="but it has neither"):
        VideoFolderDataset(root, fps=8, **SIZE)


@pytest.mark.parametrize("text, message", [
    ('{"file_name": "a.mp4", "text": "ok"}\n{not json}\n', "Line 2 of"),
    ('{"file_name": "a.mp4"}\n', "Line 1 of"),
    ('{"file_name": "a.mp4", "text": "ok", "storyboard": "ok"}\n', "storyboard that is not a list"),
    ('{"file_name": "a.mp4", "text": "ok", "storyboard": []}\n', "storyboard that is not a list"),
])
def test_malformed_metadata_is_refused(tmp_path, text, message):
    (tmp_path / "metadata.jsonl").write_text(text)
    with pytest.raises(ValueError, match=message):
        VideoFolderDataset(tmp_path, fps=8, **SIZE)


def test_csv_without_the_columns_is_refused(tmp_path):
    (tmp_path / "metadata.csv").write_text("path,caption\na.mp4,hello\n")
    with pytest.raises(ValueError, match="file_name and text"):
        VideoFolderDataset(tmp_path, fps=8, **SIZE)


def test_missing_corrupt_short_and_unsupported_videos_are_skipped_at_construction(tmp_path):
    frames = index_frames(48)
    root = make_folder(tmp_path, {
        "good.mp4": (frames, 24), "gone.mp4": (None, 0), "broken.mp4": (None, 0), "broken.gif": (None, 0),
        "short.mp4": (frames[:10], 8), "short24.mp4": (frames, 24), "notes.txt": (None, 0),
    })
    (root / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "broken.gif").write_bytes(b"GIF89a" + np.random.default_rng(0).bytes(400))
    (root / "notes.txt").write_text("not a video")
    with pytest.warns(UserWarning) as record:
        dataset = VideoFolderDataset(root, fps=8, num_frames=16, **SIZE)
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    expected = [("gone.mp4", "does not exist"), ("broken.mp4", "could not be decoded"),
                ("broken.gif", "could not be decoded"), ("short.mp4", "10 frames at 8 fps"), ("notes.txt", "only .mp4")]
    for name, why in expected:
        assert any(m.startswith(f"Skipping {name}:") and why in m for m in messages), (name, messages)
    assert all("\n" not in m for m in messages)  # one line each, not ffmpeg's log
    # 48 frames at 24 fps are 16 frames at 8 fps: enough for 16, the short24 video is kept
    assert [dataset[i]["file_name"] for i in range(len(dataset))] == ["good.mp4", "short24.mp4"]
    with pytest.warns(UserWarning) as record, pytest.raises(ValueError, match="No usable videos"):
        VideoFolderDataset(root, fps=8, num_frames=17, **SIZE)
    expected = "Skipping short24.mp4: it has 16 frames at 8 fps, fewer than the 17 a sample needs."
    assert any(str(w.message) == expected for w in record)


def test_video_damaged_after_construction_is_replaced_by_the_next(tmp_path):
    frames = index_frames(24)
    root = make_folder(tmp_path, {"a.mp4": (frames, 8), "b.mp4": (frames, 8), "c.webm": (frames, 8)})
    dataset = VideoFolderDataset(root, fps=8, num_frames=8, cache_bytes=0, **SIZE)  # every access reads the file
    (root / "b.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.warns(UserWarning, match=r"Skipping b\.mp4: it could not be decoded") as record:
        item = dataset.get(1, seed=5)
    ours = [w for w in record if issubclass(w.category, UserWarning)]
    assert len(ours) == 1 and "\n" not in str(ours[0].message)
    assert item["file_name"] == "c.webm"
    assert torch.equal(item["video"], dataset.get(2, seed=5)["video"])  # the next item, same draw
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # warned once: later accesses skip it quietly
        assert [dataset[i]["file_name"] for i in range(len(dataset))] == ["a.mp4", "c.webm", "c.webm"]
    (root / "c.webm").unlink()  # the last item wraps around to the first
    with pytest.warns(UserWarning, match="Skipping c.webm"):
        assert dataset[2]["file_name"] == "a.mp4"
    (root / "a.mp4").write_bytes(b"")
    with pytest.warns(UserWarning, match="Skipping a.mp4"), pytest.raises(RuntimeError, match="None of the 3 videos"):
        dataset[0]


def test_decoded_videos_are_kept_in_memory_when_the_folder_fits(tmp_path):
    root = make_folder(tmp_path, {"a.mp4": (index_frames(48), 24), "b.webm": (index_frames(40), 8)})
    uncached = VideoFolderDataset(root, fps=8, num_frames=6, cache_bytes=0, **SIZE)
    size = sum(len(resample_indices(v.frames, v.fps, 8)) for v in uncached.videos) * 3 * 16 * 16  # the folder in uint8
    cached, over = (VideoFolderDataset(root, fps=8, num_frames=6, cache_bytes=n, **SIZE) for n in (size, size - 1))
    for epoch in range(3):
        for dataset in (cached, uncached, over):
            dataset.set_epoch(epoch)
        for i in range(2):
            assert torch.equal(cached[i]["video"], uncached[i]["video"]) and torch.equal(over[i]["video"], uncached[i]["video"])
    (root / "a.mp4").unlink()  # the cache decoded it whole on first use and does not read the file again
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert cached.get(0, seed=9)["file_name"] == "a.mp4"
    with pytest.warns(UserWarning, match=r"Skipping a\.mp4"):  # one byte too little: nothing was kept
        assert over.get(0, seed=9)["file_name"] == "b.webm"
    with pytest.raises(ValueError, match="cache_bytes must be a non-negative integer"):
        VideoFolderDataset(root, fps=8, num_frames=6, cache_bytes=-1, **SIZE)


def test_video_shorter_than_its_header_says(tmp_path):
    root = make_folder(tmp_path, {"cut.webm": (index_frames(240), 24)})
    data = (root / "cut.webm").read_bytes()
    (root / "cut.webm").write_bytes(data[: len(data) // 2])  # the header still says 240 frames
    forward, backward = (VideoFolderDataset(root, fps=8, num_frames=17, **SIZE) for _ in range(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        items = [forward.get(0, seed=s)["video"] for s in range(6)]
        assert all(torch.equal(backward.get(0, seed=s)["video"], items[s]) for s in reversed(range(6)))  # any order
    assert forward.videos[0].frames == 240 and 17 * 3 < forward.videos[0].decoded_frames < 240
    starts = set()
    for video in items:
        got = decoded_indices(video)
        assert got == [got[0] + 3 * j for j in range(17)] and got[-1] < forward.videos[0].decoded_frames
        starts.add(got[0])
    assert len(starts) > 1


def test_long_samples_of_consecutive_clips(folder):
    dataset = VideoFolderDataset(folder, fps=8, clip_frames=5, num_clips=3, **SIZE)
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["video"].shape == (3, 15, 16, 16) and item["num_clips"] == 3
        assert is_resampled_run(decoded_indices(item["video"]), SOURCE_FPS[i], 8)
    with pytest.warns(UserWarning, match="fewer than the 25"):
        with pytest.raises(ValueError, match="No usable videos"):
            VideoFolderDataset(folder, fps=8, clip_frames=5, num_clips=5, **SIZE)


def test_variable_clip_counts_and_collate(tmp_path):
    frames = index_frames(40)
    root = make_folder(tmp_path, {"two.mp4": (frames[:12], 8), "three.mp4": (frames[:17], 8),
                                  "many.mp4": (frames, 8), "tiny.mp4": (frames[:4], 8)})
    with pytest.warns(UserWarning, match="Skipping tiny.mp4: it has 4 frames at 8 fps, fewer than the 5"):
        dataset = VideoFolderDataset(root, fps=8, clip_frames=5, max_clips=4, **SIZE)
    items = [dataset[i] for i in range(3)]
    assert [item["num_clips"] for item in items] == [2, 3, 4]
    assert [item["video"].shape[1] for item in items] == [10, 15, 20]
    for item in items:
        got = decoded_indices(item["video"])
        assert got == list(range(got[0], got[0] + len(got)))
    batch = collate_long(items[:2])
    assert batch["video"].shape == (2, 3, 15, 16, 16)
    assert batch["clip_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["num_clips"].tolist() == [2, 3]
    assert batch["text"] == ["caption of two.mp4", "caption of three.mp4"]
    assert torch.equal(batch["video"][0, :, :10], items[0]["video"]) and (batch["video"][0, :, 10:] == 0).all()
    assert torch.equal(batch["video"][1], items[1]["video"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=collate_long)
    assert next(iter(loader))["clip_mask"].sum().item() == 9


def test_draws_are_a_function_of_seed_epoch_and_index(folder):
    def dataset(seed):
        return VideoFolderDataset(folder, fps=8, num_frames=4, seed=seed, **SIZE)

    def starts(data, order=range(3), **get):  # where each item starts, as a source frame index
        found = {i: decoded_indices(data.get(i, **get)["video"])[0] for i in order}
        return [found[i] for i in range(3)]

    one, two = dataset(3), dataset(3)
    assert torch.equal(one[1]["video"], two[1]["video"])
    assert starts(one) == starts(two, order=[2, 0, 1]) == starts(one)  # any order, any instance, again
    by_epoch = []
    for epoch in range(3):
        one.set_epoch(epoch)
        by_epoch.append(starts(one))
    one.set_epoch(0)
    assert starts(one) == by_epoch[0] and by_epoch[1] != by_epoch[0] and by_epoch[2] != by_epoch[1]
    assert starts(dataset(4)) != by_epoch[0]  # another seed, other starts
    # get(i, seed=s) depends on s alone, not on the dataset's seed or epoch
    assert starts(one, seed=11) == starts(dataset(4), seed=11) != starts(one, seed=12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_frames=0), "num_frames must be a positive integer"),
    (dict(num_frames=-3), "num_frames must be a positive integer"),
    (dict(num_frames=2.5), "num_frames must be a positive integer"),
    (dict(fps=0), "fps must be a positive number"),
    (dict(fps=-8), "fps must be a positive number"),
    (dict(fps=float("nan")), "fps must be a positive number"),
    (dict(fps=float("inf")), "fps must be a positive number"),
    (dict(height=0), "height must be a positive integer"),
    (dict(width=-16), "width must be a positive integer"),
    (dict(clip_frames=5), "exactly one of num_clips"),
    (dict(clip_frames=5, num_clips=2, max_clips=3), "exactly one of num_clips"),
    (dict(num_clips=2), "need clip_frames"),
    (dict(num_frames=17, clip_frames=5, num_clips=2), "not both"),
    (dict(clip_frames=5, max_clips=0), "max_clips must be a positive integer"),
])
def test_bad_arguments(folder, kwargs, message):
    args = dict(fps=8, **SIZE) | kwargs
    with pytest.raises(ValueError, match=message):
        VideoFolderDataset(folder, **args)


def test_missing_folder_and_empty_data_set(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        VideoFolderDataset(tmp_path / "nowhere", fps=8, **SIZE)
    root = make_folder(tmp_path / "empty", {"gone.mp4": (None, 0)})
    with pytest.warns(UserWarning, match="gone.mp4"), pytest.raises(ValueError, match="all 1 listed in metadata.jsonl"):
        VideoFolderDataset(root, fps=8, **SIZE)
