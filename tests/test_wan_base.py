"""A t2v model on a Wan2.1 base: a tiny text-to-video Wan folder in diffusers format stands in for the real one."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from safetensors.torch import load_file

from t2v import T2VPipeline, default_model_path
from t2v.models import build_text_encoder, build_word_tokenizer
from t2v.pipelines.wan_base import main, pipeline_from_wan
from t2v.shapes.folder import write_shapes_folder
from t2v.shapes.model import build_vae
from t2v.shapes.world import vocabulary

SIZE = dict(fps=8, clip_frames=17, height=64, width=64, token_grid=(2, 2, 2), token_dim=32, codec_dim=8)
ARGS = ["--fps", "8", "--clip_frames", "17", "--height", "64", "--width", "64", "--token_grid", "2", "2", "2",
        "--token_dim", "32", "--codec_dim", "8"]


def tiny_wan(seed: int = 0, **transformer) -> WanPipeline:
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(vocabulary())
    config = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=8,
                  text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2)
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=build_text_encoder(len(tokenizer), d_model=32),
        transformer=WanTransformer3DModel(**{**config, **transformer}),
        vae=build_vae(),
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0),
    )


@pytest.fixture(scope="module")
def wan_dir(tmp_path_factory):
    """A text-to-video Wan saved as diffusers saves Wan2.1-T2V-1.3B-Diffusers (random weights)."""
    root = tmp_path_factory.mktemp("wan")
    tiny_wan().save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def converted(wan_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("t2v_on_wan") / "model"
    main([str(wan_dir), str(out), *ARGS])
    return out


def test_the_base_keeps_its_weights_and_renders_as_before(wan_dir, converted):
    """Text encoder and VAE unchanged; the denoiser is the base plus a token branch that adds nothing yet."""
    base = load_file(wan_dir / "transformer" / "diffusion_pytorch_model.safetensors")
    denoiser = load_file(converted / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(base[k], denoiser[k]) for k in base)
    new = sorted(set(denoiser) - set(base))
    assert new and all("add_k_proj" in k or "add_v_proj" in k or "norm_added_k" in k or "image_embedder" in k for k in new)
    assert all(not denoiser[k].any() for k in new if "add_v_proj" in k)
    for name in ("vae", "text_encoder"):
        a, b = (next((folder / name).glob("*.safetensors")) for folder in (wan_dir, converted))
        assert load_file(a).keys() == load_file(b).keys()
        assert all(torch.equal(load_file(a)[k], load_file(b)[k]) for k in load_file(a))

    pipe = T2VPipeline.from_pretrained(converted)
    stock = WanTransformer3DModel.from_pretrained(wan_dir, subfolder="transformer")
    latents = torch.randn(1, 8, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 512, 32, generator=torch.Generator().manual_seed(1))
    tokens = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(2))
    timestep = torch.tensor([500])
    with torch.no_grad():
        expected = stock(latents, timestep, text, return_dict=False)[0]
        got = pipe.transformer(latents, timestep, text, encoder_hidden_states_image=tokens, return_dict=False)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_converting_twice_gives_the_same_folder(wan_dir, converted, tmp_path):
    """The new weights (token branch, tokenizer, planner's new layers) come from a fixed seed: a recipe run twice
    starts from the same model, whatever the caller's random state."""
    torch.manual_seed(1234)
    main([str(wan_dir), str(tmp_path / "again"), *ARGS])
    files = sorted(p.relative_to(converted) for p in converted.rglob("*.safetensors"))
    assert files and files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*.safetensors"))
    for file in files:
        first, second = load_file(converted / file), load_file(tmp_path / "again" / file)
        assert all(torch.equal(first[k], second[k]) for k in first), file


def test_the_planner_starts_from_the_base(wan_dir, converted):
    """The planner has the base's shape and blocks; only its input and output layers are new."""
    base = load_file(wan_dir / "transformer" / "diffusion_pytorch_model.safetensors")
    planner = load_file(converted / "planner" / "diffusion_pytorch_model.safetensors")
    assert planner.keys() == base.keys()
    changed = {k for k in base if base[k].shape != planner[k].shape or not torch.equal(base[k], planner[k])}
    assert changed == {"patch_embedding.weight", "proj_out.weight", "proj_out.bias"}  # the rest, biases too, kept
    config = json.loads((converted / "planner" / "config.json").read_text())
    assert config["patch_size"] == [1, 1, 1] and config["in_channels"] == config["out_channels"] == 8


def test_the_model_folder_loads_generates_and_says_what_it_is(converted):
    pipe = T2VPipeline.from_pretrained(converted)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.text_context_length == 512 and pipe.config.fps == 8
    assert pipe.scheduler.config.shift == 5.0  # the base's flow_shift
    assert "Wan2.1 base" in pipe.config.trained_on and "untrained" in pipe.config.trained_on
    out = pipe("a red circle bounces left and right", num_frames=9, num_inference_steps=2, planner_steps=2,
               generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 9, 64, 64, 3) and np.isfinite(out.frames).all()


def test_the_token_stages_train_on_the_base(converted, tmp_path):
    """TokensGen's recipe on the base: tokens_only To2V (the DiT frozen, its token branch and the video tokenizer
    trained), then the codec and the planner; the result generates."""
    from t2v.training import to2v

    data = tmp_path / "data"
    write_shapes_folder(data, num_videos=2, seconds=3, seed=0)
    model = to2v.main(["--data_dir", str(data), "--model", str(converted), "--output_dir", str(tmp_path / "run"),
                       "--train_mode", "tokens_only", "--train_batch_size", "2", "--max_train_steps", "2",
                       "--checkpointing_steps", "2", "--learning_rate", "1e-2"])
    before = load_file(converted / "transformer" / "diffusion_pytorch_model.safetensors")
    after = load_file(model / "transformer" / "diffusion_pytorch_model.safetensors")
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(any(part in k for part in to2v.IMAGE_BRANCH) for k in moved)
    assert any("add_v_proj" in k for k in moved)  # the zero start is left behind
    assert not torch.equal(*(load_file(next((m / "video_tokenizer").glob("*.safetensors")))["proj_out.weight"]
                             for m in (converted, model)))

    from t2v.training import codec, planner

    fitted = codec.main(["--data_dir", str(data), "--model", str(model), "--output_dir", str(tmp_path / "codec"), "--clips_per_video", "1"])
    planned = planner.main(["--data_dir", str(data), "--model", str(fitted), "--output_dir", str(tmp_path / "planner"),
                            "--num_clips", "1", "--train_batch_size", "2", "--max_train_steps", "1", "--checkpointing_steps", "1"])
    pipe = T2VPipeline.from_pretrained(planned)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.token_codec.config.fitted
    out = pipe("a red circle bounces left and right", num_frames=5, num_inference_steps=2, planner_steps=2, output_type="latent")
    assert out.frames.shape[:3] == (1, 8, 2)


def test_conversion_keeps_stored_dtypes_and_never_loads_the_text_encoder(tmp_path, monkeypatch):
    """A bfloat16 base converts in bfloat16 with diffusers' float32 modules kept float32; with the default dtype the
    text encoder and the VAE are copied as stored, never loaded (the converter's memory is the DiT's)."""
    from diffusers import WanTransformer3DModel as Wan
    from transformers import UMT5EncoderModel

    from t2v.pipelines import wan_base

    wan = tiny_wan()
    wan.transformer = Wan.from_pretrained(_saved(wan.transformer, tmp_path / "dit"), dtype=torch.bfloat16)
    wan.text_encoder.to(torch.bfloat16)
    wan.save_pretrained(tmp_path / "wan_bf16")

    def refuse(*args, **kwargs):
        raise AssertionError("the text encoder was loaded")

    monkeypatch.setattr(UMT5EncoderModel, "from_pretrained", refuse)
    out = wan_base.convert_wan(tmp_path / "wan_bf16", tmp_path / "out", **SIZE)
    monkeypatch.undo()
    for name in ("text_encoder", "vae"):
        a, b = (next((folder / name).glob("*.safetensors")).read_bytes() for folder in (tmp_path / "wan_bf16", out))
        assert a == b
    dit = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    kept = {k for k, v in dit.items() if v.dtype == torch.float32}
    assert kept and all(any(m in k for m in Wan._keep_in_fp32_modules) for k in kept)
    assert {v.dtype for k, v in dit.items() if k not in kept} == {torch.bfloat16}
    assert {v.dtype for v in load_file(out / "planner" / "diffusion_pytorch_model.safetensors").values()} >= {torch.bfloat16}

    pipe = T2VPipeline.from_pretrained(out, dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe("a red circle", num_frames=5, num_inference_steps=2, planner_steps=2, output_type="latent").frames
    assert frames.dtype == torch.bfloat16 and torch.isfinite(frames.float()).all()


def _saved(model, folder):
    model.save_pretrained(folder)
    return folder


def test_bad_sources_fail_in_one_sentence(tmp_path, wan_dir):
    with pytest.raises(ValueError, match="no model_index.json"):
        pipeline_from_wan(tmp_path)
    i2v = tmp_path / "i2v"
    tiny_wan(image_dim=32, added_kv_proj_dim=32).save_pretrained(i2v)
    with pytest.raises(ValueError, match="image-to-video"):
        pipeline_from_wan(i2v, **SIZE)
    t2v_folder = tmp_path / "t2v_model"
    T2VPipeline.from_pretrained(default_model_path()).save_pretrained(t2v_folder)
    with pytest.raises(ValueError, match="not a diffusers Wan text-to-video folder"):
        pipeline_from_wan(t2v_folder)

    broken = tmp_path / "broken"
    shutil.copytree(wan_dir, broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(SystemExit, match="^error: ") as raised:
        main([str(broken), str(tmp_path / "out_broken"), *ARGS])
    assert "\n" not in str(raised.value) and not (tmp_path / "out_broken").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "i2v", "t2v_model"]  # no temporary folder left

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "t2v.pipelines.wan_base", str(tmp_path / "nowhere"), str(out)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and not out.exists()


# ------------------------------------------------------------------------------------------------
# A stock Wan folder used as it stands: the planner off

SMALL = dict(fps=8, clip_frames=17, height=64, width=64)


def test_a_stock_wan_folder_loads_directly_with_the_planner_off(wan_dir, tmp_path):
    pipe = T2VPipeline.from_pretrained(wan_dir, **SMALL)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.planner is None and pipe.video_tokenizer is None and pipe.token_codec is None
    assert pipe.transformer.config.image_dim is None  # the base's DiT, no token branch
    assert pipe.scheduler.config.shift == 5.0 and pipe.config.text_context_length == 512
    assert "as it stands" in pipe.config.trained_on
    # a video longer than one window: FIFO over the plain base, with a storyboard and lookahead
    out = pipe("a red circle bounces left and right", num_frames=33, num_inference_steps=6, lookahead=True,
               storyboard=["a red circle", "a blue square"], generator=torch.Generator().manual_seed(0))
    assert out.tokens is None and out.frames.shape == (1, 33, 64, 64, 3) and np.isfinite(out.frames).all()

    defaults = T2VPipeline.from_wan(wan_dir)  # Wan2.1's own video defaults
    assert (defaults.config.fps, defaults.config.clip_frames, defaults.config.height, defaults.config.width) == (16, 81, 480, 832)
    with pytest.raises(ValueError, match="takes only fps"):
        T2VPipeline.from_pretrained(wan_dir, frames_per_second=8)
    with pytest.raises(ValueError, match="in one dtype"):
        T2VPipeline.from_pretrained(wan_dir, dtype={"transformer": torch.bfloat16})

    saved = tmp_path / "plain"
    pipe.save_pretrained(saved)
    again = T2VPipeline.from_pretrained(saved)
    assert again.planner is None and again.config.fps == 8


def test_one_window_of_a_stock_wan_is_what_WanPipeline_makes(wan_dir):
    """Same weights, same flow-matching sampler, same starting noise: T2VPipeline's one window is WanPipeline's video."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = T2VPipeline.from_wan(wan_dir, **SMALL)
    pipe.set_progress_bar_config(disable=True)
    stock = WanPipeline.from_pretrained(wan_dir, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0))
    stock.set_progress_bar_config(disable=True)
    latents = torch.randn(1, 8, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    prompt = "a red circle bounces left and right"
    ours = pipe(prompt, num_frames=17, num_inference_steps=4, guidance_scale=5.0, stitching="clips", latents=latents,
                output_type="latent").frames
    theirs = stock(prompt, num_frames=17, height=64, width=64, num_inference_steps=4, guidance_scale=5.0, latents=latents,
                   output_type="latent").frames
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_a_model_needs_all_of_its_token_parts(converted):
    pipe = T2VPipeline.from_pretrained(converted)
    with pytest.raises(ValueError, match="go together"):
        T2VPipeline(**{**pipe.components, "planner": None}, **SMALL)
    with pytest.raises(ValueError, match="needs the video tokenizer"):
        T2VPipeline(**{**pipe.components, "planner": None, "video_tokenizer": None, "token_codec": None}, **SMALL)


@pytest.mark.slow
def test_the_cli_generates_and_describes_a_stock_wan_folder(wan_dir, tmp_path):
    from test_cli import run_cli

    from t2v.video_io import read_video

    result = run_cli("generate", "a red circle", "--model", str(wan_dir), "--seconds", "2", "--fps", "8", "--height", "64",
                     "--width", "64", "--steps", "2", "-o", "a.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames, fps = read_video(tmp_path / "a.mp4")
    assert frames.shape == (16, 64, 64, 3) and fps == 8
    info = run_cli("info", "--model", str(wan_dir), cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "no planner" in info.stdout and "832x480 at 16 fps" in info.stdout
