"""What every benchmark in this folder shares: the header it prints first and a timer."""

import datetime
import platform
import sys
import time

import torch


def describe_run() -> None:
    """Print the device, torch version, date and the exact command, as BENCHMARKS.md quotes them."""
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name()}"
    else:
        device = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; date: {datetime.date.today()}")
    print(f"command: python benchmarks/{' '.join(sys.argv[0].split('/')[-1:] + sys.argv[1:])}")


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
