"""Where a stage's modules live: every one on the accelerator's device, what trains in float32, what is frozen in
the mixed-precision dtype (as diffusers' training scripts cast `weight_dtype`).

`cast_for_training` casts parameters only: buffers keep their dtype (the token codec's PCA stays float32, the Wan
rotary tables stay as they are), and so do the modules a diffusers model keeps in float32 (`_keep_in_fp32_modules`,
e.g. the Wan DiT's time embedder and norms). It returns each parameter's dtype before, so that the exported model
is written in the dtype the base was loaded in (`restore_dtypes`). `check_placement` is run before the first step.
"""

import torch

WEIGHT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def weight_dtype(mixed_precision: str) -> torch.dtype:
    """The dtype frozen weights are kept in under accelerate's `mixed_precision` ("no": float32)."""
    return WEIGHT_DTYPES.get(str(mixed_precision), torch.float32)


def kept_in_fp32(model: torch.nn.Module) -> set[str]:
    """Names of the parameters of `model` that a diffusers submodule keeps in float32 (its `_keep_in_fp32_modules`)."""
    kept = set()
    for prefix, module in model.named_modules():
        keep = getattr(module, "_keep_in_fp32_modules", None) or []
        for name, _ in module.named_parameters():
            if any(part in name.split(".") for part in keep):
                kept.add(f"{prefix}.{name}" if prefix else name)
    return kept


def cast_for_training(model: torch.nn.Module, frozen_dtype: torch.dtype) -> dict[str, torch.dtype]:
    """Trained parameters to float32, frozen ones to `frozen_dtype` (but those kept in float32); returns the dtypes before."""
    before = {name: param.dtype for name, param in model.named_parameters()}
    kept = kept_in_fp32(model)
    for name, param in model.named_parameters():
        if not param.is_floating_point():
            continue
        dtype = torch.float32 if param.requires_grad or (name in kept and param.dtype == torch.float32) else frozen_dtype
        param.data = param.data.to(dtype)
    return before


def restore_dtypes(model: torch.nn.Module, dtypes: dict[str, torch.dtype]) -> None:
    """Cast every parameter back to the dtype `cast_for_training` found it in."""
    for name, param in model.named_parameters():
        if name in dtypes and param.dtype != dtypes[name]:
            param.data = param.data.to(dtypes[name])


def check_placement(model: torch.nn.Module, device: torch.device, frozen_dtype: torch.dtype, stage: str = "training") -> None:
    """Raise ValueError, in one sentence, unless every parameter and buffer of `model` is on `device`, every trained
    parameter in float32 and every frozen one in `frozen_dtype` (or float32 where its module keeps it so)."""
    device = torch.device(device)
    kept = kept_in_fp32(model)
    trained = {name for name, param in model.named_parameters() if param.requires_grad}
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        other_index = device.type != "cpu" and device.index is not None and tensor.device.index != device.index  # "cpu:1" is the CPU
        if tensor.device.type != device.type or other_index:
            raise ValueError(f"The {stage} stage runs on {device}, but {name} of its {name.split('.')[0]} is on {tensor.device}.")
    for name, param in model.named_parameters():
        if not param.is_floating_point():
            continue
        if name in trained:
            allowed = {torch.float32}
        else:
            allowed = {frozen_dtype, torch.float32} if name in kept else {frozen_dtype}
        if param.dtype not in allowed:
            kind = "trained" if name in trained else "frozen"
            expected = " or ".join(str(d).replace("torch.", "") for d in sorted(allowed, key=str))
            raise ValueError(f"The {stage} stage keeps {kind} weights in {expected}, but {name} of its {name.split('.')[0]} "
                             f"is in {str(param.dtype).replace('torch.', '')}.")
