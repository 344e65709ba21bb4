"""Sparse reordered self-attention: exact where it must be, close where it may be, clear when misused."""

import math
import subprocess
import sys

import pytest
import torch
from diffusers import WanTransformer3DModel
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from t2v.attention import AttentionPlan, calibrate_attention, disable_sparse_attention, enable_sparse_attention
from t2v.attention.kernels import block_sparse_attention, dense_block_mask, masked_dense_attention
from t2v.attention.reorder import AXIS_ORDERS, axis_order, cluster_order, initial_centroids, kmeans, pad_order, permute, unpermute
from t2v.attention.selection import block_budget, required_mask, top_p_blocks

SMALL = {"query_tile": 64, "key_block": 16, "sink_tokens": 16, "dense_layers": 0}  # blocks that fit 512 tokens


def stock_wan(layers=2, seed=0):
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=32, ffn_dim=64, num_layers=layers,
    ).eval()


def inputs(frames=4, height=16, width=32, batch=2, timestep=500.0, seed=1):
    """Latents on a (frames, height/2, width/2) token grid: 4x8x16 = 512 tokens by default."""
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, 4, frames, height, width, generator=g)
    return latents, torch.full((batch,), timestep), torch.randn(batch, 16, 32, generator=g)


def relative(a, b):
    return float((a - b).norm() / b.norm())


@torch.no_grad()
def test_density_one_is_exactly_dense_and_disable_restores():
    model = stock_wan()
    x, t, ctx = inputs()
    dense = model(x, t, ctx).sample
    enable_sparse_attention(model, density=1.0, **SMALL)
    assert relative(model(x, t, ctx).sample, dense) <= 1e-5
    disable_sparse_attention(model)
    assert all(type(b.attn1.processor) is WanAttnProcessor for b in model.blocks)
    assert torch.equal(model(x, t, ctx).sample, dense)


@pytest.mark.parametrize("mode", ["semantic", "paro"])
@torch.no_grad()
def test_sparse_modes_on_a_stock_wan_transformer(mode):
    model = stock_wan()
    x, t, ctx = inputs()
    dense = model(x, t, ctx).sample
    cross = [b.attn2.processor for b in model.blocks]
    plan = calibrate_attention(model, lambda: model(x, t, ctx), density=0.25, query_tile=64, key_block=16, sink_tokens=16) if mode == "paro" else None
    enable_sparse_attention(model, density=0.25, mode=mode, plan=plan, **({"dense_layers": 0} if plan else SMALL))
    out = model(x, t, ctx).sample
    assert out.shape == dense.shape and torch.isfinite(out).all()
    for block, old in zip(model.blocks, cross):
        assert block.attn2.processor is old  # cross-attention is never touched
        assert block.attn1.processor.last_density == pytest.approx(0.25)  # it ran sparse, at the density asked
    assert 0 < relative(out, dense) < 0.1


@torch.no_grad()
def test_sparse_close_to_dense_and_closer_with_more_density():
    model = stock_wan()
    x, t, ctx = inputs()
    dense = model(x, t, ctx).sample
    errors = []
    for density in (0.25, 0.5, 0.75):
        enable_sparse_attention(model, density=density, **SMALL)
        errors.append(relative(model(x, t, ctx).sample, dense))
    assert errors[0] > errors[1] > errors[2] > 0


@torch.no_grad()
def test_noisy_rows_and_first_layers_stay_dense():
    model = stock_wan()
    x, _, ctx = inputs()
    t = torch.tensor([950.0, 500.0])  # row 0 is in the first share of the steps, row 1 is not
    dense = model(x, t, ctx).sample
    enable_sparse_attention(model, density=0.25, **{**SMALL, "dense_timestep": 900.0})
    out = model(x, t, ctx).sample
    torch.testing.assert_close(out[0], dense[0], rtol=1e-5, atol=1e-5)
    assert relative(out[1], dense[1]) > 1e-4
    enable_sparse_attention(model, density=0.25, **{**SMALL, "dense_layers": 2})  # all layers dense
    torch.testing.assert_close(model(x, t, ctx).sample, dense, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_the_noisiest_fifo_window_stays_dense():
    """A FIFO window holds several noise levels, one per latent frame: the window holding the noisiest frames runs
    dense even though its cleanest frame is below `dense_timestep`; a window of less noisy frames runs sparse."""
    from t2v.models.denoiser import expand_frame_timesteps

    model = stock_wan()
    x, _, ctx = inputs()
    frames = torch.tensor([[850.0, 900.0, 950.0, 1000.0], [400.0, 450.0, 500.0, 550.0]])
    t = expand_frame_timesteps(frames, x.shape, (1, 2, 2))
    dense = model(x, t, ctx).sample
    enable_sparse_attention(model, density=0.25, **{**SMALL, "dense_timestep": 900.0})
    out = model(x, t, ctx).sample
    torch.testing.assert_close(out[0], dense[0], rtol=1e-5, atol=1e-5)
    assert relative(out[1], dense[1]) > 1e-4


@torch.no_grad()
def test_sequence_not_a_multiple_of_the_tile():
    model = stock_wan()
    x, t, ctx = inputs(frames=3, height=16, width=28)  # 3x8x14 = 336 tokens, tiles of 64
    dense = model(x, t, ctx).sample
    enable_sparse_attention(model, density=0.5, **SMALL)
    out = model(x, t, ctx).sample
    assert model.blocks[0].attn1.processor.last_density is not None
    assert torch.isfinite(out).all() and relative(out, dense) < 0.1


@torch.no_grad()
def test_short_sequences_run_dense():
    model = stock_wan()
    x, t, ctx = inputs(frames=1, height=8, width=8)  # 16 tokens: nothing to gain
    dense = model(x, t, ctx).sample
    enable_sparse_attention(model, density=0.25)
    assert torch.equal(model(x, t, ctx).sample, dense)
    assert model.blocks[1].attn1.processor.last_density is None


def test_permutations_and_their_inverse_are_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 120, 3, 8, generator=g)  # (B, N, H, d), as the projections give them
    orders = [torch.rand(2, 3, 120, generator=g).argsort(-1), axis_order((2, 6, 10), "whf", sink_tokens=16).expand(3, -1)]
    labels = torch.randint(0, 7, (2, 3, 120), generator=g)
    orders.append(cluster_order(labels, 7, sink_tokens=10))
    for order in orders:
        assert torch.equal(order.sort(-1).values, torch.arange(120).expand_as(order))  # a permutation
        y = permute(x, order)
        assert torch.equal(y, x.transpose(1, 2).gather(2, order.expand(2, 3, -1).unsqueeze(-1).expand(-1, -1, -1, 8)))
        assert torch.equal(unpermute(y, order, 120), x)
        padded = pad_order(order, 128)  # padding repeats a token and is dropped on the way back
        assert torch.equal(unpermute(permute(x, padded), padded, 120), x)
    assert torch.equal(axis_order((2, 6, 10), "fhw"), torch.arange(120))
    assert torch.equal(orders[2][..., :10], torch.arange(10).expand(2, 3, -1))  # sink first
    # clusters are contiguous in the cluster order
    sorted_labels = labels.gather(-1, orders[2])[..., 10:]
    assert ((sorted_labels[..., 1:] != sorted_labels[..., :-1]).sum(-1) <= 6).all()


def test_axis_order_walks_the_named_axis_fastest():
    order = axis_order((2, 3, 4), "whf")  # frames innermost: neighbours in time are adjacent
    f, h, w = order // 12, (order // 4) % 3, order % 4
    assert torch.equal(f[:2], torch.tensor([0, 1])) and h[0] == h[1] == 0 and w[0] == w[1] == 0
    assert len(AXIS_ORDERS) == 6
    with pytest.raises(ValueError, match="permutation of 'fhw'"):
        axis_order((2, 3, 4), "fhh")


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(90) // 30  # clusters of neighbouring tokens, as in a video
    x = (centres[truth] + 0.1 * torch.randn(90, 2, generator=g)).expand(1, 2, -1, -1)
    labels, found = kmeans(x, initial_centroids(x, 3), iters=5, stride=1)
    for c in range(3):  # one label per true cluster, and three different ones
        assert labels[0, 0, truth == c].unique().numel() == 1
    assert labels[0, 0, ::30].unique().numel() == 3
    torch.testing.assert_close(found[0, 0].sort(0).values, centres.sort(0).values, atol=0.1, rtol=0)


@pytest.mark.parametrize("density", [0.2, 0.35, 0.6])
def test_selection_keeps_diagonal_and_sink_and_never_exceeds_density(density):
    g = torch.Generator().manual_seed(0)
    length, tile, block = 1000, 64, 16  # padded to 1024
    q, k = (torch.nn.functional.pad(torch.randn(2, 3, length, 16, generator=g), (0, 0, 0, 24)) for _ in range(2))
    blocks, counts = top_p_blocks(q, k, length, tile, block, density, top_p=0.9, min_density=0.1)
    key_blocks = math.ceil(length / block)
    mask = dense_block_mask(blocks, 1024 // block, counts)
    required = required_mask(1024 // tile, tile, block, length)
    assert (mask | ~required).all()  # every tile has its diagonal blocks and the sink block
    assert (mask.sum(-1) <= block_budget(key_blocks, density)).all()
    assert max(counts) <= density * key_blocks


def test_kernel_with_counts_equals_masked_dense():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 256, 8, generator=g) for _ in range(3))
    blocks = torch.rand(1, 2, 4, 16, generator=g).argsort(-1)[..., :6]
    counts = [6, 2, 4, 1]
    out = block_sparse_attention(q, k, v, blocks, 64, 16, counts=counts)
    torch.testing.assert_close(out, masked_dense_attention(q, k, v, blocks, 64, 16, counts=counts), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_plan_saved_and_loaded_gives_the_same_output(tmp_path):
    model = stock_wan()
    x, t, ctx = inputs()
    plan = calibrate_attention(model, lambda: model(x, t, ctx), density=0.25, query_tile=64, key_block=16, sink_tokens=16)
    assert plan.grid == (4, 8, 16) and len(plan.orders) == 2
    enable_sparse_attention(model, 0.25, "paro", plan=plan, dense_layers=0)
    first = model(x, t, ctx).sample
    path = plan.save(tmp_path / "attention_plan.safetensors")
    loaded = AttentionPlan.load(path)
    for a, b in zip(plan.orders + plan.mass, loaded.orders + loaded.mass):
        assert torch.equal(a, b)
    enable_sparse_attention(model, 0.25, "paro", plan=tmp_path, dense_layers=0)  # a folder: its attention_plan.safetensors
    assert torch.equal(model(x, t, ctx).sample, first)
    for block in range(2):  # the plan's blocks always hold the diagonal and the sink
        mask = dense_block_mask(loaded.kv_blocks(block, 0.25).unsqueeze(0), 32)[0]
        assert (mask | ~required_mask(8, 64, 16, 512)).all()


@torch.no_grad()
def test_paro_on_another_grid_runs_dense():
    model = stock_wan()
    x, t, ctx = inputs()
    plan = calibrate_attention(model, lambda: model(x, t, ctx), query_tile=64, key_block=16, sink_tokens=16)
    other = inputs(frames=6)
    dense = model(*other).sample
    enable_sparse_attention(model, 0.25, "paro", plan=plan, dense_layers=0)
    assert torch.equal(model(*other).sample, dense)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"density": 0.0}, "density must be a share of key blocks in \\(0, 1\\], got 0.0."),
        ({"density": 1.5}, "density must be a share of key blocks in \\(0, 1\\], got 1.5."),
        ({"mode": "sliding"}, "Unknown sparse attention mode 'sliding'; choose one of semantic, paro."),
        ({"top_k": 3}, "Unknown option 'top_k' for semantic attention"),
        ({"mode": "paro"}, "paro attention needs a calibrated plan"),
        ({"query_tile": 100, "key_block": 64}, "query_tile \\(100\\) must be a positive multiple of key_block \\(64\\)."),
    ],
)
def test_bad_options_fail_with_one_sentence(kwargs, message):
    model = stock_wan()
    with pytest.raises(ValueError, match=message) as err:
        enable_sparse_attention(model, **kwargs)
    assert "\n" not in str(err.value)
    assert all(type(b.attn1.processor) is WanAttnProcessor for b in model.blocks)  # nothing half-installed


@torch.no_grad()
def test_a_plan_for_another_model_is_refused(tmp_path):
    model, other = stock_wan(seed=0), stock_wan(seed=1)
    x, t, ctx = inputs()
    plan = calibrate_attention(model, lambda: model(x, t, ctx), query_tile=64, key_block=16, sink_tokens=16)
    plan.save(tmp_path / "plan.safetensors")
    with pytest.raises(ValueError, match="^This attention plan was calibrated for another model; run `t2v calibrate-attention` for this one.$"):
        enable_sparse_attention(other, 0.25, "paro", plan=tmp_path / "plan.safetensors")
    with pytest.raises(ValueError, match="No attention plan at"):
        enable_sparse_attention(model, 0.25, "paro", plan=tmp_path / "missing.safetensors")


@torch.no_grad()
def test_pipeline_sparse_attention_and_t2v_denoiser(pipe, fast):
    """The pipeline's own denoiser (with the per-frame token processor on attn2) takes sparse attention too."""
    make = lambda: pipe("a red circle bounces left and right", generator=torch.Generator().manual_seed(0), **fast).frames  # noqa: E731
    dense = make()
    pipe.enable_sparse_attention(1.0, "semantic")
    assert all(b.attn2.processor.__class__.__name__ == "FrameTokenAttnProcessor" for b in pipe.transformer.blocks)
    assert all(type(b.attn1.processor).__name__ == "SparseWanAttnProcessor" for b in pipe.transformer.blocks + pipe.planner.blocks)
    same = make()
    pipe.disable_sparse_attention()
    assert abs(same - dense).max() < 1e-5


@pytest.mark.slow
def test_flex_attention_kernel_equals_the_gather_kernel():
    """Compiled FlexAttention (the CUDA path) computes the same attention; on CPU it compiles in about half a minute."""
    code = """
import torch
from t2v.attention.kernels import block_sparse_attention, flex_block_sparse_attention
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(1, 2, 1024, 64, generator=g) for _ in range(3))
blocks = torch.rand(1, 2, 2, 16, generator=g).argsort(-1)[..., :5]
a = block_sparse_attention(q, k, v, blocks, 512, 64, num_keys=1000, counts=[5, 3])
b = flex_block_sparse_attention(q, k, v, blocks, 512, 64, num_keys=1000, counts=[5, 3])
torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)


@torch.no_grad()
def test_attention_backend_is_kept_for_the_dense_path():
    """The dense work goes through diffusers' dispatch with the backend the model was given, before or after."""
    model = stock_wan()
    model.set_attention_backend("native")
    enable_sparse_attention(model, density=0.25)
    assert all(b.attn1.processor._attention_backend.value == "native" for b in model.blocks)  # copied over
    model.set_attention_backend("_native_math")  # and set later, it reaches the sparse processors too
    assert all(b.attn1.processor._attention_backend.value == "_native_math" for b in model.blocks)
    x, t, ctx = inputs()
    assert torch.isfinite(model(x, t, ctx).sample).all()


def test_gradients_flow_through_sparse_attention():
    """Fine-tuning with sparse attention on: the sparse path is differentiable (no reused buffers under autograd)."""
    model = stock_wan().train()
    x, t, ctx = inputs()
    enable_sparse_attention(model, density=0.25, **SMALL)
    model(x, t, ctx).sample.square().mean().backward()
    grad = model.blocks[1].attn1.to_q.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.slow
def test_flex_attention_compiles_a_bounded_number_of_times():
    """FIFO calls the kernel with a changing number of windows and key counts: compiled FlexAttention (here on the
    CPU, as on CUDA) must reuse its kernels, not compile per shape until torch's recompile limit turns it off."""
    from torch._dynamo.utils import counters

    from t2v.attention.kernels import flex_block_sparse_attention

    before = counters["stats"]["unique_graphs"]
    torch.manual_seed(0)
    for batch, num_keys in [(1, 256), (2, 256), (3, 200), (4, 220), (2, 180), (6, 256), (5, 160), (7, 256), (8, 240)]:
        q, k, v = (torch.randn(batch, 2, 256, 32) for _ in range(3))
        blocks = torch.stack([torch.randperm(4)[:2] for _ in range(batch * 2 * 2)]).view(batch, 2, 2, 2)
        got = flex_block_sparse_attention(q, k, v, blocks, 128, 64, num_keys=num_keys)
        torch.testing.assert_close(got, masked_dense_attention(q, k, v, blocks, 128, 64, num_keys=num_keys), rtol=1e-4, atol=1e-5)
    assert counters["stats"]["unique_graphs"] - before <= 4  # with and without padding, each static then dynamic
