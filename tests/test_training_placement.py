"""Training on a real base: where each module runs and in what dtype, the size flags, what a checkpoint holds,
the dtype of the export, and a latent cache made by a Wan2.1-layout VAE. A tiny random Wan stands in for Wan2.1."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from safetensors import safe_open
from safetensors.torch import load_file

from t2v import T2VPipeline
from t2v.data.video_folder import VideoFolderDataset
from t2v.models import build_text_encoder, build_word_tokenizer
from t2v.models.vae import encode_latents
from t2v.pipelines.wan_base import main as convert
from t2v.shapes.folder import write_shapes_folder
from t2v.shapes.world import vocabulary
from t2v.training import loop, to2v
from t2v.training.args import parse_training_args, training_parser
from t2v.training.cache import main as cache_main
from t2v.training.common import use_gradient_checkpointing
from t2v.training.latents import LatentVideos
from t2v.training.placement import cast_for_training, check_placement, restore_dtypes

ROOT = Path(__file__).resolve().parents[1]
SIZE = ["--fps", "8", "--clip_frames", "17", "--height", "64", "--width", "64", "--token_grid", "2", "2", "2", "--token_dim", "32",
        "--codec_dim", "8"]
STEPS = ["--train_batch_size", "2", "--max_train_steps", "1", "--checkpointing_steps", "1", "--learning_rate", "1e-3"]


def tiny_wan() -> WanPipeline:
    """A text-to-video Wan with Wan2.1's VAE layout (16 latent channels, 8x in space by three downsamplings), scaled down."""
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(vocabulary())
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=build_text_encoder(len(tokenizer), d_model=32),
        transformer=WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                                          out_channels=16, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2),
        vae=AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1),
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0),
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A bfloat16 t2v model on the tiny Wan (as `python -m t2v.pipelines.wan_base WAN OUT --dtype bfloat16` makes it),
    a float32 one, and a Shapes folder to train them on."""
    root = tmp_path_factory.mktemp("bf16_base")
    tiny_wan().save_pretrained(root / "wan")
    convert([str(root / "wan"), str(root / "model"), *SIZE, "--dtype", "bfloat16"])
    convert([str(root / "wan"), str(root / "model32"), *SIZE])
    write_shapes_folder(root / "data", num_videos=2, seconds=5, seed=0)  # two clips each
    return root


def stored(folder: Path, component: str) -> dict[str, torch.dtype]:
    with safe_open(next((folder / component).glob("*.safetensors")), framework="pt") as f:
        return {name: f.get_slice(name).get_dtype() for name in f.keys()}


class Frozen(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.trained, self.frozen = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_check_placement_names_a_module_left_behind_or_in_the_wrong_dtype():
    model = Frozen()
    check_placement(model, torch.device("cpu"), torch.float32)
    before = cast_for_training(model, torch.bfloat16)
    assert model.trained.weight.dtype == torch.float32 and model.frozen.weight.dtype == torch.bfloat16
    check_placement(model, "cpu", torch.bfloat16)
    with pytest.raises(ValueError, match=r"keeps frozen weights in float16, but frozen.weight of its frozen is in bfloat16"):
        check_placement(model, "cpu", torch.float16)
    model.trained.to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"keeps trained weights in float32, but trained.weight"):
        check_placement(model, "cpu", torch.bfloat16)
    restore_dtypes(model, before)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    model.frozen.to("meta")  # a component accelerate never moved
    with pytest.raises(ValueError, match=r"^The to2v stage runs on cpu, but frozen.weight of its frozen is on meta\.$"):
        check_placement(model, "cpu", torch.float32, "to2v")


def test_frozen_wan_keeps_its_float32_modules():
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                        out_channels=4, text_dim=8, freq_dim=16, ffn_dim=16, num_layers=1).requires_grad_(False)
    cast_for_training(transformer, torch.bfloat16)
    dtypes = {name: param.dtype for name, param in transformer.named_parameters()}
    assert dtypes["scale_shift_table"] == dtypes["condition_embedder.time_embedder.linear_1.weight"] == torch.float32
    assert dtypes["blocks.0.attn1.to_q.weight"] == dtypes["patch_embedding.weight"] == torch.bfloat16
    check_placement(transformer, "cpu", torch.bfloat16)


def test_gradient_checkpointing_is_on_for_large_models_or_when_asked():
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                        out_channels=4, text_dim=8, freq_dim=16, ffn_dim=16, num_layers=1)
    assert not use_gradient_checkpointing(transformer, None) and not transformer.gradient_checkpointing
    assert not use_gradient_checkpointing(transformer, False, threshold=10) and not transformer.gradient_checkpointing
    assert use_gradient_checkpointing(transformer, None, threshold=10) and transformer.gradient_checkpointing
    args = parse_training_args(training_parser("x"), ["--output_dir", "o", "--no_gradient_checkpointing"])
    assert args.gradient_checkpointing is False and args.checkpoints_total_limit == 3 and not args.skip_validation


@pytest.fixture
def own_accelerator_state():
    """accelerate keeps one mixed-precision setting per process: start from none, and leave none to the next test."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.mark.slow
def test_a_bf16_base_trains_in_mixed_precision_and_exports_in_bf16(base, monkeypatch, own_accelerator_state):
    """--mixed_precision bf16 on the CPU: before the first step every component is on the device, the frozen ones
    (text encoder, VAE, planner, the DiT's base) in bfloat16 and what trains in float32; the checkpoint holds only
    what trains; the export is bfloat16 again, trained weights too."""
    seen = {}
    check = loop.check_placement

    def recording(model, device, dtype, stage):
        check(model, device, dtype, stage)
        seen.update({name: (param.device.type, param.dtype, param.requires_grad, param.numel()) for name, param in model.named_parameters()})

    monkeypatch.setattr(loop, "check_placement", recording)
    out = base / "run"
    model = to2v.main(["--data_dir", str(base / "data"), "--model", str(base / "model"), "--output_dir", str(out),
                       "--train_mode", "tokens_only", "--mixed_precision", "bf16", "--height", "32", "--width", "32", "--clip_frames", "5",
                       *STEPS])  # a small size: bfloat16 convolutions are slow on a CPU
    assert {device for device, *_ in seen.values()} == {"cpu"}
    for part in ("text_encoder", "vae"):
        assert {dtype for name, (_, dtype, *_) in seen.items() if name.startswith(part + ".")} == {torch.bfloat16}, part
    assert seen["planner.blocks.0.attn1.to_q.weight"][1] == torch.bfloat16  # its time embedder and norms stay float32
    assert {dtype for _, dtype, grad, _ in seen.values() if grad} == {torch.float32}
    assert seen["transformer.blocks.0.attn1.to_q.weight"][1:3] == (torch.bfloat16, False)
    assert seen["transformer.blocks.0.attn2.add_k_proj.weight"][1:3] == (torch.float32, True)

    trained = {name: numel for name, (_, _, grad, numel) in seen.items() if grad}
    weights = out / "checkpoints" / "checkpoint-1" / "model.safetensors"
    assert set(load_file(weights)) == set(trained)  # the image branch and the video tokenizer; no text encoder, VAE or frozen DiT
    assert {name.split(".")[0] for name in trained} == {"transformer", "video_tokenizer"}
    assert weights.stat().st_size < 4 * sum(trained.values()) + 100_000  # float32, and nothing else

    assert set(stored(model, "video_tokenizer").values()) == {"BF16"}  # trained in float32, written as the base was
    keep = WanTransformer3DModel._keep_in_fp32_modules
    for name, dtype in stored(model, "transformer").items():
        assert dtype == ("F32" if any(part in name.split(".") for part in keep) else "BF16"), name
    assert (out / "validation" / "step-1.mp4").exists()
    assert T2VPipeline.from_pretrained(model).transformer.config.image_dim == 32


def test_skip_validation_and_the_checkpoint_limit(base):
    out = base / "skip"
    to2v.main(["--data_dir", str(base / "data"), "--model", str(base / "model"), "--output_dir", str(out), "--train_mode", "tokens_only",
               "--skip_validation", "--height", "32", "--width", "32", "--clip_frames", "5", *STEPS, "--max_train_steps", "4"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3", "checkpoint-4"]  # the default 3
    assert not (out / "validation").exists()
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_training_size_is_checked_and_recorded(base):
    args = ["--data_dir", str(base / "data"), "--model", str(base / "model"), "--train_mode", "tokens_only", *STEPS]
    with pytest.raises(ValueError, match=r"^--height must be a positive multiple of 16 \(the VAE's 8x downscaling times"):
        to2v.main([*args, "--output_dir", str(base / "bad"), "--height", "40"])
    with pytest.raises(ValueError, match=r"^--clip_frames must be 1 \+ a positive multiple of 4"):
        to2v.main([*args, "--output_dir", str(base / "bad"), "--clip_frames", "16"])
    assert not (base / "bad").exists()
    model = to2v.main([*args, "--output_dir", str(base / "small"), "--height", "32", "--width", "48", "--clip_frames", "9",
                       "--skip_validation"])
    config = T2VPipeline.load_config(model)
    assert (config["height"], config["width"], config["clip_frames"]) == (32, 48, 9)


@pytest.mark.slow
@pytest.mark.parametrize("flag, message", [
    (["--validation_steps", "-1"], "--validation_steps must be 0 or more, got -1."),
    (["--checkpoints_total_limit", "-2"], "--checkpoints_total_limit must be 0 or more, got -2."),
    (["--width", "100"], "--width must be a positive multiple of 16"),
])
def test_bad_values_end_the_script_in_one_line(base, flag, message):
    result = subprocess.run([sys.executable, str(ROOT / "training" / "train_to2v.py"), "--data_dir", str(base / "data"), "--model",
                             str(base / "model"), "--output_dir", str(base / "never"), *flag], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if "Warning" not in line and not line.startswith("  ")]
    assert result.returncode in (1, 2) and len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (base / "never").exists()


def test_latent_cache_of_a_wan21_vae(base, tmp_path):
    """cache_latents.py on a t2v folder whose VAE has Wan2.1's layout, at a size of one's choice; To2V then trains at
    the cache's size and refuses another."""
    cache_main(["--data_dir", str(base / "data"), "--model", str(base / "model32"), "--output_dir", str(tmp_path / "cache"),
                "--height", "32", "--width", "48"])
    videos = LatentVideos(tmp_path / "cache")
    assert [tuple(z.shape) for z, _ in videos] == [(16, 1 + (n - 1) // 4, 4, 6) for n in videos.num_frames]
    vae = AutoencoderKLWan.from_pretrained(base / "model32", subfolder="vae")
    dataset = VideoFolderDataset(base / "data", fps=8, height=32, width=48, num_frames=17)
    first = dataset._sample(dataset.videos[0], dataset.videos[0].frames, 0.0)["video"][None]
    with torch.no_grad():
        alone = encode_latents(vae, first)[0]
    torch.testing.assert_close(videos.latents[0][:, :5], alone, atol=1e-4, rtol=1e-4)  # normalised by Wan2.1's 16 channel statistics
    cache_main(["--data_dir", str(base / "data"), "--model", str(base / "wan"), "--output_dir", str(tmp_path / "stock"), "--fps", "8",
                "--height", "32", "--width", "48"])  # the stock Wan folder the model was made from: the same VAE
    assert all(torch.equal(a, b) for a, b in zip(LatentVideos(tmp_path / "stock").latents, videos.latents))

    args = ["--latents_dir", str(tmp_path / "cache"), "--model", str(base / "model32"), "--train_mode", "tokens_only", *STEPS]
    with pytest.raises(ValueError, match=r"^The latent cache holds 48x32 videos, not 64x64"):
        to2v.main([*args, "--output_dir", str(tmp_path / "bad"), "--height", "64", "--width", "64"])
    model = to2v.main([*args, "--output_dir", str(tmp_path / "run"), "--skip_validation"])
    config = T2VPipeline.load_config(model)
    assert (config["height"], config["width"]) == (32, 48)
