"""FIFO diagonal denoising: the queue's invariants, equality with ordinary sampling, per-frame tokens, streaming."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from t2v.fifo import FIFOSampler, FIFOSchedule, denoise_window
from t2v.models.denoiser import TEXT_CONTEXT_LENGTH, FrameTokenAttnProcessor
from t2v.schedulers import PerFrameFlowMatch
from t2v.shapes.model import build_default_pipeline
from t2v.video_io import VideoWriter, read_video, to_uint8

PROMPT = "a blue square moves in a circle, then it turns yellow"
CASES = [  # (latent frames L, window f, steps S, lookahead)
    (30, 5, 25, False),
    (30, 5, 25, True),
    (23, 4, 12, True),
    (17, 5, 7, False),  # S not a multiple of f: the front window reaches into frames that already left
    (17, 5, 3, True),  # S < f
    (5, 5, 25, False),  # one window: no FIFO iterations at all
    (3, 5, 4, True),
]


def simulate(schedule: FIFOSchedule):
    """Per frame, the levels at which it was written, and every iteration's windows."""
    levels = {a: [] for a in range(schedule.num_frames)}
    per_iteration = []
    for t in schedule.iterations:
        windows = schedule.windows(t)
        per_iteration.append((t, windows))
        written = [a for w in windows for a in range(w.write_start, w.write_end)]
        assert len(written) == len(set(written)), "two windows of one iteration write the same frame"
        for w in windows:
            assert 0 <= w.start <= w.write_start < w.write_end <= w.end <= schedule.num_frames
            assert w.end - w.start <= schedule.window
            assert w.start >= t - schedule.num_steps + 1 - (schedule.window - 1) and w.end <= t + 1  # present frames only
        for a in written:
            levels[a].append(schedule.level(t, a))
    return levels, per_iteration


@pytest.mark.parametrize("L,f,S,lookahead", CASES)
def test_every_frame_meets_every_level_once_in_order(L, f, S, lookahead):
    schedule = FIFOSchedule(L, f, S, lookahead)
    levels, _ = simulate(schedule)
    for a in range(schedule.first, L):
        assert levels[a] == list(range(S)), f"frame {a} was stepped at levels {levels[a]}"
    for a in range(schedule.first):  # the first window is sampled normally and never rewritten
        assert levels[a] == []


@pytest.mark.parametrize("f,n,lookahead,calls", [(5, 5, False, 5), (4, 3, False, 3), (4, 3, True, 6), (6, 4, True, 8), (5, 5, True, 9)])
def test_model_calls_per_output_frame(f, n, lookahead, calls):
    """n windows per iteration once the queue is full, 2n with lookahead when f is even."""
    schedule = FIFOSchedule(60, f, n * f, lookahead)
    assert schedule.calls_per_frame == calls
    _, per_iteration = simulate(schedule)
    full = [len(w) for t, w in per_iteration if t - n * f + 1 >= f and t < 60]  # no first-window frames, no tail
    assert full and all(c == calls for c in full)


def _sampler(steps):
    return PerFrameFlowMatch(FlowMatchEulerDiscreteScheduler(shift=3.0), steps)


@pytest.mark.parametrize("L,f,S,lookahead", CASES)
def test_sampler_takes_each_frame_through_the_schedule(L, f, S, lookahead):
    """With velocity = timestep / 1000 every frame must end at noise + sum_i (sigma_i+1 - sigma_i) * t_i / 1000."""
    sampler = _sampler(S)
    calls = []

    def predict(x, timesteps, frame_index):
        calls.append(frame_index.shape[0])
        return (timesteps / 1000.0)[:, None, :, None, None].expand_as(x).clone()

    noise = {a: torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(a)) for a in range(L)}
    frames = list(FIFOSampler(predict, sampler, f, lookahead)(noise.__getitem__, L))
    assert len(frames) == L and all(fr.shape == (2, 3, 1, 4, 4) for fr in frames)
    drift = float(((sampler.sigmas[1:] - sampler.sigmas[:-1]) * sampler.timesteps / 1000.0).sum())
    for a, fr in enumerate(frames):
        torch.testing.assert_close(fr[:, :, 0], noise[a] + drift, rtol=0, atol=1e-5)
    schedule = FIFOSchedule(L, f, S, lookahead)
    windows = sum(len(schedule.windows(t)) for t in schedule.iterations)
    assert sum(calls) == S + windows  # the first window's S calls, then one per window


def test_one_window_is_ordinary_sampling():
    sampler = _sampler(6)

    def predict(x, timesteps, frame_index):
        return torch.sin(x * 3 + timesteps[:, None, :, None, None] / 500) + frame_index[0][None, None, :, None, None]

    noise = torch.randn(1, 2, 4, 3, 3)
    fifo = torch.cat(list(FIFOSampler(predict, sampler, 5)(lambda a: noise[:, :, a], 4)), dim=2)
    assert torch.equal(fifo, denoise_window(predict, noise, sampler, torch.arange(4)))


def test_pipeline_one_window_is_the_same_in_every_stitching(pipe):
    kwargs = dict(num_frames=17, num_inference_steps=3, planner_steps=2)
    videos = [pipe(PROMPT, stitching=s, generator=torch.Generator().manual_seed(0), **kwargs).frames for s in ("fifo", "clips", "single")]
    assert np.array_equal(videos[0], videos[1]) and np.array_equal(videos[0], videos[2])


def test_fifo_differs_from_independent_clips_on_long_videos(pipe):
    kwargs = dict(num_frames=40, num_inference_steps=10, planner_steps=2)  # S = 10: lookahead windows differ
    a = pipe(PROMPT, generator=torch.Generator().manual_seed(0), **kwargs).frames
    b = pipe(PROMPT, stitching="clips", generator=torch.Generator().manual_seed(0), **kwargs).frames
    c = pipe(PROMPT, lookahead=True, generator=torch.Generator().manual_seed(0), **kwargs).frames
    assert a.shape == b.shape == c.shape == (1, 40, 64, 64, 3)
    assert np.array_equal(a[:, :17], c[:, :17])  # the first window is ordinary sampling either way
    assert not np.allclose(a, b) and not np.allclose(a, c)


@pytest.mark.slow
def test_a_cap_on_windows_per_call_gives_the_same_video(pipe, monkeypatch):
    """Windows split over several denoiser calls (for a GPU's memory) make the same frames as one batched call."""
    kwargs = dict(num_frames=40, num_inference_steps=10, planner_steps=2, lookahead=True)
    sizes = []
    predict = pipe._predict
    monkeypatch.setattr(pipe, "_predict", lambda call, x, *rest: sizes.append(x.shape[0]) or predict(call, x, *rest))
    whole = pipe(PROMPT, generator=torch.Generator().manual_seed(0), **kwargs).frames
    most = max(sizes)
    sizes.clear()
    capped = pipe(PROMPT, max_windows_per_call=1, generator=torch.Generator().manual_seed(0), **kwargs).frames
    assert most > 1 and max(sizes) == 1  # windows of a batch of one prompt
    np.testing.assert_allclose(capped, whole, atol=1e-5)
    with pytest.raises(ValueError, match="max_windows_per_call"):
        pipe(PROMPT, max_windows_per_call=0, **kwargs)


@pytest.mark.parametrize("text_length", [TEXT_CONTEXT_LENGTH, 32])
def test_frame_tokens_equal_shared_tokens_when_all_frames_share_a_clip(pipe, text_length):
    attn = pipe.transformer.blocks[0].attn2
    processor = FrameTokenAttnProcessor(8, text_length)
    dim = attn.to_q.in_features  # the model's width: text and tokens reach attn2 already projected to it
    hidden = torch.randn(2, 3 * 16, dim)
    text = torch.randn(2, text_length, dim)
    tokens = torch.randn(2, 8, dim)
    with torch.no_grad():
        shared = processor(attn, hidden, torch.cat([tokens, text], 1))
        per_frame = processor(attn, hidden, torch.cat([tokens.repeat(1, 3, 1), text], 1))
        torch.testing.assert_close(per_frame, shared, rtol=1e-5, atol=1e-6)
        # frame 2 alone gets other tokens: only its 16 queries change
        other = processor(attn, hidden, torch.cat([tokens, tokens, torch.randn(2, 8, dim), text], 1))
    torch.testing.assert_close(other[:, :32], shared[:, :32], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(other[:, 32:], shared[:, 32:])
    with pytest.raises(ValueError, match="8 per latent frame"):
        processor(attn, hidden, torch.cat([torch.randn(2, 20, dim), text], 1))
    if text_length != TEXT_CONTEXT_LENGTH:  # text alone (no tokens) works with a short context too
        with torch.no_grad():
            assert processor(attn, hidden, text).shape == hidden.shape


def test_each_clips_tokens_once_equal_tokens_per_frame(pipe):
    """`frame_clips`: a window straddling clips gets each clip's K tokens once (projected once) and which clip each
    frame reads; the denoiser predicts what it predicts from K tokens per frame, with guidance's doubled batch too."""
    from t2v.models.denoiser import frame_clips

    model, k = pipe.transformer, pipe.video_tokenizer.num_tokens
    dim, frames = model.config.image_dim, 5
    latents = torch.randn(4, model.config.in_channels, frames, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(4, pipe.config.text_context_length, model.config.text_dim, generator=torch.Generator().manual_seed(1))
    clip_tokens = torch.randn(2, 2, k, dim, generator=torch.Generator().manual_seed(2))  # 2 windows, 2 clips each
    clips = torch.tensor([[0, 0, 0, 1, 1], [0, 1, 1, 1, 1]])
    per_frame = clip_tokens[torch.arange(2)[:, None], clips].flatten(1, 2)  # (2, F·K)
    timestep = torch.full((4, frames * (8 // model.config.patch_size[1]) * (8 // model.config.patch_size[2])), 500)  # one per token
    with torch.no_grad():
        expected = model(latents, timestep, text, encoder_hidden_states_image=per_frame.repeat(2, 1, 1), return_dict=False)[0]
        with frame_clips(model, clips):  # two windows, the batch doubled as guidance doubles it
            got = model(latents, timestep, text, encoder_hidden_states_image=clip_tokens.flatten(1, 2).repeat(2, 1, 1), return_dict=False)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert all(block.attn2.processor.frame_clips is None for block in model.blocks)  # set for the calls inside only


def test_a_model_with_a_short_text_context_pads_prompts_to_it():
    from t2v.shapes.model import TEXT_CONTEXT

    pipe = build_default_pipeline()
    embeds, negative = pipe.encode_prompt(["a red circle stays still", "a blue square moves in a circle, then it turns yellow"])
    assert embeds.shape == negative.shape == (2, TEXT_CONTEXT, 64)
    assert (embeds[0, 6:] == 0).all() and (embeds[0, :6] != 0).any()  # 5 words and </s>, then zeros


def test_stream_equals_call_and_runs_without_autograd(pipe, fast):
    grad = []
    stream = pipe.stream(PROMPT, num_frames=30, generator=torch.Generator().manual_seed(1),
                         callback_on_step_end=lambda p, i, t, kw: grad.append(torch.is_grad_enabled()), **fast)
    chunks = list(stream)
    assert [c.shape[1] for c in chunks] == [1, 4, 4, 4, 4, 4, 4, 4, 1]  # one latent frame each, cut at 30
    assert stream.num_frames == 30 and stream.fps == 8 and stream.tokens.shape == (1, 2, 8, 32)
    full = pipe(PROMPT, num_frames=30, generator=torch.Generator().manual_seed(1), **fast).frames
    assert np.array_equal(np.concatenate(chunks, axis=1), full)
    assert grad and not any(grad)  # no autograd graph may grow with the video


def test_streamed_file_reads_back_as_the_frames(pipe, fast, tmp_path):
    stream = pipe.stream(PROMPT, num_frames=45, generator=torch.Generator().manual_seed(2), **fast)
    kept = []
    with VideoWriter(tmp_path / "v.mp4", stream.fps) as writer:
        for chunk in stream:
            writer.append(to_uint8(chunk[0]))
            kept.append(to_uint8(chunk[0]))
    frames, fps = read_video(tmp_path / "v.mp4")
    expected = np.concatenate(kept)
    assert frames.shape == expected.shape == (45, 64, 64, 3) and fps == 8
    assert np.abs(frames.astype(float) - expected).mean() < 12  # lossy H.264 of noisy random-weight frames


def _wait_for(predicate, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_ctrl_c_leaves_a_playable_video(tmp_path):
    out = tmp_path / "long.mp4"

    def partial():  # the writer's temporary file: .long.<its own id>.partial.mp4
        return next(tmp_path.glob(".long.*.partial.mp4"), None)

    # a freshly initialised model: its noisy frames reach the file at once (the packaged model's black
    # frames stay in the encoder's buffers for a long time), and Ctrl-C is what is tested here
    build_default_pipeline().save_pretrained(tmp_path / "model")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "stderr.txt", "w+")  # a file, not a pipe: the progress bars can never fill it and block
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2v.cli", "generate", PROMPT, "--seconds", "1200", "--steps", "10", "--planner-steps", "4", "--model",
         str(tmp_path / "model"), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=log, text=True, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C live even under `nohup pytest &`
    )
    try:
        assert _wait_for(lambda: partial() is not None and partial().stat().st_size > 2000, 120), "no frames were written"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # say how the child stood with signals, and what it printed
            status = f"/proc/{proc.pid}/status"
            sig = [line for line in open(status) if line.startswith("Sig")] if os.path.exists(status) else []
            log.seek(0)
            pytest.fail("still running 60 s after SIGINT; " + "".join(sig) + log.read()[-3000:])
    finally:
        if proc.poll() is None:
            proc.kill()
        log.seek(0)
        err = log.read()
        log.close()
    assert proc.returncode == 130, err
    assert "interrupted; wrote the first" in err and "Traceback" not in err
    assert out.exists() and partial() is None
    frames, fps = read_video(out)
    assert 0 < len(frames) < 9600 and frames.shape[1:] == (64, 64, 3) and fps == 8


DISTRIBUTED = """
import sys, numpy as np, torch, torch.distributed as dist
from t2v import T2VPipeline, default_model_path
dist.init_process_group("gloo")
pipe = T2VPipeline.from_pretrained(default_model_path()); pipe.set_progress_bar_config(disable=True)
frames = pipe(sys.argv[2], num_frames=48, num_inference_steps=10, planner_steps=2, lookahead=True,
              generator=torch.Generator().manual_seed(3)).frames
np.save(f"{sys.argv[1]}/rank{dist.get_rank()}.npy", frames)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_processes_make_the_same_video_as_one(pipe, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(DISTRIBUTED)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", str(script), str(tmp_path), PROMPT]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    single = pipe(PROMPT, num_frames=48, num_inference_steps=10, planner_steps=2, lookahead=True,
                  generator=torch.Generator().manual_seed(3)).frames
    rank0, rank1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    assert np.array_equal(rank0, rank1)  # every rank ends with the same video
    np.testing.assert_allclose(rank0, single, atol=1e-4)  # windows batched differently: float rounding only


PEAK = """
import resource, sys, torch
from t2v import T2VPipeline, default_model_path
pipe = T2VPipeline.from_pretrained(default_model_path()); pipe.set_progress_bar_config(disable=True)
for chunk in pipe.stream(sys.argv[2], seconds=float(sys.argv[1]), num_inference_steps=10, planner_steps=5,
                         generator=torch.Generator().manual_seed(0)):
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_length():
    # glibc returns every freed buffer to the system, so RSS follows live memory (heap reuse moves the default peak ±80 MiB)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}

    def peak(seconds):
        run = subprocess.run([sys.executable, "-c", PEAK, str(seconds), PROMPT], check=True, capture_output=True, text=True, timeout=900, env=env)
        return int(run.stdout.split()[-1])

    short, long = peak(10), peak(120)
    assert long / short <= 1.05, f"peak RSS {short} kB at 10 s but {long} kB at 120 s"
