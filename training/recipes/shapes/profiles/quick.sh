# The quick profile: the recipe of the packaged model, about 100 minutes on a 2-core CPU
# (last_run.json). Every stage trains its YAML's steps in one part; the denoiser is 64 wide
# (0.35 M parameters) and the VAE compresses 8x in space.
MODEL_ARGS=(--width 64 --vae-compression 8)
DATA_ARGS=(--num 240 --seconds 8 --max-seconds 64 --seed 0)
