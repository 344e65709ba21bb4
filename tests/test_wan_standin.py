"""benchmarks/wan_standin.py: at toy sizes (--tiny) it prints the four rows of its memory table and the ratio."""

import math
import subprocess
import sys

import pytest

from t2v.benchmark_utils import ROOT

SCRIPT = ROOT / "benchmarks" / "wan_standin.py"
HEADER = "| step | frames | peak RSS (GiB) | with UMT5-XXL's text encoder (GiB, arithmetic) |"


@pytest.mark.slow  # five fresh processes, about 40 s on two cores
def test_the_tiny_run_prints_four_rows_with_finite_positive_figures():
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert HEADER in out and "command: python benchmarks/wan_standin.py --tiny" in out
    table = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table[1:])}
    assert list(rows) == ["generate from the Wan folder, 2 s", "generate from the Wan folder, 4 s",
                          "convert: python -m t2v.pipelines.wan_base (dtype auto)", "generate from the converted folder, 2 s"]
    for name, cells in rows.items():
        peak, seconds = float(cells[2]), float(cells[5])
        assert math.isfinite(peak) and 0.1 < peak < 16 and math.isfinite(seconds) and seconds > 0, cells
        assert cells[4].startswith("yes / "), cells
    # 2 and 4 s at 8 fps; the conversion makes no frames
    assert [rows[name][1] for name in rows] == ["16", "32", "-", "16"]
    ratio = next(line for line in out.splitlines() if line.startswith("Generating from the Wan folder, 4 s against 2 s"))
    assert math.isfinite(float(ratio.split("peak RSS ")[1].split("x")[0]))
