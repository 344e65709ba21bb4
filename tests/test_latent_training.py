"""Training from a latent cache: the cache, FIFO windows and their noise levels, the planner's whole
videos, the VAE's training decode, and the recipe's record."""

import collections
import json

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from t2v import T2VPipeline, default_model_path
from t2v.data.video_folder import VideoFolderDataset, read_metadata
from t2v.models.vae import decode_unclamped, encode_latents
from t2v.schedulers import PerFrameFlowMatch
from t2v.shapes.folder import write_shapes_folder
from t2v.shapes.world import render_video
from t2v.training.cache import main as cache_main
from t2v.training.common import fifo_sigmas, foreground_weights
from t2v.training.latents import LatentPlans, LatentVideos, LatentWindows, cache_latents, collate_plans
from t2v.training.vae import detail_crops, detail_mask
from t2v.video_io import write_video

COMMON = ["--train_batch_size", "2", "--max_train_steps", "2", "--checkpointing_steps", "2", "--seed", "0"]


@pytest.fixture(scope="module")
def pipe():
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def cache(pipe, tmp_path_factory):
    """Three Shapes videos of 5 to 7 s (two or more clips each), cached."""
    root = tmp_path_factory.mktemp("latents")
    write_shapes_folder(root / "data", num_videos=3, seconds=5, max_seconds=7, seed=1)
    videos = VideoFolderDataset(root / "data", fps=8, height=64, width=64, num_frames=1)
    cache_latents(pipe, videos, root / "cache", show_progress=False)
    return root


def test_shapes_folder_lengths_vary_within_the_range(cache):
    lengths = [json.loads(line)["num_frames"] for line in (cache / "data" / "metadata.jsonl").read_text().splitlines()]
    assert all(40 <= n <= 56 for n in lengths) and len(set(lengths)) > 1
    with pytest.raises(ValueError, match="at least seconds"):
        write_shapes_folder(cache / "bad", num_videos=1, seconds=4, max_seconds=2)


def test_cache_holds_one_causal_latent_video_per_file(pipe, cache):
    videos = LatentVideos(cache / "cache")
    rows = read_metadata(cache / "data" / "metadata.jsonl")
    assert videos.texts == [text for _, text, _ in rows]
    assert videos.storyboards == [storyboard for _, _, storyboard in rows] and any(videos.storyboards)
    for latents, frames in zip(videos.latents, videos.num_frames):
        side = 64 // pipe.vae.config.scale_factor_spatial
        assert latents.shape == (pipe.vae.config.z_dim, 1 + (frames - 1) // 4, side, side)  # the VAE leaves out a last partial group of 4
    # causal: the first clip's latents are those of its 17 frames encoded alone
    dataset = VideoFolderDataset(cache / "data", fps=8, height=64, width=64, num_frames=17)
    first = dataset._sample(dataset.videos[0], dataset.videos[0].frames, 0.0)["video"][None]
    with torch.no_grad():
        alone = encode_latents(pipe.vae, first)[0]
    torch.testing.assert_close(videos.latents[0][:, :5], alone, atol=1e-4, rtol=1e-4)


def test_cache_encoded_in_a_batch_equals_each_video_alone(pipe, cache, tmp_path):
    videos = VideoFolderDataset(cache / "data", fps=8, height=64, width=64, num_frames=1)
    cache_latents(pipe, videos, tmp_path, batch_size=1, show_progress=False)
    alone, together = LatentVideos(tmp_path), LatentVideos(cache / "cache")  # the fixture's: all 3 in one batch
    assert len({z.shape[1] for z in together.latents}) > 1  # the batch was padded
    for a, b in zip(alone.latents, together.latents):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_cache_reads_a_cut_file_as_far_as_it_goes(pipe, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    write_video(render_video("a red circle bounces left and right", 240, seed=0), root / "cut.webm", fps=8)
    data = (root / "cut.webm").read_bytes()
    (root / "cut.webm").write_bytes(data[: len(data) // 2])  # the header still says 240 frames
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "cut.webm", "text": "a red circle"}) + "\n")
    videos = VideoFolderDataset(root, fps=8, height=64, width=64, num_frames=1)
    cache_latents(pipe, videos, tmp_path / "cache", show_progress=False)
    held = videos.videos[0].decoded_frames
    assert videos.videos[0].frames == 240 and 17 < held < 240
    cached = LatentVideos(tmp_path / "cache")
    assert cached.num_frames == [held] and cached.latents[0].shape[1] == 1 + (held - 1) // 4


def test_cache_errors_are_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="No latent cache"):
        LatentVideos(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cache_main(["--data_dir", str(tmp_path), "--model", str(tmp_path), "--output_dir", str(tmp_path), "--batch_size", "0"])
    assert exit_info.value.code == 2 and not list(tmp_path.iterdir())


class FakeVideos:
    """Latents whose value is the frame index, so windows can be checked by eye."""

    def __init__(self, lengths, storyboards=None):
        self.items = [(torch.arange(n).float().view(1, n, 1, 1).expand(2, n, 1, 1).clone(), f"video {i}") for i, n in enumerate(lengths)]
        self.storyboards = storyboards or [None] * len(lengths)
        self.num_frames = [1 + 4 * (n - 1) for n in lengths]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_windows_follow_the_clips_of_their_frames():
    windows = LatentWindows(FakeVideos([7, 12]), window=5)
    assert len(windows) == 1  # the 7-frame video holds less than two clips
    starts = set()
    for seed in range(60):
        item = windows.get(0, seed)
        start = int(item["latents"][0, 0])
        starts.add(start)
        assert item["latents"][0, :, 0, 0].tolist() == list(range(start, start + 5))
        expected = [0 if (start + j) // 5 == start // 5 else 1 for j in range(5)]
        assert item["frame_clip"].tolist() == expected
        for j in range(5):  # each frame's clip is the whole chunk [5c, 5c + 5) that holds it
            clip = item["clips"][item["frame_clip"][j], 0, :, 0, 0].long().tolist()
            assert start + j in clip and clip == list(range(clip[0], clip[0] + 5)) and clip[0] % 5 == 0
    assert starts == set(range(6))  # frames past the last whole clip (10, 11) are never used


def test_windows_of_a_video_with_a_storyboard_can_read_their_parts_prompt():
    # 21 latent frames = 81 pixel frames in two parts: frames 0-39 and 40-80; a window's middle frame decides
    storyboard = ["a red circle stays still", "a blue circle stays still"]
    assert {LatentWindows(FakeVideos([21], storyboards=[storyboard]), window=5).get(0, seed)["text"] for seed in range(20)} == {"video 0"}
    windows = LatentWindows(FakeVideos([21], storyboards=[storyboard]), window=5, part_prompts=0.5)
    texts = collections.Counter()
    for seed in range(200):
        item = windows.get(0, seed)
        middle = int(item["latents"][0, 2, 0, 0])
        texts[item["text"]] += 1
        if item["text"] != "video 0":  # the other half keep the whole caption
            assert item["text"] == storyboard[0 if 4 * middle - 1.5 < 40.5 else 1]
    assert set(texts) == {"video 0", *storyboard} and 70 < texts["video 0"] < 130


def test_a_share_of_windows_starts_at_the_videos_first_frame():
    # a 12-frame video in windows of 5: uniform offsets 0-5 start at frame 0 in about one draw of six
    uniform = LatentWindows(FakeVideos([12]), window=5)
    starting = LatentWindows(FakeVideos([12]), window=5, start_windows=0.5)
    first = [int(windows.get(0, seed)["latents"][0, 0, 0, 0]) for windows in (uniform, starting) for seed in range(300)]
    assert 25 < first[:300].count(0) < 75
    assert 140 < first[300:].count(0) < 200  # 1/2 + 1/2 * 1/6 = 0.58 of the draws
    assert set(first[300:]) == set(range(6))  # the rest still reach every offset
    item = starting.get(0, next(seed for seed in range(300) if first[300 + seed] == 0))
    assert item["frame_clip"].tolist() == [0] * 5 and item["clips"][0, 0, :, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert item["first_window"] and not any(starting.get(0, seed)["first_window"] for seed in range(300) if first[300 + seed])


def test_start_windows_train_the_start_tokens_and_other_windows_do_not(cache):
    from torch.utils.data import default_collate

    from t2v.training.to2v import To2VTraining, set_trainable

    pipe = T2VPipeline.from_pretrained(default_model_path())  # its own: the tokenizer gains a parameter
    pipe.video_tokenizer.add_start_tokens()
    set_trainable(pipe, "full", 4, train_text_encoder=False, train_tokenizer=False)  # as in refine
    assert pipe.video_tokenizer.start_tokens.requires_grad and not pipe.video_tokenizer.queries.requires_grad
    model = To2VTraining(pipe, text_dropout=0.0, token_dropout=0.0, validation=False)
    windows = LatentWindows(LatentVideos(cache / "cache"), pipe.latent_frames_per_clip, start_windows=1.0)
    for at_start in (True, False):
        batch = default_collate([windows.get(0, seed=0), windows.get(1, seed=0)])
        batch["first_window"] = torch.tensor([at_start, False])
        pipe.video_tokenizer.start_tokens.grad = None
        model(batch, torch.Generator().manual_seed(0)).backward()
        grad = pipe.video_tokenizer.start_tokens.grad
        assert (grad is not None and grad.abs().sum() > 0) if at_start else (grad is None or not grad.any())


def test_a_share_outside_zero_to_one_is_refused_in_one_line(tmp_path, capsys):
    from t2v.training import to2v

    with pytest.raises(SystemExit):
        to2v.main(["--latents_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--start_windows", "1.5"])
    assert "--start_windows must be between 0 and 1, got 1.5." in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_plans_are_whole_clips_padded_and_masked():
    plans = LatentPlans(FakeVideos([7, 12, 3]), window=5, max_clips=4)
    assert len(plans) == 2
    batch = collate_plans([plans.get(0), plans.get(1)])
    assert batch["latents"].shape == (2, 2, 10, 1, 1)
    assert batch["clip_mask"].tolist() == [[True, False], [True, True]]
    assert batch["latents"][0, 0, :, 0, 0].tolist() == [0, 1, 2, 3, 4] + [0] * 5


def inference_sigmas(scheduler, num_steps: int) -> torch.Tensor:
    """The S + 1 sigmas of an S-step schedule, as `PerFrameFlowMatch` steps through them at inference (last: 0, clean)."""
    return PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler.from_config(scheduler.config), num_steps).sigmas


def test_fifo_sigmas_are_the_inference_schedule_on_its_diagonal(pipe):
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    table = inference_sigmas(scheduler, 25)
    sigma = fifo_sigmas(scheduler, 64, 5, torch.Generator().manual_seed(0), steps=(25, 25), diagonal_share=1.0)
    for row in sigma:
        index = [int((table - s).abs().argmin()) for s in row]
        torch.testing.assert_close(row, table[index])
        noisy = [i for i in index if i < 25]
        assert all(a - b == 1 for a, b in zip(index, index[1:]) if a < 25 and b > 0)  # one step apart, earlier cleaner
        assert noisy == sorted(noisy, reverse=True)
    assert (sigma == 0).any() and (sigma == 1).any()  # clean context at the front, fresh noise at the back
    flat = fifo_sigmas(scheduler, 64, 5, torch.Generator().manual_seed(0), diagonal_share=0.0)
    assert (flat == flat[:, :1]).all() and flat.std() > 0.1
    first = torch.arange(64) % 2 == 0  # windows at a video's start: one level, as the pipeline's first window
    mixed = fifo_sigmas(scheduler, 64, 5, torch.Generator().manual_seed(0), steps=(25, 25), diagonal_share=1.0, first_window=first)
    assert (mixed[first] == mixed[first][:, :1]).all() and mixed[first].std() > 0.1
    assert (mixed[~first] == sigma[~first]).all()  # the others as without the mask


def test_training_decode_is_the_vae_decode_without_the_clamp(pipe):
    z = torch.randn(1, 8, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        raw = decode_unclamped(pipe.vae, z)
        clamped = pipe.vae.decode(z).sample
    torch.testing.assert_close(raw.clamp(-1, 1), clamped)


def test_detail_mask_marks_what_differs_from_the_background():
    video = -torch.ones(1, 3, 2, 16, 16)
    video[0, 0, 1, 4:8, 4:8] = 0.8
    mask = detail_mask(video)
    assert mask.shape == (1, 1, 2, 16, 16)
    assert mask[0, 0, 0].sum() == 0 and mask[0, 0, 1].sum() == 16 and mask[0, 0, 1, 5, 5] == 1


def test_foreground_weights_weigh_the_object_and_not_the_background():
    latents = torch.full((2, 8, 3, 16, 16), 0.3)  # a plain background (not zero: the median is its own value)
    latents[0, :, 1, 4:7, 5:9] += 2.0  # an object in frame 1 of video 0: 2·√8 = 5.7 from the background
    weights = foreground_weights(latents, 3.0)
    assert weights.shape == (2, 1, 3, 16, 16)
    assert weights[0, 0, 1].sum() == 256 + 3.0 * 12 and weights[0, 0, 1, 5, 6] == 4.0
    assert (weights[0, 0, 0] == 1).all() and (weights[1] == 1).all()


def test_foreground_weight_reaches_the_loss(cache):
    from torch.utils.data import default_collate

    from t2v.training.to2v import To2VTraining

    pipe = T2VPipeline.from_pretrained(default_model_path())
    windows = LatentWindows(LatentVideos(cache / "cache"), pipe.latent_frames_per_clip)
    batch = default_collate([windows.get(0, seed=0), windows.get(1, seed=0)])
    losses = []
    for weight, noise in ((0.0, 0.0), (0.0, 0.0), (3.0, 0.0), (0.0, 1.0)):
        model = To2VTraining(pipe, text_dropout=0.0, token_dropout=0.0, validation=False, foreground_weight=weight,
                             token_noise=noise)
        with torch.no_grad():
            losses.append(model(batch, torch.Generator().manual_seed(0)).item())
    assert losses[0] == losses[1] and losses[2] != losses[0] and losses[3] != losses[0]


def test_token_noise_lies_in_the_planners_space_at_a_level_per_sample():
    from t2v.training.to2v import planner_space_noise

    codec = T2VPipeline.from_pretrained(default_model_path()).token_codec
    tokens = torch.randn(64, 2, 8, codec.config.token_dim)
    noise = planner_space_noise(codec, tokens, 1.0, torch.Generator().manual_seed(0))
    assert noise.shape == tokens.shape
    codes = codec.encode(noise + codec.mean)  # the noise in the codec's normalised space
    torch.testing.assert_close(codec.decode(codes), noise + codec.mean, atol=1e-4, rtol=1e-4)  # nothing outside it
    level = codes.flatten(1).std(dim=1)  # one level per sample, from [0, 1]
    assert level.max() < 1.2 and level.min() < 0.2 and level.max() > 0.8
    assert not planner_space_noise(codec, tokens, 0.0, torch.Generator().manual_seed(0)).any()


def test_token_noise_without_a_fitted_codec_is_refused_in_one_line(cache, tmp_path, capsys):
    from t2v.training import to2v

    init = tmp_path / "init"
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.token_codec.register_to_config(fitted=False)
    pipe.save_pretrained(init)
    with pytest.raises(SystemExit):
        to2v.main(["--latents_dir", str(cache / "cache"), "--model", str(init), "--output_dir", str(tmp_path / "o"),
                   "--token_noise", "0.5"])
    assert "--token_noise needs a model whose token codec is fitted" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_crops_hold_the_object_and_bad_sizes_are_refused(tmp_path, capsys):
    from t2v.training import vae

    video = -torch.ones(3, 3, 9, 64, 64)
    video[0, :, :, 50:58, 2:10] = 0.5  # an object near the bottom-left corner
    video[1, :, :, 20:30, 30:40] = 0.5
    crops = detail_crops(video, 32, torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, 9, 32, 32)
    assert (crops[0] > 0).sum() == (video[0] > 0).sum() and (crops[1] > 0).sum() == (video[1] > 0).sum()
    assert (crops[2] == -1).all()  # no object: a random window of the background
    with pytest.raises(SystemExit):
        vae.main(["--model", str(default_model_path()), "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--crop", "18"])
    assert "--crop must be a multiple of the VAE's" in capsys.readouterr().err  # 18: a multiple of neither 4 nor 8


def test_stages_train_from_the_cache_and_the_recipe_records_them(cache, tmp_path):
    from t2v.training import codec, planner, recipe, to2v

    out = tmp_path / "run"
    to2v_dir = to2v.main(["--latents_dir", str(cache / "cache"), "--output_dir", str(out / "to2v"), "--train_text_encoder", *COMMON])
    codec_dir = codec.main(["--latents_dir", str(cache / "cache"), "--model", str(to2v_dir), "--output_dir", str(out / "codec")])
    planner.main(["--latents_dir", str(cache / "cache"), "--model", str(codec_dir), "--output_dir", str(out / "planner"),
                  "--max_clips", "3", *COMMON])
    (out / "to2v.seconds").write_text("18000")  # five hours, as the full profile takes
    def planner_shift():  # the stage's own scheduler, read without loading the whole model
        return FlowMatchEulerDiscreteScheduler.load_config(out / "planner" / "model", subfolder="scheduler")["shift"]

    trained_shift = planner_shift()
    recipe.main(["--out", str(out), "--command", "bash training/recipes/shapes/run.sh", "--sampling_shift", "2.5"])
    record = json.loads((out / "recipe.json").read_text())
    assert record["sampling_shift"] == 2.5 != trained_shift
    assert planner_shift() == trained_shift  # the stage's own is kept
    assert record["stages"]["to2v"]["seconds"] == 18000 and record["stages"]["planner"]["final_loss"] > 0
    assert list(record["stages"]) == ["to2v", "codec", "planner"]  # the stages this run has, in order
    assert record["commit"]
    pipe = T2VPipeline.from_pretrained(out / "model")
    assert pipe.scheduler.config.shift == 2.5
    assert "bash training/recipes/shapes/run.sh" in pipe.config.trained_on and record["commit"] in pipe.config.trained_on
    assert "5.0 hours of training" in pipe.config.trained_on  # `t2v info` prints this line
    frames = pipe("a red circle stays still", num_frames=5, num_inference_steps=2, planner_steps=2,
                  generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, 5, 64, 64, 3)


def test_recipe_without_a_stage_model_fails_in_one_line(tmp_path, capsys):
    from t2v.training import recipe

    with pytest.raises(SystemExit):
        recipe.main(["--out", str(tmp_path), "--command", "bash training/recipes/shapes/run.sh"])
    assert "no stage of" in capsys.readouterr().err and not (tmp_path / "recipe.json").exists()
    with pytest.raises(SystemExit):
        recipe.main(["--out", str(tmp_path), "--command", "bash training/recipes/shapes/run.sh", "--sampling_shift", "0"])
    assert "--sampling_shift must be positive" in capsys.readouterr().err and not (tmp_path / "recipe.json").exists()
