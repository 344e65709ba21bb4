"""What the scripts in benchmarks/ and research/ share: the header each prints first (device, date, command), timers,
and a Wan folder with random weights to measure on."""

import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]  # the repository, where benchmarks/ and research/ are
# random_wan_folder's arguments for Wan2.1-T2V-1.3B's DiT and for UMT5-XXL, Wan's text encoder
WAN21_13B = dict(layers=30, dim=1536, heads=12, ffn=8960, freq_dim=256)
UMT5_XXL = dict(text_layers=24, text_width=4096, text_heads=64, text_ffn=10240)


def describe_run() -> None:
    """Print the device, torch version, date and the exact command, as BENCHMARKS.md quotes them."""
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name()}"
    else:
        device = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; date: {datetime.date.today()}")
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    print(f"command: python {' '.join([str(shown), *sys.argv[1:]])}")


def timed(fn, repeats: int) -> float:
    """The best wall time of `repeats` calls of `fn` after one warm-up call, waiting for the GPU each time."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def timed_interleaved(fns: dict, rounds: int, steps: int) -> dict:
    """The best seconds per call of every function in `fns`, after one warm-up call each: `steps` calls
    of each in turn, `rounds` times, so that a noisy neighbour slows every function alike (CPU)."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return best


def random_wan_folder(
    path: str | os.PathLike,
    *,
    layers: int,
    dim: int,
    heads: int,
    ffn: int,
    text_layers: int,
    text_width: int,
    text_heads: int | None = None,
    text_ffn: int | None = None,
    freq_dim: int = 256,
    vae: dict | None = None,
    words: tuple[str, ...] | list[str] = ("a", "video"),
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> Path:
    """Save a text-to-video Wan folder in diffusers' format with random weights (seed 0), as `WanPipeline` saves it.

    - DiT: a `WanTransformer3DModel` of `layers` blocks of width `dim` (`heads` heads), feed-forward `ffn`, patch
      (1, 2, 2), 16 latent channels, reading text of `text_width` channels (Wan2.1-T2V-1.3B's: `WAN21_13B`).
    - Text encoder: `build_text_encoder`'s UMT5 encoder, `text_layers` blocks of width `text_width` with `text_heads`
      heads (default one per 64 channels) and feed-forward `text_ffn` (default 4 x `text_width`), over a word
      tokenizer of `words` (UMT5-XXL, Wan's: `UMT5_XXL`, with a vocabulary of 256,384).
    - VAE: `AutoencoderKLWan(**vae)`, Wan2.1's own by default.
    - Scheduler: the one Wan ships, UniPC with flow prediction and shift 3.0.

    Every component is made on `device` (fast on a GPU) and saved in `dtype`. Returns the folder.
    """
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5EncoderModel

    from t2v.models import build_text_encoder, build_word_tokenizer

    tokenizer = build_word_tokenizer(list(words))
    with torch.device("meta"):  # build_text_encoder's config, without weights
        config = build_text_encoder(len(tokenizer), d_model=text_width, num_layers=text_layers,
                                    num_heads=text_heads or max(1, text_width // 64)).config
    config.d_ff = text_ffn or config.d_ff
    torch.manual_seed(0)
    with torch.device(device):
        wan = WanPipeline(
            tokenizer=tokenizer,
            text_encoder=UMT5EncoderModel(config),
            transformer=WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=dim // heads,
                                              in_channels=16, out_channels=16, text_dim=text_width, freq_dim=freq_dim, ffn_dim=ffn,
                                              num_layers=layers),
            vae=AutoencoderKLWan(**(vae or {})),
            scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
        )
    wan.to(dtype).save_pretrained(path)
    del wan
    if device == "cuda":
        torch.cuda.empty_cache()  # leave the GPU to what loads the folder next
    return Path(path)
