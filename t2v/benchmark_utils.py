"""What the scripts in benchmarks/ and research/ share: the header each prints first (device, date, command) and timers."""

import datetime
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]  # the repository, where benchmarks/ and research/ are


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
