"""Each component on its own: shapes, save/load through safetensors, and the maths it implements."""

import pytest
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import AutoTokenizer, UMT5EncoderModel

from t2v import TokenCodec, VideoTokenizer
from t2v.models import build_text_encoder, build_word_tokenizer, expand_frame_timesteps, grid_to_tokens, tokens_to_grid
from t2v.schedulers import PerFrameFlowMatch
from t2v.shapes.world import vocabulary


def test_video_tokenizer_shapes_any_resolution_and_save_load(tmp_path):
    torch.manual_seed(0)
    tok = VideoTokenizer(in_channels=8, grid=(2, 2, 3), hidden_dim=32, token_dim=16, num_layers=2, num_heads=4, pos_dim_per_axis=8)
    assert tok.num_tokens == 12
    for frames, h, w in [(5, 8, 8), (13, 4, 10)]:
        out = tok(torch.randn(2, 8, frames, h, w))
        assert out.shape == (2, 12, 16)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = VideoTokenizer.from_pretrained(tmp_path)
    x = torch.randn(1, 8, 5, 8, 8)
    torch.testing.assert_close(loaded(x), tok(x))


def test_video_tokenizer_reads_its_clip():
    torch.manual_seed(0)
    tok = VideoTokenizer(in_channels=4, grid=(1, 2, 2), hidden_dim=32, token_dim=8, num_layers=1, num_heads=2, pos_dim_per_axis=4)
    a, b = torch.randn(1, 4, 3, 8, 8), torch.randn(1, 4, 3, 8, 8)
    assert not torch.allclose(tok(a), tok(b))


def test_start_tokens_are_added_saved_and_read_by_a_videos_first_frame(tmp_path):
    torch.manual_seed(0)
    tok = VideoTokenizer(in_channels=4, grid=(1, 1, 2), hidden_dim=16, token_dim=8, num_layers=1, num_heads=2, pos_dim_per_axis=4)
    tokens, frame_clip = torch.randn(2, 3, 2, 8), torch.tensor([[0, 0, 1], [1, 2, 2]])
    first = torch.tensor([[True, False, False], [False, False, False]])
    same, clips = tok.with_start_tokens(tokens, frame_clip, first)  # none yet: unchanged
    assert same is tokens and clips is frame_clip
    tok.add_start_tokens()
    assert tok.config.has_start_tokens and tok.start_tokens.shape == (2, 8)
    extended, clips = tok.with_start_tokens(tokens, frame_clip, first)
    assert extended.shape == (2, 4, 2, 8) and clips.tolist() == [[0, 1, 2], [2, 3, 3]]
    torch.testing.assert_close(extended[:, 0], tok.start_tokens.expand(2, 2, 8))
    torch.testing.assert_close(extended[:, 1:], tokens)
    tok.save_pretrained(tmp_path)
    loaded = VideoTokenizer.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.start_tokens, tok.start_tokens)
    x = torch.randn(1, 4, 3, 8, 8)
    torch.testing.assert_close(loaded(x), tok(x))


def test_video_tokenizer_rejects_wrong_channels():
    tok = VideoTokenizer(in_channels=8, grid=(1, 1, 1), hidden_dim=16, token_dim=8, num_layers=1, num_heads=2, pos_dim_per_axis=4)
    with pytest.raises(ValueError, match="expects latents shaped"):
        tok(torch.randn(1, 4, 5, 8, 8))


def test_token_codec_fit_roundtrip_and_save_load(tmp_path):
    torch.manual_seed(0)
    # tokens that live in a 3-dimensional subspace of a 10-dimensional space
    basis = torch.randn(3, 10)
    tokens = torch.randn(500, 3) * torch.tensor([5.0, 2.0, 0.5]) @ basis + torch.randn(10)
    codec = TokenCodec(token_dim=10, codec_dim=3).fit(tokens)
    assert codec.config.fitted
    codes = codec.encode(tokens)
    assert codes.shape == (500, 3)
    torch.testing.assert_close(codes.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(codes.std(0), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(codec.decode(codes), tokens, atol=1e-3, rtol=1e-3)  # 3 components hold all of it
    codec.save_pretrained(tmp_path)
    loaded = TokenCodec.from_pretrained(tmp_path)
    assert loaded.config.fitted
    torch.testing.assert_close(loaded.encode(tokens), codes)


def test_token_codec_rejects_bad_sizes():
    with pytest.raises(ValueError, match="codec_dim"):
        TokenCodec(token_dim=4, codec_dim=8)
    with pytest.raises(ValueError, match="channels"):
        TokenCodec(token_dim=4, codec_dim=2).fit(torch.randn(10, 5))


def test_planner_grid_layout_roundtrip():
    grid = (2, 3, 4)
    tokens = torch.randn(2, 5, 24, 6)
    x = tokens_to_grid(tokens, grid)
    assert x.shape == (2, 6, 10, 3, 4)
    # the first clip's first token sits at the grid's origin, the second clip starts at frame t
    torch.testing.assert_close(x[:, :, 0, 0, 0], tokens[:, 0, 0])
    torch.testing.assert_close(x[:, :, 2, 0, 0], tokens[:, 1, 0])
    torch.testing.assert_close(grid_to_tokens(x, grid), tokens)
    with pytest.raises(ValueError):
        tokens_to_grid(torch.randn(1, 2, 23, 6), grid)


def test_planner_any_number_of_clips(pipe):
    grid, codec_dim = tuple(pipe.video_tokenizer.config.grid), pipe.token_codec.config.codec_dim
    text = torch.randn(1, pipe.config.text_context_length, pipe.planner.config.text_dim)
    for clips in (1, 3, 8):
        x = torch.randn(1, codec_dim, clips * grid[0], grid[1], grid[2])
        out = pipe.planner(x, torch.tensor([500.0]), text, return_dict=False)[0]
        assert out.shape == x.shape


def test_expand_frame_timesteps():
    t = torch.tensor([[900.0, 500.0, 100.0]])
    out = expand_frame_timesteps(t, (1, 8, 3, 8, 12), (1, 2, 2))
    assert out.shape == (1, 3 * 4 * 6)
    assert out[0, :24].eq(900).all() and out[0, 24:48].eq(500).all() and out[0, 48:].eq(100).all()
    with pytest.raises(ValueError, match="one timestep per latent frame"):
        expand_frame_timesteps(torch.ones(1, 2), (1, 8, 3, 8, 12), (1, 2, 2))


def test_denoiser_takes_a_timestep_per_frame(pipe):
    """Frames at different noise levels in one call: changing frame 2's level changes the output."""
    torch.manual_seed(0)
    tr = pipe.transformer
    latents = torch.randn(1, tr.config.in_channels, 5, 8, 8)
    text = torch.randn(1, pipe.config.text_context_length, tr.config.text_dim)
    tokens = torch.randn(1, 8, tr.config.image_dim)

    def run(frame_t):
        ts = expand_frame_timesteps(torch.tensor([frame_t]), latents.shape, tr.config.patch_size)
        return tr(latents, ts, text, encoder_hidden_states_image=tokens, return_dict=False)[0]

    a, b = run([900.0, 700.0, 500.0, 300.0, 100.0]), run([900.0, 700.0, 0.0, 300.0, 100.0])
    assert a.shape == latents.shape
    assert not torch.allclose(a, b)
    # the same timestep everywhere equals diffusers' scalar-timestep path
    uniform = run([400.0] * 5)
    scalar = tr(latents, torch.tensor([400.0]), text, encoder_hidden_states_image=tokens, return_dict=False)[0]
    torch.testing.assert_close(uniform, scalar, atol=1e-5, rtol=1e-5)


def test_denoiser_reads_the_tokens(pipe):
    tr = pipe.transformer
    latents = torch.randn(1, tr.config.in_channels, 5, 8, 8)
    text = torch.randn(1, pipe.config.text_context_length, tr.config.text_dim)
    t = torch.tensor([500.0])
    a = tr(latents, t, text, encoder_hidden_states_image=torch.randn(1, 8, tr.config.image_dim), return_dict=False)[0]
    b = tr(latents, t, text, encoder_hidden_states_image=torch.randn(1, 8, tr.config.image_dim), return_dict=False)[0]
    assert not torch.allclose(a, b)


def test_per_frame_step_equals_scheduler_step():
    torch.manual_seed(0)
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sampler = PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler.from_config(sched.config), 6)
    sched.set_timesteps(6)
    x = torch.randn(1, 4, 3, 2, 2)
    y = x.clone()
    for i, t in enumerate(sched.timesteps):
        v = torch.randn_like(x)
        x = sched.step(v, t, x, return_dict=False)[0]
        index = torch.full((3,), i)
        assert torch.equal(sampler.timesteps_at(index), t.expand(3))
        y = sampler.step(v, y, index)
    torch.testing.assert_close(x, y, atol=0, rtol=0)


def test_per_frame_step_moves_each_frame_by_its_own_sigma():
    sampler = PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler(), 4)
    x, v = torch.zeros(1, 1, 3, 1, 1), torch.ones(1, 1, 3, 1, 1)
    index = torch.tensor([0, 2, 3])
    out = sampler.step(v, x, index).flatten()
    expected = sampler.sigmas[index + 1] - sampler.sigmas[index]
    torch.testing.assert_close(out, expected)
    assert sampler.sigmas[-1] == 0  # the last step lands on clean latents
    with pytest.raises(ValueError, match="Step indices"):
        sampler.step(v, x, torch.tensor([0, 1, 4]))


def test_word_tokenizer_normalises_like_training_and_saves(tmp_path):
    tok = build_word_tokenizer(vocabulary())
    ids = tok("a red circle bounces left and right").input_ids
    assert tok("  A Red   circle bounces LEFT and right. ").input_ids == ids
    assert tok.convert_ids_to_tokens(ids)[-1] == "</s>"
    assert tok.unk_token_id in tok("a purple circle").input_ids
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("a red circle").input_ids == tok("a red circle").input_ids


def test_text_encoder_save_load(tmp_path):
    torch.manual_seed(0)
    enc = build_text_encoder(vocab_size=40, d_model=32).eval()
    ids = torch.tensor([[3, 5, 7, 1]])
    enc.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = UMT5EncoderModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(ids).last_hidden_state, enc(ids).last_hidden_state)
    assert enc(ids).last_hidden_state.shape == (1, 4, 32)


def test_vae_compresses_4x_in_time_and_by_its_factor_in_space(pipe):
    vae = pipe.vae
    video = torch.rand(1, 3, 17, 64, 64) * 2 - 1
    latents = vae.encode(video).latent_dist.mode()
    side = 64 // vae.config.scale_factor_spatial
    assert latents.shape == (1, vae.config.z_dim, 5, side, side)
    assert vae.decode(latents).sample.shape == video.shape


def test_components_are_the_expected_classes(pipe):
    assert isinstance(pipe.vae, AutoencoderKLWan)
    assert isinstance(pipe.transformer, WanTransformer3DModel) and isinstance(pipe.planner, WanTransformer3DModel)
    assert tuple(pipe.planner.config.patch_size) == (1, 1, 1)
    assert pipe.transformer.config.image_dim == pipe.video_tokenizer.config.token_dim


def test_the_vae_runs_its_3d_convolutions_with_onednn_on_a_cpu_with_the_same_result():
    """A video decoded a latent frame at a time gives batch-1 convolutions that PyTorch would run with its slow kernel:
    the patched VAE runs them with oneDNN in inference (the result within float32 rounding) and as before with gradients."""
    import copy

    from t2v.models.vae import StreamingDecoder, use_onednn_convolutions
    from t2v.shapes.model import build_vae

    torch.manual_seed(0)
    vae = build_vae(spatial_compression=4).eval()
    native = copy.deepcopy(vae)
    z = torch.randn(1, 8, 3, 4, 4)
    with torch.profiler.profile() as profile:
        fast = StreamingDecoder(vae).decode(z)
    kernels = {event.key for event in profile.key_averages()}
    assert "aten::mkldnn_convolution" in kernels and "aten::slow_conv3d_forward" not in kernels
    with torch.no_grad():
        slow = native.decode(z).sample  # diffusers' own decoding, stock kernels (its latents' statistics are 0 and 1)
    assert fast.shape == slow.shape == (1, 3, 9, 16, 16)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)

    use_onednn_convolutions(vae)  # idempotent; with gradients the stock kernel runs, and gradients flow
    video = torch.randn(1, 3, 5, 16, 16, requires_grad=True)
    vae.encode(video).latent_dist.mode().sum().backward()
    assert video.grad is not None and video.grad.abs().sum() > 0
