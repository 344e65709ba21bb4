"""Input checks shared by the Python API, the command line and the training scripts: one clear sentence per mistake;
and what a model folder says about itself (`read_model_index`, `stored_dtype`)."""

import argparse
import json
import math
import numbers
import os
import re
from pathlib import Path


def positive_number(name: str, value, integer: bool = False):
    """Return `value` if it is a finite number > 0 (a whole number when `integer`), else raise ValueError."""
    error = ValueError(f"{name} must be {'a whole number' if integer else 'a number'} greater than 0, got {value!r}.")
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise error from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise error
    if integer and int(value) != value:
        raise error
    return int(value) if integer else float(value)


def finite_number(name: str, value, minimum: float = 0.0) -> float:
    """Return `value` as a float if it is finite and >= minimum, else raise ValueError."""
    error = ValueError(f"{name} must be a number of at least {minimum:g}, got {value!r}.")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise error from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < minimum:
        raise error
    return float(value)


def is_prompt_list(value) -> bool:
    """True for a non-empty list (or tuple) of prompts that are not blank: what a storyboard must be."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(p, str) and p.strip() for p in value)


def is_hub_id(path: str) -> bool:
    """Whether `path` names a hub repository ("owner/name") rather than a local folder."""
    return not (os.path.isabs(path) or path.startswith(".") or os.path.exists(path)) and path.count("/") == 1


def read_model_index(path: str, class_name: str, kind: str) -> dict:
    """The model_index.json of a local diffusers pipeline folder, checked: one clear sentence when `path` is not
    a folder of `class_name` (described to the user as `kind`) with every component folder its index names."""
    if not os.path.isdir(path):
        raise ValueError(f"No model folder at {path}.")
    index_file = os.path.join(path, "model_index.json")
    if not os.path.isfile(index_file):
        raise ValueError(f"{path} is not a {kind} folder: it has no model_index.json.")
    try:
        with open(index_file) as f:
            index = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{index_file} is not valid JSON ({err}).") from None
    if not isinstance(index, dict) or index.get("_class_name") != class_name:
        found = index.get("_class_name") if isinstance(index, dict) else None
        raise ValueError(f"{path} is not a {kind} folder: it holds a {found!r}, not a {class_name}.")
    # a component saved as [null, null] is an optional one the pipeline was saved without
    missing = [name for name, spec in index.items()
               if isinstance(spec, list) and spec[:1] != [None] and not os.path.isdir(os.path.join(path, name))]
    if missing:
        raise ValueError(f"{path} is incomplete: the folder(s) {', '.join(missing)} are missing.")
    return index


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes are one sentence on stderr and exit status 2, never a usage dump.

    Prefixes (`--second` for `--seconds`) are not accepted: an option is named in full or not at all.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        match = re.match(r"argument [^:]+: (--\S+ .*)", message)  # our own checks already name the option
        message = match.group(1) if match else message
        message = message if message.endswith(".") else message + "."
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")


def argparse_type(name: str, integer: bool = False, finite: bool = False):
    """An argparse `type` that accepts a number > 0 (`integer`: a whole one; `finite`: any number >= 0)."""

    def parse(text: str):
        try:
            return finite_number(name, text) if finite else positive_number(name, text, integer)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = name
    return parse


def stored_dtype(component_folder: str | os.PathLike):
    """The floating dtype most of a component's weights (by element count) are stored in, read from its safetensors
    headers without loading them; None when the folder holds no floating safetensors weights."""
    import torch
    from safetensors import safe_open

    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    counts = {}
    for file in sorted(Path(component_folder).glob("*.safetensors")):
        with safe_open(file, framework="pt") as weights:
            for key in weights.keys():
                tensor = weights.get_slice(key)
                if tensor.get_dtype() in dtypes:
                    counts[tensor.get_dtype()] = counts.get(tensor.get_dtype(), 0) + math.prod(tensor.get_shape())
    return dtypes[max(counts, key=counts.get)] if counts else None
