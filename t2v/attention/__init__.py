"""Attention for t2v's transformers.

Dense attention goes through diffusers' attention dispatch, so any backend diffusers supports can be
chosen on a loaded model, e.g. `pipe.transformer.set_attention_backend("xformers")` after
`pip install "t2v[xformers]"` on a CUDA machine.

Sparse, reordered self-attention (Sparse VideoGen 2, PAROAttention) is being built here. So far
there is `kernels.block_sparse_attention`, the block-sparse kernel that both will run on. The
attention processor, the semantic and PARO block selection and `--attention` are not here yet.
"""
