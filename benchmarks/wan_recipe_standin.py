"""The Wan-base recipe end to end on a Wan2.1-T2V-1.3B-shaped stand-in, on a CPU: one process, a SIGKILL, two processes.

    python benchmarks/wan_recipe_standin.py
    python benchmarks/wan_recipe_standin.py --tiny

What tests/test_wan_recipe.py shows on a tiny random Wan, at Wan2.1-1.3B's shapes: on the stand-in folder of
benchmarks/wan_standin.py (kept in runs/wan_standin/wan, built there when missing; random weights, bfloat16) and 4 Shapes
videos of 11 s, at 64x112, 16 fps and 17-frame clips (CONVERT_ARGS), every training stage for 4 optimizer steps with a
checkpoint every 2 (TRAIN_ARGS below). The planner trains with `--optimizer adafactor`: its 1.4 B trained parameters
do not fit this machine's 24 GiB with AdamW's moments (benchmarks/wan_training_memory.py); To2V takes the same option.

1. one process: `bash training/recipes/wan/run.sh WAN VIDEOS OUT`, the recipe as a user runs it (accelerate launch);
2. SIGKILL: the same command in another folder, its whole process group killed once the To2V stage has logged step 3
   (its checkpoint is step 2), then the command again: To2V resumes from step 2, and every To2V and planner loss must
   equal the first run's;
3. two processes: the recipe's To2V stage (`training/train_to2v.py --config training/recipes/wan/to2v.yaml`, what
   run.sh runs with LAUNCHER="torchrun --nproc_per_node 2") in 2 gloo processes (ACCELERATE_USE_CPU=true, one thread
   each) on the first run's converted model and latents: once straight, once killed after step 3 and resumed; the
   losses must agree. The planner is not run in two processes: DDP holds a whole replica in each, and one needs more
   than half of this machine's memory.

Each row gives its wall time and the peak RSS of its largest process (wait4's ru_maxrss, which covers the descendants
it waited for); below the table, each check with its figures.

`--tiny`: the same at toy sizes (wan_standin's tiny model, 32x32, 8 fps, 9-frame clips, 2 videos of 6 s) in a
temporary folder, for the tests.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import wan_standin as standin
from wan_training_memory import folder_bytes, held_parameters, same_dtypes, stored, trained

from t2v.benchmark_utils import ROOT, describe_run
from t2v.training.loop import checkpoint_step, checkpoints

RUN_SH = ROOT / "training" / "recipes" / "wan" / "run.sh"
FULL = dict(height=64, width=112, fps=16, clip_frames=17, videos=4, seconds=11, steps=4, every=2)
TINY = dict(height=32, width=32, fps=8, clip_frames=9, videos=2, seconds=6, steps=4, every=2)


def log(message: str) -> None:
    print(f"[wan_recipe_standin {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def losses(folder: Path) -> list[float]:
    path = folder / "metrics.jsonl"
    return [json.loads(line)["loss"] for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (torchrun starts its workers in sessions of their own, so killing
    its process group leaves them running)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def run_and_kill(command: list, env: dict, folder: Path, at: int) -> dict:
    """Run `command` in its own process group and SIGKILL it and every process below it once `folder`'s metrics.jsonl
    has `at` lines (a machine that dies): its wall seconds, the steps logged and the last complete checkpoint, the one
    a resume starts from. (The runs that finish are `wan_standin.measure`'s.)"""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env,
                               start_new_session=True)
    while process.poll() is None and len(losses(folder)) < at:
        time.sleep(0.05)
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    saved = checkpoints(folder)
    return dict(seconds=time.perf_counter() - start, peak=None, logged=len(losses(folder)),
                saved=checkpoint_step(saved[-1]) if saved else 0)


def check_child(model: str) -> None:
    """Child: load the recipe's finished model as the README loads a Wan model, in bfloat16, and print its components' dtypes."""
    import torch

    from t2v import T2VPipeline

    pipe = T2VPipeline.from_pretrained(model, dtype=torch.bfloat16)
    held = {}  # each component's dtype by the parameters it holds (diffusers keeps a few small modules in float32)
    for name, part in pipe.components.items():
        for weight in part.parameters() if isinstance(part, torch.nn.Module) else []:
            held.setdefault(name, Counter())[str(weight.dtype).replace("torch.", "")] += weight.numel()
    print(json.dumps({name: count.most_common(1)[0][0] for name, count in held.items()}))


def checkpoint_facts(stage_dir: Path, count: int) -> tuple[bool, str]:
    """Whether the stage's last checkpoint holds exactly the `count` trained parameters, and its size."""
    last = checkpoints(stage_dir)[-1]
    held = held_parameters(last)
    text = f"{last.name}: {held:,} parameters ({count:,} trained), {folder_bytes(last) / 2**20:.0f} MiB"
    return held == count, text


def slim(out: Path, keep: tuple) -> None:
    """Remove a run's model folders and checkpoints but those of the stages in `keep`; the metrics stay."""
    for folder in [*out.glob("*/model"), *out.glob("*/checkpoints"), out / "model", out / "checkpoints"]:
        if folder.exists() and folder.parent.name not in keep:
            shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="everything at toy sizes, in a temporary folder (for the tests)")
    parser.add_argument("--folder", help="where the stand-in Wan folder is kept (default runs/wan_standin/wan; --tiny: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return check_child(args.child)
    size = TINY if args.tiny else FULL
    start = time.perf_counter()
    threads = {"OMP_NUM_THREADS": "1"} if args.tiny else {}
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])  # run.sh's python and accelerate: this one's
    env = dict(os.environ, PATH=path, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", **threads,
               CONVERT_ARGS=f"--fps {size['fps']} --clip_frames {size['clip_frames']} --height {size['height']} --width {size['width']}",
               TRAIN_ARGS=f"--max_train_steps {size['steps']} --checkpointing_steps {size['every']} --gradient_accumulation_steps 1 "
                          "--skip_validation --optimizer adafactor")
    with tempfile.TemporaryDirectory() as scratch:
        wan = Path(args.folder or (Path(scratch, "wan") if args.tiny else ROOT / "runs" / "wan_standin" / "wan")).resolve()
        model = (standin.TINY if args.tiny else standin.FULL)["model"]
        if (wan / "model_index.json").exists():
            standin.check_folder(wan, model)
        else:
            log(f"building the stand-in Wan folder in {wan}")
            standin.measure([sys.executable, standin.__file__, "--child", "build", "--folder", str(wan)] + (["--tiny"] if args.tiny else []), env)
        dit, _ = standin.parameters(wan)
        with tempfile.TemporaryDirectory(dir=wan.parent) as work:
            work = Path(work)
            from t2v.shapes.folder import write_shapes_folder

            videos = work / "videos"
            write_shapes_folder(videos, num_videos=size["videos"], seconds=size["seconds"], seed=0)
            rows, checks = [], []
            one, killed = work / "one", work / "killed"

            log("1. the recipe in one process")
            rows.append(("the recipe, one process", standin.measure(["bash", RUN_SH, wan, videos, one], env)))
            record = json.loads((one / "recipe.json").read_text())
            stages = ", ".join(f"{name} {stage['seconds']} s" for name, stage in record["stages"].items())
            init = stored(one / "init" / "model")
            for stage, mode, base in (("to2v", "tokens_only", init), ("planner", "planner", stored(one / "codec" / "model"))):
                ok, text = checkpoint_facts(one / stage, trained(base, mode)[0])
                checks.append((f"{stage} checkpoints hold only what trains", ok, text))
            dtypes = same_dtypes(one / "init" / "model", one / "model")
            checks.append(("the finished model is stored in the base's dtypes", dtypes.startswith("yes"), dtypes))
            loaded = standin.measure([sys.executable, __file__, "--child", str(one / "model")], env)
            dtypes = json.loads(loaded["last"])
            checks.append(("the finished model loads with T2VPipeline.from_pretrained(..., dtype=torch.bfloat16) (most of each component's weights)",
                           dtypes.get("transformer") == dtypes.get("planner") == "bfloat16", ", ".join(f"{k} {v}" for k, v in dtypes.items())))
            slim(one, keep=("init", "latents"))  # each stage's export is a whole model folder (6.5 GB at 1.3B): spare the disk

            log("2. the recipe killed during To2V, then run again")
            rows.append(("the recipe, SIGKILL during To2V", run_and_kill(["bash", RUN_SH, wan, videos, killed], env, killed / "to2v", size["every"] + 1)))
            rows.append(("the same command again (resumes)", standin.measure(["bash", RUN_SH, wan, videos, killed], env)))
            fell = rows[-2][1]
            for stage in ("to2v", "planner"):
                a, b = losses(one / stage), losses(killed / stage)
                checks.append((f"{stage} losses after the kill equal the uninterrupted run's", a == b and len(a) == size["steps"],
                               f"{len(b)} steps; " + ", ".join(f"{x:.6f}" for x in b)))
            checks.append(("the kill fell between a checkpoint and the end of To2V", 0 < fell["saved"] < fell["logged"] < size["steps"],
                           f"{fell['logged']} steps logged, checkpoint-{fell['saved']} the last saved"))
            shutil.rmtree(killed)

            log("3. To2V in two gloo processes, straight and killed")
            two = dict(env, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")

            def to2v(out: Path) -> list:
                return [str(part) for part in [
                    sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", 2, "--master_port", 29571,
                    ROOT / "training" / "train_to2v.py", "--config", RUN_SH.parent / "to2v.yaml", "--latents_dir", one / "latents",
                    "--model", one / "init" / "model", "--output_dir", out, "--resume_from_checkpoint", "latest", *env["TRAIN_ARGS"].split()]]

            rows.append(("To2V, two processes", standin.measure(to2v(work / "two"), two)))
            states = sorted(p.name for p in checkpoints(work / "two")[-1].glob("random_states_*"))
            slim(work / "two", keep=())
            rows.append(("To2V, two processes, SIGKILL", run_and_kill(to2v(work / "two_killed"), two, work / "two_killed", size["every"] + 1)))
            rows.append(("the same command again (resumes)", standin.measure(to2v(work / "two_killed"), two)))
            fell = rows[-2][1]
            checks.append(("the two-process kill fell between a checkpoint and the end", 0 < fell["saved"] < fell["logged"] < size["steps"],
                           f"{fell['logged']} steps logged, checkpoint-{fell['saved']} the last saved"))
            a, b = losses(work / "two"), losses(work / "two_killed")
            checks.append(("two-process To2V losses after the kill equal the straight run's", a == b and len(a) == size["steps"],
                           f"{len(b)} steps; " + ", ".join(f"{x:.6f}" for x in b)))
            checks.append(("two processes trained (a random state each in the checkpoint)", len(states) == 2, ", ".join(states)))

    print("\n### The Wan-base recipe end to end on a Wan2.1-T2V-1.3B-shaped stand-in\n")
    describe_run()
    print(f"the stand-in Wan folder of benchmarks/wan_standin.py ({dit / 1e6:,.0f} M-parameter DiT, bfloat16, random weights); "
          f"{size['videos']} Shapes videos of {size['seconds']} s; CONVERT_ARGS=\"{env['CONVERT_ARGS']}\" TRAIN_ARGS=\"{env['TRAIN_ARGS']}\"; "
          f"the SIGKILL (to the command and every process below it) once To2V has logged step {size['every'] + 1}; two processes: torchrun "
          f"--nproc_per_node 2, gloo, one thread each; stage seconds of the first run: {stages}; whole run "
          f"{(time.perf_counter() - start) / 60:.1f} minutes\n")
    print("| run | wall time (s) | peak RSS of its largest process (GiB) |")
    print("| --- | --- | --- |")
    for name, r in rows:
        peak = "- (killed)" if r["peak"] is None else f"{r['peak']:.2f}"
        print(f"| {name} | {r['seconds']:.1f} | {peak} |")
    print()
    for name, ok, text in checks:
        print(f"- {name}: {'yes' if ok else 'NO'} ({text})")
    if not all(ok for _, ok, _ in checks):
        raise SystemExit("error: a check failed (above).")


if __name__ == "__main__":
    main()
