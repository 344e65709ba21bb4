"""benchmarks/gpu_suite.py: its CPU dry run prints every section's table, and without a GPU it refuses in one line."""

import os
import subprocess
import sys

import pytest

from t2v.benchmark_utils import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_suite.py"
HEADERS = [
    "| tokens | density | dense SDPA (s) | block-sparse (s) | speed-up | rel. L2 error vs gather kernel |",
    "| tokens | first call | 3 more calls, same blocks |",
    "| attention | density used | forward (s) | speed-up | output rel. L2 error vs dense |",
    "| video | frames | wall time (s) | to first frame (s) | wall s per video second | peak GPU memory (GiB) |",
]


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


@pytest.mark.slow
def test_the_dry_run_prints_every_sections_table():
    result = run("--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    for header in HEADERS:
        assert header in result.stdout, f"missing {header!r}"
    assert result.stdout.count("command: python benchmarks/gpu_suite.py --dry-run") == 3  # one header per section
    # FlexAttention (Dynamo with the eager backend here) compiled once per shape, never again for other blocks
    assert "| 1000 | 1 | 0 | 0 | no |" in result.stdout and "| 1800 | 1 | 0 | 0 | no |" in result.stdout


@pytest.mark.slow
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2():
    result = run("--sections", "kernel", CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "Traceback" not in result.stderr
