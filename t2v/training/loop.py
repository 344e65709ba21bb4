"""The training loop every t2v stage shares, on accelerate: one CPU, one GPU or several processes.

What a diffusers user expects from a training script: gradient accumulation, mixed precision, EMA
(diffusers `EMAModel`), learning-rate schedules (`diffusers.optimization`), `accelerator.save_state`
checkpoints every N steps (written under a temporary name and renamed, so a crash mid-save leaves the
previous checkpoint intact), `--resume_from_checkpoint latest|PATH`, one JSON line per optimizer
step in `OUTPUT_DIR/metrics.jsonl` (step, loss, lr, unix time), a progress bar and optional tensorboard logging.
Every module of the stage is put on the accelerator's device, what trains in float32 and what is frozen in the
mixed-precision dtype, and checked there before the first step (`placement.py`); the exported model is written in
the dtypes the base was loaded in.

Resuming is exact: every random choice is a function of (seed, step), not of a generator's history.
The data order of epoch e is a permutation seeded by (seed, e); a micro-step's noise comes from a
generator seeded by (seed, micro-step, process). A run killed after a checkpoint and resumed gives the
same loss at every later step as a run never interrupted.
"""

import json
import math
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .placement import cast_for_training, check_placement, restore_dtypes, weight_dtype

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "t2v_training_state.json"


class StepBatchSampler(Sampler):
    """Batches for micro-steps start, start+1, ...: epoch e is a permutation seeded by (seed, e).

    Each process takes its own slice of the global batch, so the data a step sees does not depend on
    how the run was interrupted. The last incomplete global batch of an epoch is dropped.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed, self.start, self.rank, self.world = size, batch_size, seed, start, rank, world
        self.steps_per_epoch = size // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"The data set has {size} items, fewer than one global batch ({batch_size} x {world} processes): "
                f"lower --train_batch_size to {max(1, size // world)} or add videos."
            )

    def indices(self, step: int) -> list[int]:
        epoch, position = divmod(step, self.steps_per_epoch)
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        first = (position * self.world + self.rank) * self.batch_size
        return order[first : first + self.batch_size].tolist()

    def __iter__(self):
        step = self.start
        while True:
            yield [(i, step) for i in self.indices(step)]
            step += 1


class SeededItems(Dataset):
    """Hands a dataset its items with a per-(step, index) seed, for datasets that draw random clips."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, step = key
        if hasattr(self.dataset, "get"):
            return self.dataset.get(index, seed=(self.seed * 1_000_003 + step) * 65_537 + index)
        return self.dataset[index]


class StageModule(torch.nn.Module):
    """The module a stage trains: it holds the trained parts and the frozen ones the stage calls (so that
    accelerate moves them all), but its `state_dict`, and so every checkpoint, holds only what trains;
    the frozen weights are the model folder's, read again when a run resumes. A part with nothing to train
    stays in eval mode (no dropout), as at inference."""

    def train(self, mode: bool = True):
        super().train(mode)
        for part in self.children():
            if not any(param.requires_grad for param in part.parameters()):
                part.eval()
        return self

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        trained = {prefix + name for name, param in self.named_parameters() if param.requires_grad}
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        out = destination if destination is not None else OrderedDict()
        out.update((key, value) for key, value in full.items() if key in trained)
        return out


@dataclass
class Stage:
    """What a stage gives the loop.

    Args:
        name: shown in logs.
        model: a module whose `forward(batch, generator)` returns the loss; it holds the trained
            modules (parameters with requires_grad) and the frozen ones it needs. Going through one
            forward keeps DDP's gradient synchronisation correct.
        dataset: a dataset; when it has `get(index, seed=...)` that is used so random clips are reproducible.
        export: `export(model, output_dir)` with the unwrapped model (EMA weights when --use_ema).
        validate: optional `validate(model, path_without_extension)` writing a validation video.
        collate: optional collate function.
        export_name: the folder under OUTPUT_DIR that `export` writes and `train` returns.
    """

    name: str
    model: torch.nn.Module
    dataset: Dataset
    export: Callable
    validate: Callable | None = None
    collate: Callable | None = None
    export_name: str = "model"


def checkpoint_step(path: Path) -> int:
    """The optimizer step a checkpoint folder (checkpoint-STEP) was saved at."""
    return int(path.name[len(CHECKPOINT_PREFIX) :])


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = []
    for path in (output_dir / "checkpoints").glob(f"{CHECKPOINT_PREFIX}*"):
        if path.name[len(CHECKPOINT_PREFIX) :].isdigit() and (path / STATE_FILE).is_file():
            found.append(path)
    return sorted(found, key=checkpoint_step)


def make_optimizer(params: list, args) -> torch.optim.Optimizer:
    """AdamW, or Adafactor (Shazeer & Stern, 2018; transformers' implementation) following the run's learning-rate
    schedule rather than its own relative step, and without momentum: its second moments are factored into a row and
    a column per matrix, so it keeps almost no state beyond the float32 weights and gradients, about half of AdamW's
    16 bytes per trained parameter."""
    if args.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=args.learning_rate, scale_parameter=False, relative_step=False, warmup_init=False,
                         weight_decay=args.adam_weight_decay)
    return torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.adam_weight_decay)


def train(stage: Stage, args) -> Path:
    """Run the loop for `args.max_train_steps` optimizer steps; returns the exported model folder."""
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    frozen_dtype = weight_dtype(accelerator.mixed_precision)
    loaded_dtypes = cast_for_training(stage.model, frozen_dtype)
    params = [p for p in stage.model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"The {stage.name} stage has nothing to train.")
    optimizer = make_optimizer(params, args)
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    ema = EMAModel(params, decay=args.ema_decay) if args.use_ema else None
    model, optimizer, lr_scheduler = accelerator.prepare(stage.model, optimizer, lr_scheduler)
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    global_step = 0
    if args.resume_from_checkpoint:
        found = checkpoints(output_dir)
        path = (found[-1] if found else None) if args.resume_from_checkpoint == "latest" else Path(args.resume_from_checkpoint)
        if path is None:
            accelerator.print(f"No checkpoint in {output_dir / 'checkpoints'}; starting from step 0.")
        else:
            if not (path / STATE_FILE).is_file():
                raise ValueError(f"{path} is not a complete t2v checkpoint.")
            accelerator.load_state(str(path), strict=False)  # a checkpoint holds only the trained weights (StageModule)
            global_step = json.loads((path / STATE_FILE).read_text())["step"]
            _truncate_metrics(output_dir / "metrics.jsonl", global_step, accelerator)
            accelerator.print(f"Resumed from {path} at step {global_step}.")

    accum = args.gradient_accumulation_steps
    sampler = StepBatchSampler(
        len(stage.dataset), args.train_batch_size, args.seed, global_step * accum, accelerator.process_index, accelerator.num_processes
    )
    loader = DataLoader(
        SeededItems(stage.dataset, args.seed),
        batch_sampler=sampler,
        collate_fn=stage.collate,
        num_workers=args.dataloader_num_workers,
    )
    if accelerator.is_main_process and args.report_to != "none":
        accelerator.init_trackers(f"t2v-{stage.name}", config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})

    check_placement(accelerator.unwrap_model(model), accelerator.device, frozen_dtype, stage.name)
    validate = None if args.skip_validation else stage.validate
    metrics = output_dir / "metrics.jsonl"
    progress = tqdm(total=args.max_train_steps, initial=global_step, desc=stage.name, disable=not accelerator.is_main_process)
    micro_step = global_step * accum
    batches = iter(loader)
    model.train()
    while global_step < args.max_train_steps:
        step_loss = torch.zeros((), device=accelerator.device)
        for _ in range(accum):
            batch = _to_device(next(batches), accelerator.device)
            seed = (args.seed * 1_000_003 + micro_step) * 1_009 + accelerator.process_index
            generator = torch.Generator(accelerator.device).manual_seed(seed)
            with accelerator.accumulate(model):
                loss = model(batch, generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += loss.detach() / accum
            micro_step += 1
        if ema is not None:
            ema.step(params)
        global_step += 1
        mean_loss = accelerator.gather(step_loss[None]).mean().item()
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"The loss became {mean_loss} at step {global_step}; lower --learning_rate.")
        progress.update(1)
        progress.set_postfix(loss=f"{mean_loss:.4f}")
        if accelerator.is_main_process:
            record = {"step": global_step, "loss": mean_loss, "lr": lr_scheduler.get_last_lr()[0], "time": time.time()}
            with open(metrics, "a") as f:
                f.write(json.dumps(record) + "\n")
            if args.report_to != "none":
                accelerator.log({"loss": mean_loss, "lr": record["lr"]}, step=global_step)
        if global_step % args.checkpointing_steps == 0 or global_step == args.max_train_steps:
            save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit)
        if validate and args.validation_steps and global_step % args.validation_steps == 0:
            _validate(accelerator, validate, model, ema, params, output_dir, global_step)
    progress.close()

    export_dir = output_dir / stage.export_name
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model).eval()
        with _ema_weights(ema, params), torch.no_grad():
            restore_dtypes(unwrapped, loaded_dtypes)  # the trained weights too, in the dtype the base was loaded in
            stage.export(unwrapped, export_dir)
            if validate:
                with accelerator.autocast():
                    validate(unwrapped, output_dir / "validation" / f"step-{global_step}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return export_dir


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, limit: int | None) -> Path:
    """accelerator.save_state into checkpoint-STEP.tmp, then rename: a crash mid-save loses nothing."""
    final = output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step}"
    partial = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)  # before any process writes its part (its random state) into it
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps({"step": step}))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        if limit:
            for old in checkpoints(output_dir)[:-limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


class _ema_weights:
    """Swap the EMA weights in for export/validation, and back afterwards."""

    def __init__(self, ema, params):
        self.ema, self.params = ema, params

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.params)
            self.ema.copy_to(self.params)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.params)


def _validate(accelerator, validate, model, ema, params, output_dir, step):
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model).eval()
        with _ema_weights(ema, params), torch.no_grad(), accelerator.autocast():
            validate(unwrapped, output_dir / "validation" / f"step-{step}")
        unwrapped.train()
    accelerator.wait_for_everyone()


def _truncate_metrics(path: Path, step: int, accelerator: Accelerator) -> None:
    """Drop the lines a killed run wrote after the checkpoint it resumes from."""
    if accelerator.is_main_process and path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
