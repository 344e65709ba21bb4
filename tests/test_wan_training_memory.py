"""benchmarks/wan_training_memory.py: at toy sizes (--tiny) it measures every stage of the Wan-base recipe (the training rows
at two sizes, for the estimate's slope), and skips the training rows whose lower bound exceeds --memory-limit-gib."""

import math
import subprocess
import sys

import pytest

from t2v.benchmark_utils import ROOT

SCRIPT = ROOT / "benchmarks" / "wan_training_memory.py"
STAGES = ["convert: python -m t2v.pipelines.wan_base", "latents: training/cache_latents.py",
          "load and export the converted folder (no training step)", "To2V tokens_only, gradient checkpointing",
          "To2V tokens_only, no gradient checkpointing", "To2V LoRA (rank 16)", "To2V full", "codec: training/fit_codec.py",
          "planner: training/train_planner.py"]
TRAINING = [name for name in STAGES if name.startswith(("To2V", "planner"))]


def run_tiny(*options: str) -> tuple[str, dict, dict]:
    """The output of a --tiny run, its measured table and its estimate, each {stage: cells}."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny", *options], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"command: python benchmarks/wan_training_memory.py --tiny{''.join(' ' + o for o in options)}" in out
    measured, estimate = out.split("### ESTIMATE (arithmetic, not measured)")

    def table(text: str) -> dict:
        lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
        return {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}

    return out, table(measured), table(estimate)


@pytest.mark.slow  # seventeen fresh processes, about 2.5 minutes on two cores
def test_the_tiny_run_measures_every_stage_of_the_recipe():
    out, rows, estimate = run_tiny()
    assert list(rows) == STAGES
    for name, cells in rows.items():
        peak, seconds = float(cells[1]), float(cells[2])
        assert math.isfinite(peak) and 0.1 < peak < 8 and seconds > 0, cells
    trained = {name: int(rows[name][3].replace(",", "")) for name in TRAINING}
    checkpoint = {name: float(rows[name][4]) for name in TRAINING}
    assert all(count > 0 for count in trained.values()) and all(size > 0 for size in checkpoint.values())
    only, without, lora, full = TRAINING[:4]
    # the same parameters train with and without gradient checkpointing; full trains the DiT too, LoRA only adapters
    assert trained[only] == trained[without] and math.isclose(checkpoint[only], checkpoint[without], rel_tol=0.01)
    assert trained[lora] < trained[only] < trained[full] and checkpoint[lora] < checkpoint[only] < checkpoint[full]
    for name in TRAINING:  # float32 weights and two Adam moments per trained parameter, at least
        assert checkpoint[name] * 2**20 >= 12 * trained[name], rows[name]
        assert rows[name][5] == "yes (bfloat16)", rows[name]
    assert ("with T2VPipeline.from_pretrained: yes; the LoRA adapter on the converted model with pipe.load_lora_weights: yes." in out)
    # the second size: the latent cache and the To2V rows at 4x the tokens, the planner at half its clips
    second = {name: float(rows[name][7]) for name in ["latents: training/cache_latents.py", *TRAINING]}
    assert all(peak > 0.1 for peak in second.values()) and rows[STAGES[0]][7] == rows[STAGES[2]][7] == "-"
    for name in TRAINING:  # more tokens, no less memory, but for the allocator's noise (0.01-0.02 GiB at these toy sizes)
        fewer, more = (float(rows[name][1]), second[name]) if name.startswith("To2V") else (second[name], float(rows[name][1]))
        assert more >= fewer - 0.05, rows[name]
    assert list(estimate) == TRAINING
    for cells in estimate.values():
        frozen, weights, slope, activations, total = (float(cells[i]) for i in (1, 2, 4, 5, 6))
        assert all(math.isfinite(x) and x >= 0 for x in (frozen, weights, slope, activations, total)) and total > 0, cells
        assert math.isclose(total, frozen + weights + activations, abs_tol=0.02) and cells[7] in ("yes", "no"), cells
    assert [cells[3] for cells in estimate.values()][:4] == ["12, 48 -> 32,760"] * 4


@pytest.mark.slow  # seven fresh processes, about 45 s on two cores
def test_training_rows_over_the_memory_limit_are_skipped():
    out, rows, estimate = run_tiny("--memory-limit-gib", "0.01")
    assert list(rows) == STAGES
    for name in STAGES:
        if name in TRAINING:
            assert rows[name][1].startswith("skipped: needs at least ") and float(rows[name][1].split()[-2]) > 0.01, rows[name]
            assert rows[name][2] == rows[name][4] == rows[name][7] == "-" and int(rows[name][3].replace(",", "")) > 0, rows[name]
        else:
            assert float(rows[name][1]) > 0.1, rows[name]
    assert float(rows["latents: training/cache_latents.py"][7]) > 0.1
    assert "Loading the exports: no training row ran." in out
    assert list(estimate) == TRAINING and all(cells[6] == "-" for cells in estimate.values())
