"""Attention for t2v's transformers: dense through diffusers' dispatch, or sparse and reordered.

Dense attention goes through diffusers' attention dispatch, so any backend diffusers supports can be
chosen on a loaded model, e.g. `pipe.transformer.set_attention_backend("xformers")` after
`pip install "t2v[xformers]"` on a CUDA machine.

Sparse, reordered self-attention (Sparse VideoGen 2, PAROAttention) for any Wan-family transformer:

    from t2v.attention import enable_sparse_attention, disable_sparse_attention
    enable_sparse_attention(transformer, density=0.25, mode="semantic")   # no calibration needed
    enable_sparse_attention(transformer, density=0.25, mode="paro", plan="attention_plan.safetensors")

- `processor.py`: the attention processor and the enable/disable functions;
- `reorder.py`: k-means clusters and axis orders; `selection.py`: which key blocks a query tile attends;
- `paro.py`: the calibrated plan; `calibrate.py`: making one from dense attention;
- `kernels.py`: block-sparse attention (a gather into dense SDPA; FlexAttention on CUDA).
"""

from .calibrate import calibrate_attention
from .paro import PLAN_NAME, AttentionPlan
from .processor import SparseWanAttnProcessor, disable_sparse_attention, enable_sparse_attention

__all__ = [
    "PLAN_NAME",
    "AttentionPlan",
    "SparseWanAttnProcessor",
    "calibrate_attention",
    "disable_sparse_attention",
    "enable_sparse_attention",
]
