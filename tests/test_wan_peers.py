"""benchmarks/wan_peers.py: at toy sizes it prints one table with t2v FIFO, SkyReels-V2 DF and WanPipeline, and without a
GPU `--device cuda` refuses in one line."""

import math
import os
import subprocess
import sys

import pytest

from t2v.benchmark_utils import ROOT

SCRIPT = ROOT / "benchmarks" / "wan_peers.py"
TOY = ["--layers", "1", "--dim", "32", "--heads", "1", "--height", "32", "--width", "32", "--clip-frames", "9", "--seconds", "2",
       "--steps", "2", "--repeats", "1"]
HEADER = "| video | method | frames | wall time (s) | wall s per video second | DiT calls | latent frames through the DiT |"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


@pytest.mark.slow  # five fresh processes, about 45 s on two cores
def test_the_toy_run_prints_every_method_with_finite_positive_figures():
    result = run(*TOY)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert HEADER in out and "command: python benchmarks/wan_peers.py --layers 1" in out
    assert "42 of 42 DiT tensors copied from the Wan folder" in out  # SkyReels' DiT holds the Wan's weights
    table = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    rows = {(cells[0], cells[1]): cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table[1:])}
    # one window: all three; a 2-s video (17 frames, longer than a window): the two long-video methods
    assert set(rows) == {("1.1 s (one window)", "t2v FIFO"), ("1.1 s (one window)", "SkyReels-V2 DF"),
                         ("1.1 s (one window)", "WanPipeline"), ("2.1 s", "t2v FIFO"), ("2.1 s", "SkyReels-V2 DF")}
    for (video, method), cells in rows.items():
        frames, per_second, calls, dit_frames, peak = int(cells[2]), float(cells[4]), int(cells[5]), int(cells[6]), float(cells[8])
        assert frames == (9 if "window" in video else 17), (video, method)
        assert all(math.isfinite(x) and x > 0 for x in (per_second, calls, dit_frames, peak)), cells
        assert all(math.isfinite(float(x)) for x in (cells[3], cells[7], cells[9], cells[10])), cells
    # the same DiT work for one window (2 steps x cond and uncond x 3 latent frames); t2v batches cond and uncond
    assert {rows["1.1 s (one window)", m][6] for m in ("t2v FIFO", "SkyReels-V2 DF", "WanPipeline")} == {"12"}
    assert int(rows["1.1 s (one window)", "t2v FIFO"][5]) == 2 and int(rows["1.1 s (one window)", "WanPipeline"][5]) == 4


def test_without_a_gpu_cuda_mode_says_so_in_one_line_and_exits_2():
    result = run("--device", "cuda", CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "Traceback" not in result.stderr
