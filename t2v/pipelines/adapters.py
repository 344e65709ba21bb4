"""LoRA adapters of the denoiser, tied to the model they were made on.

An adapter (`training/train_to2v.py --train_mode lora`) is diffusers' LoRA format
(`pytorch_lora_weights.safetensors`, peft names, loaded by `pipe.load_lora_weights`) plus
`t2v_adapter.json`: the fingerprint of the denoiser it was trained on (its config and first attention
weights), its rank and what it was trained on. The pipeline refuses the adapter on any other denoiser,
in one sentence, instead of applying low-rank changes meant for other weights.
"""

import json
import os
from pathlib import Path

from ..attention.paro import model_fingerprint

ADAPTER_FILE = "t2v_adapter.json"
WEIGHTS_NAME = "pytorch_lora_weights.safetensors"


def save_adapter(pipe, lora_layers: dict, output_dir: str | os.PathLike, trained_on: str) -> Path:
    """Write the denoiser's LoRA layers (peft state dict) and their `t2v_adapter.json` to `output_dir`, atomically."""
    from .pipeline_t2v import write_folder  # the pipeline module imports this one

    rank = next((t.shape[0] for name, t in lora_layers.items() if "lora_A" in name), None)
    record = {"base_fingerprint": model_fingerprint(pipe.transformer), "rank": rank, "trained_on": trained_on}

    def write(folder: Path) -> None:
        type(pipe).save_lora_weights(folder, transformer_lora_layers=lora_layers, weight_name=WEIGHTS_NAME)
        (folder / ADAPTER_FILE).write_text(json.dumps(record, indent=2) + "\n")

    return write_folder(output_dir, write)


def check_adapter(pipe, folder: str | os.PathLike) -> None:
    """Raise ValueError in one sentence unless `folder` holds a LoRA adapter made on this pipeline's denoiser.

    A folder without `t2v_adapter.json` (an adapter from elsewhere, in diffusers' format) is not checked.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"No LoRA adapter folder at {folder}.")
    if not (folder / WEIGHTS_NAME).is_file() and not any(folder.glob("*.safetensors")):
        raise ValueError(f"{folder} holds no LoRA weights (*.safetensors); give the folder train_to2v.py --train_mode lora wrote.")
    record_file = folder / ADAPTER_FILE
    if not record_file.is_file():
        return
    try:
        made_on = json.loads(record_file.read_text())["base_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{record_file} is not a t2v adapter record.") from None
    this = model_fingerprint(pipe.transformer)
    if made_on != this:
        raise ValueError(f"The adapter in {folder} was made on another model's denoiser (fingerprint {made_on}, this one's is "
                         f"{this}); load it on the model it was trained on.")
