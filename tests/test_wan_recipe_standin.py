"""benchmarks/wan_recipe_standin.py: at toy sizes (--tiny) the Wan-base recipe runs in one process, resumes exactly after a
SIGKILL, trains To2V in two processes, and every check it prints passes."""

import subprocess
import sys

import pytest

from t2v.benchmark_utils import ROOT

SCRIPT = ROOT / "benchmarks" / "wan_recipe_standin.py"


@pytest.mark.slow  # the recipe three times and To2V in two processes three times, about 70 s on two cores
def test_the_tiny_run_passes_every_check():
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "command: python benchmarks/wan_recipe_standin.py --tiny" in out
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == ["the recipe, one process", "the recipe, SIGKILL during To2V", "the same command again (resumes)",
                    "To2V, two processes", "To2V, two processes, SIGKILL", "the same command again (resumes)"]
    checks = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(checks) == 10 and all(": yes (" in line for line in checks), checks
