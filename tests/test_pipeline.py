"""T2VPipeline end to end on the packaged default model: outputs, determinism, save/load, bad input."""

import json
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from t2v import T2VPipeline, default_model_path
from t2v.models.denoiser import storyboard_part

PROMPT = "a red circle bounces left and right"


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def latent_shape(pipe, frames):
    """The shape of `frames` latent frames of one 64x64 video: (1, channels, frames, height, width)."""
    side = 64 // pipe.vae_scale_factor_spatial
    return (1, pipe.vae.config.z_dim, frames, side, side)


@pytest.mark.parametrize("output_type", ["np", "pt", "pil", "latent"])
def test_each_output_type(pipe, fast, output_type):
    out = pipe(PROMPT, num_frames=20, output_type=output_type, generator=seeded(), **fast)
    assert out.tokens.shape == (1, 2, 8, 32)  # 20 frames are 6 causal latent frames: two 5-frame clips of the plan
    if output_type == "np":
        assert out.frames.shape == (1, 20, 64, 64, 3) and out.frames.dtype == np.float32
        assert 0.0 <= out.frames.min() and out.frames.max() <= 1.0
    elif output_type == "pt":
        assert out.frames.shape == (1, 20, 3, 64, 64)
    elif output_type == "pil":
        assert len(out.frames) == 1 and len(out.frames[0]) == 20
        assert isinstance(out.frames[0][0], PIL.Image.Image) and out.frames[0][0].size == (64, 64)
    else:
        assert out.frames.shape == latent_shape(pipe, 6)  # 1 + ceil(19 / 4) latent frames of one causal video


def test_seconds_fps_and_size(pipe, fast):
    out = pipe(PROMPT, seconds=2.5, fps=6, height=48, width=80, generator=seeded(), **fast)
    assert out.frames.shape == (1, 15, 48, 80, 3)
    default = pipe(PROMPT, generator=seeded(), **fast)
    assert default.frames.shape == (1, 17, 64, 64, 3)  # one clip at the model's size


def test_batch_of_prompts(pipe, fast):
    out = pipe([PROMPT, "a blue square stays still"], num_frames=5, generator=seeded(), **fast)
    assert out.frames.shape == (2, 5, 64, 64, 3)
    assert not np.allclose(out.frames[0], out.frames[1])


def test_storyboard_part_is_the_part_of_the_windows_middle_frame():
    # 81 frames in two parts (0-40, 40-80); middle latent frames 2, 10, 12, 20 sit at pixel frames 6.5, 38.5, 46.5, 78.5
    windows = torch.tensor([[0, 1, 2, 3, 4], [8, 9, 10, 11, 12], [10, 11, 12, 13, 14], [18, 19, 20, 21, 22]])
    assert storyboard_part(windows, 2, 81).tolist() == [0, 0, 1, 1]
    assert storyboard_part(windows, 1, 81).tolist() == [0, 0, 0, 0]
    assert storyboard_part(windows, 3, 40).tolist() == [0, 2, 2, 2]  # frames past the end stay in the last part


def test_storyboard_windows_read_their_parts_prompt(pipe, fast, monkeypatch):
    """Early windows read the first part's prompt and late ones the second's; a one-part storyboard changes nothing."""
    parts = ["a red circle stays still", "a blue square bounces up and down"]
    embeds, _ = pipe.encode_prompt(parts, do_classifier_free_guidance=False)
    seen, forward = [], pipe.transformer.forward

    def spy(*args, **kwargs):
        text = kwargs["encoder_hidden_states"]
        seen.append([int(torch.cdist(row.flatten()[None], embeds.flatten(1)).argmin()) for row in text])
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    out = pipe(PROMPT, seconds=6, storyboard=parts, guidance_scale=1.0, generator=seeded(), **fast)
    assert out.frames.shape == (1, 48, 64, 64, 3)
    assert set(seen[0]) == {0} and set(seen[-1]) == {1}
    calls = [part for call in seen for part in call]
    assert calls.count(0) > 3 and calls.count(1) > 3
    monkeypatch.setattr(pipe.transformer, "forward", forward)
    plain = pipe(PROMPT, num_frames=24, generator=seeded(), **fast)
    same = pipe(PROMPT, num_frames=24, storyboard=[PROMPT], generator=seeded(), **fast)
    np.testing.assert_allclose(same.frames, plain.frames, atol=1e-5)


def test_storyboard_parts_are_planned_from_their_own_prompts(pipe, fast, monkeypatch):
    """6 s are 3 clips; their middle frames (6.5, 26.5, 46.5 of 48) put one clip in the first part and two in the second."""
    parts = ["a red circle stays still", "a blue square bounces up and down"]
    embeds, _ = pipe.encode_prompt(parts, do_classifier_free_guidance=False)
    calls, plan = [], pipe.plan

    def spy(text, negative, num_clips, *args):
        calls.append(([int(torch.cdist(row.flatten()[None], embeds.flatten(1)).argmin()) for row in text], num_clips))
        return plan(text, negative, num_clips, *args)

    monkeypatch.setattr(pipe, "plan", spy)
    out = pipe([PROMPT, PROMPT], seconds=6, storyboard=parts, generator=seeded(), **fast)
    assert calls == [([0, 0], 1), ([1, 1], 2)]  # both prompts of the batch, each part once
    assert out.tokens.shape == (2, 3, 8, 32) and out.frames.shape == (2, 48, 64, 64, 3)


def test_same_seed_same_video_bit_for_bit(pipe, fast):
    a = pipe(PROMPT, num_frames=9, generator=seeded(3), **fast)
    b = pipe(PROMPT, num_frames=9, generator=seeded(3), **fast)
    c = pipe(PROMPT, num_frames=9, generator=seeded(4), **fast)
    assert np.array_equal(a.frames, b.frames) and torch.equal(a.tokens, b.tokens)
    assert not np.array_equal(a.frames, c.frames)


def test_prompt_changes_the_plan(pipe, fast):
    a = pipe(PROMPT, num_frames=5, generator=seeded(), **fast)
    b = pipe("a yellow triangle moves in a circle", num_frames=5, generator=seeded(), **fast)
    assert not torch.allclose(a.tokens, b.tokens)


def test_given_latents_are_used(pipe, fast):
    latents = torch.randn(latent_shape(pipe, 9), generator=seeded(9))
    a = pipe(PROMPT, num_frames=33, latents=latents, generator=seeded(1), output_type="latent", **fast)
    b = pipe(PROMPT, num_frames=33, latents=latents.clone(), generator=seeded(1), output_type="latent", **fast)
    c = pipe(PROMPT, num_frames=33, latents=latents + 1, generator=seeded(1), output_type="latent", **fast)
    assert torch.equal(a.frames, b.frames)
    assert not torch.equal(a.frames, c.frames)
    with pytest.raises(ValueError, match="latents must have shape"):
        pipe(PROMPT, num_frames=33, latents=torch.randn(latent_shape(pipe, 5)), **fast)


def test_a_videos_first_frame_reads_the_start_tokens(fast):
    """The packaged model's start tokens change the video's first window (latent frames 0-4, denoised together
    with frame 0) and much less the frames FIFO makes after it; start tokens equal to clip 0's planned tokens
    give the video a tokenizer without start tokens makes."""
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    learned = pipe(PROMPT, num_frames=33, output_type="latent", generator=seeded(), **fast)  # 9 latent frames: FIFO
    pipe.video_tokenizer.start_tokens = None  # as a tokenizer trained without them
    without = pipe(PROMPT, num_frames=33, output_type="latent", generator=seeded(), **fast)
    change = (learned.frames - without.frames).abs().mean(dim=(0, 1, 3, 4))  # per latent frame
    assert change[:5].min() > 0.2 and change[:5].min() > 2 * change[5:].max()
    pipe.video_tokenizer.start_tokens = torch.nn.Parameter(without.tokens[0, 0].clone())
    same = pipe(PROMPT, num_frames=33, output_type="latent", generator=seeded(), **fast)
    torch.testing.assert_close(same.frames, without.frames, atol=1e-4, rtol=1e-4)


def test_callback_on_step_end_sees_every_step(pipe, fast):
    seen = []

    def callback(p, step, timestep, kwargs):
        seen.append((step, float(timestep), tuple(kwargs["latents"].shape)))
        return {"latents": kwargs["latents"]}

    pipe(PROMPT, num_frames=20, callback_on_step_end=callback, generator=seeded(), **fast)
    # 6 latent frames, 2 steps: two steps of the first 5-frame window, then FIFO iterations t = 5 and 6
    assert [s for s, _, _ in seen] == [0, 1, 2, 3]
    assert seen[0][1] > seen[1][1]  # timesteps fall within the first window
    assert [shape for _, _, shape in seen] == [latent_shape(pipe, 5)] * 2 + [latent_shape(pipe, 1)] * 2  # then the queue: frame 5


def test_save_load_gives_the_same_video(pipe, fast, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "T2VPipeline" and index["fps"] == 8 and index["clip_frames"] == 17
    assert not list((tmp_path / "model").rglob("*.bin"))  # safetensors only
    loaded = T2VPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    a = pipe(PROMPT, num_frames=9, generator=seeded(), **fast).frames
    b = loaded(PROMPT, num_frames=9, generator=seeded(), **fast).frames
    assert np.array_equal(a, b)


def test_a_freshly_built_model_says_it_is_untrained():
    from t2v.shapes.model import build_default_pipeline

    assert "random" in build_default_pipeline().config.trained_on


BAD_CALLS = [
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   \n"), "prompt is empty"),
    (dict(prompt=None), "prompt must be"),
    (dict(seconds=0), "seconds must be"),
    (dict(seconds=-1.0), "seconds must be"),
    (dict(seconds=float("nan")), "seconds must be"),
    (dict(seconds=float("inf")), "seconds must be"),
    (dict(seconds="two"), "seconds must be"),
    (dict(num_frames=0), "num_frames must be"),
    (dict(num_frames=2.5), "num_frames must be"),
    (dict(num_frames=4, seconds=1.0), "either num_frames or seconds"),
    (dict(fps=0), "fps must be"),
    (dict(fps=float("nan")), "fps must be"),
    (dict(num_inference_steps=0), "num_inference_steps must be"),
    (dict(planner_steps=-3), "planner_steps must be"),
    (dict(height=60), "height must be a positive multiple of 16"),
    (dict(width=0), "width must be a positive multiple of 16"),
    (dict(height=64.0), "height must be a positive multiple of 16"),
    (dict(guidance_scale=float("inf")), "guidance_scale must be"),
    (dict(output_type="mp4"), "output_type must be one of"),
    (dict(storyboard="a red circle stays still"), "storyboard must be a non-empty list"),
    (dict(storyboard=[]), "storyboard must be a non-empty list"),
    (dict(storyboard=["a red circle stays still", "  "]), "storyboard must be a non-empty list"),
]


@pytest.mark.parametrize("kwargs,message", BAD_CALLS)
def test_bad_input_fails_in_one_sentence(pipe, kwargs, message):
    kwargs = {"prompt": PROMPT, **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        pipe(**kwargs)
    assert "\n" not in str(info.value)


def _copy_model(tmp_path):
    return shutil.copytree(default_model_path(), tmp_path / "model")


def test_load_errors_are_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="No model folder"):
        T2VPipeline.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="no model_index.json"):
        T2VPipeline.from_pretrained(tmp_path)

    model = _copy_model(tmp_path)
    (model / "model_index.json").write_text("{ not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        T2VPipeline.from_pretrained(model)


def test_truncated_weights_fail_clearly(tmp_path):
    model = _copy_model(tmp_path)
    weights = model / "vae" / "diffusion_pytorch_model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    with pytest.raises(ValueError, match="Could not load the model") as info:
        T2VPipeline.from_pretrained(model)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key,value,message", [("ffn_dim", 128, "expected shape"), ("num_layers", 5, "does not match its weights")])
def test_config_that_does_not_match_weights_fails_clearly(tmp_path, key, value, message):
    model = _copy_model(tmp_path)
    config_file = model / "transformer" / "config.json"
    config = json.loads(config_file.read_text())
    config[key] = value
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        T2VPipeline.from_pretrained(model)


def test_missing_component_folder_fails_clearly(tmp_path):
    model = _copy_model(tmp_path)
    shutil.rmtree(model / "planner")
    with pytest.raises(ValueError, match="planner"):
        T2VPipeline.from_pretrained(model)


def test_warnings_when_a_request_is_outside_what_the_model_knows(pipe, fast, caplog):
    """Unknown words are named in one warning; a size or frame rate other than the trained one gets one; a prompt
    the model knows, at its own size, gets none. The video is made all the same."""
    with caplog.at_level("WARNING"):
        out = pipe("a dragon flies over a castle", num_frames=5, generator=seeded(), **fast)
    warned = [r.getMessage() for r in caplog.records if "does not know the words" in r.getMessage()]
    assert out.frames.shape == (1, 5, 64, 64, 3)
    assert len(warned) == 1 and all(f"'{w}'" in warned[0] for w in ("dragon", "flies", "over", "castle")) and "'a'" not in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING"):
        pipe("a red circle stays still", num_frames=5, height=128, fps=16, generator=seeded(), **fast)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("outside what it knows" in m for m in messages) == 1 and not any("does not know" in m for m in messages)
    caplog.clear()
    with caplog.at_level("WARNING"):
        pipe("a red circle stays still", num_frames=5, generator=seeded(), **fast)
    assert not [r for r in caplog.records if "does not know" in r.getMessage() or "outside what it knows" in r.getMessage()]


def test_warnings_when_a_setting_changes_nothing(pipe, caplog):
    """Lookahead with a queue no longer than half a window gives the very same video, and says so; a storyboard
    part too short for a clip of its own is planned with none, and that is said too."""
    with caplog.at_level("WARNING"):
        plain = pipe(PROMPT, num_frames=20, num_inference_steps=3, planner_steps=2, generator=seeded())
        ahead = pipe(PROMPT, num_frames=20, num_inference_steps=3, planner_steps=2, lookahead=True, generator=seeded())
    assert np.array_equal(plain.frames, ahead.frames)
    assert sum("lookahead changes nothing" in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        pipe(PROMPT, num_frames=9, num_inference_steps=2, planner_steps=2, generator=seeded(),
             storyboard=["a red circle stays still", "a blue circle stays still", "a green circle stays still"])
    assert sum("shorter than one clip" in r.getMessage() for r in caplog.records) == 1


def test_a_folder_saved_before_the_models_moved_still_loads(tmp_path):
    """Model folders whose model_index.json names t2v.tokenizers (where the video tokenizer and codec used to live)
    load, and save again under t2v.models."""
    old = shutil.copytree(default_model_path(), tmp_path / "old")
    index = (old / "model_index.json").read_text().replace("t2v.models.token_codec", "t2v.tokenizers.token_codec")
    (old / "model_index.json").write_text(index.replace("t2v.models.video_tokenizer", "t2v.tokenizers.video_tokenizer"))
    pipe = T2VPipeline.from_pretrained(old)
    pipe.save_pretrained(tmp_path / "new")
    saved = json.loads((tmp_path / "new" / "model_index.json").read_text())
    assert saved["video_tokenizer"] == ["t2v.models.video_tokenizer", "VideoTokenizer"]
    assert saved["token_codec"] == ["t2v.models.token_codec", "TokenCodec"]


def test_bfloat16_end_to_end():
    """Every component in bfloat16 (the codec's small math stays float32 inside): a video comes out, finite, in [0, 1]."""
    pipe = T2VPipeline.from_pretrained(default_model_path(), dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.dtype == pipe.planner.dtype == pipe.token_codec.mean.dtype == torch.bfloat16
    out = pipe(PROMPT, num_frames=9, num_inference_steps=2, planner_steps=2, generator=seeded())
    assert out.frames.shape == (1, 9, 64, 64, 3) and np.isfinite(out.frames).all()
    assert 0.0 <= out.frames.min() and out.frames.max() <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_offloading_gives_the_same_video(fast, offload):
    """diffusers' offloading hooks run through every component the call uses (here with the CPU as the device, which
    the hooks treat as they treat a GPU): the same video, and the small parts kept where the pipeline says."""
    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(PROMPT, num_frames=9, generator=seeded(0), **fast)
    pipe.enable_offload(offload, "cpu")
    hooked = {name for name, component in pipe.components.items()
              if isinstance(component, torch.nn.Module) and any(hasattr(m, "_hf_hook") or hasattr(m, "_diffusers_hook") for m in component.modules())}
    assert {"text_encoder", "planner", "transformer"} <= hooked and not hooked & {"vae", "token_codec", "video_tokenizer"}
    got = pipe(PROMPT, num_frames=9, generator=seeded(0), **fast)
    np.testing.assert_allclose(got.frames, expected.frames, atol=1e-4)  # float noise; one 8-bit level is 4e-3
    torch.testing.assert_close(got.tokens, expected.tokens)


def test_an_unknown_offload_is_refused(pipe):
    with pytest.raises(ValueError, match="offload must be 'model' or 'sequential'"):
        pipe.enable_offload("disk")
