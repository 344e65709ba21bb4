"""Attention for t2v's transformers.

Dense attention goes through diffusers' attention dispatch, so any backend diffusers supports can be
chosen on a loaded model, e.g. `pipe.transformer.set_attention_backend("xformers")` after
`pip install "t2v[xformers]"` on a CUDA machine. Sparse, reordered self-attention (Sparse VideoGen 2,
PAROAttention) is planned for this package and is not here yet.
"""
