"""PAROAttention's offline plan: per head an axis order and the attention mass of its blocks.

PAROAttention (Zhao et al., 2025) observes that each head of a video DiT attends in a fixed pattern
(along frames, rows or columns) that one of the six orders of the (frame, height, width) axes turns
into a local block pattern, and that which blocks matter hardly changes between prompts and steps.
So the order and the block mask are chosen once, offline, from dense attention on a few prompts
(`t2v.attention.calibrate`), and reused at no run-time cost.

The plan keeps, for every self-attention layer and head, the chosen order (an index into
`reorder.AXIS_ORDERS`) and the attention mass of every (query tile, key block) pair in that order,
averaged over the calibration. The block mask for a density is derived from the mass when sparse
attention is enabled (required blocks first, then the heaviest), so one plan serves every density; the
order itself was chosen at the calibration density. A plan holds for one token grid (frames, height,
width), the FIFO window's, and for the model it was calibrated on (a fingerprint of its configuration
and first weights).
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .selection import planned_blocks

PLAN_NAME = "attention_plan.safetensors"


def model_fingerprint(transformer) -> str:
    """A short hash of a transformer's configuration and its first self-attention query weights."""
    config = {k: v for k, v in dict(transformer.config).items() if not k.startswith("_")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    weight = transformer.blocks[0].attn1.to_q.weight.detach().flatten()[:4096].float().cpu()
    digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class AttentionPlan:
    """Per layer: `orders[i]` (H,) axis-order indices and `mass[i]` (H, tiles, key blocks) attention mass."""

    orders: list[torch.Tensor]
    mass: list[torch.Tensor]
    grid: tuple[int, int, int]
    query_tile: int
    key_block: int
    sink_tokens: int
    density: float
    fingerprint: str

    @property
    def length(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    def kv_blocks(self, layer: int, density: float) -> torch.Tensor:
        """(H, tiles, S) the blocks of `layer` at `density`: required ones first, then by mass."""
        return planned_blocks(self.mass[layer].float(), self.query_tile, self.key_block, self.length, density)[1]

    def save(self, path) -> Path:
        path = Path(path)
        tensors = {f"layer{i}.order": o.to(torch.int64).contiguous() for i, o in enumerate(self.orders)}
        tensors.update({f"layer{i}.mass": m.float().contiguous() for i, m in enumerate(self.mass)})
        metadata = {
            "format": "t2v-attention-plan-1",
            "grid": json.dumps(list(self.grid)),
            "query_tile": str(self.query_tile),
            "key_block": str(self.key_block),
            "sink_tokens": str(self.sink_tokens),
            "density": str(self.density),
            "fingerprint": self.fingerprint,
        }
        tmp = path.with_name(path.name + ".partial")
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "AttentionPlan":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"No attention plan at {path}; make one with `t2v calibrate-attention`.")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != "t2v-attention-plan-1":
            raise ValueError(f"{path} is not a t2v attention plan.")
        tensors = load_file(str(path))
        layers = len([k for k in tensors if k.endswith(".order")])
        return cls(
            orders=[tensors[f"layer{i}.order"] for i in range(layers)],
            mass=[tensors[f"layer{i}.mass"] for i in range(layers)],
            grid=tuple(json.loads(meta["grid"])),
            query_tile=int(meta["query_tile"]),
            key_block=int(meta["key_block"]),
            sink_tokens=int(meta["sink_tokens"]),
            density=float(meta["density"]),
            fingerprint=meta["fingerprint"],
        )

    def check(self, transformer) -> None:
        """Raise one clear sentence when this plan was not made for `transformer`."""
        if self.fingerprint != model_fingerprint(transformer) or len(self.orders) != len(transformer.blocks):
            raise ValueError(
                "This attention plan was calibrated for another model; run `t2v calibrate-attention` for this one."
            )
